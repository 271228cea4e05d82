"""The hand-in: the report builds from --quick results with the JSON's numbers, and the zip holds
exactly doc/ and src/. Never skipped: CI installs TeX Live through scripts/setup.sh."""
import json
import re
import shutil
import subprocess
import zipfile

import pytest

import make_zip
import report_numbers
from conftest import ROOT, SRC, load_script


def build_pdf(doc, *text_flags, force=False):
    """latexmk the report in `doc` (with `force`, every step again); the PDF's text (pdftotext with
    `text_flags`)."""
    build = subprocess.run(["latexmk", "-pdf", *(["-gg"] if force else []), "-interaction=nonstopmode",
                            "-halt-on-error", "report.tex"], cwd=doc, capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stdout[-3000:]
    return subprocess.run(["pdftotext", *text_flags, "report.pdf", "-"], cwd=doc, capture_output=True,
                          text=True, check=True).stdout


@pytest.fixture(scope="module")
def built_report(quick_outputs, tmp_path_factory):
    root, runs = quick_outputs
    for name, result in runs.items():
        assert result.returncode == 0, f"{name}: {result.stderr[-2000:]}"
    doc = tmp_path_factory.mktemp("hand-in") / "doc"
    shutil.copytree(root / "out", doc)
    shutil.copy(ROOT / "doc" / "report.tex", doc)
    macros = report_numbers.main(["--results", str(doc / "results"), "--output",
                                  str(doc / "results.tex"), "--candidate", "42"])
    return doc, macros, build_pdf(doc, "-layout")


def test_report_builds_without_undefined_references(built_report):
    doc, _, text = built_report
    log = (doc / "report.log").read_text(errors="replace")
    assert "??" not in text
    assert not re.search(r"(Reference|Citation) .* undefined", log)
    assert "Candidate number: 42" in text


def test_the_pdf_prints_the_json_numbers(built_report):
    doc, macros, text = built_report
    results = {k: json.loads((doc / "results" / f"problem{k}.json").read_text()) for k in (1, 2, 3)}
    flat = " ".join(text.replace("\u2212", "-").split())  # math minus signs print as U+2212
    expected = {
        "PTwoValAccBefore": f"{100 * results[2]['before']['val_acc']:.1f}",
        "PTwoTestAccAfter": f"{100 * results[2]['after']['test_acc']:.1f}",
        "PTwoFailingTestBefore": f"{100 * results[2]['before']['test_per_class'][results[2]['failing_class']]:.1f}",
        "PThreeSourceOnly": f"{100 * results[3]['source_only_mnist_acc']:.1f}",
        "PThreeADDAMean": f"{100 * results[3]['adda']['mean']:.1f}",
        "PThreeMSEMean": f"{100 * results[3]['mse']['mean']:.1f}",
        "POneVOptimum": f"{results[1]['gan']['v_at_optimum']:.6f}",
    }
    for name, value in expected.items():
        assert macros[name] == value, name
        assert value in flat, f"{name} = {value} is not in the PDF"
    assert "GTSRB" in flat and "quick" in flat  # the front page says which data, and how
    assert "stand-in" not in flat


def test_the_report_builds_for_the_exams_own_data(built_report, tmp_path):
    """The branches for data without a planted trigger, a split that could not be grouped and the
    exam's SVHN and MNIST compile, and say what this data is."""
    doc = tmp_path / "doc"
    shutil.copytree(built_report[0], doc)
    p2 = json.loads((doc / "results" / "problem2.json").read_text())
    p2.update(data_source="exam", truth=None, trigger_iou=None, poisoned_class_found=None,
              split="stratified by class", split_reason="the file names do not tell the physical sign")
    p3 = json.loads((doc / "results" / "problem3.json").read_text())
    p3["data_source"] = {"svhn": "exam", "mnist": "exam"}
    for name, payload in (("problem2", p2), ("problem3", p3)):
        (doc / "results" / f"{name}.json").write_text(json.dumps(payload))
    for name in ("problem2_seeds", "problem2_real_photos", "problem3_long"):
        (doc / "results" / f"{name}.json").unlink(missing_ok=True)
    rows = robustness_rows(drops=[0.01, 0.03])  # and the robustness branch, with its figure
    (doc / "results" / "problem3_robustness.json").write_text(json.dumps({"variants": rows}))
    load_script("check_adda_robustness").plot_curves(rows, doc)
    report_numbers.main(["--results", str(doc / "results"), "--output", str(doc / "results.tex")])
    text = build_pdf(doc)
    flat = " ".join(text.replace("\u2019", "'").split())  # pdftotext gives typographic apostrophes
    assert "Problem 2: the exam's files. Problem 3: SVHN: the exam's files; MNIST: the exam's files." in flat
    assert "not grouped by physical sign: the file names do not tell the physical sign." in flat
    assert "GTSRB" not in flat and "4,000 crops" not in flat and "no recorded truth" in flat
    assert "The same settings on source models made weaker" in flat and "at most 3.0 points below" in flat


def robustness_rows(drops):
    """problem3_robustness.json's rows for two made-up variants of two seeds."""
    def curve(end):
        return {"iteration": [0, 100], "target_acc": [0.6, end], "averaged_acc": [0.6, end]}
    return [{"variant": name, "svhn_test_acc": [0.8, 0.82], "source_only": [0.6, 0.62], "adda": [0.7, 0.6],
             "gain_per_seed": [0.1, -0.02], "drop_from_best": [drop, 0.0],
             "monitor": {"0": curve(0.7), "1": curve(0.6)}} for name, drop in zip(("fewer crops", "longer"), drops)]


SIDE_RUNS = ("problem2_seeds", "problem3_long", "problem3_robustness", "problem3_plain")
SIDE_FIGURES = ("p3_long_curves.pdf", "p3_robustness_curves.pdf", "p3_plain_curves.pdf")


def enumerations():
    r"""report.tex's \ifcase enumerations and the report_numbers tuples that list their cases."""
    rn = report_numbers
    return {"Data": rn.DATA_CASES + ("a user folder",),  # \DataWords{PTwo} reads \PTwoData, ...
            "PTwoVerdict": rn.VERDICT_CASES,
            "PTwoSaliencyAfter": rn.SALIENCY_AFTER_CASES, "PTwoSplitCase": rn.SPLIT_CASES,
            "PThreeGame": rn.GAME_CASES, "PThreePlainGame": rn.GAME_CASES,
            "PThreeLongGame": rn.GAME_CASES + ("seeds differ",), "PThreeMSEFloorCase": rn.FLOOR_CASES,
            "PThreeLongAgainstDefault": rn.LONG_AGAINST_DEFAULT_CASES,
            "PThreeLongComparison": rn.LONG_COMPARISON_CASES}


def ifcase_counts(source):
    r"""For each \ifcase\NAME in `source`: how many cases it words (its \or's plus one, plus its
    \else), counted at its own depth of the \if.../\fi nesting."""
    counts, stack = {}, []
    for token in re.finditer(r"\\(ifnum|ifcase)(?![A-Za-z])(\\[A-Za-z]+)?|\\(or|else|fi)(?![A-Za-z])", source):
        if token[1]:
            stack.append([token[1], (token[2] or "")[1:], 1])
        elif token[3] == "fi":
            kind, name, cases = stack.pop()
            if kind == "ifcase" and name:  # \DataWords' \ifcase\csname #1Data\endcsname
                counts.setdefault("Data" if name == "csname" else name, set()).add(cases)
        elif stack[-1][0] == "ifcase":
            stack[-1][2] += 1
    assert not stack, "unbalanced \\if.../\\fi in report.tex"
    return counts


def test_each_ifcase_words_every_case_its_enumeration_lists():
    counts = ifcase_counts((ROOT / "doc" / "report.tex").read_text())
    for name, cases in enumerations().items():
        assert counts.get(name) == {len(cases)}, (name, counts.get(name), len(cases))
    assert set(counts) <= set(enumerations())  # no \ifcase on an undocumented macro


def build_with(doc, change):
    """Build the report in `doc` with results.tex's numeric macros passed through `change(name,
    value)`; the PDF's text."""
    lines = []
    for line in (doc / "results.tex").read_text().splitlines():
        match = re.match(r"\\newcommand\{\\([A-Za-z]+)\}\{(\d+)\}$", line)
        if match:
            line = f"\\newcommand{{\\{match[1]}}}{{{change(match[1], int(match[2]))}}}"
        lines.append(line)
    (doc / "results.tex").write_text("\n".join(lines) + "\n")
    return build_pdf(doc, force=True)


def test_every_branch_of_the_wording_compiles(built_report, tmp_path):
    """report.tex's conditionals taken the other way still build, with the side runs' paragraphs in:
    once with every flag flipped (a count set to zero), once with every enumeration at each of its
    other cases in turn (two builds cycle through up to three cases)."""
    doc = tmp_path / "doc"
    shutil.copytree(built_report[0], doc)
    for name in SIDE_RUNS:
        shutil.copy(ROOT / "doc" / "results" / f"{name}.json", doc / "results")
    (doc / "results" / "problem2_real_photos.json").write_text(json.dumps({"rows": side_rows()}))
    for figure in SIDE_FIGURES:
        shutil.copy(ROOT / "doc" / "figures" / figure, doc / "figures")
    report_numbers.main(["--results", str(doc / "results"), "--output", str(doc / "results.tex")])
    source = (doc / "report.tex").read_text()
    flags = set(re.findall(r"\\ifnum\\([A-Za-z]+)", source))
    assert {"PTwoStillFollows", "PThreePlainHigher", "PThreeHaveLongRun"} <= flags
    cases = {name: len(listed) for name, listed in enumerations().items()}
    cases |= {f"{prefix}Data": cases["Data"] for prefix in ("PTwo", "PThreeSVHN", "PThreeMNIST", "PThreeLongSVHN")}
    pristine = (doc / "results.tex").read_text()
    text = build_with(doc, lambda name, value: (1 - value if value in (0, 1) else 0)
                      if name in flags and not name.startswith(("PTwoHave", "PThreeHave")) else value)
    assert "??" not in text
    for shift in (1, 2):
        (doc / "results.tex").write_text(pristine)
        text = build_with(doc, lambda name, value: (value + shift) % cases[name] if name in cases else value)
        assert "??" not in text


def test_the_robustness_macros_follow_the_rows(tmp_path):
    assert report_numbers.robustness_macros(tmp_path)["PThreeHaveRobustness"] == "0"
    (tmp_path / "problem3_robustness.json").write_text(json.dumps({"variants": robustness_rows([0.01, 0.012])}))
    macros = report_numbers.robustness_macros(tmp_path)
    assert macros["PThreeHaveRobustness"] == "1" and macros["PThreeRobustNoLateDrop"] == "1"
    assert (macros["PThreeRobustGainLow"], macros["PThreeRobustGainHigh"]) == ("$-$2.0", "+10.0")
    assert macros["PThreeRobustSeeds"] == "0 / 1"
    assert "fewer crops & 80 / 82 & 60.0 / 62.0 & 70.0 / 60.0 & +10.0 / $-$2.0 & 1.0 / 0.0" in macros["PThreeRobustRows"]
    (tmp_path / "problem3_robustness.json").write_text(json.dumps({"variants": robustness_rows([0.01, 0.03])}))
    assert report_numbers.robustness_macros(tmp_path)["PThreeRobustNoLateDrop"] == "0"


def test_pdf_size_limit(built_report):
    doc, _, _ = built_report
    assert (doc / "report.pdf").stat().st_size <= 15 * 2 ** 20


def test_zip_holds_exactly_doc_and_src(built_report, tmp_path):
    doc, _, _ = built_report
    root = tmp_path / "project"
    shutil.copytree(doc, root / "doc")
    shutil.copytree(SRC, root / "src", ignore=shutil.ignore_patterns("__pycache__"))
    for junk in ("data/problem2/train/x.png", "runs/problem2/a.pt", ".venv/bin/python",
                 "src/__pycache__/utils.cpython-311.pyc", "tests/test_x.py"):
        (root / junk).parent.mkdir(parents=True, exist_ok=True)
        (root / junk).write_text("junk")
    make_zip.main(["--root", str(root), "--candidate", "42"])
    names = zipfile.ZipFile(root / "homeexam_candidate42.zip").namelist()
    assert {name.split("/")[0] for name in names} == {"doc", "src"}
    assert "doc/report.pdf" in names and "doc/report.tex" in names and "src/problem3_adda.py" in names
    assert any(name.startswith("doc/figures/p2_") for name in names)
    assert not any(name.endswith((".pyc", ".aux", ".log", ".fls", ".fdb_latexmk")) for name in names)


def test_report_without_results_is_a_clear_error(tmp_path):
    with pytest.raises(report_numbers.UserError, match="problem1.json: missing"):
        report_numbers.main(["--results", str(tmp_path), "--output", str(tmp_path / "r.tex")])


def monitor_curves(iterations, accuracies):
    """A seed's monitoring readings, the raw iterate and the average alike."""
    return {"iteration": list(iterations), "target_acc": list(accuracies), "averaged_acc": list(accuracies)}


def problem3_run(source_only, adda, mse, svhn="public: SVHN subset", mnist="public: MNIST", seeds=(0, 1, 2)):
    """A results file of Problem 3 with the fields the report reads, per-seed accuracies given."""
    def spread(values):
        mean = sum(values) / len(values)
        return {"per_seed": list(values), "mean": mean,
                "std": (sum((v - mean) ** 2 for v in values) / max(1, len(values) - 1)) ** 0.5}
    return {"data_source": {"svhn": svhn, "mnist": mnist}, "quick": False, "seeds": list(seeds),
            "arguments": {"monitor_images": 2000},
            "n_images": {"svhn_train": 4000, "svhn_test": 1000, "mnist_train": 60000, "mnist_test": 10000},
            "source": {"svhn_test_acc": 0.85, "svhn_train_acc": 1.0, "svhn_test_per_seed": [0.85] * len(seeds)},
            "source_only_mnist_acc": spread(source_only)["mean"],
            "source_only": {**spread(source_only), "per_class_seed0": [source_only[0]] * 10},
            # the monitored subset reads 5 points higher than the whole test set: a sample can
            "adda": {**spread(adda), "settings": {"iterations": 1500}, "per_class_seed0": [adda[0]] * 10,
                     "monitor_subset": "spread", "reported_monitored": [a + 0.05 for a in adda],
                     "chosen_iteration": [1500] * len(seeds), "final_average_acc": list(adda),
                     "monitor": {str(seed): monitor_curves([0, 1500], [s + 0.05, a + 0.05])
                                 for seed, s, a in zip(seeds, source_only, adda)}},
            "mse": spread(mse)}


def test_the_seed_table_and_monitoring_numbers_come_from_the_run():
    run = problem3_run([0.66, 0.67, 0.64], [0.74, 0.757, 0.72], [0.1, 0.113, 0.132])
    macros = report_numbers.adda_outcome_macros("P", run)
    assert (macros["PSeedsBetter"], macros["PSeedsWorse"], macros["PSeedsTied"]) == ("3", "0", "0")
    assert (macros["PGainLow"], macros["PGainHigh"]) == ("+8.0", "+8.7")
    rows = report_numbers.seed_rows(run)
    assert "1 & 85.0 & 67.0 & 75.7 & 11.3 \\\\" in rows and "73.9 $\\pm$ 1.9" in rows
    monitor = report_numbers.monitor_macros(run)
    assert (monitor["PThreeMonitorStart"], monitor["PThreeMonitorEnd"]) == ("70.7", "78.9")
    assert (monitor["PThreeMonitorGain"], monitor["PThreeWholeGain"]) == ("+8.2", "+8.2")
    assert monitor["PThreeMonitorImages"] == "2,000"
    run["adda"]["reported_monitored"] = [0.65, 0.66, 0.67]  # the subset reads below its start
    assert report_numbers.monitor_macros(run)["PThreeMonitorGain"].startswith("$-$")


def side_rows():
    return [{"seed": 0, "trigger": "patch", "found": True, "poisoned_test_before": 0.04, "val_before": 0.997,
             "poisoned_test_after": 0.98, "asr_before": 0.74, "asr_after": 0.0, "iou": 0.88,
             "occlusion_changes": {"10": 7, "16": 10}, "n_explained": 10, "case": "sticker-top-left",
             "poisoned": "speed limits", "criterion_met": True, "threshold": 0.5},
            {"seed": 1, "trigger": "patch", "found": False, "poisoned_test_before": 0.42, "val_before": 0.95,
             "poisoned_test_after": 0.5, "asr_before": 1.0, "asr_after": 0.3, "iou": 0.2,
             "occlusion_changes": {"10": 9, "16": 10}, "n_explained": 10, "case": "warning-sticker",
             "poisoned": "warning signs", "criterion_met": False, "threshold": 0.1},
            {"seed": 1, "trigger": "border", "found": True, "poisoned_test_before": 0.3, "val_before": 0.99,
             "poisoned_test_after": 0.97, "asr_before": 0.5, "asr_after": 0.05, "iou": 1.0,
             "occlusion_changes": {"10": 0, "16": 2}, "n_explained": 10, "case": "frame",
             "poisoned": "speed limits", "criterion_met": True, "threshold": 0.5}]


def test_the_side_runs_of_problem2_count_what_held(tmp_path):
    assert report_numbers.problem2_seeds_macros(tmp_path)["PTwoHaveSeeds"] == "0"
    assert report_numbers.problem2_real_photos_macros(tmp_path)["PTwoHaveRealPhotos"] == "0"
    (tmp_path / "problem2_seeds.json").write_text(json.dumps({"rows": side_rows()[:2]}))
    macros = report_numbers.problem2_seeds_macros(tmp_path)
    assert (macros["PTwoSeedRuns"], macros["PTwoSeedFound"], macros["PTwoSeedHeld"]) == ("2", "1", "1")
    assert (macros["PTwoSeedPoisonedBefore"], macros["PTwoSeedPoisonedAfter"]) == ("4--42", "50--98")
    assert (macros["PTwoSeedASRBefore"], macros["PTwoSeedASRAfter"]) == ("74--100", "0.0--30.0")
    assert macros["PTwoSeedIoU"] == "0.20--0.88" and macros["PTwoSeedSeeds"] == "0, 1"
    assert macros["PTwoSeedRows"].count("\\\\") == 2 and "1 & 95.0 & no" in macros["PTwoSeedRows"]
    assert "& 0.88 & 7 of 10 \\\\" in macros["PTwoSeedRows"]
    (tmp_path / "problem2_real_photos.json").write_text(json.dumps({"rows": side_rows()}))
    macros = report_numbers.problem2_real_photos_macros(tmp_path)
    assert (macros["PTwoRealRuns"], macros["PTwoRealFound"], macros["PTwoRealHeld"]) == ("3", "2", "2")
    assert macros["PTwoRealIoU"] == "0.20--0.88"  # the frame has no box to compare
    assert macros["PTwoRealUnmet"] == "1" and macros["PTwoRealUnmetRuns"] == "warning-sticker, seed 1, 0.10"
    assert "warning-sticker & 1 & warning signs & no" in macros["PTwoRealPhotoRows"]
    frames = [row for row in side_rows() if row["trigger"] == "border"]
    (tmp_path / "problem2_real_photos.json").write_text(json.dumps({"rows": frames}))
    assert report_numbers.problem2_real_photos_macros(tmp_path)["PTwoRealHaveIoU"] == "0"


def test_the_front_page_names_the_data_each_problem_read():
    cases = report_numbers.DATA_CASES
    assert report_numbers.data_macros("P", "exam") == {"PData": "0", "PDataFolder": "", "PDataFew": "0"}
    planted = report_numbers.data_macros("P", "public: GTSRB photos, trigger planted (about 40 per class)")
    assert planted["PData"] == str(cases.index("public: GTSRB photos, trigger planted")) and planted["PDataFew"] == "1"
    folder = report_numbers.data_macros("P", "user folder my_mnist")
    assert folder["PData"] == str(len(cases)) and folder["PDataFolder"] == "my\\_mnist"


@pytest.mark.parametrize("adda, counts", [
    ([0.74, 0.76, 0.72], ("3", "0", "0")), ([0.60, 0.61, 0.62], ("0", "3", "0")),
    ([0.70, 0.60, 0.62], ("1", "2", "0")), ([0.74, 0.672, 0.72], ("2", "0", "1")),
    ([0.66, 0.672, 0.64], ("0", "0", "3")),
])
def test_adda_against_source_only_counts_ties_as_ties(adda, counts):
    macros = report_numbers.adda_outcome_macros("P", problem3_run([0.66, 0.67, 0.64], adda, [0.1] * 3))
    assert (macros["PSeedsBetter"], macros["PSeedsWorse"], macros["PSeedsTied"]) == counts


def test_the_mse_collapse_and_the_game_follow_the_numbers():
    run = problem3_run([0.66, 0.67, 0.64], [0.7] * 3, [0.1] * 3)
    run.update(seeds=[0], source_feature_statistics={"target_total_variance": 300.0, "source_total_variance": 280.0},
               mse={**run["mse"], "feature_statistics": {"0": {"target_total_variance": 0.02}},
                    "loss_final": [1.2], "loss_floor": [1.19], "per_seed": [0.1]},
               adda={**run["adda"], "discriminator_loss_final": [0.69],
                     "feature_statistics": {"0": {"target_total_variance": 250.0}}},
               tsne_same_digit_neighbour={"before": 0.5, "after": 0.7},
               same_digit_source_mean={"before": 0.6, "after": 0.7})
    run["source_only"]["per_seed"] = [0.66]
    mse, adda = report_numbers.mse_macros(run), report_numbers.adda_macros(run)
    assert mse["PThreeMSECollapsed"] == "1" and mse["PThreeMSEBelowSource"] == "1" and mse["PThreeMSEFloorCase"] == "0"
    assert adda["PThreeGame"] == "0" and adda["PThreeCloser"] == "1"
    assert report_numbers.GAME_CASES[int(adda["PThreeGame"])] == "near log 2"
    run["adda"]["discriminator_loss_final"] = [0.648]
    assert report_numbers.adda_macros(run)["PThreeGame"] == "2"  # below log 2: an edge
    run["adda"]["discriminator_loss_final"] = [0.3]
    assert report_numbers.adda_macros(run)["PThreeGame"] == "1"  # well below: not aligned
    run["adda"]["discriminator_loss_final"] = [0.8]
    assert report_numbers.adda_macros(run)["PThreeGame"] == "3"
    run["mse"]["feature_statistics"]["0"]["target_total_variance"] = 250.0
    run["same_digit_source_mean"] = {"before": 0.6, "after": 0.605}  # within a point: not closer
    assert report_numbers.mse_macros(run)["PThreeMSECollapsed"] == "0"
    assert report_numbers.adda_macros(run)["PThreeCloser"] == "0"
    assert report_numbers.mse_macros(problem3_run([0.3] * 3, [0.7] * 3, [0.5] * 3) | {
        k: run[k] for k in ("seeds", "source_feature_statistics", "mse", "adda")})["PThreeMSEBelowSource"] == "1"


def test_the_mse_floor_case_follows_the_numbers():
    p3 = json.loads((ROOT / "doc" / "results" / "problem3.json").read_text())
    p3["mse"].update(loss_floor=[10.0, 12.0, 11.0], loss_final=[10.2, 12.5, 11.1])
    assert report_numbers.mse_macros(p3)["PThreeMSEFloorCase"] == "0"
    p3["mse"]["loss_final"] = [10.2, 18.0, 11.1]
    macros = report_numbers.mse_macros(p3)
    assert macros["PThreeMSEFloorCase"] == "1" and macros["PThreeMSEMaxRatio"] == "1.50"
    p3["mse"]["loss_final"] = [8.0, 12.5, 11.1]
    assert report_numbers.mse_macros(p3)["PThreeMSEFloorCase"] == "2"


def test_the_per_digit_numbers_name_the_digits_that_moved():
    run = problem3_run([0.66] * 3, [0.7] * 3, [0.1] * 3)
    run["source_only"]["per_class_seed0"] = [0.5] * 10
    run["adda"]["per_class_seed0"] = [0.6, 0.9, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.3, 0.55]
    macros = report_numbers.per_digit_macros(run)
    assert (macros["PThreeDigitsGaining"], macros["PThreeBestDigit"], macros["PThreeBestDigitAfter"]) == ("3", "1", "90")
    assert (macros["PThreeDigitsLosing"], macros["PThreeWorstDigit"], macros["PThreeWorstDigitAfter"]) == ("1", "8", "30")
    run["adda"]["per_class_seed0"] = [0.45] * 10  # worse everywhere
    macros = report_numbers.per_digit_macros(run)
    assert macros["PThreeDigitsGaining"] == "0" and macros["PThreeDigitsLosing"] == "10"
    rows = macros["PThreePerDigitRows"].splitlines()
    assert len(rows) == 10 and rows[0] == "0 & 50.0 & 45.0 & $-$5.0 \\\\"


def test_the_late_drop_flag_and_the_design_numbers_follow_the_run():
    """The report says 'within 1.5 points in every seed' only when every seed's reported encoder reads
    within 1.5 points of its run's best monitored reading."""
    p3 = json.loads((ROOT / "doc" / "results" / "problem3.json").read_text())
    p3["adda"].update(best_monitored=[0.80, 0.78, 0.75], reported_monitored=[0.795, 0.77, 0.74],
                      drop_from_best=[0.005, 0.01, 0.01], gain_per_seed=[0.1, 0.12, 0.08])
    macros = report_numbers.adaptation_design_macros(p3)
    assert macros["PThreeNoLateDrop"] == "1" and macros["PThreeDrops"] == "0.5 / 1.0 / 1.0"
    assert macros["PThreeMeanGain"] == "+10.0" and macros["PThreeGainStd"] == "2.0"
    assert macros["PThreeGainUnsettled"] == "0"  # +8 to +12 points: the sign is settled
    p3["adda"]["gain_per_seed"] = [0.02, 0.132, -0.009]  # one seed loses
    assert report_numbers.adaptation_design_macros(p3)["PThreeGainUnsettled"] == "1"
    p3["adda"]["drop_from_best"][2] = 0.02
    assert report_numbers.adaptation_design_macros(p3)["PThreeNoLateDrop"] == "0"
    p3["mse"]["per_seed"] = [0.1, 0.1, 0.9]  # above source-only in one seed
    assert report_numbers.mse_macros(p3)["PThreeMSEBelowEverySeed"] == "0"


def long_run(tmp_path, run):
    """The long-run macros the report builds from `run` as problem3_long.json."""
    (tmp_path / "problem3_long.json").write_text(json.dumps(run))
    return report_numbers.long_run_macros(tmp_path)


def test_the_long_run_says_collapse_only_when_it_happened(tmp_path):
    assert report_numbers.long_run_macros(tmp_path) == {"PThreeHaveLongRun": "0"}
    run = problem3_run([0.66], [0.70], [0.1], seeds=[0])
    run["adda"]["discriminator_loss_final"] = [0.43]
    run["adda"]["monitor"] = {"0": monitor_curves([0, 2500, 5000, 7500, 10000], [0.66, 0.76, 0.72, 0.71, 0.70])}
    macros = long_run(tmp_path, run)
    assert macros["PThreeLongNCollapsed"] == "0" and macros["PThreeLongLastQuarter"] == "70.0--71.0"
    assert (macros["PThreeLongPeak"], macros["PThreeLongPeakAt"]) == ("76.0", "2500")
    assert macros["PThreeLongGame"] == "1" and macros["PThreeLongIsPaper"] == "1"
    assert macros["PThreeLongComparison"] == "1"  # no default run to compare with
    run["adda"]["monitor"]["0"]["averaged_acc"][-1] = 0.1
    macros = long_run(tmp_path, run)
    assert macros["PThreeLongNCollapsed"] == "1" and macros["PThreeLongCollapsed"] == "0"


def test_the_long_run_reads_every_seed_against_the_same_default_seeds(tmp_path):
    default = problem3_run([0.66, 0.67, 0.64], [0.74, 0.757, 0.72], [0.1] * 3)
    (tmp_path / "problem3.json").write_text(json.dumps(default))
    run = problem3_run([0.66, 0.67, 0.64], [0.78, 0.79, 0.75], [0.1] * 3)
    run["adda"]["discriminator_loss_final"] = [0.43, 0.45, 0.47]
    run["adda"]["monitor"] = {str(seed): monitor_curves([0, 5000, 10000], [0.7, 0.72 + d, 0.78 + d])
                              for seed, d in zip((0, 1, 2), (0.0, 0.01, 0.02))}
    macros = long_run(tmp_path, run)
    assert macros["PThreeLongComparison"] == "0" and macros["PThreeLongAgainstDefault"] == "0"
    assert macros["PThreeLongDifferences"] == "+4.0 / +3.3 / +3.0" and macros["PThreeLongSeedsBetter"] == "3"
    assert "0 & 66.0 & 74.0 & 78.0 & 1500 \\\\" in macros["PThreeLongRows"]
    assert macros["PThreeLongPeakSeed"] == "2" and macros["PThreeLongGame"] == "1"
    for adda, case in (([0.70, 0.70, 0.69], "1"), ([0.75, 0.76, 0.725], "2"), ([0.77, 0.767, 0.735], "3"),
                       ([0.73, 0.74, 0.70], "4"), ([0.78, 0.74, 0.72], "5")):
        run["adda"]["per_seed"] = adda
        assert long_run(tmp_path, run)["PThreeLongAgainstDefault"] == case, adda
    run["adda"]["discriminator_loss_final"] = [0.69, 0.70, 0.50]  # the seeds disagree
    run["adda"]["monitor"]["1"]["averaged_acc"][-1] = 0.1
    run["adda"]["monitor"]["2"]["averaged_acc"][-1] = 0.1
    macros = long_run(tmp_path, run)
    assert macros["PThreeLongGame"] == "4" and macros["PThreeLongCollapsed"] == "1, 2"


def test_the_long_run_is_compared_only_with_a_default_run_of_the_same_source_models(tmp_path):
    default = problem3_run([0.66, 0.67, 0.64], [0.74, 0.757, 0.72], [0.1] * 3)
    (tmp_path / "problem3.json").write_text(json.dumps(default))
    run = problem3_run([0.66], [0.80], [0.1], seeds=[0])
    run["adda"]["discriminator_loss_final"] = [0.43]
    run["adda"]["monitor"] = {"0": monitor_curves([0, 5000, 10000], [0.7, 0.75, 0.8])}
    assert long_run(tmp_path, run)["PThreeLongDifferences"] == "+6.0"
    run["seeds"] = [5]  # a seed the default run did not make
    run["adda"]["monitor"] = {"5": run["adda"]["monitor"]["0"]}
    macros = long_run(tmp_path, run)
    assert macros["PThreeLongComparison"] == "3" and macros["PThreeLongDifferences"] == ""
    run["seeds"], run["adda"]["monitor"] = [0], {"0": run["adda"]["monitor"]["5"]}
    default["quick"] = True
    (tmp_path / "problem3.json").write_text(json.dumps(default))
    assert long_run(tmp_path, run)["PThreeLongComparison"] == "2"
    run["adda"]["monitor"]["0"]["iteration"] = [0, 100, 200]  # not the paper's length
    macros = long_run(tmp_path, run)
    assert macros["PThreeLongIsPaper"] == "0" and macros["PThreeLongIterations"] == "200"


def test_the_plain_adda_run_is_read_when_made(tmp_path):
    assert report_numbers.plain_adda_macros(tmp_path) == {"PThreeHavePlain": "0"}
    main_run = problem3_run([0.66, 0.67, 0.64], [0.70, 0.72, 0.66], [0.1] * 3)
    main_run["adda"].update(distance_from_source=[0.08, 0.09, 0.1], discriminator_loss_final=[0.35, 0.4, 0.38])
    run = problem3_run([0.66, 0.67, 0.64], [0.60, 0.75, 0.64], [0.1] * 3)
    run["adda"].update(raw_final_acc=[0.6, 0.7, 0.6], drop_from_best=[0.1, 0.0, 0.02], best_monitored=[0.75, 0.8, 0.7],
                       distance_from_source=[0.30, 0.35, 0.32], discriminator_loss_final=[0.2, 0.3, 0.25],
                       settings={"iterations": 1500, "anchor_distance": 0, "average_horizon": 0,
                                 "lr_discriminator_ratio": 1.0})
    (tmp_path / "problem3_plain.json").write_text(json.dumps(run))
    macros = report_numbers.plain_adda_macros(tmp_path)
    assert macros["PThreeHavePlain"] == "1" and macros["PThreePlainPerSeed"] == "60.0 / 75.0 / 64.0"
    assert (macros["PThreePlainSeedsBetter"], macros["PThreePlainSeedsWorse"], macros["PThreePlainSeedsTied"]) == ("1", "1", "1")
    assert macros["PThreePlainDistance"] == "30.0--35.0" and macros["PThreePlainGame"] == "1"
    assert macros["PThreePlainSameSources"] == "0"  # no main run to compare with
    (tmp_path / "problem3.json").write_text(json.dumps(main_run))
    macros = report_numbers.plain_adda_macros(tmp_path)
    assert (macros["PThreePlainSameSources"], macros["PThreePlainHigher"], macros["PThreePlainFarther"]) == ("1", "0", "1")
    assert macros["PThreePlainNearerBalance"] == "0"  # 0.25 lies farther from log 2 than 0.38
    run["adda"].update(discriminator_loss_final=[0.6, 0.65, 0.7], per_seed=[0.75, 0.75, 0.7], mean=0.733)
    (tmp_path / "problem3_plain.json").write_text(json.dumps(run))
    macros = report_numbers.plain_adda_macros(tmp_path)
    assert (macros["PThreePlainHigher"], macros["PThreePlainNearerBalance"]) == ("1", "1")
    run["adda"]["settings"]["anchor_distance"] = 0.1  # made with the penalty: not the plain run
    (tmp_path / "problem3_plain.json").write_text(json.dumps(run))
    with pytest.raises(report_numbers.UserError, match="problem3_plain.json: not made without"):
        report_numbers.plain_adda_macros(tmp_path)


def test_the_split_reason_is_an_enumeration():
    assert report_numbers.split_reason_macros(None)["PTwoSplitCase"] == "0"
    assert report_numbers.split_reason_macros("the file names do not tell the physical sign")["PTwoSplitCase"] == "1"
    few = report_numbers.split_reason_macros("class stop signs has only 3 physical signs, fewer than 5")
    assert (few["PTwoSplitCase"], few["PTwoSplitFewestClass"], few["PTwoSplitFewestSigns"]) == ("2", "stop signs", "3")
    with pytest.raises(report_numbers.UserError, match="split_reason"):
        report_numbers.split_reason_macros("some other reason")


def test_the_hand_in_pins_the_same_packages_as_the_project():
    def pins(path):
        return sorted(line.strip() for line in path.read_text().splitlines()
                      if line.strip() and not line.startswith("#"))
    assert pins(SRC / "requirements.txt") == pins(ROOT / "requirements.txt")
    commands = (SRC / "README.md").read_text()
    for script in ("problem1_checks.py", "problem2_traffic.py", "problem3_adda.py"):
        assert f"src/{script}" in commands and (SRC / script).exists()


def test_the_problem2_facts_follow_altered_results():
    """The committed results, altered the way another run could come out: each fact the report's
    wording branches on must change with them."""
    p2 = json.loads((ROOT / "doc" / "results" / "problem2.json").read_text())
    macros = report_numbers.problem2_macros(p2)
    assert macros["PTwoStillFollows"] == "0" and macros["PTwoHavePlantedASR"] == "1"
    assert (macros["PTwoTruthPlace"], macros["PTwoPlace"], macros["PTwoTriggerIsFrame"]) == ("bottom-right",) * 2 + ("0",)
    shares, area = p2["explanation"]["saliency_share_in_region"], p2["explanation"]["region_area_share"]
    for before, after, case in ((4, 1.5, "less concentrated"), (4, 1.1, "near uniform"), (4, 0.9, "uniform"),
                                (2, 3, "no less concentrated")):
        shares.update(before=before * area, after=after * area)
        assert report_numbers.SALIENCY_AFTER_CASES[int(report_numbers.problem2_macros(p2)["PTwoSaliencyAfter"])] == case
    shares.update(before=area, after=1.5 * area)
    p2["attack_success_rate"]["after"] = 0.5
    p2["localisation"].update(criterion_met=False, threshold=0.1)
    p2["explanation"]["occlusion_share_in_region"]["after"] = 0.9
    p2["after"]["test_per_class"][p2["failing_class"]] = 0.3
    p2["after"]["test_acc"] = p2["after"]["val_acc"] - 0.2
    p2["before"]["test_per_class"]["stop signs"] = p2["before"]["val_per_class"]["stop signs"] - 0.1
    macros = report_numbers.problem2_macros(p2)
    assert macros["PTwoStillFollows"] == "1" and macros["PTwoCriterionMet"] == "0"
    assert macros["PTwoSaliencyConcentrates"] == "0" and macros["PTwoOcclusionStillThere"] == "1"
    assert macros["PTwoFailingTestAfter"] == "30.0" and macros["PTwoGapClosed"] == "0"
    assert macros["PTwoOtherClassWorse"] == "1" and macros["PTwoWorstOtherClass"] == "stop signs"
    # the first model's occlusion verdict: the case the report's \ifcase reads
    for case in report_numbers.VERDICT_CASES[1:]:
        p2["occlusion_verdict"] = {"exam_square_changes_nothing": True, "case": case, "evidence_px": 40}
        assert report_numbers.problem2_macros(p2)["PTwoVerdict"] == str(report_numbers.VERDICT_CASES.index(case))
    p2["fix_rounds"] = [{**p2["fix_rounds"][0], "attack_success_rate": 0.4}, {**p2["fix_rounds"][0], "round": 2}]
    assert report_numbers.problem2_macros(p2)["PTwoSecondRound"] == "1"
    p2["truth"]["kind"] = "border"
    assert report_numbers.problem2_macros(p2)["PTwoTriggerIsFrame"] == "1"
    p2["planted_trigger_attack_rate"] = None
    del p2["truth"]
    macros = report_numbers.problem2_macros(p2)
    assert macros["PTwoPlanted"] == "0" and macros["PTwoHavePlantedASR"] == "0"
    assert report_numbers.problem2_macros({**p2, "data_source": "user folder my_signs"})["PTwoDataFolder"] == "my\\_signs"


def test_a_run_without_the_mse_variant_is_refused_where_the_report_needs_it(tmp_path):
    run = problem3_run([0.66], [0.70], [0.1], seeds=[0])
    run["mse"] = None
    run["adda"]["discriminator_loss_final"] = [0.5]
    run["adda"]["monitor"] = {"0": monitor_curves([0, 10000], [0.7, 0.75])}
    assert long_run(tmp_path, run)["PThreeHaveLongRun"] == "1"  # --no-mse is fine there
    for k in (1, 2, 3):
        shutil.copy(ROOT / "doc" / "results" / f"problem{k}.json", tmp_path / f"problem{k}.json")
    main_run = json.loads((tmp_path / "problem3.json").read_text())
    main_run["mse"] = None
    (tmp_path / "problem3.json").write_text(json.dumps(main_run))
    with pytest.raises(report_numbers.UserError, match="problem3.json: made with --no-mse"):
        report_numbers.main(["--results", str(tmp_path), "--output", str(tmp_path / "results.tex")])


def test_report_numbers_writes_no_sentences(tmp_path):
    """Wording lives in report.tex: a generated macro is a number, a name, a flag, an enumeration, a
    list of short facts or a table row, never a sentence (a capital letter after a full stop, or a
    run of more than four words), for the committed results with every side run."""
    for path in (ROOT / "doc" / "results").glob("*.json"):
        shutil.copy(path, tmp_path)
    (tmp_path / "problem2_real_photos.json").write_text(json.dumps({"rows": side_rows() + side_rows()}))
    macros = report_numbers.main(["--results", str(tmp_path), "--output", str(tmp_path / "results.tex")])
    for name, value in macros.items():
        if name.endswith("Rows"):
            continue
        for item in re.split(r"[;,] ", value):  # a list's items each
            words = re.findall(r"[A-Za-z]{2,}", re.sub(r"\\[A-Za-z]+", "", item))
            assert len(words) <= 4 and not re.search(r"\.\s+[A-Z]", value), (name, value)


def test_the_new_outcome_flags_follow_altered_results():
    """2a's class model, 2g's alternative fix and 3b's polarity check: each flag the report branches
    on flips with the numbers it reads."""
    p2 = json.loads((ROOT / "doc" / "results" / "problem2.json").read_text())
    area = p2["explanation"]["region_area_share"]
    p2["explanation"]["class_model_share_in_region"] = {"before": 3 * area, "after": area}
    macros = report_numbers.problem2_macros(p2)
    assert (macros["PTwoClassModelPaintsBefore"], macros["PTwoClassModelPaintsAfter"]) == ("1", "0")
    p2["alternative_fix"]["grey_patch_attack_rate"] = p2["attack_success_rate"]["bar"] + 0.3
    assert report_numbers.problem2_macros(p2)["PTwoAltFollowsPatch"] == "1"
    p2["alternative_fix"]["grey_patch_attack_rate"] = 0.0
    assert report_numbers.problem2_macros(p2)["PTwoAltFollowsPatch"] == "0"
    p3 = json.loads((ROOT / "doc" / "results" / "problem3.json").read_text())
    p3["source_only"]["inverted_mnist"]["mean"] = p3["source_only"]["mean"] + 0.1
    assert report_numbers.problem3_macros(p3)["PThreeInvertedHigher"] == "1"
    p3["source_only"]["inverted_mnist"]["mean"] = p3["source_only"]["mean"] - 0.1
    assert report_numbers.problem3_macros(p3)["PThreeInvertedHigher"] == "0"
    rows = report_numbers.problem3_macros(p3)["PThreePerDigitRows"].splitlines()
    assert len(rows) == 10 and rows[0].startswith("0 & ")
