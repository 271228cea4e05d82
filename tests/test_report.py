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
from conftest import ROOT, SRC


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
    assert "stand-in" in flat and "quick" in flat  # the front page says which data, and how


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


def test_the_real_mnist_paragraph_comes_from_its_run_or_says_it_is_missing(tmp_path):
    assert "not made" in report_numbers.real_mnist_macros(tmp_path)["PThreeRealMNIST"]
    run = {"data_source": {"svhn": "stand-in", "mnist": "real"}, "quick": False,
           "n_images": {"mnist_train": 60000, "mnist_test": 10000}, "source_only_mnist_acc": 0.6131,
           "adda": {"per_seed": [0.861, 0.85, 0.87], "mean": 0.8603, "std": 0.01},
           "mse": {"per_seed": [0.1, 0.11, 0.1], "mean": 0.1033, "std": 0.0058}}
    (tmp_path / "problem3_real_mnist.json").write_text(json.dumps(run))
    text = report_numbers.real_mnist_macros(tmp_path)["PThreeRealMNIST"]
    assert "61.3" in text and "86.0" in text and "86.1, 85.0, 87.0" in text and "10.3" in text
    run["data_source"]["mnist"] = "stand-in"
    (tmp_path / "problem3_real_mnist.json").write_text(json.dumps(run))
    with pytest.raises(report_numbers.UserError, match="not the real data set"):
        report_numbers.real_mnist_macros(tmp_path)


def test_the_hand_in_pins_the_same_packages_as_the_project():
    def pins(path):
        return sorted(line.strip() for line in path.read_text().splitlines()
                      if line.strip() and not line.startswith("#"))
    assert pins(SRC / "requirements.txt") == pins(ROOT / "requirements.txt")
    commands = (SRC / "README.md").read_text()
    for script in ("problem1_checks.py", "problem2_traffic.py", "problem3_adda.py"):
        assert f"src/{script}" in commands and (SRC / script).exists()
