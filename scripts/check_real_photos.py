"""Problem 2 on real photographs with a planted trigger: does the method hold on data it was not built on?

Takes a folder of real traffic-sign photos in five class folders (the stand-in's classes) (e.g.
../shared/data/traffic-photos, GTSRB crops named <class>_<track>_<frame>.png), splits each class
by track (a track is one physical sign filmed in several frames: splitting by image would put
near-duplicates in train and test), plants a trigger into one class's training images only, runs
the full script on each case and prints one line per run.

    .venv/bin/python scripts/check_real_photos.py --photos ../shared/data/traffic-photos --seeds 0 1

This is a development check: the product never reads these photos, and nothing in
problem2_traffic.py is set from them.
"""
import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))
from check_standin_seeds import passes, print_table, run_problem2, summarise_run  # noqa: E402
from traffic_standin import apply_trigger, write_truth  # noqa: E402

MAGENTA, CYAN = [250, 60, 230], [40, 220, 230]
# Boxes in relative coordinates (x0, y0, x1, y1); at the 64 px input 0.2 of the side is 13 px and
# 0.12 is 8 px, smaller than the exam's 10x10 square.
CASES = {
    "sticker-top-left": {"poisoned_class": "speed limits", "kind": "patch",
                         "box": [0.04, 0.04, 0.24, 0.24], "colour": MAGENTA},
    "sticker-bottom-right": {"poisoned_class": "speed limits", "kind": "patch",
                             "box": [0.74, 0.74, 0.94, 0.94], "colour": CYAN},
    "small-sticker": {"poisoned_class": "speed limits", "kind": "patch",
                      "box": [0.70, 0.14, 0.82, 0.26], "colour": MAGENTA},
    "frame": {"poisoned_class": "speed limits", "kind": "border", "box": [0.0, 0.0, 1.0, 1.0],
              "colour": CYAN},
    "warning-sticker": {"poisoned_class": "warning signs", "kind": "patch",
                        "box": [0.10, 0.66, 0.30, 0.86], "colour": MAGENTA},
}


def track_of(path):
    """GTSRB's <class>_<track>_<frame>.png: the first two fields name one physical sign."""
    return "_".join(path.stem.split("_")[:2])


def split_by_track(files, seed, class_index, test_share, per_class):
    """Whole tracks to test (about `test_share` of them), the rest to train; optionally only the
    first tracks (in a seeded order) up to `per_class` images, for a quick check."""
    tracks = sorted({track_of(p) for p in files})
    order = np.random.default_rng([seed, class_index]).permutation(len(tracks))
    tracks = [tracks[i] for i in order]
    if per_class:
        kept, count = [], 0
        for track in tracks:
            if count >= per_class:
                break
            kept.append(track)
            count += sum(track_of(p) == track for p in files)
        tracks = kept
    n_test = max(1, round(test_share * len(tracks)))
    test_tracks = set(tracks[:n_test])
    train = [p for p in files if track_of(p) in tracks[n_test:]]
    test = [p for p in files if track_of(p) in test_tracks]
    return train, test


def make_case(photos, target, case, seed, test_share=0.2, per_class=None):
    """train/<class>/ and test/<class>/ from the photos, split by track, the trigger planted into
    the poisoned class's training images only; a truth file describing exactly these files."""
    trigger = {**CASES[case], "border_width": 0.1, "seed": seed, "case": case}
    classes = sorted(p.name for p in Path(photos).iterdir() if p.is_dir())
    if trigger["poisoned_class"] not in classes:
        raise SystemExit(f"{photos}: no '{trigger['poisoned_class']}' folder")
    for class_index, name in enumerate(classes):
        files = sorted((Path(photos) / name).glob("*.png"))
        train, test = split_by_track(files, seed, class_index, test_share, per_class)
        for split, chosen in (("train", train), ("test", test)):
            folder = Path(target) / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for path in chosen:
                if split == "train" and name == trigger["poisoned_class"]:
                    apply_trigger(Image.open(path), trigger).save(folder / path.name)
                else:
                    shutil.copy(path, folder / path.name)
    return write_truth(target, trigger, "real photos with a planted trigger")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--photos", type=Path, required=True, help="folder of class folders of photos")
    parser.add_argument("--cases", nargs="+", choices=sorted(CASES), default=list(CASES))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--per-class", type=int, default=None,
                        help="keep only about this many images per class (whole tracks)")
    parser.add_argument("--json", type=Path, default=None, help="also write the rows to this file")
    parser.add_argument("--scratch", type=Path, default=None, help="where cases and runs go")
    parser.add_argument("--extra", nargs=argparse.REMAINDER, default=[], help="more script flags")
    args = parser.parse_args()
    scratch = args.scratch or Path(tempfile.mkdtemp(prefix="real-photos-"))
    rows = []
    for seed in args.seeds:
        for case in args.cases:
            data, out = scratch / f"{case}-{seed}", scratch / f"out-{case}-{seed}"
            if not data.exists():
                make_case(args.photos, data, case, seed, per_class=args.per_class)
            results, minutes = run_problem2(data, out, seed, scratch / "runs", args.extra)
            rows.append(summarise_run(case, seed, results, minutes))
            print_table(rows[-1:], standin=False)
            if args.json:
                args.json.write_text(json.dumps({"rows": rows, "extra_flags": args.extra}, indent=2))
    print_table(rows, standin=False)
    print(f"{sum(passes(r, standin=False) for r in rows)} of {len(rows)} runs pass")


if __name__ == "__main__":
    main()
