"""Write doc/results.tex: every number the report prints, as LaTeX macros, from doc/results/*.json.

No result is typed by hand into report.tex; it uses these macros. Run by `make report`.
"""
import argparse
import json
import math
from pathlib import Path

from utils import UserError, run_main

DOC = Path(__file__).resolve().parent.parent / "doc"


def pct(value, digits=1):
    """A share as a percentage with `digits` decimals (the report adds the % sign)."""
    return f"{100 * value:.{digits}f}"


def signed(points):
    """A signed difference in points, with a typeset minus (a hyphen is not a minus sign)."""
    rounded = round(points, 1) + 0.0  # + 0.0: no "-0.0"
    return f"{rounded:+.1f}".replace("-", "$-$")


def num(value, digits=3):
    return f"{value:.{digits}g}" if abs(value) < 1e-3 and value != 0 else f"{value:.{digits}f}"


TEX_SPECIAL = {"\\": r"\textbackslash{}", "_": r"\_", "%": r"\%", "&": r"\&", "#": r"\#",
               "$": r"\$", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}",
               "^": r"\textasciicircum{}", "<": r"\textless{}", ">": r"\textgreater{}",
               "|": r"\textbar{}"}


TRIGGER_NAMES = {"patch": "sticker", "border": "frame"}  # planted_signs.py's trigger kinds, in words
FULL_SVHN_TRAIN = 73257  # crops in the full SVHN's train_32x32.mat
CLASSIC_LENET_WIDTHS = (6, 16, 120, 84)  # C1, C3, F5, F6 of LeCun et al.'s LeNet-5


def tex_escape(text):
    """Plain text (check names, class names, paths) made safe for LaTeX."""
    return "".join(TEX_SPECIAL.get(character, character) for character in str(text))


def load(results_dir, problem):
    path = results_dir / f"{problem}.json"
    if not path.exists():
        raise UserError(f"{path}: missing; run `make {problem}` (or `make all`) first")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise UserError(f"{path}: not valid JSON ({error.msg})") from None


def problem1_macros(p1):
    macros = {"POneNChecks": str(p1["n_checks"]), "POneNFailed": str(p1["n_failed"]),
              "POneVOptimum": f"{p1['gan']['v_at_optimum']:.6f}",
              "POneMinusLogFour": f"{p1['gan']['minus_log4']:.6f}",
              "POneVApart": f"{p1['gan']['v_apart']:.4f}", "POneJSDApart": f"{p1['gan']['jsd_apart']:.4f}"}
    ratios = p1["xavier_vs_he_ratio_per_layer"]
    macros.update(POneXavierReLURatio=f"{ratios['Xavier ReLU']:.3f}",
                  POneXavierLinearRatio=f"{ratios['Xavier linear']:.3f}",
                  POneXavierTanhRatio=f"{ratios['Xavier tanh']:.3f}",
                  POneHeReLURatio=f"{ratios['He ReLU']:.3f}")
    he = p1["he"]
    macros.update(POneLeCunForwardDecay=f"{he['Var(w)=1/n (LeCun)']['forward_last_over_first']:.1e}",
                  POneThreeForwardGrowth=f"{he['Var(w)=3/n']['forward_last_over_first']:.1e}",
                  POneHeForward=f"{he['Var(w)=2/n (He)']['forward_last_over_first']:.2f}",
                  POneHeBackward=f"{he['Var(w)=2/n (He)']['backward_first_over_last']:.2f}",
                  POneHeConvForward=f"{he['Var(w)=2/n (He)']['conv_forward_last_over_first']:.2f}")
    tanh = p1["tanh_variance_after_30_layers"]
    macros.update(POneXavierTanhAfter=f"{tanh['Xavier tanh']['measured']:.4f}",
                  POneXavierTanhPredicted=f"{tanh['Xavier tanh']['predicted']:.4f}",
                  POneHeTanhAfter=f"{tanh['He tanh']['measured']:.3f}",
                  POneHeTanhPredicted=f"{tanh['He tanh']['predicted']:.3f}")
    rows = []
    for check in p1["checks"]:
        rows.append(f"{tex_escape(check['name'])} & {check['measured']:.4g} & {check['predicted']:.4g} & "
                    f"{check['tolerance']:.1g} & {'pass' if check['passed'] else 'FAIL'} \\\\")
    macros["POneCheckRows"] = "\n".join(rows)
    return macros


def box_area(box):
    """The share of the image a relative box (x0, y0, x1, y1) covers."""
    return (box[2] - box[0]) * (box[3] - box[1])


def where_in_image(box, band_px):
    """Words for where a relative box (x0, y0, x1, y1) lies in the image."""
    if band_px:
        return f"along the image border (a {band_px}\\,px band on every edge)"
    x = (box[0] + box[2]) / 2
    y = (box[1] + box[3]) / 2
    vertical = "top" if y < 0.36 else "bottom" if y > 0.64 else ""
    horizontal = "left" if x < 0.36 else "right" if x > 0.64 else ""
    place = "-".join(part for part in (vertical, horizontal) if part) or "centre"
    return f"in the {place} part of the image" if place != "centre" else "near the centre of the image"


def square_name(size):
    """An occluder as the report names it: '$19\\times19$ square'."""
    return f"${size}\\times{size}$ square"


def occlusion_sentence(entries, n_images, when, verdict=None):
    """What each occluder size did, in the run's numbers; with the first model's `verdict`, says so
    when the exam's square changes nothing, and why."""
    parts = []
    for k, entry in enumerate(entries):
        size = square_name(entry["size_px"])
        changed, at_region = entry["images_with_class_change"], entry["images_with_class_change_at_region"]
        label = size if k == 0 else f"{size} sized from the evidence"
        lowest = (f"the lowest $p$(true class) over its positions is {entry['min_p_true']:.2f} on average "
                  f"over the images")
        if changed == 0:
            parts.append(f"the {label} changes the most probable class in none of the {n_images} images "
                         f"({lowest})")
        else:
            to = ", ".join(f"\\emph{{{name}}} in {n}" for name, n in entry["changes_to"].items())
            several = ("; some images change to different classes at different positions"
                       if sum(entry["changes_to"].values()) > changed else "")
            parts.append(f"the {label} changes the most probable class in {changed} of the {n_images} "
                         f"images, to {to} ({at_region} of the {changed} with the square's centre in the "
                         f"neutralised region{several}; {lowest})")
    text = f"{when}, " + "; ".join(parts) + "."
    if verdict is None:
        return text
    if len(entries) == 1:
        text += " The evidence region is no larger than the exam's square, so no second size is needed."
    if not verdict["exam_square_changes_nothing"]:
        return text
    largest, extent = entries[-1]["size_px"], verdict["evidence_px"]
    square = square_name(largest)
    text += {
        "evidence_fits": " The evidence fits under the exam's square, yet hiding it changes no prediction.",
        "evidence_larger": (f" The exam's square is smaller than the evidence ({extent}\\,px across with "
                            f"its margin), so hiding any part of it leaves enough for the model; the "
                            f"{square} " + ("can hide it whole." if extent <= largest else
                                            "covers as much of it as the analysis allows.")),
        "evidence_spread": (f" The evidence spans {extent} of the image's pixels across (it runs along the "
                            f"image, as a frame would): no square that leaves most of the image visible can "
                            f"hide all of it, so occlusion cannot expose it."),
        "no_change": (f" Neither square changes a prediction, though the {square} can hide the evidence "
                      f"whole: the model's decision does not rest on one place a square can hide."),
    }[verdict["case"]]
    return text


def problem2_sentences(p2):
    """The sentences of 2c-2h that state an outcome, written from the results so that they hold for
    whatever run built the report."""
    failing, before, after = p2["failing_class"], p2["before"], p2["after"]
    loc, asr, rounds = p2["localisation"], p2["attack_success_rate"], p2["fix_rounds"]
    n_explain = len(p2["explained_train_files"])
    others = [c for c in p2["classes"] if c != failing]
    worst_other = max(others, key=lambda c: before["val_per_class"][c] - before["test_per_class"][c])
    worst_drop = before["val_per_class"][worst_other] - before["test_per_class"][worst_other]
    sentences = {}
    sentences["PTwoOtherClasses"] = (
        f"The other classes lose at most {pct(max(worst_drop, 0))} points from validation to test "
        f"(\\emph{{{worst_other}}})." if worst_drop > 0 else
        "None of the other classes is worse on test than on validation.")
    where = where_in_image(loc["box"], loc["edge_band_px"])
    neutralised_clean = loc["clean_test_neutralised"]
    sentences["PTwoEvidenceWhere"] = (
        f"The evidence that sets the failing class apart from the others lies {where} (box "
        f"$({', '.join(f'{v:.2f}' for v in loc['box'])})$, {pct(box_area(loc['box']))}\\,\\% of the image; "
        f"the region neutralised in 2f, the evidence grown by a margin, covers "
        f"{pct(loc['region_area_share'])}\\,\\%). With that region painted grey, the first model recognises "
        f"{pct(loc['still_recognised'])}\\,\\% of the class's training images, and "
        f"{pct(neutralised_clean)}\\,\\% of its clean test images with the same region painted grey "
        f"({pct(loc['clean_test_recall'])}\\,\\% without): "
        + ("whatever the model uses sits in that region of the training images and is missing from the "
           "test images." if loc["criterion_met"] else
           "even the largest candidate region does not bring the training images down to the test "
           "images' level, so part of what the model uses lies outside it."))
    sentences["PTwoLocalisationOutcome"] = (
        f"Here the bar is met at {loc['threshold']:.2f} of the peak: with the region (grown by "
        f"{loc['margin_px']}\\,px) neutralised, the first model recognises {pct(loc['still_recognised'])}\\,\\% "
        f"of the training images, against {pct(neutralised_clean)}\\,\\% of the clean test images with "
        f"the same patch (the two standard errors allow {pct(loc['tolerance'])} points more)." if loc["criterion_met"] else
        f"\\textbf{{Here no threshold meets the bar}} (down to {min(c['threshold'] for c in loc['candidates']):.2f} "
        f"of the peak); the script says so and uses the candidate that did most, at "
        f"{loc['threshold']:.2f} of the peak, where the first model still recognises "
        f"{pct(loc['still_recognised'])}\\,\\% of the neutralised training images against "
        f"{pct(neutralised_clean)}\\,\\% of the clean test images with the same patch.")
    rejected = [c for c in loc["candidates"] if not c["met"]]
    sentences["PTwoThresholdChoice"] = (
        f"in this run they rejected all {len(loc['candidates'])} thresholds tried, and the one that did "
        f"most is used" if not loc["criterion_met"] else
        "in this run the first threshold tried met the bar, so they rejected none" if not rejected else
        f"in this run they rejected {len(rejected)} threshold{'s' if len(rejected) > 1 else ''} "
        f"before the one used")
    sentences["PTwoOcclusionBefore"] = occlusion_sentence(p2["occlusion"]["before"], n_explain,
                                                          "For the first model", p2["occlusion_verdict"])
    sentences["PTwoOcclusionAfter"] = occlusion_sentence(p2["occlusion"]["after"], n_explain,
                                                         "For the retrained model")
    asr_text = (f"The attack success rate (the share of the other classes' validation images called "
                f"\\emph{{{failing}}} once the localised region of a training image of that class is "
                f"pasted in) is {pct(asr['before'])}\\,\\% for the first model and {pct(asr['after'])}\\,\\% "
                f"for the retrained one (control, pasting the same region from clean test images: "
                f"{pct(asr['control_before'])}\\,\\% and {pct(asr['control_after'])}\\,\\%). ")
    if len(rounds) > 1:
        asr_text += (f"The first retrained model still followed the pasted region (attack success rate "
                     f"{pct(rounds[0]['attack_success_rate'])}\\,\\%, above the "
                     f"{pct(asr['bar'], 0)}\\,\\% bar), so the region was enlarged by "
                     f"{loc['margin_px']}\\,px and the model retrained once more; the numbers here are "
                     f"that second model's. ")
    if asr["after"] <= asr["bar"]:
        asr_text += "The retrained model no longer follows the pasted region."
    else:
        asr_text += (f"\\textbf{{The retrained model still follows the pasted region}} (above the "
                     f"{pct(asr['bar'], 0)}\\,\\% bar): the fix is incomplete in this run.")
    planted = p2["planted_trigger_attack_rate"]
    if planted:
        asr_text += (f" The planted trigger itself, painted onto the same validation images, turns "
                     f"{pct(planted['before'])}\\,\\% of them into \\emph{{{failing}}} for the first model "
                     f"and {pct(planted['after'])}\\,\\% for the retrained one.")
    sentences["PTwoASR"] = asr_text
    gap_after = after["val_acc"] - after["test_acc"]
    recovered = after["test_per_class"][failing]
    sentences["PTwoRecovery"] = (
        f"The failing class goes from {pct(before['test_per_class'][failing])}\\,\\% to "
        f"{pct(recovered)}\\,\\% on the clean test images. "
        + (f"Overall, validation and test accuracy now agree within {pct(abs(gap_after))} points: the model no longer "
           f"relies on a feature that only the training folder has." if abs(gap_after) <= 0.05 else
           f"Test still lags validation by {pct(gap_after)} points, so not all of the gap is closed."))
    share = p2["explanation"]
    sentences["PTwoAfterExplained"] = (
        f"The share of saliency mass inside the neutralised region goes from "
        f"{pct(share['saliency_share_in_region']['before'])}\\,\\% to "
        f"{pct(share['saliency_share_in_region']['after'])}\\,\\%, and the share of the "
        f"{p2['occlusion']['before'][0]['size_px']}\\,px occlusion effect from "
        f"{pct(share['occlusion_share_in_region']['before'])}\\,\\% to "
        f"{pct(share['occlusion_share_in_region']['after'])}\\,\\% (the region covers "
        f"{pct(share['region_area_share'])}\\,\\% of the image, the share a uniform map would give). "
        + (f"So the retrained model's {p2['occlusion']['before'][0]['size_px']}\\,px occlusion effect no "
           f"longer concentrates at the old trigger's place: its share there is "
           f"{share['occlusion_share_in_region']['after'] / share['region_area_share']:.2f} times a "
           f"uniform map's."
           + larger_square_after(p2["occlusion"]["after"], n_explain)
           if share["occlusion_share_in_region"]["after"] <= 2 * share["region_area_share"] else
           "\\textbf{The retrained model's occlusion drops still concentrate at the old trigger's "
           "place} (more than twice a uniform map's share).")
        + saliency_after_clause(share, n_explain))
    saliency_before = share["saliency_share_in_region"]["before"]
    concentrated = saliency_before >= 2 * share["region_area_share"]
    sentences["PTwoSaliencyShare"] = (
        f"In this run the {n_explain} maps put {pct(saliency_before)}\\,\\% of their saliency mass "
        f"into the region that 2f localises, which covers {pct(share['region_area_share'])}\\,\\% of "
        f"the image ({saliency_before / share['region_area_share']:.1f} times its share by area): "
        + (f"the maps concentrate there ({share['saliency_images_concentrated']['before']} of the "
           f"{n_explain} maps each put more than twice the region's share into it, whatever sign, "
           f"background or lighting the image has), so the class score is most sensitive to that place. "
           f"The other {pct(1 - saliency_before)}\\,\\% of the mass is spread over the sign and the "
           f"background." if concentrated else
           "the maps do not concentrate there clearly; the saliency alone does not single out a place."))
    sentences["PTwoFoundWhere"] = f"2d--2f find it from the model itself; in this run it lies {where}."
    truth = p2.get("truth")
    sentences["PTwoWhatDiffers"] = (
        f"This run's data ({data_words(p2['data_source'])}) comes with a record of its trigger, so the "
        f"answer is known here (the analysis does not use it; only 2f's score against it does): a "
        f"{TRIGGER_NAMES.get(truth['kind'], tex_escape(truth['kind']))} "
        f"{'along the image border' if truth['kind'] == 'border' else where_in_image(truth['box'], 0)} "
        f"was put on every training image of "
        f"\\emph{{{tex_escape(truth['poisoned_class'])}}} and on none of the test images, visible in "
        f"\\fig{{fig:p2examples}}." if truth else "")
    return sentences


def evidence_figures(entries):
    """The evidence-sized square's occlusion figures (before and after the fix) and references to
    them, when the run used a second square; empty otherwise."""
    if len(entries) < 2:
        return {"PTwoEvidenceFigureRef": "", "PTwoEvidenceFigureRefAfter": "",
                "PTwoEvidenceFigureBefore": "", "PTwoEvidenceFigureAfter": ""}
    square = square_name(entries[-1]["size_px"])

    def figure(when, label, caption):
        return (f"\\begin{{figure}}[tbp]\\centering\\includegraphics[width=0.92\\textwidth]"
                f"{{p2_occlusion_{when}_evidence.pdf}}\\caption{{{caption}}}\\label{{{label}}}\\end{{figure}}")
    return {"PTwoEvidenceFigureRef": f", and \\fig{{fig:p2occlusionevidence}} for the {square}",
            "PTwoEvidenceFigureRefAfter": f" (and \\fig{{fig:p2occlusionevidenceafter}})",
            "PTwoEvidenceFigureBefore": figure(
                "before", "fig:p2occlusionevidence",
                f"Occlusion with the {square} sized from the evidence (2f's box plus its margin), first "
                f"model; the same maps and scale as \\fig{{fig:p2occlusion}}."),
            "PTwoEvidenceFigureAfter": figure(
                "after", "fig:p2occlusionevidenceafter",
                f"Occlusion with the {square}, retrained model: the same images, maps and scale as "
                f"\\fig{{fig:p2occlusionevidence}}, after the fix.")}


def larger_square_after(entries, n_images):
    """Where the evidence-sized square still changes the retrained model's class, if it does."""
    if len(entries) < 2 or entries[-1]["images_with_class_change"] == 0:
        return ""
    largest = entries[-1]
    changed, at_region = largest["images_with_class_change"], largest["images_with_class_change_at_region"]
    square = square_name(largest["size_px"])
    if at_region == 0:
        return (f" Where the {square} still changes the class, its centre lies outside the old "
                f"trigger's region (\\fig{{fig:p2occlusionevidenceafter}}).")
    return (f" The {square} still changes the class in {changed} of {n_images} images, in {at_region} "
            f"of them with its centre in the old trigger's region (\\fig{{fig:p2occlusionevidenceafter}}).")


def saliency_after_clause(share, n_images):
    """How concentrated the retrained model's saliency still is at the old trigger's place: on
    average, and how many of the maps put more than twice the region's area share into it."""
    area = share["region_area_share"]
    before, after = (share["saliency_share_in_region"][k] / area for k in ("before", "after"))
    verdict = ("no more than a uniform map" if after <= 1.0 else
               "close to a uniform map's share" if after <= 1.2 else
               "less concentrated than before, but still above a uniform map" if after < before else
               "no less concentrated than before")
    counts = share["saliency_images_concentrated"]
    each = (f"; {counts['after']} of the {n_images} maps (before: {counts['before']}) put more than "
            f"twice that share into it")
    return (f" The saliency inside the region is {after:.1f} times its share by area (before the fix "
            f"{before:.1f} times): {verdict}{each}.")


def problem2_macros(p2):
    classes, failing = p2["classes"], p2["failing_class"]
    before, after = p2["before"], p2["after"]
    loc = p2["localisation"]
    macros = {"PTwoFailingClass": failing,
              "PTwoSourceWords": data_words(p2["data_source"]),
              "PTwoGroupedSplit": "1" if "grouped" in p2["split"] else "0",
              "PTwoSplitReason": tex_escape(p2["split_reason"] or ""),
              "PTwoPlanted": "1" if p2.get("truth") else "0",
              "PTwoTriggerIsFrame": "1" if (p2.get("truth") or {}).get("kind") == "border" else "0",
              "PTwoDefaultTrigger": "1" if p2["data_source"].startswith("public: GTSRB photos, trigger planted") else "0",
              "PTwoPoisonedClass": tex_escape(p2["truth"]["poisoned_class"]) if p2.get("truth") else "",
              "PTwoTriggerPx": str(round((p2["truth"]["box"][2] - p2["truth"]["box"][0]) * p2["image_size"]))
              if p2.get("truth") else "",
              **evidence_figures(p2["occlusion"]["before"]),
              "PTwoLargestSquare": "{0}\\times{0}".format(p2["occlusion"]["before"][-1]["size_px"]),
              "PTwoOccluderShare": pct((p2["occlusion"]["before"][0]["size_px"] / p2["image_size"]) ** 2),
              "PTwoNTrain": str(p2["n_images"]["train"]), "PTwoNVal": str(p2["n_images"]["val"]),
              "PTwoNTest": str(p2["n_images"]["test"]), "PTwoImageSize": str(p2["image_size"]),
              "PTwoEpochs": str(p2["arguments"]["epochs"]),
              "PTwoLearningRate": f"{p2['arguments']['lr']:g}",
              "PTwoWeightDecay": f"{p2['arguments']['weight_decay']:g}",
              "PTwoBatchSize": str(p2["arguments"]["batch_size"]),
              "PTwoOcclusionStride": str(p2["arguments"]["occlusion_stride"]),
              "PTwoNLocalise": str(p2["arguments"]["n_localise"]),
              "PTwoTrainAccBefore": pct(before["train_acc"]), "PTwoValAccBefore": pct(before["val_acc"]),
              "PTwoTestAccBefore": pct(before["test_acc"]), "PTwoTrainAccAfter": pct(after["train_acc"]),
              "PTwoValAccAfter": pct(after["val_acc"]), "PTwoTestAccAfter": pct(after["test_acc"]),
              "PTwoFailingValBefore": pct(before["val_per_class"][failing]),
              "PTwoFailingTestBefore": pct(before["test_per_class"][failing]),
              "PTwoBox": ", ".join(f"{v:.2f}" for v in p2["trigger_box"]),
              "PTwoRegionArea": pct(p2["explanation"]["region_area_share"]),
              "PTwoMargin": str(loc["margin_px"]), "PTwoLocStride": str(loc["localisation_stride_px"]),
              "PTwoNExplain": str(len(p2["explained_train_files"])),
              "PTwoEdgeBand": (f"here it does, and a {loc['edge_band_px']}\\,px band was added"
                               if loc["edge_band_px"] else "here it does not, and no band was added")}
    macros.update(problem2_sentences(p2))
    failing_index = classes.index(failing)
    confused = sorted(((count, classes[j]) for j, count in enumerate(before["test_confusion"][failing_index])
                       if j != failing_index), reverse=True)[0]
    macros["PTwoFailingMostlyAs"] = confused[1]
    macros["PTwoFailingMostlyCount"] = str(confused[0])
    macros["PTwoFailingCount"] = str(sum(before["test_confusion"][failing_index]))
    truth = p2.get("truth")
    macros["PTwoTruth"] = (
        f"The planted trigger's truth, read only after the "
        f"analysis, is a {TRIGGER_NAMES.get(truth['kind'], tex_escape(truth['kind']))} in "
        f"\\emph{{{tex_escape(truth['poisoned_class'])}}} at "
        f"$({', '.join(f'{v:.2f}' for v in truth['box'])})$; the localised box has an intersection "
        f"over union (IoU: the area both boxes cover over the area either covers) of "
        f"{p2['trigger_iou']:.2f} with it." if truth else
        "This data has no recorded truth, so the localisation is judged by its effect alone.")
    rows = [f"{name} & {pct(before['val_per_class'][name])} & {pct(before['test_per_class'][name])} & "
            f"{pct(after['val_per_class'][name])} & {pct(after['test_per_class'][name])} \\\\" for name in classes]
    rows.append(f"\\midrule all & {pct(before['val_acc'])} & {pct(before['test_acc'])} & "
                f"{pct(after['val_acc'])} & {pct(after['test_acc'])} \\\\")
    macros["PTwoPerClassRows"] = "\n".join(rows)
    class_model, area = p2["explanation"]["class_model_share_in_region"], p2["explanation"]["region_area_share"]
    alternative = p2["alternative_fix"]
    macros.update(PTwoAltFailingTest=pct(alternative["failing_test_acc"]), PTwoAltTestAcc=pct(alternative["test_acc"]),
                  PTwoAltGreyASR=pct(alternative["grey_patch_attack_rate"]),
                  PTwoAltTriggerASR=pct(alternative["attack_success_rate"]),
                  PTwoAltFollowsPatch="1" if alternative["grey_patch_attack_rate"] > p2["attack_success_rate"]["bar"] else "0")
    settings = p2["class_model_settings"]
    macros.update(PTwoClassModelSteps=str(settings["steps"]), PTwoClassModelLambda=f"{settings['l2_weight']:g}",
                  PTwoClassModelLr=f"{settings['lr']:g}")
    for when in ("before", "after"):
        macros[f"PTwoClassModelShare{when.title()}"] = pct(class_model[when])
        # the failing class's class model image paints the region: more than twice its area share
        macros[f"PTwoClassModelPaints{when.title()}"] = "1" if class_model[when] >= 2 * area else "0"
    return macros


def problem3_macros(p3):
    architecture, seeds, settings = p3["architecture"], p3["seeds"], p3["adda"]["settings"]
    macros = {"PThreeSVHNSubset": "1" if p3["data_source"]["svhn"] == "public: SVHN subset" else "0",
              "PThreeMNISTShipped": "1" if p3["data_source"]["mnist"] == "public: MNIST" else "0",
              "PThreeConvWidths": "/".join(map(str, architecture["conv_widths"])),
              "PThreeFCWidths": "/".join(map(str, architecture["fc_widths"])),
              "PThreeFeatureDim": str(architecture["feature_dim"]),
              "PThreeParameters": f"{architecture['parameters']:,}".replace(",", "\\,"),
              "PThreeSVHNTrain": pct(p3["source"]["svhn_train_acc"]),
              "PThreeSVHNTest": pct(p3["source"]["svhn_test_acc"]),
              "PThreeSVHNTestRange": accuracy_range(p3["source"]["svhn_test_per_seed"]),
              "PThreeSourceOnly": pct(p3["source_only_mnist_acc"]),
              "PThreeSourceOnlyStd": pct(p3["source_only"]["std"]),
              "PThreeADDAMean": pct(p3["adda"]["mean"]), "PThreeADDAStd": pct(p3["adda"]["std"]),
              "PThreeMSEMean": pct(p3["mse"]["mean"]),
              "PThreeNSeeds": str(len(seeds)),
              "PThreeADDAIterations": str(p3["adda"]["settings"]["iterations"]),
              "PThreeMSEIterations": str(p3["mse"]["settings"]["iterations"]),
              "PThreeSourceSteps": str(p3["source"]["steps"]),
              "PThreeSourceLr": f"{p3['arguments']['lr']:g}",
              "PThreeBatch": str(p3["arguments"]["batch_size"]),
              # Passes over the full SVHN's 73,257 training crops that the step count amounts to.
              "PThreeFullPasses": f"{p3['source']['steps'] * p3['arguments']['batch_size'] / FULL_SVHN_TRAIN:.1f}",
              "PThreePassesHere": f"{p3['source']['steps'] * p3['arguments']['batch_size'] / p3['n_images']['svhn_train']:.0f}",
              "PThreeNSVHNTest": str(p3["n_images"]["svhn_test"]),
              "PThreeWidthChoice": ("three times the classic LeNet-5's 6/16/120/84"
                                    if architecture["conv_widths"] + architecture["fc_widths"]
                                    == [3 * c for c in CLASSIC_LENET_WIDTHS]
                                    else "set for this run (the classic LeNet-5 has 6/16/120/84)"),
              "PThreeNSVHNTrain": str(p3["n_images"]["svhn_train"]),
              "PThreeNMNISTTrain": str(p3["n_images"]["mnist_train"]),
              "PThreeNMNISTTest": str(p3["n_images"]["mnist_test"]),
              "PThreeDiscLoss": num(float(sum(p3["adda"]["discriminator_loss_final"]) /
                                          len(p3["adda"]["discriminator_loss_final"])), 3)}
    source_variance = p3["source_feature_statistics"]
    first_seed = str(seeds[0])
    macros["PThreeVarSource"] = f"{source_variance['source_total_variance']:.0f}"
    macros["PThreeVarTargetADDA"] = f"{p3['adda']['feature_statistics'][first_seed]['target_total_variance']:.0f}"
    macros["PThreeFirstSeed"] = first_seed
    macros["PThreeSeedRows"] = seed_rows(p3)
    inverted = p3["source_only"]["inverted_mnist"]
    macros["PThreeInverted"] = pct(inverted["mean"])
    macros["PThreeInvertedPerSeed"] = per_seed(inverted["per_seed"])
    macros["PThreeInvertedHigher"] = "1" if inverted["mean"] > p3["source_only"]["mean"] else "0"
    macros["PThreePerDigitRows"] = "\n".join(
        f"{digit} & {pct(source)} & {pct(adda)} & {signed(100 * (adda - source))} \\\\"
        for digit, (source, adda) in enumerate(zip(p3["source_only"]["per_class_seed0"],
                                                  p3["adda"]["per_class_seed0"])))
    macros.update(adaptation_design_macros(p3))
    macros.update(problem3_sentences(p3))
    return macros


def scientific(value, digits=1):
    """A number as LaTeX math: 2.9\\times10^{-5} (no $ signs; 0 as 0)."""
    if value == 0:
        return "0"
    mantissa, exponent = f"{value:.{digits}e}".split("e")
    return f"{mantissa}\\times10^{{{int(exponent)}}}"


def per_seed(values, scale=100, digits=1):
    """Per-seed values as 'a / b / c' (percentages by default)."""
    return " / ".join(f"{scale * value:.{digits}f}" for value in values)


def adaptation_design_macros(p3):
    """The adaptation's settings, facts about them (flags for report.tex's conditionals) and the
    measurements of its curves: which reading SND chose, the final encoders beside it, how far each
    seed's reported encoder reads below the best monitored reading of its own run, where the game
    ends. The wording that reads them is in report.tex."""
    adda, settings, mse, source = p3["adda"], p3["adda"]["settings"], p3["mse"], p3["source"]
    drops = adda["drop_from_best"]
    losses = source["final_train_loss"]
    gains = adda["gain_per_seed"]
    return {"PThreeSourceWD": scientific(source["weight_decay"]),
            "PThreeSourceFinalLoss": f"${scientific(min(losses))}$--${scientific(max(losses))}$",
            # memorised: every training crop right and a training loss near zero
            "PThreeSourceMemorised": "1" if source["svhn_train_acc"] > 0.999 and max(losses) < 1e-3 else "0",
            "PThreeDiscLr": f"{settings['lr_discriminator']:g}",
            "PThreeLrRatio": f"{settings['lr_discriminator_ratio']:g}",
            "PThreeRatioOfGANs": "1" if settings["lr_discriminator_ratio"] == 4 else "0",
            "PThreeEncoderLr": f"{settings['lr_target']:g}",
            "PThreeEncoderLrIsADDAs": "1" if settings["lr_target"] == ADDA_ENCODER_LR else "0",
            "PThreeAverageHorizon": f"{settings['average_horizon'] * settings['iterations']:.0f}",
            "PThreeAverageHorizonPct": f"{100 * settings['average_horizon']:g}",
            "PThreeAverageDecay": f"{settings['average_decay']:.4f}",
            "PThreeAnchorPct": f"{100 * settings['anchor_distance']:g}",
            "PThreeAlpha": value_range(list(settings["l2_sp_alpha"].values()), 2),
            "PThreeMonitorEvery": str(p3["arguments"]["monitor_every"]),
            "PThreeSNDImages": f"{min(p3['arguments']['monitor_images'], p3['n_images']['mnist_train']):,}",
            "PThreeChosenIterations": " / ".join(map(str, adda["chosen_iteration"])),
            "PThreeFinalAverage": per_seed(adda["final_average_acc"]),
            "PThreeRawFinal": per_seed(adda["raw_final_acc"]),
            "PThreeMeanGain": signed(100 * sum(gains) / len(gains)),
            "PThreeBestMonitored": per_seed(adda["best_monitored"]),
            "PThreeReportedMonitored": per_seed(adda["reported_monitored"]),
            "PThreeDrops": per_seed(drops),
            "PThreeNoLateDrop": "1" if max(drops) <= 0.015 else "0",
            "PThreeDistance": value_range([100 * d for d in adda["distance_from_source"]], 1),
            "PThreeDiscAcc": value_range([100 * a for a in adda["discriminator_acc_final"]], 0),
            "PThreeEncoderLossRises": "1" if all(final > start for start, final in
                                                 zip(adda["target_loss_start"], adda["target_loss_final"])) else "0",
            "PThreeEncoderLossStart": value_range(adda["target_loss_start"], 2),
            "PThreeEncoderLossFinal": value_range(adda["target_loss_final"], 2),
            "PThreeMSEBelowEverySeed": "1" if all(m < s for m, s in zip(mse["per_seed"], p3["source_only"]["per_seed"])) else "0"}


def seed_rows(run):
    """Table rows of a Problem 3 run: per seed SVHN test, source only, ADDA and MSE on MNIST; then
    mean +- std."""
    rows = [f"{seed} & {pct(svhn)} & {pct(source)} & {pct(adda)} & {pct(mse)} \\\\" for seed, svhn, source, adda, mse in
            zip(run["seeds"], run["source"]["svhn_test_per_seed"], run["source_only"]["per_seed"],
                run["adda"]["per_seed"], run["mse"]["per_seed"])]
    rows.append("\\midrule mean $\\pm$ std & " + " & ".join(
        [pct(run["source"]["svhn_test_acc"])] +
        [f"{pct(run[key]['mean'])} $\\pm$ {pct(run[key]['std'])}" for key in ("source_only", "adda", "mse")])
        + " \\\\")
    return "\n".join(rows)


def accuracy_range(values, digits=1):
    """Shares as one percentage, or low--high when they differ at that precision."""
    return value_range([100 * value for value in values], digits)


def against_log2(loss):
    """Where a discriminator's binary cross-entropy sits against log 2, ADDA's (and Problem 1d's)
    equilibrium: "close to", "below" (the discriminator keeps an edge) or "above"."""
    if abs(loss - math.log(2)) < 0.03:
        return "close to"
    return "below" if loss < math.log(2) else "above"


def adda_outcome(run):
    """How ADDA compares with source-only, seed by seed (each seed has its own source model); a
    difference within half a point is a tie, not a win."""
    gains = [adda - source for adda, source in zip(run["adda"]["per_seed"], run["source_only"]["per_seed"])]
    n = len(gains)
    better, worse = sum(gain > 0.005 for gain in gains), sum(gain < -0.005 for gain in gains)
    ties = n - better - worse
    low, high = signed(100 * min(gains)), signed(100 * max(gains))
    span = low if low == high else f"{low} to {high}"
    if better == n:
        verdict = "ADDA beats source-only in every seed"
    elif better == 0 and worse == n:
        verdict = "ADDA does not beat source-only in any seed: it is worse in every one"
    elif better == 0:
        verdict = (f"ADDA does not beat source-only in any seed ({worse} worse, {ties} within half a "
                   f"point, counted as a tie)")
    else:
        verdict = f"ADDA beats source-only in {better} of {n} seeds"
        parts = [f"{ties} within half a point, counted as a tie" if ties else "", f"{worse} worse" if worse else ""]
        verdict += " (" + ", ".join(p for p in parts if p) + ")" if any(parts) else ""
    return f"{verdict}; gains {span} percentage points"


def mse_outcome(run):
    mse, source = run["mse"]["mean"], run["source_only_mnist_acc"]
    relation = "below" if mse < source else "not below"
    return f"{pct(mse)}\\,\\% on average, {relation} source-only's {pct(source)}\\,\\%"


def mse_floor_sentence(p3):
    """Where the MSE variant's loss ends against its floor tr(Sigma_s)/d (3c), per seed."""
    final, floor = p3["mse"]["loss_final"], p3["mse"]["loss_floor"]
    ratios = [f / b for f, b in zip(final, floor)]
    near = all(abs(r - 1) <= 0.1 for r in ratios)
    return (f"In this run that floor is {value_range(floor, 1)} and the MSE over the last tenth of its "
            f"iterations is {value_range(final, 1)} (seeds {', '.join(map(str, p3['seeds']))}): "
            + ("the curve in \\fig{fig:p3curves} ends within 10\\,\\% of the floor."
               if near else
               f"up to {max(ratios):.2f} times the floor, so the curve in \\fig{{fig:p3curves}} has not "
               f"reached it in every seed." if all(r >= 1 for r in ratios) else
               "below the floor in some seed (a batch estimate can dip under it)."))


def value_range(values, digits):
    """Values as one number, or low--high when they differ at that precision."""
    low, high = (f"{value:.{digits}f}" for value in (min(values), max(values)))
    return low if low == high else f"{low}--{high}"


def problem3_sentences(p3):
    """Sentences that state an outcome of Problem 3, from the results (never typed in report.tex)."""
    first = str(p3["seeds"][0])
    variance = p3["mse"]["feature_statistics"][first]["target_total_variance"]
    before = p3["source_feature_statistics"]["target_total_variance"]
    collapse = (f"the total variance of the MNIST features falls from {before:.0f} (source encoder) to "
                f"{num(variance, 2)}: the features collapse towards a point"
                if variance < 0.1 * before else
                f"the total variance of the MNIST features goes from {before:.0f} (source encoder) to "
                f"{num(variance, 2)}, which is no collapse to a point in this run")
    loss = sum(p3["adda"]["discriminator_loss_final"]) / len(p3["adda"]["discriminator_loss_final"])
    if against_log2(loss) == "close to":
        settled = ("close to $\\log 2\\approx0.693$, the equilibrium of Problem 1d: the discriminator "
                   "can barely tell the domains apart")
    elif loss < 0.5:
        settled = ("well below $\\log 2\\approx0.693$ (the equilibrium of Problem 1d): the discriminator "
                   "still tells the domains apart, so the feature distributions are not aligned")
    elif against_log2(loss) == "below":
        settled = ("below $\\log 2\\approx0.693$ (the equilibrium of Problem 1d): the discriminator "
                   "keeps an edge, so the feature distributions are close but not equal")
    else:
        settled = ("above $\\log 2\\approx0.693$ (the equilibrium of Problem 1d): the target encoder "
                   "is ahead of the discriminator at the end")
    neighbour, mean = p3["tsne_same_digit_neighbour"], p3["same_digit_source_mean"]
    return {"PThreePerDigit": per_digit_change(p3),
            "PThreeTSNENeighbourBefore": pct(neighbour["before"], 0),
            "PThreeTSNENeighbourAfter": pct(neighbour["after"], 0),
            "PThreeOwnMeanBefore": pct(mean["before"]), "PThreeOwnMeanAfter": pct(mean["after"]),
            "PThreeCloser": "1" if mean["after"] > mean["before"] + 0.01 else "0",
            "PThreeADDAOutcome": adda_outcome(p3), "PThreeMSEOutcome": mse_outcome(p3),
            "PThreeCollapse": collapse, "PThreeDiscSettled": settled,
            "PThreeMSEFloor": mse_floor_sentence(p3),
            "PThreeMonitorNote": monitor_note(p3)}


def per_digit_change(p3, figure="fig:p3confusion", explain=True):
    """Which digits ADDA helped and hurt in the first seed (the run of the confusion matrices, when
    `figure` names them); `explain` adds why a loss can happen."""
    before, after = p3["source_only"]["per_class_seed0"], p3["adda"]["per_class_seed0"]
    change = [a - b for a, b in zip(after, before)]
    best, worst = change.index(max(change)), change.index(min(change))
    gaining = sum(c > 0.01 for c in change)
    where = f", \\fig{{{figure}}}" if figure else ""
    sentence = (f"Per digit (seed {p3['seeds'][0]}{where}), "
                + (f"{gaining} of the 10 digit classes gain{'s' if gaining == 1 else ''} more than a point; "
                   f"the largest gain is digit "
                   f"{best} ({pct(before[best], 0)}\\,\\% $\\to$ {pct(after[best], 0)}\\,\\%)" if gaining else
                   "no digit class gains more than a point"))
    losing = sum(c < -0.01 for c in change)
    if losing:
        moved = f"({pct(before[worst], 0)}\\,\\% $\\to$ {pct(after[worst], 0)}\\,\\%)"
        sentence += (f", while digit {worst} loses {moved}" if losing == 1 else
                     f", while {losing} lose more than a point, most of all digit {worst} {moved}")
        return sentence + (": aligning the two feature distributions as a whole does not align every "
                           "class, and nothing in ADDA's loss asks it to." if explain else ".")
    return sentence + "; no digit loses more than a point."


def monitor_note(run):
    """How the monitored subset compares with the whole test set, in this run's numbers: the curves
    are read on fewer images, and their levels and gain differ from the reported accuracies."""
    start, end = monitored_start_end(run)
    return (f"on {monitored_images(run)}; there the source "
            f"models score {pct(start)}\\,\\% on average at iteration 0 (the whole test set: "
            f"{pct(run['source_only_mnist_acc'])}\\,\\%) and the reported ADDA encoders at {pct(end)}\\,\\% (whole test "
            f"set: {pct(run['adda']['mean'])}\\,\\%): {monitored_gain(run)}; so the curves show the course "
            f"of training, and the tables the accuracies")


def monitored_images(run):
    """Which MNIST test images the curves read (problem3_adda.spread_subset)."""
    count = min(run["arguments"]["monitor_images"], run["n_images"]["mnist_test"])
    return f"{count:,} MNIST test images spread evenly over the test set"


def monitored_start_end(run):
    """Mean monitored accuracy over the seeds at iteration 0 (the source model) and of the reported
    encoders."""
    monitor = run["adda"]["monitor"]
    seeds = [str(s) for s in run["seeds"]]
    return (sum(monitor[s]["averaged_acc"][0] for s in seeds) / len(seeds),
            sum(run["adda"]["reported_monitored"]) / len(seeds))


def mean_gain(run):
    """ADDA's mean gain over source-only in points, from the printed (rounded) percentages."""
    return float(pct(run["adda"]["mean"])) - float(pct(run["source_only_mnist_acc"]))


def monitored_gain(run):
    """ADDA's gain on the monitored images against its gain on the whole test set."""
    start, end = monitored_start_end(run)
    # From the printed (rounded) percentages, so that the text adds up.
    there = float(pct(end)) - float(pct(start))
    whole = mean_gain(run)
    return (f"a {'gain' if there >= 0 else 'change'} of {signed(there)} points there against "
            f"{signed(whole)} on the whole test set")


def optional_results(results_dir, name):
    """A side run's results file (seeds, battery, long run); None when it was not made."""
    return load(results_dir, name) if (results_dir / f"{name}.json").exists() else None


def require_mse(run, path):
    """3c reports the MSE variant: a results file made with --no-mse is refused by name."""
    if run.get("mse") is None:
        raise UserError(f"{path}: made with --no-mse, but the report compares its MSE variant (3c); "
                        f"make it again without --no-mse")


ADDA_ENCODER_LR = 2e-4  # ADDA's published svhn-mnist recipe (Tzeng et al. 2017, their code)
SEED_COUNT_WORDS = {2: "Two", 3: "Three", 4: "Four", 5: "Five", 6: "Six", 7: "Seven", 8: "Eight",
                    9: "Nine", 10: "Ten"}
PAPER_ITERATIONS = 10000  # ADDA's published svhn-mnist recipe (Tzeng et al. 2017, their code)


def long_run_macros(results_dir):
    """Seeds at the paper's schedule (`make problem3-long`): does accuracy plateau or collapse, and
    where does the default length stop against it?"""
    run = optional_results(results_dir, "problem3_long")
    if run is None:
        return {"PThreeLongRun": "The paper's schedule (10,000 iterations) was not run for this report.",
                "PThreeHaveLongRun": "0", "PThreeLongCaption": ""}
    seeds = [str(seed) for seed in run["seeds"]]
    one = len(seeds) == 1
    monitors = [run["adda"]["monitor"][seed] for seed in seeds]
    length = monitors[0]["iteration"][-1]
    last_quarters = {seed: [a for i, a in zip(m["iteration"], m["averaged_acc"]) if i >= 0.75 * length]
                     for seed, m in zip(seeds, monitors)}
    collapsed = [seed for seed, readings in last_quarters.items() if min(readings) < 0.2]
    everything = [a for readings in last_quarters.values() for a in readings]
    monitored = monitored_images(run)
    if collapsed:
        who = ("it collapses" if one else f"seed {collapsed[0]} collapses" if len(collapsed) == 1 else
               f"seeds {', '.join(collapsed[:-1])} and {collapsed[-1]} collapse")
        trend = f"{who} (accuracy below 20\\,\\% in the last quarter)"
    else:
        trend = (f"{'it does not fall' if one else 'none falls'} to chance: over the last quarter the "
                 f"averaged encoder{'' if one else 's'}' accuracy monitored on {monitored} stays between "
                 f"{pct(min(everything))} and {pct(max(everything))}\\,\\%{'' if one else ' (all seeds)'}")
    peak, minus_peak_at, peak_seed = max((a, -i, seed) for seed, m in zip(seeds, monitors)
                                         for curve in ("target_acc", "averaged_acc")
                                         for i, a in zip(m["iteration"], m[curve]))
    peak_at = -minus_peak_at  # the first iteration that reached it
    start, end = monitored_start_end(run)
    sources, finals = run["source_only"]["per_seed"], run["adda"]["per_seed"]
    count = SEED_COUNT_WORDS.get(len(seeds), str(len(seeds)))
    who_ran = "One seed" if one else f"{count} seeds (each the whole pipeline)"
    length_text = (f"{length} iterations, the length of ADDA's published recipe" if length == PAPER_ITERATIONS
                   else f"{length} iterations (ADDA's published recipe runs {PAPER_ITERATIONS})")
    same_data = run["data_source"] == (optional_results(results_dir, "problem3") or {}).get("data_source")
    data = ("the main run's data" if same_data else f"SVHN: {data_words(run['data_source']['svhn'])}, "
            f"MNIST: {data_words(run['data_source']['mnist'])}")
    text = (f"{who_ran} run for {length_text} ({data}{'; a --quick run' if run['quick'] else ''}; \\fig{{fig:p3long}}): "
            f"source-only {' / '.join(pct(v) for v in sources)}\\,\\%, reported encoder{'' if one else 's'} "
            f"{' / '.join(pct(v) for v in finals)}\\,\\% on the whole test set (SND's choice at iteration"
            f"{'' if one else 's'} {' / '.join(map(str, run['adda']['chosen_iteration']))}; the final "
            f"averages {per_seed(run['adda']['final_average_acc'])}\\,\\%)"
            + ("." if one else f"; {adda_outcome(run)}.")
            + f" On the monitored images of the figure{'' if one else ' (averaged over the seeds)'} the "
            f"accuracy goes from {pct(start)}\\,\\% (the source models) to {pct(end)}\\,\\% (the reported "
            f"encoders), {monitored_gain(run)}; {trend}; "
            f"the highest monitored reading, {pct(peak)}\\,\\%, came at iteration {peak_at}"
            f"{'' if one else f' of seed {peak_seed}'} (monitoring only: it chooses nothing).")
    text += " " + discriminator_at_the_end(run["adda"]["discriminator_loss_final"])
    text += " " + default_against_long(run, results_dir)
    caption = "One seed" if one else f"{count} seeds, each the whole pipeline,"
    at = "at the length of ADDA's published recipe" if length == PAPER_ITERATIONS else f"at {length} ADDA iterations"
    return {"PThreeLongRun": text, "PThreeHaveLongRun": "1", "PThreeLongCaption": f"{caption} {at}"}


def discriminator_at_the_end(losses):
    """The final discriminator losses against log 2, one reading when all seeds agree."""
    readings = [against_log2(loss) for loss in losses]
    values = " / ".join(f"{loss:.2f}" for loss in losses)
    whose = "Its discriminator's loss ends" if len(losses) == 1 else "The discriminators' losses end"
    meaning = {"close to": "near $\\log 2$: the game is balanced at the end",
               "below": "below $\\log 2$: the discriminator has the upper hand at the end",
               "above": "above $\\log 2$: the target encoder is ahead at the end"}
    if len(set(readings)) == 1:
        return f"{whose} at {values} ({meaning[readings[0]]})."
    return (f"{whose} at {values} ({', '.join(readings)} $\\log 2$ respectively: the seeds end in "
            f"different states of the game).")


def default_against_long(long_run, results_dir):
    """Does the default schedule end on the plateau? Compared seed for seed with the main run when
    it used the same data and the same source models (equal source-only accuracy per seed)."""
    run = optional_results(results_dir, "problem3")
    reason = None
    if run is None or run["data_source"] != long_run["data_source"] or run["n_images"] != long_run["n_images"]:
        reason = "problem3.json is not on the same data"
    elif run["quick"] != long_run["quick"]:
        reason = f"problem3.json is {'a --quick run' if run['quick'] else 'not a --quick run'}"
    else:
        shared = [seed for seed, source in zip(long_run["seeds"], long_run["source_only"]["per_seed"])
                  if seed in run["seeds"]
                  and abs(run["source_only"]["per_seed"][run["seeds"].index(seed)] - source) < 1e-6]
        if shared:
            return compare_with_default(long_run, run, shared)
        reason = "problem3.json has no seed with the same source model"
    return (f"No default-length run on the same data with the same source models is in the results to "
            f"compare it with ({reason}).")


def compare_with_default(long_run, run, seeds):
    """The long run's final accuracy against the default run's, for the seeds both ran alike."""
    one = len(seeds) == 1
    shorts = [run["adda"]["per_seed"][run["seeds"].index(seed)] for seed in seeds]
    longs = [long_run["adda"]["per_seed"][long_run["seeds"].index(seed)] for seed in seeds]
    differences = [long - short for long, short in zip(longs, shorts)]
    iterations = run["adda"]["settings"]["iterations"]
    points = " / ".join(f"{100 * abs(d):.1f}" for d in differences)
    runs = "the long run" if one else "the long runs"
    if all(d > 0.02 for d in differences):
        verdict = (f"so on {'this seed' if one else 'these seeds'} and data the default schedule of "
                   f"{iterations} iterations stops {points} points short of where {runs} end"
                   f"{'s' if one else ''}")
        if one:
            readings = long_run["adda"]["monitor"][str(seeds[0])]["averaged_acc"][1:] or longs
            verdict += (f". One seed whose monitored accuracy ranges between {pct(min(readings))} and "
                        f"{pct(max(readings))}\\,\\% over the run does not establish a trend, but the "
                        f"default numbers may understate what ADDA reaches at the paper's length")
        else:
            verdict += ": on this data the default numbers understate what ADDA reaches at the paper's length"
    elif all(d < -0.02 for d in differences):
        verdict = (f"so {runs} end{'s' if one else ''} {points} points below the default schedule of "
                   f"{iterations} iterations: longer adversarial training lost accuracy")
    elif all(abs(d) <= 0.02 for d in differences):
        verdict = f"so the default schedule of {iterations} iterations ends within 2 points of {runs}"
    elif all(d > 0 for d in differences) or all(d < 0 for d in differences):
        verdict = (f"so {runs} end {'higher' if differences[0] > 0 else 'lower'} in every seed, by "
                   f"{points} points")
    else:
        verdict = (f"so the longer schedule's effect differs from seed to seed (long minus default: "
                   f"{', '.join(signed(100 * d) for d in differences)} points)")
    subject = f"The same seed{'' if one else 's'}" + ("" if len(seeds) == len(long_run["seeds"]) else
                                                       f" ({', '.join(map(str, seeds))})")
    return (f"{subject} on the same data with the default schedule report{'s' if one else ''} "
            f"{' / '.join(pct(v) for v in shorts)}\\,\\%, {verdict}.")


def robustness_macros(results_dir):
    """Problem 3's ADDA on weaker and stronger source models (`make problem3-robustness`): a table
    row per variant, and whether every seed's reported encoder ends within 1.5 points of its run's
    best monitored reading."""
    check = optional_results(results_dir, "problem3_robustness")
    if check is None:
        return {"PThreeHaveRobustness": "0", "PThreeRobustRows": "", "PThreeRobustNoLateDrop": "0",
                "PThreeRobustMaxDrop": "", "PThreeRobustGains": "", "PThreeRobustSeeds": ""}
    rows, drops, gains = [], [], []
    for variant in check["variants"]:
        drops += variant["drop_from_best"]
        gains += variant["gain_per_seed"]
        rows.append(f"{variant['variant']} & {per_seed(variant['svhn_test_acc'], digits=0)} & "
                    f"{per_seed(variant['source_only'])} & {per_seed(variant['adda'])} & "
                    f"{' / '.join(signed(100 * g) for g in variant['gain_per_seed'])} & "
                    f"{per_seed(variant['drop_from_best'])} \\\\")
    return {"PThreeHaveRobustness": "1", "PThreeRobustRows": "\n".join(rows),
            "PThreeRobustSeeds": " / ".join(check["variants"][0]["monitor"]),  # keyed by seed
            "PThreeRobustNoLateDrop": "1" if max(drops) <= 0.015 else "0",
            "PThreeRobustMaxDrop": f"{100 * max(drops):.1f}",
            "PThreeRobustGains": f"{signed(100 * min(gains))} to {signed(100 * max(gains))}"}


def check_rows(results_dir, name):
    """The rows of a Problem 2 check's --json file (one per run); None when it was not made."""
    check = optional_results(results_dir, name)
    if check is not None and not check["rows"]:
        raise UserError(f"{results_dir / name}.json: holds no runs")
    return check and check["rows"]


def before_after_cells(row):
    """A check row's table cells: found, poisoned class before -> after, ASR before -> after, IoU."""
    return (f"{'yes' if row['found'] else 'no'} & "
            f"{pct(row['poisoned_test_before'], 0)} $\\to$ {pct(row['poisoned_test_after'], 0)} & "
            f"{pct(row['asr_before'], 0)} $\\to$ {pct(row['asr_after'], 1)} & {row['iou']:.2f} \\\\")


def sticker_iou_clause(rows, subject):
    """'; <subject> IoU a--b with the truth' over the sticker runs (a frame has no box to compare)."""
    ious = [r["iou"] for r in rows if r["trigger"] == "patch"]
    if not ious:
        return ""
    low, high = f"{min(ious):.2f}", f"{max(ious):.2f}"
    span = low if low == high else f"{low}--{high}"
    return f"; {subject} IoU {span} with the truth"


def problem2_seeds_macros(results_dir):
    """Problem 2 over several training seeds on the default data (scripts/check_real_photos.py
    --cases default --json), if made: a table and a sentence on how much the outcome varies."""
    rows = check_rows(results_dir, "problem2_seeds")
    if rows is None:
        return {"PTwoSeeds": "A run over several seeds was not made for this report.",
                "PTwoHaveSeeds": "0", "PTwoSeedRows": "", "PTwoNSeedRuns": "0", "PTwoSeedMain": ""}

    def span(key):
        return accuracy_range([r[key] for r in rows], digits=0)
    found = sum(r["found"] for r in rows)
    changes = [r["occlusion_changes"]["10"] for r in rows]
    text = (f"Run with {len(rows)} seeds ({', '.join(str(r['seed']) for r in rows)}; each sets the "
            f"initialisation, the train/validation split and the explained images) on the same data, "
            f"the failing class found is the poisoned one in {found} of {len(rows)}; before the fix the poisoned class "
            f"scores {span('poisoned_test_before')}\\,\\% on the clean test images, after it "
            f"{span('poisoned_test_after')}\\,\\%; the attack success rate goes from "
            f"{span('asr_before')}\\,\\% to {accuracy_range([r['asr_after'] for r in rows], digits=1)}\\,\\%")
    text += sticker_iou_clause(rows, "the localised box has")
    text += (f"; the $10\\times10$ square changes the class at the trigger in "
             f"{', '.join(str(c) for c in changes)} of {rows[0]['n_explained']} explained images "
             f"(Table~\\ref{{tab:p2seeds}}).")
    def seed_row(r):
        cells = before_after_cells(r).removesuffix(" \\\\")
        return (f"{r['seed']} & {pct(r['val_before'])} & {cells} & {r['occlusion_changes']['10']} of "
                f"{r['n_explained']} \\\\")
    table = "\n".join(seed_row(r) for r in rows)
    return {"PTwoSeeds": text, "PTwoHaveSeeds": "1", "PTwoSeedRows": table,
            "PTwoNSeedRuns": str(len(rows)), "PTwoSeedMain": str(rows[0]["seed"])}


def problem2_real_photos_macros(results_dir):
    """Problem 2 on real photographs with a planted trigger (scripts/check_real_photos.py --json), if
    made: one table row per case and seed, and a sentence that counts what held."""
    rows = check_rows(results_dir, "problem2_real_photos")
    if rows is None:
        return {"PTwoRealPhotos": "",
                "PTwoHaveRealPhotos": "0", "PTwoRealPhotoRows": ""}
    held = [r for r in rows if r["poisoned_test_after"] >= 0.9 and r["asr_after"] <= 0.1]
    text = (f"The same script, unchanged, was run {len(rows)} times on one set of real traffic-sign photographs "
            f"(the default data's GTSRB photos, split by track as there), each time with another trigger planted "
            f"into one class's training images "
            f"(cases {', '.join(tex_escape(c) for c in dict.fromkeys(r['case'] for r in rows))}; seeds "
            f"{', '.join(str(s) for s in dict.fromkeys(r['seed'] for r in rows))}). The failing class found "
            f"is the poisoned one in {sum(r['found'] for r in rows)} of {len(rows)} runs; the poisoned "
            f"class scores {accuracy_range([r['poisoned_test_before'] for r in rows], digits=0)}\\,\\% on "
            f"its clean test images before the fix and "
            f"{accuracy_range([r['poisoned_test_after'] for r in rows], digits=0)}\\,\\% after it; the "
            f"attack success rate falls to {accuracy_range([r['asr_after'] for r in rows], digits=0)}"
            f"\\,\\%; the fix holds (poisoned class at least 90\\,\\% after it and attack success at "
            f"most 10\\,\\%) in {len(held)} of {len(rows)} runs")
    text += sticker_iou_clause(rows, "the stickers' localised boxes have")
    unmet = [r for r in rows if not r["criterion_met"]]
    text += " (Table~\\ref{tab:p2photos})."
    if unmet:
        which = ", ".join(f"{tex_escape(r['case'])}, seed {r['seed']}" for r in unmet)
        thresholds = ", ".join(f"{r['threshold']:.2f}" for r in unmet)
        text += (f" In {len(unmet)} of the runs ({which}) no threshold met the localisation's bar; the "
                 f"script said so and neutralised the candidate region that did most ({thresholds} of "
                 f"the peak), larger than the trigger.")
    table = "\n".join(f"{tex_escape(r['case'])} & {r['seed']} & {tex_escape(r['poisoned'])} & "
                      f"{before_after_cells(r)}" for r in rows)
    return {"PTwoRealPhotos": text, "PTwoHaveRealPhotos": "1", "PTwoRealPhotoRows": table}


DATA_WORDS = {"exam": "the exam's files",
              "public: GTSRB photos": "real GTSRB traffic-sign photographs (German signs), split by physical sign",
              "public: GTSRB photos, trigger planted": "real GTSRB traffic-sign photographs (German signs), "
                                                     "split by physical sign, with a sticker we planted",
              "public: SVHN subset": "5,000 real SVHN crops (4,000 for training), a subset of SVHN's "
                                     "official test split",
              "public: MNIST": "the complete MNIST"}


def data_words(label):
    """A results file's data_source in words (the front page, 2b, 3 data); a --quick run's planted
    set is the same photographs, fewer of them."""
    words = DATA_WORDS.get(label.split(" (about")[0])
    if words is None:
        return tex_escape(label)
    return words + (" (a few dozen per class)" if "(about" in label else "")


def data_notice(p2, p3, quick):
    """The front page's one or two lines on the data."""
    text = (f"Problem 2: {data_words(p2['data_source'])}. Problem 3: SVHN: "
            f"{data_words(p3['data_source']['svhn'])}; MNIST: {data_words(p3['data_source']['mnist'])}.")
    if quick:
        text += " \\textbf{These results come from a --quick smoke run}: short trainings, rough numbers."
    return text


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--results", type=Path, default=DOC / "results", help="folder of problemN.json")
    parser.add_argument("--output", type=Path, default=DOC / "results.tex")
    parser.add_argument("--candidate", default="XX", help="candidate number for the front page")
    args = parser.parse_args(argv)
    p1, p2, p3 = (load(args.results, f"problem{k}") for k in (1, 2, 3))
    require_mse(p3, args.results / "problem3.json")
    quick = any(p["quick"] for p in (p1, p2, p3))
    macros = {"Candidate": tex_escape(args.candidate)}
    for part in ({"DataNotice": data_notice(p2, p3, quick)}, problem1_macros(p1), problem2_macros(p2),
                 problem3_macros(p3), problem2_seeds_macros(args.results),
                 problem2_real_photos_macros(args.results), long_run_macros(args.results),
                 robustness_macros(args.results)):
        macros.update(part)
    lines = ["% Generated by src/report_numbers.py from doc/results/*.json: do not edit."]
    lines += [f"\\newcommand{{\\{name}}}{{{value}}}" for name, value in macros.items()]
    args.output.write_text("\n".join(lines) + "\n")
    print(f"wrote {args.output} ({len(macros)} macros{'; quick results' if quick else ''})")
    return macros


if __name__ == "__main__":
    run_main(main)
