"""Shared test helpers: the scripts in src/ import as modules, and run as a user runs them."""
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src"
sys.path.insert(0, str(SRC))


def run_script(script, *args, cwd=None, timeout=600, src=SRC):
    """Run `python src/<script> args...` in a subprocess; return the CompletedProcess."""
    return subprocess.run([sys.executable, str(src / script), *map(str, args)], cwd=cwd or ROOT,
                          capture_output=True, text=True, timeout=timeout)


def load_script(name):
    """A development script of scripts/ (not part of the hand-in), imported as a module."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def run():
    return run_script


@pytest.fixture(scope="session")
def quick_outputs(tmp_path_factory):
    """Problems 1-3 run once with --quick, as a grader runs them: from the hand-in (doc/ and src/
    only, zipped and unzipped into an empty folder), with the commands of src/README.md, on the
    shipped public data (linked in beside it, as in a checkout; --quick makes Problem 2 use a few
    dozen photos per class). Shared by the end-to-end, report and zip tests. Returns (root, runs),
    with the figures and results of all three in root/out and the unzipped hand-in in root/hand-in."""
    import zipfile

    import make_zip
    root = tmp_path_factory.mktemp("quick")
    with zipfile.ZipFile(root / "hand-in.zip", "w") as archive:
        for relative in make_zip.hand_in_files(ROOT):
            archive.write(ROOT / relative, relative.as_posix())
    hand_in = root / "hand-in"
    zipfile.ZipFile(root / "hand-in.zip").extractall(hand_in)
    (hand_in / "datasets").symlink_to(ROOT / "datasets")
    common = ["--quick", "--out", root / "out"]
    runs = {
        "problem1": run_script("problem1_checks.py", *common, cwd=hand_in, src=hand_in / "src"),
        "problem2": run_script("problem2_traffic.py", *common, cwd=hand_in, src=hand_in / "src"),
        "problem3": run_script("problem3_adda.py", *common, cwd=hand_in, src=hand_in / "src"),
    }
    return root, runs
