"""The report: doc/report.tex built from the results by src/report_numbers.py, every claim of its
text checked against them; the hand-in zip. Never skipped: CI installs TeX Live via scripts/setup.sh."""
import json
import re
import shutil
import subprocess
import sys
import zipfile

import pytest

import make_zip
import problem3_adda
import report_claims
import report_numbers
from conftest import ROOT, SRC

REPORT = ROOT / "doc" / "report.tex"
MARK = "[not supported by these results]"


def build_pdf(doc):
    """latexmk the report in `doc`; the PDF's text, on one line."""
    build = subprocess.run(["latexmk", "-pdf", "-interaction=nonstopmode", "-halt-on-error", "report.tex"],
                           cwd=doc, capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stdout[-3000:]
    text = subprocess.run(["pdftotext", "report.pdf", "-"], cwd=doc, capture_output=True, text=True, check=True).stdout
    return " ".join(text.replace("\u2212", "-").split())


def copy_of_doc(target):
    """report.tex, the figures and the committed results, where a test may change them."""
    shutil.copytree(ROOT / "doc" / "figures", target / "figures")
    shutil.copytree(ROOT / "doc" / "results", target / "results")
    shutil.copy(REPORT, target)
    return target


def generate(doc, candidate="42"):
    return report_numbers.main(["--results", str(doc / "results"), "--output", str(doc / "results.tex"),
                                "--report", str(doc / "report.tex"), "--candidate", candidate])


def test_every_claim_of_the_text_has_a_predicate_and_every_predicate_a_claim():
    in_text = report_claims.claim_sentences(REPORT.read_text())
    assert set(in_text) == set(report_claims.CLAIMS)
    assert all(len(sentence.split()) >= 4 for sentence in in_text.values())


def test_every_claim_holds_for_the_committed_results():
    states = report_claims.claim_states(report_numbers.load_results(ROOT / "doc" / "results"))
    assert {name: state for name, state in states.items() if state} == {}


def test_the_wording_never_branches_on_an_outcome():
    """At most six conditionals: the claim macro's and the two switches on the data used."""
    text = REPORT.read_text()
    assert len(re.findall(r"\\if[a-z]*", text)) <= 6
    assert set(re.findall(r"\\ifnum\\(\w+)", text)) <= {"PTwoShipped", "PThreeShipped"}
    assert len((SRC / "report_numbers.py").read_text().splitlines()) < 300


@pytest.fixture(scope="module")
def altered_build(tmp_path_factory):
    """The report built from the committed results with the first three seeds' ADDA put 5 points below
    their source models, and the long side run removed."""
    doc = copy_of_doc(tmp_path_factory.mktemp("altered") / "doc")
    path = doc / "results" / "problem3.json"
    results = json.loads(path.read_text())
    adda = results["adda"]
    for seed in range(3):
        adda["per_seed"][seed] = results["source_only"]["per_seed"][seed] - 0.05
        adda["gain_per_seed"][seed] = -0.05
    adda.update(problem3_adda.paired_gain_summary(adda["gain_per_seed"]), mean=sum(adda["per_seed"]) / len(adda["per_seed"]))
    path.write_text(json.dumps(results))
    (doc / "results" / "problem3_long.json").unlink()
    printed = subprocess.run([sys.executable, str(SRC / "report_numbers.py"), "--results", str(doc / "results"),
                              "--output", str(doc / "results.tex"), "--report", str(doc / "report.tex")],
                             capture_output=True, text=True, cwd=ROOT)
    return doc, printed, build_pdf(doc)


def test_a_failing_claim_is_named_with_its_sentence_and_marked_in_the_pdf(altered_build):
    doc, printed, text = altered_build
    assert printed.returncode == 0, printed.stderr
    sentence = report_claims.claim_sentences(REPORT.read_text())["p3-adda-gains-most-seeds"]
    assert f"claim p3-adda-gains-most-seeds [not supported by these results]: {sentence}" in printed.stdout
    assert re.search(r"and gains in 2 of the 5 seeds " + re.escape(MARK), text)
    states = report_claims.claim_states(report_numbers.load_results(doc / "results"))
    assert text.count(MARK) == sum(state == 1 for state in states.values())  # each failing claim marked once


def test_a_claim_on_a_side_run_not_made_is_marked_not_measured(altered_build):
    _, printed, text = altered_build
    assert "claim p3-long-aligns-without-gain [not measured]" in printed.stdout
    assert re.search(r"points from the source model.s \[not measured\]", text)  # .: a typographic apostrophe
    assert text.count("not measured") == text.count("[not measured]") + 1  # and its row of the side-run table


def test_the_committed_results_build_with_no_mark_and_their_numbers(tmp_path):
    doc = copy_of_doc(tmp_path / "doc")
    macros = generate(doc)
    text = build_pdf(doc)
    assert MARK not in text and "[not measured]" not in text and "??" not in text
    assert not re.search(r"(Reference|Citation) .* undefined", (doc / "report.log").read_text(errors="replace"))
    p2, p3 = (json.loads((doc / "results" / f"problem{k}.json").read_text()) for k in (2, 3))
    for value in (f"{100 * p2['after']['scored_half_failing_acc']:.1f}", f"{100 * p3['adda']['mean']:.1f}",
                  f"{100 * p3['source_only']['mean']:.1f}", "Candidate number: 42"):
        assert value in text, value
    assert macros is not None and (doc / "report.pdf").stat().st_size <= 15 * 2 ** 20


def test_a_quick_run_builds_and_says_it_is_not_the_full_runs(quick_outputs, tmp_path):
    root, runs = quick_outputs
    for name, result in runs.items():
        assert result.returncode == 0, f"{name}: {result.stderr[-2000:]}"
    doc = tmp_path / "doc"
    shutil.copytree(root / "out", doc)
    shutil.copy(REPORT, doc)
    states = generate(doc)
    assert states["full-runs"] == 1
    assert "full runs of the scripts in src/. " + MARK in build_pdf(doc)


def test_zip_holds_exactly_doc_and_src(tmp_path):
    root = tmp_path / "project"
    shutil.copytree(ROOT / "doc", root / "doc")
    shutil.copytree(SRC, root / "src", ignore=shutil.ignore_patterns("__pycache__"))
    for junk in ("data/problem2/train/x.png", "runs/problem2/a.pt", ".venv/bin/python",
                 "src/__pycache__/utils.cpython-311.pyc", "tests/test_x.py", "doc/report.aux"):
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


def test_the_hand_in_pins_the_same_packages_and_names_every_command():
    def pins(path):
        return sorted(line.strip() for line in path.read_text().splitlines() if line.strip() and not line.startswith("#"))
    assert pins(SRC / "requirements.txt") == pins(ROOT / "requirements.txt")
    commands = (SRC / "README.md").read_text()
    for script in ("problem1_checks.py", "problem2_traffic.py", "problem3_adda.py"):
        assert f"src/{script}" in commands
    for flags in ("--fill grey", "--seed 1", "--svhn-train-crops 2000", "--no-augment", "--adapt-iterations 10000"):
        assert flags in commands, flags
