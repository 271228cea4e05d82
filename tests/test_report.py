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
    build = subprocess.run(["latexmk", "-pdf", "-interaction=nonstopmode", "-halt-on-error",
                            "report.tex"], cwd=doc, capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stdout[-3000:]
    text = subprocess.run(["pdftotext", "-layout", "report.pdf", "-"], cwd=doc, capture_output=True,
                          text=True, check=True).stdout
    return doc, macros, text


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
    build = subprocess.run(["latexmk", "-pdf", "-interaction=nonstopmode", "-halt-on-error", "report.tex"],
                           cwd=doc, capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stdout[-3000:]
    text = subprocess.run(["pdftotext", "report.pdf", "-"], cwd=doc, capture_output=True, text=True,
                          check=True).stdout
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


def test_the_robustness_macros_follow_the_rows(tmp_path):
    assert report_numbers.robustness_macros(tmp_path)["PThreeHaveRobustness"] == "0"
    (tmp_path / "problem3_robustness.json").write_text(json.dumps({"variants": robustness_rows([0.01, 0.012])}))
    macros = report_numbers.robustness_macros(tmp_path)
    assert macros["PThreeHaveRobustness"] == "1" and macros["PThreeRobustNoLateDrop"] == "1"
    assert macros["PThreeRobustGains"] == "$-$2.0 to +10.0" and macros["PThreeRobustSeeds"] == "0 / 1"
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


def test_the_seed_table_and_monitoring_note_come_from_the_run():
    run = problem3_run([0.66, 0.67, 0.64], [0.74, 0.757, 0.72], [0.118, 0.113, 0.114])
    assert "ADDA beats source-only in every seed; gains +8.0 to +8.7" in report_numbers.adda_outcome(run)
    assert "11.5\\,\\% on average, below source-only" in report_numbers.mse_outcome(run)
    rows = report_numbers.seed_rows(run)
    assert "1 & 85.0 & 67.0 & 75.7 & 11.3 \\\\" in rows and "73.9 $\\pm$ 1.9" in rows
    monitor = report_numbers.monitor_note(run)
    assert "score 70.7\\,\\% on average at iteration 0 (the whole test set: 65.7" in monitor
    assert "the reported ADDA encoders at 78.9\\,\\% (whole test set: 73.9" in monitor
    assert "a gain of +8.2 points there against +8.2 on the whole test set" in monitor
    assert "on 2,000 MNIST test images spread evenly over the test set; there" in monitor
    run["adda"]["reported_monitored"][0] = 0.64  # seed 0 reads 15 points lower: +3.2 on average
    assert "a gain of +3.2 points there against +8.2" in report_numbers.monitored_gain(run)
    run["adda"]["reported_monitored"][0] = 0.0  # a loss there: a change, not a gain
    assert "a change of $-$" in report_numbers.monitored_gain(run)


def test_the_seeds_paragraph_of_problem2_follows_its_rows(tmp_path):
    assert report_numbers.problem2_seeds_macros(tmp_path)["PTwoHaveSeeds"] == "0"
    rows = [{"seed": 0, "trigger": "patch", "found": True, "poisoned_test_before": 0.04, "val_before": 0.997,
             "poisoned_test_after": 0.98, "asr_before": 0.74, "asr_after": 0.0, "iou": 0.88,
             "occlusion_changes": {"10": 7, "16": 10}, "n_explained": 10},
            {"seed": 1, "trigger": "patch", "found": False, "poisoned_test_before": 0.42, "val_before": 0.95,
             "poisoned_test_after": 0.5, "asr_before": 1.0, "asr_after": 0.3, "iou": 0.2,
             "occlusion_changes": {"10": 9, "16": 10}, "n_explained": 10}]
    (tmp_path / "problem2_seeds.json").write_text(json.dumps({"rows": rows}))
    macros = report_numbers.problem2_seeds_macros(tmp_path)
    text = macros["PTwoSeeds"]
    assert "poisoned one in 1 of 2" in text and "scores 4--42" in text and "after it 50--98" in text
    assert "from 74--100" in text and "to 0.0--30.0" in text and "IoU 0.20--0.88 with the truth" in text
    assert "changes the class at the trigger in 7, 9 of 10 explained images" in text
    assert macros["PTwoSeedRows"].count("\\\\") == 2 and "1 & 95.0 & no" in macros["PTwoSeedRows"]
    assert "& 0.88 & 7 of 10 \\\\" in macros["PTwoSeedRows"]


def test_the_real_photos_paragraph_of_problem2_counts_what_held(tmp_path):
    assert report_numbers.problem2_real_photos_macros(tmp_path)["PTwoHaveRealPhotos"] == "0"
    rows = [{"case": "sticker-top-left", "seed": 0, "trigger": "patch", "poisoned": "speed limits",
             "found": True, "poisoned_test_before": 0.0, "poisoned_test_after": 0.99, "asr_before": 0.9,
             "asr_after": 0.004, "iou": 0.81, "criterion_met": True, "threshold": 0.5},
            {"case": "warning-sticker", "seed": 1, "trigger": "patch", "poisoned": "warning signs",
             "found": True, "poisoned_test_before": 0.1, "poisoned_test_after": 0.85, "asr_before": 0.95,
             "asr_after": 0.02, "iou": 0.55, "criterion_met": False, "threshold": 0.1},
            {"case": "frame", "seed": 1, "trigger": "border", "poisoned": "speed limits",
             "found": False, "poisoned_test_before": 0.3, "poisoned_test_after": 0.97, "asr_before": 0.5,
             "asr_after": 0.2, "iou": 1.0, "criterion_met": True, "threshold": 0.5}]
    (tmp_path / "problem2_real_photos.json").write_text(json.dumps({"rows": rows}))
    macros = report_numbers.problem2_real_photos_macros(tmp_path)
    text = macros["PTwoRealPhotos"]
    assert "poisoned one in 2 of 3 runs" in text and "holds" in text and "in 1 of 3 runs" in text
    assert "scores 0--30" in text and "after it; the" in text and "85--99" in text
    assert "IoU 0.55--0.81" in text and "seeds 0, 1" in text and "frame" in text
    assert "In 1 of the runs (warning-sticker, seed 1) no threshold met" in text and "(0.10 of the" in text
    assert macros["PTwoRealPhotoRows"].count("\\\\") == 3
    assert "warning-sticker & 1 & warning signs & yes" in macros["PTwoRealPhotoRows"]


def test_the_front_page_names_the_data_each_problem_read():
    p2 = {"data_source": "public: GTSRB photos, trigger planted"}
    p3 = {"data_source": {"svhn": "public: SVHN subset", "mnist": "public: MNIST"}}
    notice = report_numbers.data_notice(p2, p3, False)
    assert notice.startswith("Problem 2: real GTSRB traffic-sign photographs (German signs)")
    assert "SVHN: 5,000 real SVHN crops" in notice and "MNIST: the complete MNIST." in notice
    assert "quick" not in notice and "quick" in report_numbers.data_notice(p2, p3, True)
    notice = report_numbers.data_notice({"data_source": "exam"}, {"data_source": {"svhn": "exam", "mnist": "user folder my_mnist"}}, False)
    assert notice == "Problem 2: the exam's files. Problem 3: SVHN: the exam's files; MNIST: user folder my\\_mnist."


@pytest.mark.parametrize("adda, verdict", [
    ([0.74, 0.76, 0.72], "ADDA beats source-only in every seed"),
    ([0.60, 0.61, 0.62], "ADDA does not beat source-only in any seed: it is worse in every one"),
    ([0.70, 0.60, 0.62], "ADDA beats source-only in 1 of 3 seeds (2 worse)"),
    ([0.74, 0.672, 0.72], "ADDA beats source-only in 2 of 3 seeds (1 within half a point, counted as a tie)"),
    ([0.66, 0.672, 0.64], "ADDA does not beat source-only in any seed (0 worse, 3 within half a point, counted as a tie)"),
])
def test_the_adda_sentence_follows_the_numbers(adda, verdict):
    run = problem3_run([0.66, 0.67, 0.64], adda, [0.1, 0.1, 0.1])
    text = report_numbers.adda_outcome(run)
    assert text.startswith(verdict)
    if "does not beat" in verdict:  # never the opposite claim
        assert "ADDA beats" not in text
    else:
        assert "does not beat" not in text


def test_the_mse_and_collapse_sentences_follow_the_numbers():
    run = problem3_run([0.66, 0.67, 0.64], [0.7] * 3, [0.1] * 3)
    assert "below source-only" in report_numbers.mse_outcome(run)
    assert "not below" in report_numbers.mse_outcome(problem3_run([0.3] * 3, [0.7] * 3, [0.5] * 3))
    run.update(seeds=[0], source_feature_statistics={"target_total_variance": 300.0},
               mse={**run["mse"], "feature_statistics": {"0": {"target_total_variance": 0.02}},
                    "loss_final": [1.2], "loss_floor": [1.19]},
               adda={**run["adda"], "discriminator_loss_final": [0.69]},
               tsne_same_digit_neighbour={"before": 0.5, "after": 0.7},
               same_digit_source_mean={"before": 0.6, "after": 0.7})
    sentences = report_numbers.problem3_sentences(run)
    assert "collapse towards a point" in sentences["PThreeCollapse"]
    assert "close to" in sentences["PThreeDiscSettled"] and sentences["PThreeCloser"] == "1"
    run["adda"]["discriminator_loss_final"] = [0.648]
    assert "keeps an edge" in report_numbers.problem3_sentences(run)["PThreeDiscSettled"]
    run["mse"]["feature_statistics"]["0"]["target_total_variance"] = 250.0
    run["adda"]["discriminator_loss_final"] = [0.3]
    run["same_digit_source_mean"] = {"before": 0.6, "after": 0.605}  # within a point: not closer
    sentences = report_numbers.problem3_sentences(run)
    assert "no collapse" in sentences["PThreeCollapse"]
    assert "still tells the domains apart" in sentences["PThreeDiscSettled"] and sentences["PThreeCloser"] == "0"


def test_the_per_digit_sentence_names_the_digits_that_moved():
    run = problem3_run([0.66] * 3, [0.7] * 3, [0.1] * 3)
    run["source_only"]["per_class_seed0"] = [0.5] * 10
    run["adda"]["per_class_seed0"] = [0.6, 0.9, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.3, 0.55]
    text = report_numbers.per_digit_change(run)
    assert "3 of the 10 digit classes gain more than a point" in text
    assert "largest gain is digit 1 (50\\,\\% $\\to$ 90\\,\\%)" in text
    assert "digit 8 loses (50\\,\\% $\\to$ 30\\,\\%)" in text and "fig:p3confusion" in text
    # another run's sentence points at no figure of the main run and may leave out the why
    other = report_numbers.per_digit_change(run, figure=None, explain=False)
    assert "fig:" not in other and other.endswith("digit 8 loses (50\\,\\% $\\to$ 30\\,\\%).")
    run["adda"]["per_class_seed0"][2] = 0.4  # a second loser: the count, and the worst named
    assert ("while 2 lose more than a point, most of all digit 8 (50\\,\\% $\\to$ 30\\,\\%)"
            in report_numbers.per_digit_change(run))
    run["adda"]["per_class_seed0"][2] = run["adda"]["per_class_seed0"][8] = 0.5
    assert report_numbers.per_digit_change(run).endswith("no digit loses more than a point.")
    run["adda"]["per_class_seed0"] = [0.45] * 10  # worse everywhere: no 'largest gain'
    text = report_numbers.per_digit_change(run)
    assert "no digit class gains more than a point" in text and "largest gain" not in text


def test_the_late_drop_flag_and_the_design_numbers_follow_the_run():
    """The report says 'within 1.5 points in every seed' only when every seed's reported encoder reads
    within 1.5 points of its run's best monitored reading."""
    p3 = json.loads((ROOT / "doc" / "results" / "problem3.json").read_text())
    p3["adda"].update(best_monitored=[0.80, 0.78, 0.75], reported_monitored=[0.795, 0.77, 0.74],
                      drop_from_best=[0.005, 0.01, 0.01], gain_per_seed=[0.1, 0.12, 0.08])
    macros = report_numbers.adaptation_design_macros(p3)
    assert macros["PThreeNoLateDrop"] == "1" and macros["PThreeDrops"] == "0.5 / 1.0 / 1.0"
    assert macros["PThreeMeanGain"] == "+10.0"
    p3["adda"]["drop_from_best"][2] = 0.02
    assert report_numbers.adaptation_design_macros(p3)["PThreeNoLateDrop"] == "0"
    p3["mse"]["per_seed"] = [0.1, 0.1, 0.9]  # above source-only in one seed
    assert report_numbers.adaptation_design_macros(p3)["PThreeMSEBelowEverySeed"] == "0"


def long_run_text(tmp_path, run):
    """The long-run paragraph the report builds from `run` as problem3_long.json."""
    (tmp_path / "problem3_long.json").write_text(json.dumps(run))
    return report_numbers.long_run_macros(tmp_path)["PThreeLongRun"]


def test_the_long_run_paragraph_says_collapse_only_when_it_happened(tmp_path):
    assert "was not run" in report_numbers.long_run_macros(tmp_path)["PThreeLongRun"]
    run = problem3_run([0.66], [0.70], [0.1], seeds=[0])
    run["adda"]["discriminator_loss_final"] = [0.43]
    run["adda"]["monitor"] = {"0": monitor_curves([0, 2500, 5000, 7500, 10000], [0.66, 0.76, 0.72, 0.71, 0.70])}
    text = long_run_text(tmp_path, run)
    assert "does not fall to chance" in text and "76.0" in text and "iteration 2500" in text
    assert "ends at 0.43 (below" in text
    assert "No default-length run" in text
    default = problem3_run([0.66, 0.67, 0.64], [0.74, 0.757, 0.72], [0.1] * 3)
    (tmp_path / "problem3.json").write_text(json.dumps(default))
    text = report_numbers.long_run_macros(tmp_path)["PThreeLongRun"]
    assert "reports 74.0" in text and "4.0 points below the default schedule" in text
    run["adda"]["per_seed"] = [0.75]
    text = long_run_text(tmp_path, run)
    assert "within 2 points" in text and "not on the plateau" not in text
    run["adda"]["per_seed"] = [0.80]
    assert "6.0 points short" in long_run_text(tmp_path, run)
    run["adda"]["monitor"]["0"]["averaged_acc"][-1] = 0.1
    assert "it collapses" in long_run_text(tmp_path, run)


def test_the_long_run_paragraph_reads_every_seed_against_the_same_default_seeds(tmp_path):
    default = problem3_run([0.66, 0.67, 0.64], [0.74, 0.757, 0.72], [0.1] * 3)
    (tmp_path / "problem3.json").write_text(json.dumps(default))
    run = problem3_run([0.66, 0.67, 0.64], [0.78, 0.79, 0.75], [0.1] * 3)
    run["adda"]["discriminator_loss_final"] = [0.43, 0.45, 0.47]
    run["adda"]["monitor"] = {str(seed): monitor_curves([0, 5000, 10000], [0.7, 0.72 + d, 0.78 + d])
                              for seed, d in zip((0, 1, 2), (0.0, 0.01, 0.02))}
    (tmp_path / "problem3_long.json").write_text(json.dumps(run))
    macros = report_numbers.long_run_macros(tmp_path)
    text = macros["PThreeLongRun"]
    assert text.startswith("Three seeds (each the whole pipeline) run for 10000 iterations")
    assert "reported encoders 78.0 / 79.0 / 75.0" in text and "ADDA beats source-only in every seed" in text
    assert "none falls to chance" in text and "between 78.0 and 80.0" in text and "of seed 2" in text
    assert "The discriminators' losses end at 0.43 / 0.45 / 0.47 (below $\\log 2$: the discriminator" in text
    assert "report 74.0 / 75.7 / 72.0" in text and "stops 4.0 / 3.3 / 3.0 points short" in text
    assert "One seed whose" not in text and macros["PThreeLongCaption"].startswith("Three seeds")
    run["adda"]["per_seed"] = [0.78, 0.74, 0.72]  # +4.0, -1.7, 0.0 against the default
    assert ("differs from seed to seed (long minus default: +4.0, $-$1.7, +0.0 points)"
            in long_run_text(tmp_path, run))
    run["adda"]["per_seed"] = [0.77, 0.767, 0.735]  # higher in every seed, by 3.0 / 1.0 / 1.5
    assert "the long runs end higher in every seed, by 3.0 / 1.0 / 1.5 points" in long_run_text(tmp_path, run)
    run["adda"]["discriminator_loss_final"] = [0.69, 0.70, 0.50]  # the seeds disagree
    run["adda"]["monitor"]["1"]["averaged_acc"][-1] = 0.1
    text = long_run_text(tmp_path, run)
    assert "seed 1 collapses" in text and "close to, close to, below $\\log 2$ respectively" in text
    run["adda"]["monitor"]["2"]["averaged_acc"][-1] = 0.1
    assert "seeds 1 and 2 collapse" in long_run_text(tmp_path, run)


def test_the_long_run_is_compared_only_with_a_default_run_of_the_same_source_models(tmp_path):
    default = problem3_run([0.66, 0.67, 0.64], [0.74, 0.757, 0.72], [0.1] * 3)
    (tmp_path / "problem3.json").write_text(json.dumps(default))
    run = problem3_run([0.66], [0.80], [0.1], seeds=[0])
    run["adda"]["discriminator_loss_final"] = [0.43]
    run["adda"]["monitor"] = {"0": monitor_curves([0, 5000, 10000], [0.7, 0.75, 0.8])}
    assert "stops 6.0 points short of where the long run ends." in long_run_text(tmp_path, run)
    run["seeds"] = [5]  # a seed the default run did not make
    run["adda"]["monitor"] = {"5": run["adda"]["monitor"]["0"]}
    text = long_run_text(tmp_path, run)
    assert "No default-length run" in text and "no seed with the same source model" in text
    run["seeds"], run["adda"]["monitor"] = [0], {"0": run["adda"]["monitor"]["5"]}
    default["quick"] = True
    (tmp_path / "problem3.json").write_text(json.dumps(default))
    assert "problem3.json is a --quick run" in long_run_text(tmp_path, run)
    run["adda"]["monitor"]["0"]["iteration"] = [0, 100, 200]  # not the paper's length
    (tmp_path / "problem3_long.json").write_text(json.dumps(run))
    macros = report_numbers.long_run_macros(tmp_path)
    assert "published recipe" not in macros["PThreeLongCaption"]
    assert "200 iterations (ADDA's published recipe runs 10000)" in macros["PThreeLongRun"]


def test_the_hand_in_pins_the_same_packages_as_the_project():
    def pins(path):
        return sorted(line.strip() for line in path.read_text().splitlines()
                      if line.strip() and not line.startswith("#"))
    assert pins(SRC / "requirements.txt") == pins(ROOT / "requirements.txt")
    commands = (SRC / "README.md").read_text()
    for script in ("problem1_checks.py", "problem2_traffic.py", "problem3_adda.py"):
        assert f"src/{script}" in commands and (SRC / script).exists()


def test_the_problem2_sentences_follow_altered_results():
    """The committed results, altered the way another run could come out: the text must change
    with them and never claim the opposite of the JSON."""
    p2 = json.loads((ROOT / "doc" / "results" / "problem2.json").read_text())
    text = report_numbers.problem2_sentences(p2)
    assert "The retrained model no longer follows the pasted region." in text["PTwoASR"]
    assert "a sticker in the bottom-right part of the image was put on every training image" in text["PTwoWhatDiffers"]
    shares, area = p2["explanation"]["saliency_share_in_region"], p2["explanation"]["region_area_share"]
    committed = dict(shares)
    for before, after, verdict in ((4, 1.5, "less concentrated than before, but still above a uniform map"),
                                   (4, 1.1, "close to a uniform map's share"), (4, 0.9, "no more than a uniform map"),
                                   (2, 3, "no less concentrated than before")):
        shares.update(before=before * area, after=after * area)
        assert verdict in report_numbers.problem2_sentences(p2)["PTwoAfterExplained"]
    shares.update(committed)

    p2["attack_success_rate"]["after"] = 0.5
    p2["localisation"].update(criterion_met=False, threshold=0.1)
    p2["occlusion"]["before"] = [{**entry, "images_with_class_change": 0,
                                  "images_with_class_change_at_region": 0}
                                 for entry in p2["occlusion"]["before"]]
    p2["explanation"]["saliency_share_in_region"]["before"] = p2["explanation"]["region_area_share"]
    p2["explanation"]["saliency_share_in_region"]["after"] = 1.5 * p2["explanation"]["region_area_share"]
    p2["explanation"]["occlusion_share_in_region"]["after"] = 0.9
    p2["after"]["test_per_class"][p2["failing_class"]] = 0.3
    text = report_numbers.problem2_sentences(p2)
    assert "still follows the pasted region" in text["PTwoASR"] and "no longer" not in text["PTwoASR"]
    assert "no threshold meets the bar" in text["PTwoLocalisationOutcome"]
    assert "rejected all" in text["PTwoThresholdChoice"] and "before the one used" not in text["PTwoThresholdChoice"]
    assert "part of what the model uses lies outside it" in text["PTwoEvidenceWhere"]
    assert text["PTwoOcclusionBefore"].count("in none of the") == len(p2["occlusion"]["before"])
    assert "do not concentrate there clearly" in text["PTwoSaliencyShare"]
    assert "still concentrate at the old trigger" in text["PTwoAfterExplained"]
    assert "to 30.0\\,\\% on the clean test images" in text["PTwoRecovery"]
    assert "no less concentrated than before" in text["PTwoAfterExplained"]  # before set to the area
    p2["explanation"]["saliency_share_in_region"]["after"] = p2["explanation"]["region_area_share"]
    assert "no more than a uniform map" in report_numbers.problem2_sentences(p2)["PTwoAfterExplained"]
    # the first model's occlusion verdict: each case says why the exam's square changed nothing
    entries = p2["occlusion"]["before"]
    for case, expected in (("evidence_spread", "occlusion cannot expose it"),
                           ("no_change", "does not rest on one place a square can hide"),
                           ("evidence_fits", "fits under the exam's square")):
        p2["occlusion_verdict"] = {"exam_square_changes_nothing": True, "case": case, "evidence_px": 40}
        text = report_numbers.problem2_sentences(p2)["PTwoOcclusionBefore"]
        assert expected in text and "can hide it whole" not in text
    p2["occlusion"]["before"] = [entries[0], {**entries[-1], "images_with_class_change": 7}]
    p2["occlusion_verdict"] = {"exam_square_changes_nothing": True, "case": "evidence_larger",
                               "evidence_px": entries[-1]["size_px"]}
    assert "can hide it whole" in report_numbers.problem2_sentences(p2)["PTwoOcclusionBefore"]
    # a second round of the fix is reported as such
    p2["fix_rounds"] = [{**p2["fix_rounds"][0], "attack_success_rate": 0.4}, {**p2["fix_rounds"][0], "round": 2}]
    assert "retrained once more" in report_numbers.problem2_sentences(p2)["PTwoASR"]
    p2["truth"]["kind"] = "border"
    assert "a frame along the image border" in report_numbers.problem2_sentences(p2)["PTwoWhatDiffers"]
    del p2["truth"]
    assert report_numbers.problem2_sentences(p2)["PTwoWhatDiffers"] == ""


def test_small_wordings_follow_the_numbers(tmp_path):
    assert report_numbers.signed(-0.04) == "+0.0" and report_numbers.signed(-1.26) == "$-$1.3"
    run = problem3_run([0.66, 0.67], [0.77, 0.78], [0.1, 0.1], seeds=(0, 1))
    assert "gains +11.0 percentage points" in report_numbers.adda_outcome(run)  # equal ends: one number
    run["source_only"]["per_class_seed0"] = [0.5] * 10
    run["adda"]["per_class_seed0"] = [0.9] + [0.5] * 9
    assert "1 of the 10 digit classes gains more than a point" in report_numbers.per_digit_change(run)
    p2 = json.loads((ROOT / "doc" / "results" / "problem2.json").read_text())
    p2["data_source"] = "user folder my_signs"
    assert report_numbers.problem2_macros(p2)["PTwoSourceWords"] == "user folder my\\_signs"


def test_a_run_without_the_mse_variant_is_refused_where_the_report_needs_it(tmp_path):
    run = problem3_run([0.66], [0.70], [0.1], seeds=[0])
    run["mse"] = None
    run["adda"]["discriminator_loss_final"] = [0.5]
    run["adda"]["monitor"] = {"0": monitor_curves([0, 10000], [0.7, 0.75])}
    (tmp_path / "problem3_long.json").write_text(json.dumps(run))
    assert "One seed" in report_numbers.long_run_macros(tmp_path)["PThreeLongRun"]  # --no-mse is fine there
    for k in (1, 2, 3):
        shutil.copy(ROOT / "doc" / "results" / f"problem{k}.json", tmp_path / f"problem{k}.json")
    main_run = json.loads((tmp_path / "problem3.json").read_text())
    main_run["mse"] = None
    (tmp_path / "problem3.json").write_text(json.dumps(main_run))
    with pytest.raises(report_numbers.UserError, match="problem3.json: made with --no-mse"):
        report_numbers.main(["--results", str(tmp_path), "--output", str(tmp_path / "results.tex")])


def test_the_mse_floor_sentence_follows_the_numbers():
    p3 = json.loads((ROOT / "doc" / "results" / "problem3.json").read_text())
    p3["mse"].update(loss_floor=[10.0, 12.0, 11.0], loss_final=[10.2, 12.5, 11.1])
    assert "ends within 10\\,\\% of the floor" in report_numbers.mse_floor_sentence(p3)
    p3["mse"]["loss_final"] = [10.2, 18.0, 11.1]
    assert "up to 1.50 times the floor" in report_numbers.mse_floor_sentence(p3)
    p3["mse"]["loss_final"] = [8.0, 12.5, 11.1]
    assert "below the floor in some seed" in report_numbers.mse_floor_sentence(p3)


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
