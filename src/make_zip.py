"""Write homeexam_candidateXX.zip: exactly doc/ (the PDF, the TeX sources, figures and results) and
src/ (the code), as the exam's hand-in format asks. No data, checkpoints, caches or environment."""
import argparse
import os
import zipfile
from pathlib import Path

from utils import PROJECT_ROOT, UserError, run_main

LATEX_BUILD_PRODUCTS = {".aux", ".log", ".out", ".fls", ".fdb_latexmk", ".toc", ".bbl", ".blg",
                        ".synctex.gz", ".tmp"}


def hand_in_files(root):
    """Files under doc/ and src/ that belong in the hand-in."""
    for folder in ("doc", "src"):
        for path in sorted((root / folder).rglob("*")):
            relative = path.relative_to(root)
            if not path.is_file() or "__pycache__" in relative.parts or path.name.startswith("."):
                continue
            if "".join(path.suffixes[-1:]) in LATEX_BUILD_PRODUCTS or path.name.endswith(".synctex.gz"):
                continue
            yield relative


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--candidate", default="XX", help="candidate number in the file name")
    parser.add_argument("--root", type=Path, default=PROJECT_ROOT)
    args = parser.parse_args(argv)
    if not (args.root / "doc" / "report.pdf").exists():
        raise UserError(f"{args.root / 'doc' / 'report.pdf'}: missing; run `make report` first")
    target = args.root / f"homeexam_candidate{args.candidate}.zip"
    temporary = target.with_name(f".{target.name}.tmp")
    with zipfile.ZipFile(temporary, "w", zipfile.ZIP_DEFLATED) as archive:
        for relative in hand_in_files(args.root):
            archive.write(args.root / relative, relative.as_posix())
    os.replace(temporary, target)
    size = target.stat().st_size / 2 ** 20
    print(f"wrote {target} ({size:.1f} MiB)")


if __name__ == "__main__":
    run_main(main)
