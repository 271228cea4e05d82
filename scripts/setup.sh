#!/usr/bin/env bash
# The one place where anything is installed. Idempotent: a second run with nothing stale is instant.
#   1. .venv from requirements.txt, rebuilt when the file's hash changes;
#   2. TeX Live and poppler (pdftotext) from Debian's packages when latexmk/pdftotext are missing.
set -euo pipefail
cd "$(dirname "$0")/.."

# Any Python the pinned torch 2.14.1 supports: 3.10 to 3.13. 3.11 is preferred because this
# project's machines hold torch and torchvision for it on disk (no multi-GB download).
python_bin=${PYTHON:-}
if [ -z "$python_bin" ]; then
  for candidate in python3.11 python3.12 python3.13 python3.10 python3; do
    if command -v "$candidate" >/dev/null 2>&1; then python_bin=$candidate; break; fi
  done
fi
if [ -z "$python_bin" ]; then
  echo "setup: error: no python3 found; install Python 3.10-3.13 or set PYTHON=/path/to/python3" >&2
  exit 2
fi
version=$("$python_bin" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
case "$version" in
  3.10|3.11|3.12|3.13) ;;
  *) echo "setup: error: Python 3.10-3.13 is needed (found $python_bin = $version); set PYTHON=/path/to/python3.x" >&2
     exit 2 ;;
esac

stamp=".venv/.requirements-$(sha256sum requirements.txt | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  echo "setup: creating .venv from requirements.txt (torch is large: a few minutes the first time)"
  rm -rf .venv
  "$python_bin" -m venv .venv
  # pip warns about local index folders this machine does not have; those lines are noise.
  .venv/bin/pip install --quiet --disable-pip-version-check -r requirements.txt 2>&1 \
    | { grep -v "is ignored: it is neither a file nor a directory" || true; }
  test "${PIPESTATUS[0]}" -eq 0
  touch "$stamp"
fi

if ! command -v latexmk >/dev/null 2>&1 || ! command -v pdftotext >/dev/null 2>&1 \
   || ! kpsewhich siunitx.sty >/dev/null 2>&1; then
  echo "setup: installing TeX Live and poppler-utils from Debian (about 150 MB, once)"
  sudo=""
  if [ "$(id -u)" != 0 ]; then sudo=sudo; fi
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends latexmk texlive-latex-base \
    texlive-latex-recommended texlive-latex-extra texlive-fonts-recommended texlive-science \
    poppler-utils >/dev/null
fi
echo "setup: ready (.venv with $(.venv/bin/python -c 'import torch; print("torch", torch.__version__)'), $(latexmk -v | head -n 2 | tail -n 1 | cut -c1-40))"
