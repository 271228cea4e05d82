"""The claims of the report, each a predicate over the results: report.tex wraps every sentence whose
truth a re-run could change in \\claim{name}{sentence}, and the method `name` of Claims ('-' read as
'_') decides it. A vague word of the sentence gets its threshold in the docstring."""
import re


class Claims:
    """`r` holds p1, p2, p3 and the side runs made (by file name). A missing input (a side run
    not made, no planted truth on the exam's data) raises KeyError or TypeError: "not measured"."""

    def full_runs(r):
        return not any(r[k]["quick"] for k in ("p1", "p2", "p3"))

    def p1_checks_pass(r):
        return r["p1"]["n_failed"] == 0

    def p2_validation_high(r):
        """'high': at least 95 %."""
        return r["p2"]["before"]["val_acc"] >= 0.95

    def p2_one_class_fails(r):
        """The failing class at most 50 % on test, every other class within 5 points of validation."""
        drops = r["p2"]["val_to_test_drop"]
        failing = r["p2"]["failing_class"]
        return r["p2"]["before"]["test_per_class"][failing] <= 0.5 and all(
            d <= 0.05 for c, d in drops.items() if c != failing)

    def p2_failing_is_poisoned(r):
        return r["p2"]["truth"]["poisoned_class"] == r["p2"]["failing_class"]

    def p2_saliency_concentrates(r):
        """Every explained map puts more than twice the region's area share into it."""
        return r["p2"]["explanation"]["saliency_images_concentrated"]["before"] == r["p2"]["arguments"]["n_explain"]

    def p2_occlusion_flips_at_trigger(r):
        """'most': at least 8 of the 10 images change class with the square's centre in the region."""
        return r["p2"]["occlusion"]["before"][0]["images_with_class_change_at_region"] >= 8

    def p2_box_matches_truth(r):
        """'matches': intersection over union at least 0.5."""
        return r["p2"]["trigger_iou"] >= 0.5

    def p2_fix_restores(r):
        """On the scored half: at most 50 % before, at least 90 % after; validation at least 95 %."""
        return fix_holds(r["p2"])

    def p2_attack_gone(r):
        """At most 10 % of pasted images called the failing class, localised region and planted trigger."""
        return attack_gone(r["p2"])

    def p2_seeds_agree(r):
        """Both other seeds: the poisoned class found, IoU at least 0.5, the fix holds, the attack gone."""
        return all(run["failing_class"] == run["truth"]["poisoned_class"] and run["trigger_iou"] >= 0.5
                   and fix_holds(run) and attack_gone(run) for run in (r["problem2_seed1"], r["problem2_seed2"]))

    def p2_region_no_longer_matters(r):
        """After the fix the region holds at most its area share (x 1.5) of saliency and occlusion."""
        parts = r["p2"]["explanation"]["by_part"]
        area = parts["area"]["old trigger region"]
        return all(parts[m]["after"]["old trigger region"] <= 1.5 * area for m in ("saliency", "occlusion"))

    def p2_grey_fill_also_works(r):
        grey = r["problem2_grey"]
        return grey["after"]["scored_half_failing_acc"] >= 0.9 and grey["attack_success_rate"]["after"] <= 0.1

    def p2_alternative_worse(r):
        """Filling the failing class only leaves its test accuracy at least 20 points below the fix's."""
        return r["p2"]["alternative_fix"]["failing_test_acc"] <= r["p2"]["after"]["test_per_class"][r["p2"]["failing_class"]] - 0.2

    def p3_source_stops_early(r):
        return all(step < r["p3"]["source"]["max_steps"] for step in r["p3"]["source"]["chosen_step"])

    def p3_domain_gap(r):
        """'far below': source-only on MNIST at least 10 points below the SVHN test crops in every seed."""
        p3 = r["p3"]
        return all(s - m >= 0.1 for s, m in zip(p3["source"]["svhn_test_per_seed"], p3["source_only"]["per_seed"]))

    def p3_mse_below_source_only(r):
        mse = r["p3"]["mse"]
        return all(a < s for a, s in zip(mse["per_seed"], mse["source_only_per_seed"]))

    def p3_mse_collapses(r):
        """'collapse': the MNIST features' total variance below a tenth of the source features'."""
        p3 = r["p3"]
        return all(s["target_total_variance"] < 0.1 * p3["source_feature_statistics"]["source_total_variance"]
                   for s in p3["mse"]["feature_statistics"].values())

    def p3_adda_gains_every_seed(r):
        return r["p3"]["adda"]["seeds_gaining"] == len(r["p3"]["seeds"])

    def p3_gain_interval_positive(r):
        return r["p3"]["adda"]["gain_bootstrap_95"][0] > 0

    def p3_discriminator_not_winning(r):
        """'not winning': D's training loss over the last tenth at least 0.5 in every seed."""
        return min(r["p3"]["adda"]["discriminator_loss_final"]) >= 0.5

    def p3_no_memorisation(r):
        """'no memorisation': D's held-out gap within 0.05 in every seed."""
        return max(abs(g) for g in r["p3"]["adda"]["discriminator_held_out_gap"]) <= 0.05

    def p3_judge_lower_after(r):
        judged = r["p3"]["adda"]["domain_classifier_acc"]
        return all(a < b for a, b in zip(judged["after"], judged["before"]))

    def p3_no_late_drop(r):
        """'no late drop': the final reading within 1.5 points of the run's best in every seed."""
        return max(r["p3"]["adda"]["drop_from_best"]) <= 0.015

    def p3_no_digit_collapse(r):
        """No digit below 10 % in any seed of the default run or of the side runs that were made."""
        runs = [r["p3"]] + [r[k] for k in ("problem3_weak", "problem3_noaugment", "problem3_long") if k in r]
        return all(not any(digits) for run in runs for digits in run["adda"]["collapsed_digits"])

    def p3_side_runs_gain(r):
        """Every seed of every side run at or above its own source-only model."""
        return all(g >= 0 for k in ("problem3_weak", "problem3_noaugment", "problem3_long")
                   for g in r[k]["adda"]["gain_per_seed"])


def fix_holds(run):
    return (run["before"]["scored_half_failing_acc"] <= 0.5 and run["after"]["scored_half_failing_acc"] >= 0.9
            and run["after"]["val_acc"] >= 0.95)


def attack_gone(run):
    return run["attack_success_rate"]["after"] <= 0.1 and run["planted_trigger_attack_rate"]["after"] <= 0.1


CLAIMS = {name.replace("_", "-"): predicate for name, predicate in vars(Claims).items() if not name.startswith("_")}


def claim_states(results):
    """0: holds, 1: fails, 2: not measured (a side run or the planted truth is missing)."""
    states = {}
    for name, predicate in CLAIMS.items():
        try:
            states[name] = 0 if predicate(results) else 1
        except (KeyError, TypeError):
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
