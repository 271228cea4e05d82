"""Write doc/results.tex from doc/results/*.json: the numbers and tables the report prints, and the
state of every claim it makes. Run by `make report`.

report.tex wraps each sentence whose truth a re-run could change in \\claim{name}{sentence}. The
predicate of that name below decides it from the results: a claim that holds prints as written, one
that fails is marked "[not supported by these results]" and one whose inputs were not made (a side
run, or the planted truth on the exam's own data) "[not measured]". This script lists the claims
that do not hold, with their sentences, and still writes the file.
"""
import argparse
import json
import re
from pathlib import Path

import numpy as np

from utils import UserError, run_main

DOC = Path(__file__).resolve().parent.parent / "doc"
SIDE_RUNS = ("problem2_seed1", "problem2_seed2", "problem2_grey", "problem3_weak", "problem3_noaugment",
             "problem3_long")


# ==================================================================================================
# Formats
# ==================================================================================================
def pct(share, digits=1):
    return f"{100 * share:.{digits}f}"


def points(difference):
    """A difference of shares in percentage points, signed, with a typeset minus."""
    return f"{round(100 * difference, 1) + 0.0:+.1f}".replace("-", "$-$")


def listed(values, form=pct):
    return " / ".join(form(v) for v in values)


def span(values, form=pct):
    low, high = form(min(values)), form(max(values))
    return low if low == high else f"{low}--{high}"


def mean_sd(values):
    return f"{pct(np.mean(values))}\\,$\\pm$\\,{pct(np.std(values, ddof=1) if len(values) > 1 else 0.0)}"


def tex(text):
    return re.sub(r"([_%&#$])", r"\\\1", str(text))


# ==================================================================================================
# Numbers and tables
# ==================================================================================================
def problem1_macros(p1):
    he, ratios, tanh, gan = (p1[k] for k in ("he", "xavier_vs_he_ratio_per_layer",
                                             "tanh_variance_after_30_layers", "gan"))
    rows = [f"{tex(c['name'])} & {c['measured']:.4g} & {c['predicted']:.4g} & {c['tolerance']:.1g} & "
            f"{'pass' if c['passed'] else 'FAIL'} \\\\" for c in p1["checks"]]
    return {"POneNChecks": p1["n_checks"], "POneVOptimum": f"{gan['v_at_optimum']:.6f}",
            "POneMinusLogFour": f"{gan['minus_log4']:.6f}", "POneVApart": f"{gan['v_apart']:.4f}",
            "POneJSDApart": f"{gan['jsd_apart']:.4f}", "POneXavierReLURatio": f"{ratios['Xavier ReLU']:.3f}",
            "POneHeReLURatio": f"{ratios['He ReLU']:.3f}", "POneXavierLinearRatio": f"{ratios['Xavier linear']:.3f}",
            "POneXavierTanhRatio": f"{ratios['Xavier tanh']:.3f}",
            "POneHeForward": f"{he['Var(w)=2/n (He)']['forward_last_over_first']:.2f}",
            "POneHeBackward": f"{he['Var(w)=2/n (He)']['backward_first_over_last']:.2f}",
            "POneHeConvForward": f"{he['Var(w)=2/n (He)']['conv_forward_last_over_first']:.2f}",
            "POneLeCunForwardDecay": f"{he['Var(w)=1/n (LeCun)']['forward_last_over_first']:.1e}",
            "POneThreeForwardGrowth": f"{he['Var(w)=3/n']['forward_last_over_first']:.1e}",
            "POneXavierTanhAfter": f"{tanh['Xavier tanh']['measured']:.4f}",
            "POneXavierTanhPredicted": f"{tanh['Xavier tanh']['predicted']:.4f}",
            "POneHeTanhAfter": f"{tanh['He tanh']['measured']:.3f}",
            "POneHeTanhPredicted": f"{tanh['He tanh']['predicted']:.3f}", "POneCheckRows": "\n".join(rows)}


def problem2_macros(p2):
    failing, before, after, classes = p2["failing_class"], p2["before"], p2["after"], p2["classes"]
    args, loc, expl, asr = p2["arguments"], p2["localisation"], p2["explanation"], p2["attack_success_rate"]
    misread = np.array(before["test_confusion"])[classes.index(failing)]
    misread[classes.index(failing)] = -1
    box_px = [round((loc["core_box"][k + 2] - loc["core_box"][k]) * p2["image_size"]) for k in (0, 1)]
    macros = {
        "PTwoShipped": int(p2["data_source"] != "exam"), "PTwoNTrain": p2["n_images"]["train"],
        "PTwoNVal": p2["n_images"]["val"], "PTwoNTest": p2["n_images"]["test"], "PTwoImageSize": p2["image_size"],
        "PTwoEpochs": args["epochs"], "PTwoBatchSize": args["batch_size"], "PTwoLearningRate": args["lr"],
        "PTwoWeightDecay": args["weight_decay"], "PTwoNExplain": args["n_explain"], "PTwoNLocalise": args["n_localise"],
        "PTwoOcclusionStride": args["occlusion_stride"], "PTwoClassModelSteps": p2["class_model_settings"]["steps"],
        "PTwoClassModelLambda": p2["class_model_settings"]["l2_weight"], "PTwoFailingClass": failing,
        "PTwoClassModelLr": p2["class_model_settings"]["lr"], "PTwoTrainAccBefore": pct(before["train_acc"]),
        "PTwoValAccBefore": pct(before["val_acc"]), "PTwoTestAccBefore": pct(before["test_acc"]),
        "PTwoValAccAfter": pct(after["val_acc"]), "PTwoTestAccAfter": pct(after["test_acc"]),
        "PTwoFailingValBefore": pct(before["val_per_class"][failing]),
        "PTwoFailingTestBefore": pct(before["test_per_class"][failing]),
        "PTwoFailingTestAfter": pct(after["test_per_class"][failing]),
        "PTwoScoredBefore": pct(before["scored_half_failing_acc"]), "PTwoScoredAfter": pct(after["scored_half_failing_acc"]),
        "PTwoNScored": len(after["scored_test_files"]), "PTwoNChosen": len(loc["chosen_test_files"]),
        "PTwoFailingMostlyAs": classes[int(np.argmax(misread))], "PTwoFailingMostlyCount": int(misread.max()),
        "PTwoFailingCount": int(np.array(before["test_confusion"])[classes.index(failing)].sum()),
        "PTwoRegionArea": pct(expl["region_area_share"]), "PTwoBoxWidthPx": box_px[0], "PTwoBoxHeightPx": box_px[1],
        "PTwoThreshold": f"{loc['threshold']:.2f}", "PTwoMarginPx": loc["margin_px"],
        "PTwoStillRecognised": pct(loc["still_recognised"], 0), "PTwoCleanNeutralised": pct(loc["clean_test_neutralised"], 0),
        "PTwoClassModelShareBefore": pct(expl["class_model_share_in_region"]["before"], 0),
        "PTwoClassModelShareAfter": pct(expl["class_model_share_in_region"]["after"], 0),
        "PTwoASRBefore": pct(asr["before"]), "PTwoASRAfter": pct(asr["after"]), "PTwoControlBefore": pct(asr["control_before"]),
        "PTwoAlternativeFailingTest": pct(p2["alternative_fix"]["failing_test_acc"]),
        "PTwoAlternativeGreyPatch": pct(p2["alternative_fix"]["grey_patch_attack_rate"])}
    for when in ("before", "after"):
        occlusion, w = p2["occlusion"][when][0], when.capitalize()
        macros.update({f"PTwoSaliencyShare{w}": pct(expl["saliency_share_in_region"][when], 0),
                       f"PTwoOcclusionShare{w}": pct(expl["occlusion_share_in_region"][when], 0),
                       f"PTwoExamChanged{w}": occlusion["images_with_class_change"],
                       f"PTwoExamAtRegion{w}": occlusion["images_with_class_change_at_region"],
                       f"PTwoLowestP{w}": f"{occlusion['min_p_true']:.2f}"})
    parts = expl["by_part"]
    macros["PTwoPartRows"] = "\n".join(f"{name} & {pct(parts['area'][name], 0)} & " + " & ".join(
        pct(parts[m][w][name], 0) for m in ("saliency", "occlusion") for w in ("before", "after")) + " \\\\"
        for name in parts["area"])
    macros["PTwoPerClassRows"] = "\n".join(
        f"{c} & {pct(before['val_per_class'][c])} & {pct(before['test_per_class'][c])} & "
        f"{pct(after['val_per_class'][c])} & {pct(after['test_per_class'][c])} \\\\" for c in classes)
    if p2["truth"]:
        macros.update(PTwoIoU=f"{p2['trigger_iou']:.2f}", PTwoPlantedBefore=pct(p2["planted_trigger_attack_rate"]["before"]),
                      PTwoPlantedAfter=pct(p2["planted_trigger_attack_rate"]["after"]))
    return macros


def problem2_side_rows(p2, side):
    """One row per run of the fix: the default, the other seeds, and the mean-colour fill."""
    rows = []
    for name, r in (("inpaint, seed 0", p2), ("inpaint, seed 1", side.get("problem2_seed1")),
                    ("inpaint, seed 2", side.get("problem2_seed2")), ("mean colour, seed 0", side.get("problem2_grey"))):
        if r is None:
            rows.append(f"{name} & \\multicolumn{{7}}{{c}}{{not measured}} \\\\")
            continue
        planted = pct(r["planted_trigger_attack_rate"]["after"]) if r["planted_trigger_attack_rate"] else "--"
        iou = "--" if r["trigger_iou"] is None else f"{r['trigger_iou']:.2f}"
        rows.append(f"{name} & {tex(r['failing_class'])} & {pct(r['before']['val_acc'])} & "
                    f"{pct(r['before']['scored_half_failing_acc'])} & {pct(r['after']['scored_half_failing_acc'])} & "
                    f"{pct(r['attack_success_rate']['after'])} & {planted} & {iou} \\\\")
    return {"PTwoRunRows": "\n".join(rows)}


def problem3_macros(p3):
    source, only, adda, mse = p3["source"], p3["source_only"], p3["adda"], p3["mse"]
    decimal = lambda digits: lambda v: f"{v:.{digits}f}"  # noqa: E731
    macros = {
        "PThreeShipped": int(p3["data_source"]["svhn"] != "exam"), "PThreeNSeeds": len(p3["seeds"]),
        "PThreeSVHNTrain": p3["n_images"]["svhn_train"], "PThreeSVHNFit": source["fit_images"],
        "PThreeSVHNTest": p3["n_images"]["svhn_test"], "PThreeMaxSteps": source["max_steps"],
        "PThreePatience": source["patience"], "PThreeChosenSteps": listed(source["chosen_step"], str),
        "PThreeTrainAcc": pct(source["svhn_train_acc"]), "PThreeHeldOutAcc": pct(source["svhn_held_out_acc"]),
        "PThreeSVHNTestAcc": pct(source["svhn_test_acc"]), "PThreeSourceOnly": mean_sd(only["per_seed"]),
        "PThreeSourceOnlySeeds": listed(only["per_seed"]), "PThreeInverted": pct(only["inverted_mnist"]["mean"]),
        "PThreeIterations": adda["settings"]["iterations"], "PThreeLr": adda["settings"]["lr"],
        "PThreeBatch": adda["settings"]["batch_size"], "PThreeMonitorEvery": p3["arguments"]["monitor_every"],
        "PThreeADDA": mean_sd(adda["per_seed"]), "PThreeGains": listed(adda["gain_per_seed"], points),
        "PThreeSignP": f"{adda['sign_test_p']:.3f}", "PThreeGainLow": points(adda["gain_bootstrap_95"][0]),
        "PThreeGainHigh": points(adda["gain_bootstrap_95"][1]),
        "PThreeDLoss": span(adda["discriminator_loss_final"], decimal(2)),
        "PThreeDAcc": span(adda["discriminator_acc_final"], lambda v: pct(v, 0)),
        "PThreeHeldOutGap": span(adda["discriminator_held_out_gap"], lambda v: f"{v:+.3f}".replace("-", "$-$")),
        "PThreeJudgeBefore": span(adda["domain_classifier_acc"]["before"]),
        "PThreeJudgeAfter": span(adda["domain_classifier_acc"]["after"]), "PThreeLowestDigit": span(adda["lowest_digit_acc"]),
        "PThreeMSESeeds": listed(mse["per_seed"]), "PThreeMSESourceOnly": listed(mse["source_only_per_seed"]),
        "PThreeMSENSeeds": len(mse["seeds"]), "PThreeMSELoss": span(mse["loss_final"], decimal(2)),
        "PThreeMSEFloor": span(mse["loss_floor"], decimal(2)), "PThreeMSEJudge": span(mse["domain_classifier_acc"]["after"]),
        "PThreeMSESpread": span([s["target_total_variance"] / p3["source_feature_statistics"]["source_total_variance"]
                                 for s in mse["feature_statistics"].values()], decimal(3)),
        "PThreeTSNEBefore": pct(p3["tsne_same_digit_neighbour"]["before"], 0),
        "PThreeTSNEAfter": pct(p3["tsne_same_digit_neighbour"]["after"], 0)}
    macros["PThreeSeedRows"] = "\n".join(
        f"{seed} & {pct(source['svhn_test_per_seed'][k])} & {pct(only['per_seed'][k])} & {pct(adda['per_seed'][k])} & "
        f"{points(adda['gain_per_seed'][k])} & {adda['discriminator_loss_final'][k]:.2f} & "
        f"{pct(adda['discriminator_acc_final'][k], 0)} & {pct(adda['domain_classifier_acc']['before'][k])} & "
        f"{pct(adda['domain_classifier_acc']['after'][k])} \\\\" for k, seed in enumerate(p3["seeds"]))
    macros["PThreeDigitRows"] = " & ".join(pct(v, 0) for v in only["per_class_seed0"]) + " \\\\\nADDA (\\%) & " + \
        " & ".join(pct(v, 0) for v in adda["per_class_seed0"])
    return macros


def problem3_side_rows(side):
    rows = []
    for key, name in (("problem3_weak", "2,000 SVHN crops"), ("problem3_noaugment", "no jitter"),
                      ("problem3_long", "10,000 iterations")):
        if (r := side.get(key)) is None:
            rows.append(f"{name} & \\multicolumn{{5}}{{c}}{{not measured}} \\\\")
        else:
            rows.append(f"{name} & {len(r['seeds'])} & {mean_sd(r['source_only']['per_seed'])} & "
                        f"{mean_sd(r['adda']['per_seed'])} & {listed(r['adda']['gain_per_seed'], points)} & "
                        f"{span(r['adda']['lowest_digit_acc'])} \\\\")
    return {"PThreeSideRows": "\n".join(rows)}


# ==================================================================================================
# Claims: one predicate per \claim{name} of report.tex (thresholds of vague words in the docstrings)
# ==================================================================================================
class Claims:
    """One predicate per \\claim{name} of report.tex (the method's name, '_' read as '-'), over the
    results; a vague word gets its threshold in the docstring. A missing input (a side run not made,
    no planted truth) raises KeyError or TypeError: "not measured"."""

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


# ==================================================================================================
# The file
# ==================================================================================================
def load(results_dir, name):
    path = results_dir / f"{name}.json"
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise UserError(f"{path}: missing; run `make {name.split('_')[0]}` (or `make all`) first") from None
    except json.JSONDecodeError as error:
        raise UserError(f"{path}: not valid JSON ({error.msg})") from None


def load_results(results_dir):
    """The three problems' results (p1, p2, p3) and the side runs that were made, by file name."""
    results = {key: load(results_dir, f"problem{k}") for k, key in ((1, "p1"), (2, "p2"), (3, "p3"))}
    return results | {name: load(results_dir, name) for name in SIDE_RUNS if (results_dir / f"{name}.json").exists()}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--results", type=Path, default=DOC / "results", help="folder of the results JSON")
    parser.add_argument("--output", type=Path, default=DOC / "results.tex")
    parser.add_argument("--report", type=Path, default=DOC / "report.tex", help="where the claims' sentences are")
    parser.add_argument("--candidate", default="XX", help="candidate number for the front page")
    args = parser.parse_args(argv)
    results = load_results(args.results)
    side = {name: results[name] for name in SIDE_RUNS if name in results}
    macros = {"Candidate": tex(args.candidate), **problem1_macros(results["p1"]), **problem2_macros(results["p2"]),
              **problem2_side_rows(results["p2"], side), **problem3_macros(results["p3"]), **problem3_side_rows(side)}
    states = claim_states(results)
    lines = ["% Generated by src/report_numbers.py from doc/results/*.json: do not edit."]
    lines += [f"\\newcommand{{\\{name}}}{{{value}}}" for name, value in macros.items()]
    lines += [f"\\claimstate{{{name}}}{{{state}}}" for name, state in states.items()]
    args.output.write_text("\n".join(lines) + "\n")
    sentences = claim_sentences(args.report.read_text()) if args.report.exists() else {}
    for name, state in states.items():
        if state:
            mark = "not supported by these results" if state == 1 else "not measured"
            print(f"claim {name} [{mark}]: {sentences.get(name, '(not in the report)')}")
    print(f"wrote {args.output} ({len(macros)} numbers and tables; {sum(s == 0 for s in states.values())} of "
          f"{len(states)} claims hold)")
    return states


if __name__ == "__main__":
    run_main(main)
