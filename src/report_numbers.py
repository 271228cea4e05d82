"""Write doc/results.tex: every number the report prints, and the facts its wording branches on, as
LaTeX macros, from doc/results/*.json.

No result is typed by hand into report.tex, and no sentence is written here: this file gives numbers,
names (a class, a place such as "bottom-right"), flags ("1"/"0", read by `\\ifnum`) and enumerations
(small integers, read by `\\ifcase`, each listed below with its cases); report.tex holds every word
around them. Run by `make report`.
"""
import argparse
import json
import math
import re
from pathlib import Path

from utils import UserError, run_main

DOC = Path(__file__).resolve().parent.parent / "doc"
FULL_SVHN_TRAIN = 73257  # crops in the full SVHN's train_32x32.mat
CLASSIC_LENET_WIDTHS = (6, 16, 120, 84)  # C1, C3, F5, F6 of LeCun et al.'s LeNet-5
ADDA_ENCODER_LR = 2e-4  # ADDA's published svhn-mnist recipe (Tzeng et al. 2017, their code)
PAPER_ITERATIONS = 10000  # the same recipe's length

# The enumerations report.tex reads with \ifcase, in the order of their cases.
DATA_CASES = ("exam", "public: GTSRB photos", "public: GTSRB photos, trigger planted",
              "public: SVHN subset", "public: MNIST")  # any other data_source: a user folder (5)
VERDICT_CASES = (None, "evidence_fits", "evidence_larger", "evidence_spread", "no_change")
SALIENCY_AFTER_CASES = ("uniform", "near uniform", "less concentrated", "no less concentrated")
GAME_CASES = ("near log 2", "well below log 2", "below log 2", "above log 2")
FLOOR_CASES = ("near the floor", "above the floor", "below the floor in some seed")
LONG_AGAINST_DEFAULT_CASES = ("higher by more than 2 points", "lower by more than 2 points",
                              "within 2 points", "higher in every seed", "lower in every seed", "mixed")
LONG_COMPARISON_CASES = ("compared", "other data", "quick or not", "no shared source model")
SPLIT_CASES = ("grouped by physical sign", "names do not tell the sign", "a class with fewer than five signs")


# ==================================================================================================
# Formats
# ==================================================================================================
def pct(value, digits=1):
    """A share as a percentage with `digits` decimals (the report adds the % sign)."""
    return f"{100 * value:.{digits}f}"


def signed(points):
    """A signed difference in points, with a typeset minus (a hyphen is not a minus sign)."""
    rounded = round(points, 1) + 0.0  # + 0.0: no "-0.0"
    return f"{rounded:+.1f}".replace("-", "$-$")


def num(value, digits=3):
    return f"{value:.{digits}g}" if abs(value) < 1e-3 and value != 0 else f"{value:.{digits}f}"


def scientific(value, digits=1):
    """A number as LaTeX math: 2.9\\times10^{-5} (no $ signs; 0 as 0)."""
    if value == 0:
        return "0"
    mantissa, exponent = f"{value:.{digits}e}".split("e")
    return f"{mantissa}\\times10^{{{int(exponent)}}}"


def per_seed(values, scale=100, digits=1):
    """Per-seed values as 'a / b / c' (percentages by default)."""
    return " / ".join(f"{scale * value:.{digits}f}" for value in values)


def value_range(values, digits):
    """Values as one number, or low--high when they differ at that precision."""
    low, high = (f"{value:.{digits}f}" for value in (min(values), max(values)))
    return low if low == high else f"{low}--{high}"


def accuracy_range(values, digits=1):
    """Shares as one percentage, or low--high when they differ at that precision."""
    return value_range([100 * value for value in values], digits)


def flag(condition):
    return "1" if condition else "0"


TEX_SPECIAL = {"\\": r"\textbackslash{}", "_": r"\_", "%": r"\%", "&": r"\&", "#": r"\#",
               "$": r"\$", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}",
               "^": r"\textasciicircum{}", "<": r"\textless{}", ">": r"\textgreater{}",
               "|": r"\textbar{}"}


def tex_escape(text):
    """Plain text (check names, class names, paths) made safe for LaTeX."""
    return "".join(TEX_SPECIAL.get(character, character) for character in str(text))


def place_in_image(box):
    """Where a relative box (x0, y0, x1, y1) lies: 'bottom-right', 'top', 'centre', ..."""
    x, y = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    vertical = "top" if y < 0.36 else "bottom" if y > 0.64 else ""
    horizontal = "left" if x < 0.36 else "right" if x > 0.64 else ""
    return "-".join(part for part in (vertical, horizontal) if part) or "centre"


def box_text(box):
    return ", ".join(f"{v:.2f}" for v in box)


# ==================================================================================================
# The results files
# ==================================================================================================
def load(results_dir, problem):
    path = results_dir / f"{problem}.json"
    if not path.exists():
        raise UserError(f"{path}: missing; run `make {problem}` (or `make all`) first")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise UserError(f"{path}: not valid JSON ({error.msg})") from None


def optional_results(results_dir, name):
    """A side run's results file (seeds, battery, long run); None when it was not made."""
    return load(results_dir, name) if (results_dir / f"{name}.json").exists() else None


def require_mse(run, path):
    """3c reports the MSE variant: a results file made with --no-mse is refused by name."""
    if run.get("mse") is None:
        raise UserError(f"{path}: made with --no-mse, but the report compares its MSE variant (3c); "
                        f"make it again without --no-mse")


def data_macros(prefix, label):
    """A data_source as an enumeration (DATA_CASES; 5 for a user folder, named), and whether it is
    a --quick run's smaller planted set."""
    base = label.split(" (about")[0]
    known = base in DATA_CASES
    return {f"{prefix}Data": str(DATA_CASES.index(base) if known else len(DATA_CASES)),
            f"{prefix}DataFolder": "" if known else tex_escape(label.removeprefix("user folder ")),
            f"{prefix}DataFew": flag("(about" in label)}


# ==================================================================================================
# Problem 1
# ==================================================================================================
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
    macros["POneCheckRows"] = "\n".join(
        f"{tex_escape(check['name'])} & {check['measured']:.4g} & {check['predicted']:.4g} & "
        f"{check['tolerance']:.1g} & {'pass' if check['passed'] else 'FAIL'} \\\\" for check in p1["checks"])
    return macros


# ==================================================================================================
# Problem 2
# ==================================================================================================
def problem2_macros(p2):
    macros = {}
    for part in (problem2_setting_macros, problem2_test_macros, localisation_macros, occlusion_macros,
                 retraining_macros, explanation_macros, truth_macros):
        macros.update(part(p2))
    return macros


def problem2_setting_macros(p2):
    arguments = p2["arguments"]
    return {"PTwoFailingClass": p2["failing_class"],
            **data_macros("PTwo", p2["data_source"]),
            "PTwoGroupedSplit": flag("grouped" in p2["split"]),
            **split_reason_macros(p2["split_reason"]),
            "PTwoNTrain": str(p2["n_images"]["train"]), "PTwoNVal": str(p2["n_images"]["val"]),
            "PTwoNTest": str(p2["n_images"]["test"]), "PTwoImageSize": str(p2["image_size"]),
            "PTwoEpochs": str(arguments["epochs"]), "PTwoLearningRate": f"{arguments['lr']:g}",
            "PTwoWeightDecay": f"{arguments['weight_decay']:g}", "PTwoBatchSize": str(arguments["batch_size"]),
            "PTwoOcclusionStride": str(arguments["occlusion_stride"]),
            "PTwoNLocalise": str(arguments["n_localise"]),
            "PTwoNExplain": str(len(p2["explained_train_files"])),
            "PTwoOccluderShare": pct((p2["occlusion"]["before"][0]["size_px"] / p2["image_size"]) ** 2),
            "PTwoClassModelSteps": str(p2["class_model_settings"]["steps"]),
            "PTwoClassModelLambda": f"{p2['class_model_settings']['l2_weight']:g}",
            "PTwoClassModelLr": f"{p2['class_model_settings']['lr']:g}"}


SPLIT_REASON = re.compile(r"class (.+) has only (\d+) physical signs, fewer than 5")


def split_reason_macros(reason):
    """Why the split could not be grouped by physical sign (problem2_traffic.split_train_val), as an
    enumeration (SPLIT_CASES; the class with too few signs named, with its count)."""
    few = SPLIT_REASON.fullmatch(reason or "")
    if reason and reason != "the file names do not tell the physical sign" and not few:
        raise UserError(f"problem2.json: split_reason {reason!r} is not one report.tex words")
    return {"PTwoSplitCase": "0" if not reason else "2" if few else "1",
            "PTwoSplitFewestClass": tex_escape(few[1]) if few else "", "PTwoSplitFewestSigns": few[2] if few else ""}


def problem2_test_macros(p2):
    """2c: the first model on validation and test; the failing class, where its test images go, and
    the other classes' largest drop."""
    classes, failing, before, after = p2["classes"], p2["failing_class"], p2["before"], p2["after"]
    others = [c for c in classes if c != failing]
    worst = max(others, key=lambda c: before["val_per_class"][c] - before["test_per_class"][c])
    worst_drop = before["val_per_class"][worst] - before["test_per_class"][worst]
    row = before["test_confusion"][classes.index(failing)]
    count, mostly_as = max((n, classes[j]) for j, n in enumerate(row) if classes[j] != failing)
    after_changes = p2["occlusion"]["after"][0]["changes_to"]  # sorted, the most frequent first
    after_to = next(iter(after_changes), "")
    rows = [f"{name} & {pct(before['val_per_class'][name])} & {pct(before['test_per_class'][name])} & "
            f"{pct(after['val_per_class'][name])} & {pct(after['test_per_class'][name])} \\\\" for name in classes]
    rows.append(f"\\midrule all & {pct(before['val_acc'])} & {pct(before['test_acc'])} & "
                f"{pct(after['val_acc'])} & {pct(after['test_acc'])} \\\\")
    return {"PTwoTrainAccBefore": pct(before["train_acc"]), "PTwoValAccBefore": pct(before["val_acc"]),
            "PTwoTestAccBefore": pct(before["test_acc"]),
            "PTwoFailingValBefore": pct(before["val_per_class"][failing]),
            "PTwoFailingTestBefore": pct(before["test_per_class"][failing]),
            "PTwoFailingMostlyAs": mostly_as, "PTwoFailingMostlyCount": str(count),
            "PTwoFailingCount": str(sum(row)),
            "PTwoAfterChangesTo": after_to, "PTwoAfterChangesToMostlyAs": flag(after_to == mostly_as),
            "PTwoOtherClassWorse": flag(worst_drop > 0), "PTwoWorstOtherClass": worst,
            "PTwoWorstOtherDrop": pct(max(worst_drop, 0)), "PTwoPerClassRows": "\n".join(rows)}


def localisation_macros(p2):
    """2f: the evidence's place and size, and the threshold procedure's outcome."""
    loc, size = p2["localisation"], p2["image_size"]
    core = loc["core_box"]
    width, height = (round((core[2] - core[0]) * size), round((core[3] - core[1]) * size))
    rejected = [c for c in loc["candidates"] if not c["met"]]
    return {"PTwoBox": box_text(core), "PTwoPlace": place_in_image(core),
            "PTwoBoxArea": pct((core[2] - core[0]) * (core[3] - core[1])),
            "PTwoEvidenceWidthPx": str(width), "PTwoEvidenceHeightPx": str(height),
            "PTwoEvidenceUnderSquare": flag(max(width, height) <= p2["occlusion"]["before"][0]["size_px"]),
            "PTwoEdgeBandPx": str(loc["edge_band_px"]), "PTwoMargin": str(loc["margin_px"]),
            "PTwoLocStride": str(loc["localisation_stride_px"]),
            "PTwoRegionArea": pct(p2["explanation"]["region_area_share"]),
            "PTwoCriterionMet": flag(loc["criterion_met"]), "PTwoThreshold": f"{loc['threshold']:.2f}",
            "PTwoLowestThreshold": f"{min(c['threshold'] for c in loc['candidates']):.2f}",
            "PTwoNRejected": str(len(rejected)),
            "PTwoStillRecognised": pct(loc["still_recognised"]),
            "PTwoCleanNeutralised": pct(loc["clean_test_neutralised"]),
            "PTwoCleanRecall": pct(loc["clean_test_recall"])}


def occlusion_macros(p2):
    """2e, 2h: what each square did to each model (a table row per model and square), and the
    first model's verdict when the exam's square changes nothing (VERDICT_CASES)."""
    n = len(p2["explained_train_files"])
    rows = []
    for when, model in (("before", "first"), ("after", "retrained")):
        for entry in p2["occlusion"][when]:
            to = ", ".join(f"{name} ({count})" for name, count in entry["changes_to"].items()) or "--"
            rows.append(f"{model} & ${entry['size_px']}\\times{entry['size_px']}$ & "
                        f"{entry['images_with_class_change']} of {n} & "
                        f"{entry['images_with_class_change_at_region']} & {to} & {entry['min_p_true']:.2f} \\\\")
    verdict = p2["occlusion_verdict"]
    before, after = p2["occlusion"]["before"], p2["occlusion"]["after"]
    largest = before[-1]["size_px"]
    return {"PTwoOcclusionRows": "\n".join(rows), "PTwoNSquares": str(len(before)),
            "PTwoLargestSquare": str(largest), "PTwoEvidencePx": str(verdict["evidence_px"]),
            "PTwoLargestSquareShare": pct((largest / p2["image_size"]) ** 2, 0),
            "PTwoEvidenceHideable": flag(verdict["evidence_px"] <= largest),
            "PTwoVerdict": str(VERDICT_CASES.index(verdict.get("case"))),
            "PTwoExamChangedBefore": str(before[0]["images_with_class_change"]),
            "PTwoExamAtRegionBefore": str(before[0]["images_with_class_change_at_region"]),
            "PTwoExamChangedAfter": str(after[0]["images_with_class_change"]),
            "PTwoExamAtRegionAfter": str(after[0]["images_with_class_change_at_region"]),
            "PTwoLargestChangedAfter": str(after[-1]["images_with_class_change"]),
            "PTwoLargestAtRegionAfter": str(after[-1]["images_with_class_change_at_region"]),
            "PTwoExamLowestPBefore": f"{before[0]['min_p_true']:.2f}",
            "PTwoExamLowestPAfter": f"{after[0]['min_p_true']:.2f}"}


def retraining_macros(p2):
    """2g: the retrained model, the attack success rates, a second round, the alternative fix."""
    failing, after = p2["failing_class"], p2["after"]
    asr, rounds, planted = p2["attack_success_rate"], p2["fix_rounds"], p2["planted_trigger_attack_rate"]
    alternative = p2["alternative_fix"]
    gap = after["val_acc"] - after["test_acc"]
    return {"PTwoTrainAccAfter": pct(after["train_acc"]), "PTwoValAccAfter": pct(after["val_acc"]),
            "PTwoTestAccAfter": pct(after["test_acc"]), "PTwoFailingTestAfter": pct(after["test_per_class"][failing]),
            "PTwoGapAfter": pct(abs(gap)), "PTwoGapClosed": flag(abs(gap) <= 0.05),
            "PTwoTestBelowVal": flag(gap > 0),
            "PTwoASRBefore": pct(asr["before"]), "PTwoASRAfter": pct(asr["after"]),
            "PTwoASRControlBefore": pct(asr["control_before"]), "PTwoASRControlAfter": pct(asr["control_after"]),
            "PTwoASRBar": pct(asr["bar"], 0), "PTwoStillFollows": flag(asr["after"] > asr["bar"]),
            "PTwoSecondRound": flag(len(rounds) > 1), "PTwoFirstRoundASR": pct(rounds[0]["attack_success_rate"]),
            "PTwoHavePlantedASR": flag(planted), "PTwoPlantedASRBefore": pct(planted["before"]) if planted else "",
            "PTwoPlantedASRAfter": pct(planted["after"]) if planted else "",
            "PTwoAltFailingTest": pct(alternative["failing_test_acc"]), "PTwoAltTestAcc": pct(alternative["test_acc"]),
            "PTwoAltGreyASR": pct(alternative["grey_patch_attack_rate"]),
            "PTwoAltTriggerASR": pct(alternative["attack_success_rate"]),
            "PTwoAltFollowsPatch": flag(alternative["grey_patch_attack_rate"] > asr["bar"])}


def explanation_macros(p2):
    """2a, 2d, 2h: how much of each explanation lies in the neutralised region, against the region's
    area share (what a uniform map gives), before and after the fix."""
    share = p2["explanation"]
    area = share["region_area_share"]
    saliency, occlusion = share["saliency_share_in_region"], share["occlusion_share_in_region"]
    ratio = {when: saliency[when] / area for when in ("before", "after")}
    case = (0 if ratio["after"] <= 1.0 else 1 if ratio["after"] <= 1.2 else
            2 if ratio["after"] < ratio["before"] else 3)
    macros = {"PTwoSaliencyShareBefore": pct(saliency["before"]), "PTwoSaliencyShareAfter": pct(saliency["after"]),
              "PTwoSaliencyOutsideBefore": pct(1 - saliency["before"]),
              "PTwoSaliencyRatioBefore": f"{ratio['before']:.1f}", "PTwoSaliencyRatioAfter": f"{ratio['after']:.1f}",
              "PTwoSaliencyConcentrates": flag(saliency["before"] >= 2 * area),
              "PTwoSaliencyAfter": str(case),
              "PTwoSaliencyImagesBefore": str(share["saliency_images_concentrated"]["before"]),
              "PTwoSaliencyEveryImage": flag(share["saliency_images_concentrated"]["before"]
                                             == len(p2["explained_train_files"])),
              "PTwoSaliencyImagesAfter": str(share["saliency_images_concentrated"]["after"]),
              "PTwoOcclusionShareBefore": pct(occlusion["before"]), "PTwoOcclusionShareAfter": pct(occlusion["after"]),
              "PTwoOcclusionRatioAfter": f"{occlusion['after'] / area:.2f}",
              "PTwoOcclusionStillThere": flag(occlusion["after"] > 2 * area)}
    macros.update(crop_part_macros(share["by_part"]))
    colour = share["evidence_colour"]
    macros.update(PTwoEvidenceColour=", ".join(map(str, colour["failing_class"])),
                  PTwoOtherColour=", ".join(map(str, colour["other_classes"])))
    for when in ("before", "after"):
        class_model = share["class_model_share_in_region"][when]
        macros[f"PTwoClassModelShare{when.title()}"] = pct(class_model)
        # the failing class's class model image paints the region: more than twice its area share
        macros[f"PTwoClassModelPaints{when.title()}"] = flag(class_model >= 2 * area)
    return macros


CROP_PART_MACROS = {"old trigger region": "Region", "centre": "Centre", "ring": "Ring", "outer band": "Band"}


def crop_part_macros(by_part):
    """2h: the explanations' shares over the parts of the crop (problem2_traffic.crop_parts), a table
    row per part, and whether the retrained model's saliency weighs the sign (centre and ring) more
    than the outer band per unit of area."""
    area, saliency, occlusion = by_part["area"], by_part["saliency"], by_part["occlusion"]
    macros = {}
    for part, name in CROP_PART_MACROS.items():
        macros[f"PTwoPartArea{name}"] = pct(area[part])
        for when in ("before", "after"):
            macros[f"PTwoPartSal{when.title()}{name}"] = pct(saliency[when][part])
            macros[f"PTwoPartOcc{when.title()}{name}"] = pct(occlusion[when][part])
    macros["PTwoPartRows"] = "\n".join(
        f"{part} & {pct(area[part])} & {pct(saliency['before'][part])} & {pct(saliency['after'][part])} & "
        f"{pct(occlusion['before'][part])} & {pct(occlusion['after'][part])} \\\\" for part in CROP_PART_MACROS)
    density = {part: occlusion["after"][part] / area[part] for part in CROP_PART_MACROS if area[part] > 0}
    macros["PTwoOccCentreDensest"] = flag(max(density, key=density.get) == "centre")
    sign = (saliency["after"]["centre"] + saliency["after"]["ring"]) / (area["centre"] + area["ring"])
    background = saliency["after"]["outer band"] / area["outer band"] if area["outer band"] > 0 else 0.0
    macros["PTwoSignOverBackground"] = flag(sign > background)
    return macros


def truth_macros(p2):
    """The planted trigger's truth, when the data has one: read only to score the localisation."""
    truth = p2.get("truth")
    if not truth:
        return {"PTwoPlanted": "0", "PTwoTriggerIsFrame": "0", "PTwoPoisonedClass": "", "PTwoTriggerPx": "",
                "PTwoTruthBox": "", "PTwoTruthPlace": "", "PTwoIoU": ""}
    return {"PTwoPlanted": "1", "PTwoTriggerIsFrame": flag(truth["kind"] == "border"),
            "PTwoPoisonedClass": tex_escape(truth["poisoned_class"]),
            "PTwoTriggerPx": str(round((truth["box"][2] - truth["box"][0]) * p2["image_size"])),
            "PTwoTruthBox": box_text(truth["box"]), "PTwoTruthPlace": place_in_image(truth["box"]),
            "PTwoIoU": f"{p2['trigger_iou']:.2f}"}


# ==================================================================================================
# Problem 2's side runs (the seeds table, the battery of planted triggers)
# ==================================================================================================
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


def held(row):
    """The fix holds in a side run: the poisoned class at least 90 % after it, attack success at most 10 %."""
    return row["poisoned_test_after"] >= 0.9 and row["asr_after"] <= 0.1


def side_run_macros(prefix, rows):
    """What the report says of a side run's rows: counts and ranges."""
    ious = [r["iou"] for r in rows if r["trigger"] == "patch"]  # a frame has no box to compare
    return {f"{prefix}Runs": str(len(rows)), f"{prefix}Found": str(sum(r["found"] for r in rows)),
            f"{prefix}Held": str(sum(held(r) for r in rows)),
            f"{prefix}PoisonedBefore": accuracy_range([r["poisoned_test_before"] for r in rows], 0),
            f"{prefix}PoisonedAfter": accuracy_range([r["poisoned_test_after"] for r in rows], 0),
            f"{prefix}ASRBefore": accuracy_range([r["asr_before"] for r in rows], 0),
            f"{prefix}ASRAfter": accuracy_range([r["asr_after"] for r in rows], 1),
            f"{prefix}HaveIoU": flag(ious), f"{prefix}IoU": value_range(ious, 2) if ious else "",
            f"{prefix}Seeds": ", ".join(str(s) for s in dict.fromkeys(r["seed"] for r in rows)),
            f"{prefix}NSeeds": str(len({r["seed"] for r in rows}))}


def problem2_seeds_macros(results_dir):
    """Problem 2 over several training seeds on the default data (scripts/check_real_photos.py
    --cases default --json), if made."""
    rows = check_rows(results_dir, "problem2_seeds")
    if rows is None:
        return {"PTwoHaveSeeds": "0", "PTwoSeedRows": "", "PTwoSeedMain": ""}

    def seed_row(r):
        cells = before_after_cells(r).removesuffix(" \\\\")
        return f"{r['seed']} & {pct(r['val_before'])} & {cells} & {r['occlusion_changes']['10']} of {r['n_explained']} \\\\"
    return {"PTwoHaveSeeds": "1", "PTwoSeedRows": "\n".join(seed_row(r) for r in rows),
            "PTwoSeedMain": str(rows[0]["seed"]), **side_run_macros("PTwoSeed", rows)}


def problem2_real_photos_macros(results_dir):
    """Problem 2 on the photographs with other planted triggers (scripts/check_real_photos.py
    --json), if made."""
    rows = check_rows(results_dir, "problem2_real_photos")
    if rows is None:
        return {"PTwoHaveRealPhotos": "0", "PTwoRealPhotoRows": ""}
    unmet = [r for r in rows if not r["criterion_met"]]
    table = "\n".join(f"{tex_escape(r['case'])} & {r['seed']} & {tex_escape(r['poisoned'])} & "
                      f"{before_after_cells(r)}" for r in rows)
    return {"PTwoHaveRealPhotos": "1", "PTwoRealPhotoRows": table, **side_run_macros("PTwoReal", rows),
            "PTwoRealCases": ", ".join(tex_escape(c) for c in dict.fromkeys(r["case"] for r in rows)),
            "PTwoRealUnmet": str(len(unmet)),
            "PTwoRealUnmetRuns": "; ".join(f"{tex_escape(r['case'])}, seed {r['seed']}, {r['threshold']:.2f}"
                                           for r in unmet)}


# ==================================================================================================
# Problem 3
# ==================================================================================================
def problem3_macros(p3):
    macros = {}
    for part in (problem3_setting_macros, source_macros, mse_macros, adda_macros, adaptation_design_macros,
                 per_digit_macros, monitor_macros):
        macros.update(part(p3))
    return macros


def problem3_setting_macros(p3):
    architecture, arguments = p3["architecture"], p3["arguments"]
    svhn, mnist = (data_macros(f"PThree{name}", p3["data_source"][key]) for name, key in
                   (("SVHN", "svhn"), ("MNIST", "mnist")))
    return {**svhn, **mnist,
            "PThreeConvWidths": "/".join(map(str, architecture["conv_widths"])),
            "PThreeFCWidths": "/".join(map(str, architecture["fc_widths"])),
            "PThreeClassicTimesThree": flag(architecture["conv_widths"] + architecture["fc_widths"]
                                            == [3 * c for c in CLASSIC_LENET_WIDTHS]),
            "PThreeFeatureDim": str(architecture["feature_dim"]),
            "PThreeParameters": f"{architecture['parameters']:,}".replace(",", "\\,"),
            "PThreeNSeeds": str(len(p3["seeds"])), "PThreeFirstSeed": str(p3["seeds"][0]),
            "PThreeSourceSteps": str(p3["source"]["steps"]), "PThreeSourceLr": f"{arguments['lr']:g}",
            "PThreeBatch": str(arguments["batch_size"]),
            # passes over the full SVHN's 73,257 training crops that the step count amounts to
            "PThreeFullPasses": f"{p3['source']['steps'] * arguments['batch_size'] / FULL_SVHN_TRAIN:.1f}",
            "PThreePassesHere": f"{p3['source']['steps'] * arguments['batch_size'] / p3['n_images']['svhn_train']:.0f}",
            "PThreeNSVHNTrain": str(p3["n_images"]["svhn_train"]), "PThreeNSVHNTest": str(p3["n_images"]["svhn_test"]),
            "PThreeNMNISTTrain": str(p3["n_images"]["mnist_train"]),
            "PThreeNMNISTTest": str(p3["n_images"]["mnist_test"]),
            "PThreeADDAIterations": str(p3["adda"]["settings"]["iterations"]),
            "PThreeMSEIterations": str(p3["mse"]["settings"]["iterations"]),
            "PThreeSeedRows": seed_rows(p3)}


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


def source_macros(p3):
    """3a, 3b: the source model on SVHN, on MNIST, and on MNIST with inverted polarity."""
    source, inverted = p3["source"], p3["source_only"]["inverted_mnist"]
    losses = source["final_train_loss"]
    return {"PThreeSVHNTrain": pct(source["svhn_train_acc"]), "PThreeSVHNTest": pct(source["svhn_test_acc"]),
            "PThreeSVHNTestRange": accuracy_range(source["svhn_test_per_seed"]),
            "PThreeSourceWD": scientific(source["weight_decay"]),
            "PThreeSourceFinalLoss": f"${scientific(min(losses))}$--${scientific(max(losses))}$",
            # memorised: every training crop right and a training loss near zero
            "PThreeSourceMemorised": flag(source["svhn_train_acc"] > 0.999 and max(losses) < 1e-3),
            "PThreeSourceOnly": pct(p3["source_only_mnist_acc"]), "PThreeSourceOnlyStd": pct(p3["source_only"]["std"]),
            "PThreeInverted": pct(inverted["mean"]), "PThreeInvertedPerSeed": per_seed(inverted["per_seed"]),
            "PThreeInvertedHigher": flag(inverted["mean"] > p3["source_only"]["mean"])}


def against_log2(loss):
    """Where a discriminator's binary cross-entropy sits against log 2, ADDA's (and Problem 1d's)
    equilibrium: 0 near it, 1 well below (under 0.5), 2 below, 3 above (GAME_CASES)."""
    if abs(loss - math.log(2)) < 0.03:
        return 0
    return (1 if loss < 0.5 else 2) if loss < math.log(2) else 3


def mse_macros(p3):
    """3c: the MSE variant's accuracy, its features' spread, and its loss against the floor
    tr(Sigma_s)/d (FLOOR_CASES)."""
    mse, first = p3["mse"], str(p3["seeds"][0])
    variance = mse["feature_statistics"][first]["target_total_variance"]
    before = p3["source_feature_statistics"]["target_total_variance"]
    ratios = [final / floor for final, floor in zip(mse["loss_final"], mse["loss_floor"])]
    floor_case = 0 if all(abs(r - 1) <= 0.1 for r in ratios) else 1 if all(r >= 1 for r in ratios) else 2
    return {"PThreeMSEMean": pct(mse["mean"]), "PThreeMSEBelowSource": flag(mse["mean"] < p3["source_only_mnist_acc"]),
            "PThreeMSEBelowEverySeed": flag(all(m < s for m, s in zip(mse["per_seed"], p3["source_only"]["per_seed"]))),
            "PThreeVarSource": f"{p3['source_feature_statistics']['source_total_variance']:.0f}",
            "PThreeVarTargetSource": f"{before:.0f}", "PThreeVarTargetMSE": num(variance, 2),
            "PThreeMSECollapsed": flag(variance < 0.1 * before),
            "PThreeVarTargetADDA": f"{p3['adda']['feature_statistics'][first]['target_total_variance']:.0f}",
            "PThreeMSEFloorValue": value_range(mse["loss_floor"], 1), "PThreeMSEFinal": value_range(mse["loss_final"], 1),
            "PThreeMSEFloorCase": str(floor_case), "PThreeMSEMaxRatio": f"{max(ratios):.2f}",
            "PThreeSeedList": ", ".join(map(str, p3["seeds"]))}


def adda_outcome_macros(prefix, run):
    """How ADDA compares with source-only, seed by seed (each seed has its own source model); a
    difference within half a point is a tie, not a win."""
    gains = [adda - source for adda, source in zip(run["adda"]["per_seed"], run["source_only"]["per_seed"])]
    better, worse = sum(gain > 0.005 for gain in gains), sum(gain < -0.005 for gain in gains)
    return {f"{prefix}SeedsBetter": str(better), f"{prefix}SeedsWorse": str(worse),
            f"{prefix}SeedsTied": str(len(gains) - better - worse),
            f"{prefix}GainLow": signed(100 * min(gains)), f"{prefix}GainHigh": signed(100 * max(gains))}


def adda_macros(p3):
    """3d: ADDA's accuracy, the game at the end, the t-SNE and same-digit measures."""
    adda = p3["adda"]
    losses = adda["discriminator_loss_final"]
    loss = sum(losses) / len(losses)
    neighbour, mean = p3["tsne_same_digit_neighbour"], p3["same_digit_source_mean"]
    return {"PThreeADDAMean": pct(adda["mean"]), "PThreeADDAStd": pct(adda["std"]),
            **adda_outcome_macros("PThree", p3),
            "PThreeDiscLoss": num(loss, 3), "PThreeGame": str(against_log2(loss)),
            "PThreeTSNENeighbourBefore": pct(neighbour["before"], 0),
            "PThreeTSNENeighbourAfter": pct(neighbour["after"], 0),
            "PThreeOwnMeanBefore": pct(mean["before"]), "PThreeOwnMeanAfter": pct(mean["after"]),
            "PThreeCloser": flag(mean["after"] > mean["before"] + 0.01)}


def adaptation_design_macros(p3):
    """The adaptation's settings and the measurements of its curves: which reading SND chose, the
    final encoders beside it, how far each seed's reported encoder reads below the best monitored
    reading of its own run, how far the encoders moved, the discriminator's accuracy and the encoder's
    loss at the start and the end."""
    adda, settings = p3["adda"], p3["adda"]["settings"]
    drops, gains = adda["drop_from_best"], adda["gain_per_seed"]
    return {"PThreeDiscLr": f"{settings['lr_discriminator']:g}",
            "PThreeLrRatio": f"{settings['lr_discriminator_ratio']:g}",
            "PThreeRatioOfGANs": flag(settings["lr_discriminator_ratio"] == 4),
            "PThreeEncoderLr": f"{settings['lr_target']:g}",
            "PThreeEncoderLrIsADDAs": flag(settings["lr_target"] == ADDA_ENCODER_LR),
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
            "PThreeGainStd": f"{100 * gain_std(gains):.1f}",
            # the seeds cannot tell the gain's sign: its spread is as large as its mean, or a seed loses
            "PThreeGainUnsettled": flag(len(gains) < 2 or min(gains) < 0 or gain_std(gains) >= abs(sum(gains) / len(gains))),
            "PThreeBestMonitored": per_seed(adda["best_monitored"]),
            "PThreeReportedMonitored": per_seed(adda["reported_monitored"]),
            "PThreeDrops": per_seed(drops), "PThreeNoLateDrop": flag(max(drops) <= 0.015),
            "PThreeDistance": value_range([100 * d for d in adda["distance_from_source"]], 1),
            "PThreeDiscAcc": value_range([100 * a for a in adda["discriminator_acc_final"]], 0),
            "PThreeEncoderLossRises": flag(all(final > start for start, final in
                                               zip(adda["target_loss_start"], adda["target_loss_final"]))),
            "PThreeEncoderLossStart": value_range(adda["target_loss_start"], 2),
            "PThreeEncoderLossFinal": value_range(adda["target_loss_final"], 2)}


def gain_std(gains):
    """The standard deviation of the per-seed gains (n - 1 in the denominator; 0 for one seed)."""
    mean = sum(gains) / len(gains)
    return math.sqrt(sum((g - mean) ** 2 for g in gains) / (len(gains) - 1)) if len(gains) > 1 else 0.0


def per_digit_macros(p3):
    """Which digits ADDA helped and hurt in the first seed (more than a point either way)."""
    before, after = p3["source_only"]["per_class_seed0"], p3["adda"]["per_class_seed0"]
    change = [a - b for a, b in zip(after, before)]
    best, worst = change.index(max(change)), change.index(min(change))
    rows = "\n".join(f"{digit} & {pct(b)} & {pct(a)} & {signed(100 * (a - b))} \\\\"
                     for digit, (b, a) in enumerate(zip(before, after)))
    return {"PThreeDigitsGaining": str(sum(c > 0.01 for c in change)),
            "PThreeDigitsLosing": str(sum(c < -0.01 for c in change)),
            "PThreeBestDigit": str(best), "PThreeBestDigitBefore": pct(before[best], 0),
            "PThreeBestDigitAfter": pct(after[best], 0),
            "PThreeWorstDigit": str(worst), "PThreeWorstDigitBefore": pct(before[worst], 0),
            "PThreeWorstDigitAfter": pct(after[worst], 0), "PThreePerDigitRows": rows}


def monitored_start_end(run):
    """Mean monitored accuracy over the seeds at iteration 0 (the source model) and of the reported
    encoders."""
    seeds = [str(s) for s in run["seeds"]]
    return (sum(run["adda"]["monitor"][s]["averaged_acc"][0] for s in seeds) / len(seeds),
            sum(run["adda"]["reported_monitored"]) / len(seeds))


def monitor_macros(p3):
    """The monitored subset's readings against the whole test set's: the curves are read on fewer
    images, and their levels and gain differ from the reported accuracies."""
    start, end = monitored_start_end(p3)
    # From the printed (rounded) percentages, so that the text adds up.
    there = float(pct(end)) - float(pct(start))
    return {"PThreeMonitorImages": f"{min(p3['arguments']['monitor_images'], p3['n_images']['mnist_test']):,}",
            "PThreeMonitorStart": pct(start), "PThreeMonitorEnd": pct(end), "PThreeMonitorGain": signed(there),
            "PThreeWholeGain": signed(float(pct(p3["adda"]["mean"])) - float(pct(p3["source_only_mnist_acc"])))}


# ==================================================================================================
# Problem 3's side runs (the paper's schedule, other source models)
# ==================================================================================================
def long_run_macros(results_dir):
    """Seeds at the paper's schedule (`make problem3-long`): does accuracy plateau or collapse, where
    does the game end, and where does the default length stop against it?"""
    run = optional_results(results_dir, "problem3_long")
    if run is None:
        return {"PThreeHaveLongRun": "0"}
    seeds = [str(seed) for seed in run["seeds"]]
    monitors = [run["adda"]["monitor"][seed] for seed in seeds]
    length = monitors[0]["iteration"][-1]
    last_quarter = [[a for i, a in zip(m["iteration"], m["averaged_acc"]) if i >= 0.75 * length] for m in monitors]
    peak, minus_peak_at, peak_seed = max((a, -i, seed) for seed, m in zip(seeds, monitors)
                                         for curve in ("target_acc", "averaged_acc")
                                         for i, a in zip(m["iteration"], m[curve]))
    games = {against_log2(loss) for loss in run["adda"]["discriminator_loss_final"]}
    main_run = optional_results(results_dir, "problem3")
    comparison, default = compared_default(run, main_run)
    macros = {"PThreeHaveLongRun": "1", "PThreeLongSeeds": str(len(seeds)), "PThreeLongIterations": str(length),
              "PThreeLongIsPaper": flag(length == PAPER_ITERATIONS), "PThreePaperIterations": str(PAPER_ITERATIONS),
              "PThreeLongSameData": flag(main_run is not None and main_run["data_source"] == run["data_source"]),
              "PThreeLongQuick": flag(run["quick"]),
              **data_macros("PThreeLongSVHN", run["data_source"]["svhn"]),
              **adda_outcome_macros("PThreeLong", run),
              "PThreeLongCollapsed": ", ".join(s for s, q in zip(seeds, last_quarter) if min(q) < 0.2),
              "PThreeLongNCollapsed": str(sum(min(q) < 0.2 for q in last_quarter)),
              "PThreeLongLastQuarter": accuracy_range([a for q in last_quarter for a in q]),
              "PThreeLongPeak": pct(peak), "PThreeLongPeakAt": str(-minus_peak_at), "PThreeLongPeakSeed": peak_seed,
              "PThreeLongDiscLosses": " / ".join(f"{loss:.2f}" for loss in run["adda"]["discriminator_loss_final"]),
              "PThreeLongGame": str(games.pop()) if len(games) == 1 else "4",  # 4: the seeds end differently
              "PThreeLongComparison": str(comparison)}
    rows = []
    for seed, source, adda, chosen in zip(seeds, run["source_only"]["per_seed"], run["adda"]["per_seed"],
                                          run["adda"]["chosen_iteration"]):
        short = default.get(seed)
        rows.append(f"{seed} & {pct(source)} & {pct(short) if short is not None else '--'} & {pct(adda)} & {chosen} \\\\")
    macros["PThreeLongRows"] = "\n".join(rows)
    macros.update(PThreeLongAgainstDefault="0", PThreeLongDifferences="", PThreeLongDefaultIterations="")
    if default:
        differences = [run["adda"]["per_seed"][seeds.index(seed)] - short for seed, short in default.items()]
        macros["PThreeLongAgainstDefault"] = str(
            0 if all(d > 0.02 for d in differences) else 1 if all(d < -0.02 for d in differences) else
            2 if all(abs(d) <= 0.02 for d in differences) else 3 if all(d > 0 for d in differences) else
            4 if all(d < 0 for d in differences) else 5)
        macros["PThreeLongDifferences"] = " / ".join(signed(100 * d) for d in differences)
        macros["PThreeLongDefaultIterations"] = str(main_run["adda"]["settings"]["iterations"])
    return macros


def compared_default(long_run, run):
    """The main run's ADDA accuracy per seed for the seeds that it ran alike (the same data, --quick
    or not, and the same source model: equal source-only accuracy); and why there are none
    (LONG_COMPARISON_CASES)."""
    if run is None or run["data_source"] != long_run["data_source"] or run["n_images"] != long_run["n_images"]:
        return 1, {}
    if run["quick"] != long_run["quick"]:
        return 2, {}
    shared = {str(seed): run["adda"]["per_seed"][run["seeds"].index(seed)]
              for seed, source in zip(long_run["seeds"], long_run["source_only"]["per_seed"])
              if seed in run["seeds"] and abs(run["source_only"]["per_seed"][run["seeds"].index(seed)] - source) < 1e-6}
    return (0 if shared else 3), shared


def plain_adda_macros(results_dir):
    """ADDA without three of the five stabilisers (`make problem3-plain`: no L2-SP, no averaging, the
    discriminator at the encoder's rate; the annealing kept), on the main run's source models."""
    run = optional_results(results_dir, "problem3_plain")
    if run is None:
        return {"PThreeHavePlain": "0"}
    adda, main_run = run["adda"], optional_results(results_dir, "problem3")
    settings = adda["settings"]
    if settings["anchor_distance"] != 0 or settings["average_horizon"] != 0 or settings["lr_discriminator_ratio"] != 1:
        raise UserError(f"{results_dir / 'problem3_plain.json'}: not made without the L2-SP penalty, the "
                        f"averaging and the faster discriminator (see `make problem3-plain`)")
    losses = adda["discriminator_loss_final"]
    same_sources = (main_run is not None and main_run["seeds"] == run["seeds"] and all(
        abs(a - b) < 1e-6 for a, b in zip(main_run["source_only"]["per_seed"], run["source_only"]["per_seed"])))
    return {"PThreeHavePlain": "1", "PThreePlainMean": pct(adda["mean"]), "PThreePlainStd": pct(adda["std"]),
            "PThreePlainSameSources": flag(same_sources),
            "PThreePlainHigher": flag(same_sources and adda["mean"] >= main_run["adda"]["mean"]),
            # without the settings, the encoders move farther and the game ends nearer log 2
            "PThreePlainFarther": flag(same_sources and min(adda["distance_from_source"])
                                       > max(main_run["adda"]["distance_from_source"])),
            "PThreePlainNearerBalance": flag(same_sources and abs(sum(losses) / len(losses) - math.log(2)) < abs(
                sum(main_run["adda"]["discriminator_loss_final"]) / len(losses) - math.log(2))),
            "PThreePlainPerSeed": per_seed(adda["per_seed"]), "PThreePlainRawFinal": per_seed(adda["raw_final_acc"]),
            "PThreePlainSourceOnly": per_seed(run["source_only"]["per_seed"]),
            "PThreePlainSeeds": ", ".join(map(str, run["seeds"])), "PThreePlainNSeeds": str(len(run["seeds"])),
            "PThreePlainDrops": per_seed(adda["drop_from_best"]),
            "PThreePlainBest": per_seed(adda["best_monitored"]),
            "PThreePlainDistance": value_range([100 * d for d in adda["distance_from_source"]], 1),
            "PThreePlainDiscLoss": num(sum(losses) / len(losses), 3),
            "PThreePlainGame": str(against_log2(sum(losses) / len(losses))),
            "PThreePlainIterations": str(adda["settings"]["iterations"]),
            **adda_outcome_macros("PThreePlain", run)}


def robustness_macros(results_dir):
    """Problem 3's ADDA on weaker and stronger source models (`make problem3-robustness`): a table
    row per variant, and whether every seed's reported encoder ends within 1.5 points of its run's
    best monitored reading."""
    check = optional_results(results_dir, "problem3_robustness")
    if check is None:
        return {"PThreeHaveRobustness": "0", "PThreeRobustRows": "", "PThreeRobustNoLateDrop": "0",
                "PThreeRobustMaxDrop": "", "PThreeRobustGainLow": "", "PThreeRobustGainHigh": "",
                "PThreeRobustSeeds": ""}
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
            "PThreeRobustNoLateDrop": flag(max(drops) <= 0.015),
            "PThreeRobustMaxDrop": f"{100 * max(drops):.1f}",
            "PThreeRobustGainLow": signed(100 * min(gains)), "PThreeRobustGainHigh": signed(100 * max(gains))}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--results", type=Path, default=DOC / "results", help="folder of problemN.json")
    parser.add_argument("--output", type=Path, default=DOC / "results.tex")
    parser.add_argument("--candidate", default="XX", help="candidate number for the front page")
    args = parser.parse_args(argv)
    p1, p2, p3 = (load(args.results, f"problem{k}") for k in (1, 2, 3))
    require_mse(p3, args.results / "problem3.json")
    quick = any(p["quick"] for p in (p1, p2, p3))
    macros = {"Candidate": tex_escape(args.candidate), "Quick": flag(quick)}
    for part in (problem1_macros(p1), problem2_macros(p2), problem3_macros(p3),
                 problem2_seeds_macros(args.results), problem2_real_photos_macros(args.results),
                 long_run_macros(args.results), robustness_macros(args.results),
                 plain_adda_macros(args.results)):
        macros.update(part)
    macros["PTwoHaveSideRuns"] = flag("1" in (macros["PTwoHaveSeeds"], macros["PTwoHaveRealPhotos"]))
    lines = ["% Generated by src/report_numbers.py from doc/results/*.json: do not edit."]
    lines += [f"\\newcommand{{\\{name}}}{{{value}}}" for name, value in macros.items()]
    args.output.write_text("\n".join(lines) + "\n")
    print(f"wrote {args.output} ({len(macros)} macros{'; quick results' if quick else ''})")
    return macros


if __name__ == "__main__":
    run_main(main)
