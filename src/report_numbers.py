"""Write doc/results.tex from doc/results/*.json: the numbers and tables the report prints, and the
state of every claim it makes. Run by `make report`.

report.tex wraps each sentence whose truth a re-run could change in \\claim{name}{sentence}, and
report_claims.py decides it from the results: a claim that holds prints as written, one that fails
is marked "[not supported by these results]", one whose inputs were not made "[not measured]". This
script lists the claims that do not hold, with their sentences, and still writes the file.
"""
import argparse
import json
import re
from pathlib import Path

import numpy as np

from report_claims import SIDE_RUNS, claim_sentences, claim_states
from utils import UserError, run_main

DOC = Path(__file__).resolve().parent.parent / "doc"


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
    """Mean and sample sd over seeds; a single seed's value alone."""
    if len(values) == 1:
        return pct(values[0])
    return f"{pct(np.mean(values))}\\,$\\pm$\\,{pct(np.std(values, ddof=1))}"


def tex(text):
    """Plain text (class and check names) for LaTeX: its specials escaped, <, > and | set in math."""
    text = re.sub(r"([_%&#$])", r"\\\1", str(text))
    return re.sub(r"([<>|])", r"$\1$", text)


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
    worst_other = max((c for c in classes if c != failing), key=lambda c: p2["val_to_test_drop"][c])
    macros = {
        "PTwoShipped": int(p2["data_source"] != "exam"), "PTwoNTrain": p2["n_images"]["train"],
        "PTwoNVal": p2["n_images"]["val"], "PTwoNTest": p2["n_images"]["test"], "PTwoImageSize": p2["image_size"],
        "PTwoEpochs": args["epochs"], "PTwoBatchSize": args["batch_size"], "PTwoLearningRate": args["lr"],
        "PTwoWeightDecay": args["weight_decay"], "PTwoNExplain": args["n_explain"], "PTwoNLocalise": args["n_localise"],
        "PTwoOcclusionStride": args["occlusion_stride"], "PTwoClassModelSteps": p2["class_model_settings"]["steps"],
        "PTwoClassModelLambda": p2["class_model_settings"]["l2_weight"], "PTwoFailingClass": tex(failing),
        "PTwoClassModelLr": p2["class_model_settings"]["lr"], "PTwoTrainAccBefore": pct(before["train_acc"]),
        "PTwoValAccBefore": pct(before["val_acc"]), "PTwoTestAccBefore": pct(before["test_acc"]),
        "PTwoValAccAfter": pct(after["val_acc"]), "PTwoTestAccAfter": pct(after["test_acc"]),
        "PTwoFailingValBefore": pct(before["val_per_class"][failing]),
        "PTwoFailingTestBefore": pct(before["test_per_class"][failing]),
        "PTwoFailingTestAfter": pct(after["test_per_class"][failing]),
        "PTwoScoredBefore": pct(before["scored_half_failing_acc"]), "PTwoScoredAfter": pct(after["scored_half_failing_acc"]),
        "PTwoNScored": len(after["scored_test_files"]), "PTwoNChosen": len(loc["chosen_test_files"]),
        "PTwoFailingMostlyAs": tex(classes[int(np.argmax(misread))]), "PTwoFailingMostlyCount": int(misread.max()),
        "PTwoOcclusionChangesTo": tex(next(iter(p2["occlusion"]["before"][0]["changes_to"]), "none")),
        "PTwoWorstOtherClass": tex(worst_other), "PTwoWorstOtherDrop": f"{100 * p2['val_to_test_drop'][worst_other]:.1f}",
        "PTwoWorstOtherCount": int(np.array(before["test_confusion"])[classes.index(worst_other)].sum()),
        "PTwoFailingCount": int(np.array(before["test_confusion"])[classes.index(failing)].sum()),
        "PTwoRegionArea": pct(expl["region_area_share"]), "PTwoBoxWidthPx": box_px[0], "PTwoBoxHeightPx": box_px[1],
        "PTwoThreshold": f"{loc['threshold']:.2f}", "PTwoMarginPx": loc["margin_px"],
        "PTwoStillRecognised": pct(loc["still_recognised"], 0), "PTwoCleanNeutralised": pct(loc["clean_test_neutralised"], 0),
        "PTwoClassModelShareBefore": pct(expl["class_model_share_in_region"]["before"], 0),
        "PTwoClassModelShareAfter": pct(expl["class_model_share_in_region"]["after"], 0),
        "PTwoASRBefore": pct(asr["before"]), "PTwoASRAfter": pct(asr["after"]), "PTwoControlBefore": pct(asr["control_before"]),
        "PTwoAlternativeScored": pct(p2["alternative_fix"]["scored_half_failing_acc"]),
        "PTwoAlternativeFillPatch": pct(p2["alternative_fix"]["fill_patch_attack_rate"])}
    for when in ("before", "after"):
        occlusion, w = p2["occlusion"][when][0], when.capitalize()
        macros.update({f"PTwoSaliencyShare{w}": pct(expl["saliency_share_in_region"][when]),
                       f"PTwoOcclusionShare{w}": pct(expl["occlusion_share_in_region"][when]),
                       f"PTwoExamChanged{w}": occlusion["images_with_class_change"],
                       f"PTwoExamAtRegion{w}": occlusion["images_with_class_change_at_region"],
                       f"PTwoLowestP{w}": f"{occlusion['min_p_true']:.2f}",
                       f"PTwoOcclusionOnSign{w}": pct(sum(expl["by_part"]["occlusion"][when][k] for k in ("centre", "ring")), 0),
                       f"PTwoSaliencyCentre{w}": pct(expl["by_part"]["saliency"][when]["centre"], 0)})
    parts = expl["by_part"]
    macros["PTwoPartRows"] = "\n".join(f"{name} & {pct(parts['area'][name], 0)} & " + " & ".join(
        pct(parts[m][w][name], 0) for m in ("saliency", "occlusion") for w in ("before", "after")) + " \\\\"
        for name in parts["area"])
    macros["PTwoPerClassRows"] = "\n".join(
        f"{tex(c)} & {pct(before['val_per_class'][c])} & {pct(before['test_per_class'][c])} & "
        f"{pct(after['val_per_class'][c])} & {pct(after['test_per_class'][c])} \\\\" for c in classes)
    if p2["truth"]:
        macros.update(PTwoIoU=f"{p2['trigger_iou']:.2f}", PTwoPlantedBefore=pct(p2["planted_trigger_attack_rate"]["before"]),
                      PTwoPlantedAfter=pct(p2["planted_trigger_attack_rate"]["after"]))
    return macros


def problem2_side_rows(p2, side):
    """One row per run of the fix: the default, the other seeds, and the grey fill."""
    rows = []
    for name, r in (("inpaint, seed 0", p2), ("inpaint, seed 1", side.get("problem2_seed1")),
                    ("inpaint, seed 2", side.get("problem2_seed2")), ("grey, seed 0", side.get("problem2_grey"))):
        if r is None:
            rows.append(f"{name} & \\multicolumn{{9}}{{c}}{{not measured}} \\\\")
            continue
        planted = pct(r["planted_trigger_attack_rate"]["after"]) if r["planted_trigger_attack_rate"] else "--"
        iou = "--" if r["trigger_iou"] is None else f"{r['trigger_iou']:.2f}"
        rows.append(f"{name} & {tex(r['failing_class'])} & {pct(r['before']['val_acc'])} & "
                    f"{pct(r['before']['scored_half_failing_acc'])} & {pct(r['after']['scored_half_failing_acc'])} & "
                    f"{pct(r['attack_success_rate']['after'])} & {planted} & {iou} & "
                    f"{pct(r['alternative_fix']['scored_half_failing_acc'])} & "
                    f"{pct(r['alternative_fix']['fill_patch_attack_rate'])} \\\\")
    macros = {"PTwoRunRows": "\n".join(rows), "PTwoGreyAlternativeScored": "--", "PTwoGreyAlternativeFillPatch": "--"}
    if grey := side.get("problem2_grey"):
        macros.update(PTwoGreyAlternativeScored=pct(grey["alternative_fix"]["scored_half_failing_acc"]),
                      PTwoGreyAlternativeFillPatch=pct(grey["alternative_fix"]["fill_patch_attack_rate"]))
    return macros


def problem3_macros(p3):
    source, only, adda, mse = p3["source"], p3["source_only"], p3["adda"], p3["mse"]
    if mse is None:
        raise UserError("problem3.json: made with --mse-seeds 0, but the report's 3c compares the MSE variant")
    decimal = lambda digits: lambda v: f"{v:.{digits}f}"  # noqa: E731
    macros = {
        "PThreeShipped": int(p3["data_source"]["svhn"] != "exam"), "PThreeNSeeds": len(p3["seeds"]),
        "PThreeSVHNTrain": f"{p3['n_images']['svhn_train']:,}", "PThreeSVHNFit": f"{source['fit_images']:,}",
        "PThreeSVHNTest": f"{p3['n_images']['svhn_test']:,}", "PThreeMaxSteps": f"{source['max_steps']:,}",
        "PThreePatience": source["patience"], "PThreeReadEvery": max(1, source["max_steps"] // 20), "PThreeChosenSteps": listed(source["chosen_step"], str),
        "PThreeTrainAcc": pct(source["svhn_train_acc"]), "PThreeHeldOutAcc": pct(source["svhn_held_out_acc"]),
        "PThreeSVHNTestAcc": pct(source["svhn_test_acc"]), "PThreeSourceOnly": mean_sd(only["per_seed"]),
        "PThreeSourceOnlySeeds": listed(only["per_seed"]), "PThreeInverted": pct(only["inverted_mnist"]["mean"]),
        "PThreeIterations": adda["settings"]["iterations"], "PThreeLr": adda["settings"]["lr"],
        "PThreeBatch": adda["settings"]["batch_size"], "PThreeMonitorEvery": p3["arguments"]["monitor_every"],
        "PThreeADDA": mean_sd(adda["per_seed"]), "PThreeADDAMean": pct(adda["mean"]),
        "PThreeSourceOnlyMean": pct(only["mean"]), "PThreeGains": listed(adda["gain_per_seed"], points),
        "PThreeSignP": f"{adda['sign_test_p']:.3f}", "PThreeGainLow": points(adda["gain_bootstrap_95"][0]),
        "PThreeGainHigh": points(adda["gain_bootstrap_95"][1]),
        "PThreeDLoss": span(adda["discriminator_loss_final"], decimal(2)),
        "PThreeDAcc": span(adda["discriminator_acc_final"], lambda v: pct(v, 0)),
        "PThreeHeldOutGap": span(adda["discriminator_held_out_gap"], lambda v: f"{v:+.3f}".replace("-", "$-$")),
        "PThreeJudgeBefore": span(adda["domain_classifier_acc"]["before"]),
        "PThreeJudgeAfter": span(adda["domain_classifier_acc"]["after"]), "PThreeLowestDigit": span(adda["lowest_digit_acc"]),
        "PThreeMSESeeds": listed(mse["per_seed"]), "PThreeMSESourceOnly": listed(mse["source_only_per_seed"]),
        "PThreeMSENSeeds": len(mse["seeds"]), "PThreeMSEJudge": span(mse["domain_classifier_acc"]["after"]),
        "PThreeMSESpread": span([s["target_total_variance"] / s["source_total_variance"]
                                 for s in mse["feature_statistics"].values()], decimal(3)),
        "PThreeGaining": adda["seeds_gaining"], "PThreeNotTied": adda["seeds_not_tied"],
        "PThreeTSNEBefore": pct(p3["tsne_same_digit_neighbour"]["before"], 0),
        "PThreeTSNEAfter": pct(p3["tsne_same_digit_neighbour"]["after"], 0)}
    judged, changes = adda["domain_classifier_acc"], np.subtract(adda["per_class_seed0"], only["per_class_seed0"])
    best, worst = int(np.argmax(changes)), int(np.argmin(changes))
    macros.update(PThreeJudgeLower=sum(a < b for a, b in zip(judged["after"], judged["before"])),
                  PThreeLateDrops=sum(d > 0.015 for d in adda["drop_from_best"]),
                  PThreeMaxDrop=f"{100 * max(adda['drop_from_best']):.1f}", PThreeBestDigit=best,
                  PThreeBestDigitBefore=pct(only["per_class_seed0"][best], 0), PThreeWorstDigit=worst,
                  PThreeBestDigitAfter=pct(adda["per_class_seed0"][best], 0),
                  PThreeWorstDigitBefore=pct(only["per_class_seed0"][worst], 0),
                  PThreeWorstDigitAfter=pct(adda["per_class_seed0"][worst], 0))
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
            rows.append(f"{name} & \\multicolumn{{8}}{{c}}{{not measured}} \\\\")
        else:
            rows.append(f"{name} & {len(r['seeds'])} & {pct(r['source']['svhn_test_acc'])} & "
                        f"{mean_sd(r['source_only']['per_seed'])} & "
                        f"{mean_sd(r['adda']['per_seed'])} & {listed(r['adda']['gain_per_seed'], points)} & "
                        f"{span(r['adda']['lowest_digit_acc'])} & {span(r['adda']['domain_classifier_acc']['before'])} & "
                        f"{span(r['adda']['domain_classifier_acc']['after'])} \\\\")
    macros = {"PThreeSideRows": "\n".join(rows), **dict.fromkeys(
        ("PThreeNoJitterSourceOnly", "PThreeLongJudgeBefore", "PThreeLongJudgeAfter", "PThreeLongGain"), "--")}
    if no_jitter := side.get("problem3_noaugment"):
        macros["PThreeNoJitterSourceOnly"] = mean_sd(no_jitter["source_only"]["per_seed"])
    if long_run := side.get("problem3_long"):
        judged = long_run["adda"]["domain_classifier_acc"]
        macros.update(PThreeLongJudgeBefore=span(judged["before"]), PThreeLongJudgeAfter=span(judged["after"]),
                      PThreeLongGain=listed(long_run["adda"]["gain_per_seed"], points))
    return macros


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
