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
