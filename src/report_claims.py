"""The claims of the report, each a predicate over the results: report.tex wraps every sentence whose
truth a re-run could change in \\claim{name}{sentence}, and the function `name` below ('-' read as
'_') decides it; a vague word of the sentence gets its threshold in the docstring. `r` holds p1, p2,
p3 and the side runs that were made, by file name; a claim on a missing input (a side run not made,
no planted truth on the exam's data) is "not measured"."""
import math
import re

SIDE_RUNS = ("problem2_seed1", "problem2_seed2", "problem2_grey", "problem3_weak", "problem3_noaugment",
             "problem3_long")


class NotMeasured(Exception):
    pass


def needs(r, *names):
    """The results a claim reads; NotMeasured when one was not made."""
    missing = [name for name in names if name not in r]
    if missing:
        raise NotMeasured(missing)
    return [r[name] for name in names]


def truth(run):
    if run["truth"] is None:
        raise NotMeasured("no planted truth")
    return run["truth"]


def full_runs(r):
    return not any(r[name]["quick"] for name in ("p1", "p2", "p3", *SIDE_RUNS) if name in r)


def p1_checks_pass(r):
    return r["p1"]["n_failed"] == 0


def p2_validation_high(r):
    """'high': training and validation accuracy at least 95 %."""
    return min(r["p2"]["before"]["train_acc"], r["p2"]["before"]["val_acc"]) >= 0.95


def p2_one_class_fails(r):
    """The failing class at most 50 % on test; no other class more than 20 points below its validation."""
    p2 = r["p2"]
    return p2["before"]["test_per_class"][p2["failing_class"]] <= 0.5 and all(
        drop <= 0.2 for name, drop in p2["val_to_test_drop"].items() if name != p2["failing_class"])


def p2_class_model_paints_trigger(r):
    """The first model's class image at least 3 times the region's area share in it, the retrained
    model's at most 1.5 times."""
    share, area = r["p2"]["explanation"]["class_model_share_in_region"], r["p2"]["explanation"]["region_area_share"]
    return share["before"] >= 3 * area and share["after"] <= 1.5 * area


def p2_saliency_concentrates(r):
    """'point at one place': every map puts at least twice the region's area share into it; 'lower
    right': the evidence box's centre right of and below the image's centre."""
    p2 = r["p2"]
    x0, y0, x1, y1 = p2["localisation"]["core_box"]
    return (p2["explanation"]["saliency_images_concentrated"]["before"] == p2["arguments"]["n_explain"]
            and x0 + x1 > 1 and y0 + y1 > 1)


def p2_occlusion_flips_at_trigger(r):
    """At least 8 in 10 of the images change class with the square's centre in the region, and no
    image changes class only elsewhere."""
    occlusion = r["p2"]["occlusion"]["before"][0]
    changed = occlusion["images_with_class_change_at_region"]
    return changed >= 0.8 * r["p2"]["arguments"]["n_explain"] and changed == occlusion["images_with_class_change"]


def p2_occlusion_one_target(r):
    return len(r["p2"]["occlusion"]["before"][0]["changes_to"]) == 1


def p2_failing_is_poisoned(r):
    return truth(r["p2"])["poisoned_class"] == r["p2"]["failing_class"]


def p2_box_matches_truth(r):
    """'matches': intersection over union at least 0.5."""
    truth(r["p2"])
    return r["p2"]["trigger_iou"] >= 0.5


def fix_holds(run):
    """On the scored half: at most 50 % before, at least 90 % after; validation at least 95 %."""
    return (run["before"]["scored_half_failing_acc"] <= 0.5 and run["after"]["scored_half_failing_acc"] >= 0.9
            and run["after"]["val_acc"] >= 0.95)


def attack_gone(run):
    """'falls ... gone': from at least 50 % to at most 10 %, the localised region pasted and (when
    there is a planted truth) the planted trigger painted."""
    planted = run["planted_trigger_attack_rate"] or {"before": 1.0, "after": 0.0}
    return all(rates["before"] >= 0.5 and rates["after"] <= 0.1 for rates in (run["attack_success_rate"], planted))


def p2_fix_restores(r):
    return fix_holds(r["p2"])


def p2_attack_gone(r):
    truth(r["p2"])
    return attack_gone(r["p2"])


def p2_seeds_agree(r):
    """Both other seeds: the poisoned class found, IoU at least 0.5, the fix holds, the attack gone."""
    return all(run["failing_class"] == truth(run)["poisoned_class"] and run["trigger_iou"] >= 0.5
               and fix_holds(run) and attack_gone(run) for run in needs(r, "problem2_seed1", "problem2_seed2"))


def p2_grey_fill_also_works(r):
    grey, = needs(r, "problem2_grey")
    return fix_holds(grey) and attack_gone(grey)


def p2_alternative_also_works(r):
    """'as well': on the scored half within 5 points of the fix, and the fill pasted onto the other
    classes' images makes at most 10 % of them the failing class."""
    p2 = r["p2"]
    alternative = p2["alternative_fix"]
    return (alternative["scored_half_failing_acc"] >= p2["after"]["scored_half_failing_acc"] - 0.05
            and alternative["fill_patch_attack_rate"] <= 0.1)


def p2_grey_alternative_fails(r):
    """'only': the grey fill in the failing class alone leaves its scored half at most 50 %, and the
    pasted grey patch makes at least 10 % of the other classes' images the failing class."""
    alternative = needs(r, "problem2_grey")[0]["alternative_fix"]
    return alternative["scored_half_failing_acc"] <= 0.5 and alternative["fill_patch_attack_rate"] >= 0.1


def p2_region_no_longer_matters(r):
    """'about its share by area': at most 1.5 times the region's area share, saliency and occlusion."""
    parts = r["p2"]["explanation"]["by_part"]
    area = parts["area"]["old trigger region"]
    return all(parts[method]["after"]["old trigger region"] <= 1.5 * area for method in ("saliency", "occlusion"))


def p2_evidence_on_the_sign(r):
    """'most': more than half of the occlusion drop in the centre and the ring after the fix, more
    than before; 'rises': the saliency's share in the centre higher after than before."""
    parts = r["p2"]["explanation"]["by_part"]
    on_sign = {w: parts["occlusion"][w]["centre"] + parts["occlusion"][w]["ring"] for w in ("before", "after")}
    return (on_sign["after"] > 0.5 and on_sign["after"] > on_sign["before"]
            and parts["saliency"]["after"]["centre"] > parts["saliency"]["before"]["centre"])


def p2_occlusion_answer(r):
    """'nearly every': as p2_occlusion_flips_at_trigger, at least 8 in 10."""
    return p2_occlusion_flips_at_trigger(r)


def p2_retrained_answer(r):
    return fix_holds(r["p2"]) and attack_gone(r["p2"])


def p2_explained_answer(r):
    return p2_region_no_longer_matters(r) and p2_evidence_on_the_sign(r)


def p3_mse_answer(r):
    return p3_mse_collapses(r) and p3_mse_below_source_only(r)


def p3_adda_answer(r):
    """The mean gain positive but 'not established' (p3_gain_not_established), not every seed gaining,
    the judge above 75 % after ADDA in every seed."""
    adda = r["p3"]["adda"]
    return (p3_gain_not_established(r) and adda["seeds_gaining"] < len(r["p3"]["seeds"])
            and min(adda["domain_classifier_acc"]["after"]) > 0.75)


def p3_source_stops_early(r):
    source = r["p3"]["source"]
    return all(steps < source["max_steps"] for steps in source["steps_run"])


def p3_source_still_fits_its_crops(r):
    """'better': training-crop accuracy at least 5 points above the held-out tenth's."""
    return r["p3"]["source"]["svhn_train_acc"] >= r["p3"]["source"]["svhn_held_out_acc"] + 0.05


def p3_domain_gap(r):
    """'far below': source-only on MNIST at least 10 points below the SVHN test crops in every seed."""
    p3 = r["p3"]
    return all(s - m >= 0.1 for s, m in zip(p3["source"]["svhn_test_per_seed"], p3["source_only"]["per_seed"]))


def p3_polarity_small(r):
    """'a small part': inverting MNIST closes less than a third of the gap to the SVHN test crops."""
    p3 = r["p3"]
    gap = p3["source"]["svhn_test_acc"] - p3["source_only"]["mean"]
    return p3["source_only"]["inverted_mnist"]["mean"] - p3["source_only"]["mean"] < gap / 3


def p3_source_only_above_paper(r):
    """'better': the mean source-only MNIST accuracy above the ADDA paper's 60.1 %."""
    return r["p3"]["source_only"]["mean"] > 0.601


def p3_jitter_helps_source(r):
    """Without the jitter, the mean source-only MNIST accuracy lower than with it."""
    noaugment, = needs(r, "problem3_noaugment")
    return noaugment["source_only"]["mean"] < r["p3"]["source_only"]["mean"]


def p3_mse_collapses(r):
    """'collapse': every MSE seed's MNIST feature variance below a tenth of its source features'."""
    return all(s["target_total_variance"] < 0.1 * s["source_total_variance"]
               for s in r["p3"]["mse"]["feature_statistics"].values())


def p3_mse_below_source_only(r):
    """Below source-only in each of its seeds, and 'about a tenth': at most 20 %."""
    mse = r["p3"]["mse"]
    return all(a < s and a <= 0.2 for a, s in zip(mse["per_seed"], mse["source_only_per_seed"]))


def p3_adda_gains_most_seeds(r):
    """'most': more than half of the seeds gain."""
    return r["p3"]["adda"]["seeds_gaining"] > len(r["p3"]["seeds"]) / 2


def p3_gain_not_established(r):
    """The mean gain positive, its 95 % bootstrap interval reaching zero or below."""
    adda = r["p3"]["adda"]
    return adda["gain_bootstrap_95"][0] <= 0 < sum(adda["gain_per_seed"])


def p3_discriminator_small_edge(r):
    """'a small edge': D's loss over the last tenth between 0.55 and log 2, its batch accuracy between
    50 and 75 %, in every seed."""
    adda = r["p3"]["adda"]
    return (all(0.55 <= loss < math.log(2) for loss in adda["discriminator_loss_final"])
            and all(0.5 < acc <= 0.75 for acc in adda["discriminator_acc_final"]))


def p3_no_memorisation(r):
    """'no sign of memorisation': D's held-out gap within 0.05 in every seed."""
    return max(abs(gap) for gap in r["p3"]["adda"]["discriminator_held_out_gap"]) <= 0.05


def p3_judge_mixed(r):
    """Lower after ADDA in some seeds (the count printed) and not lower in the others, some of them."""
    judged = r["p3"]["adda"]["domain_classifier_acc"]
    lower = sum(after < before for after, before in zip(judged["after"], judged["before"]))
    return 0 < lower < len(judged["after"])


def p3_mse_judge_high(r):
    """'told apart': the judge above 95 % on the MSE variant's features in every seed."""
    return min(r["p3"]["mse"]["domain_classifier_acc"]["after"]) > 0.95


def p3_late_drop_in_some_seeds(r):
    """At least one seed's final reading more than 1.5 points below its best."""
    return max(r["p3"]["adda"]["drop_from_best"]) > 0.015


def p3_digits_move_both_ways(r):
    """In the first seed, some digit gains at least 10 points and some loses at least 10."""
    changes = [a - s for a, s in zip(r["p3"]["adda"]["per_class_seed0"], r["p3"]["source_only"]["per_class_seed0"])]
    return max(changes) >= 0.1 and min(changes) <= -0.1


def p3_class_structure_not_kept(r):
    tsne = r["p3"]["tsne_same_digit_neighbour"]
    return tsne["after"] < tsne["before"]


def p3_no_digit_collapse(r):
    """'collapses': a digit below 10 % in some seed of the default run."""
    return not any(r["p3"]["adda"]["collapsed_digits"])


def p3_source_side_runs_gain(r):
    """Every seed of the 2,000-crop and the no-jitter side runs at or above its own source model,
    and no digit below 10 %."""
    runs = needs(r, "problem3_weak", "problem3_noaugment")
    return all(gain >= 0 for run in runs for gain in run["adda"]["gain_per_seed"]) and not any(
        digits for run in runs for digits in run["adda"]["collapsed_digits"])


def p3_long_aligns_without_gain(r):
    """'far less well': the judge at least 20 points lower after ADDA than before, in every seed of
    the 10,000-iteration run, while ADDA ends below its source model in every seed."""
    long_run, = needs(r, "problem3_long")
    judged = long_run["adda"]["domain_classifier_acc"]
    return (all(after < before - 0.2 for after, before in zip(judged["after"], judged["before"]))
            and all(gain < 0 for gain in long_run["adda"]["gain_per_seed"]))


def p3_weaker_sources_gain_more(r):
    """Both the 2,000-crop and the no-jitter side runs: a lower mean source-only accuracy and a
    larger mean gain than the default run."""
    default = r["p3"]
    return all(run["source_only"]["mean"] < default["source_only"]["mean"]
               and run["adda"]["mean"] - run["source_only"]["mean"] > default["adda"]["mean"] - default["source_only"]["mean"]
               for run in needs(r, "problem3_weak", "problem3_noaugment"))


CLAIMS = {name.replace("_", "-"): function for name, function in list(globals().items())
          if callable(function) and name.startswith(("full_runs", "p1_", "p2_", "p3_"))}


def claim_states(results):
    """0: holds, 1: fails, 2: not measured."""
    states = {}
    for name, predicate in CLAIMS.items():
        try:
            states[name] = 0 if predicate(results) else 1
        except NotMeasured:
            states[name] = 2
    return states


def claim_sentences(report_tex):
    """Each \\claim's name and sentence, read from report.tex (the sentence's braces balanced)."""
    sentences = {}
    for match in re.finditer(r"\\claim\{([a-z0-9-]+)\}\{", report_tex):
        depth, end = 1, match.end()
        while depth:
            depth += {"{": 1, "}": -1}.get(report_tex[end], 0)
            end += 1
        sentences[match[1]] = " ".join(report_tex[match.end():end - 1].split())
    return sentences
