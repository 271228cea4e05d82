"""Shared test helpers: the scripts in src/ import as modules, and run as a user runs them."""
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src"
SHARED_DATA = ROOT.parent / "shared" / "data"
sys.path.insert(0, str(SRC))


def run_script(script, *args, cwd=None, timeout=600):
    """Run `python src/<script> args...` in a subprocess; return the CompletedProcess."""
    return subprocess.run([sys.executable, str(SRC / script), *map(str, args)], cwd=cwd or ROOT,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def run():
    return run_script


@pytest.fixture(scope="session")
def quick_outputs(tmp_path_factory):
    """Problems 1-3 run once with --quick on small stand-ins, into one OUT folder (as `make all
    QUICK=1` would), shared by the end-to-end, report and zip tests. Returns (root, completed runs)."""
    import problem2_traffic
    import digits_standin
    root = tmp_path_factory.mktemp("quick")
    signs, digits = root / "signs", root / "digits"
    problem2_traffic.write_standin(signs, seed=0, train_per_class=80, test_per_class=20)
    digits.mkdir()
    digits_standin.write_svhn_standin({split: digits / name for split, name in
                                       digits_standin.SVHN_FILES.items()}, 0, 6000, 1000)
    digits_standin.write_mnist_standin(digits, seed=0, train_count=3000, test_count=1000)
    common = ["--quick", "--out", root / "out"]
    runs = {
        "problem1": run_script("problem1_checks.py", *common),
        "problem2": run_script("problem2_traffic.py", *common, "--data-dir", signs,
                               "--runs-dir", root / "runs"),
        "problem3": run_script("problem3_adda.py", *common, "--svhn-dir", digits, "--mnist-dir",
                               digits, "--runs-dir", root / "runs"),
    }
    return root, runs
