"""Problem 2's acceptance check on the stand-in: for each seed, write a fresh stand-in (the seed picks
the trigger's kind and place), run the full default analysis on it and print the criteria.

    .venv/bin/python scripts/check_standin_seeds.py --seeds 0 1 2 --json doc/results/problem2_seeds.json

The row format and the pass criteria are shared with check_real_photos.py.
"""
import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "src" / "problem2_traffic.py"


def run_problem2(data_dir, out, seed, runs_dir, extra=()):
    """One full run of the script as a user runs it; its results JSON and the minutes it took."""
    start = time.time()
    subprocess.run([sys.executable, str(SCRIPT), "--data-dir", str(data_dir), "--out", str(out),
                    "--seed", str(seed), "--runs-dir", str(runs_dir), *extra], check=True)
    results = json.loads((Path(out) / "results" / "problem2.json").read_text())
    return results, (time.time() - start) / 60


def summarise_run(case, seed, r, minutes):
    """One row: what the issue's acceptance asks, read from the results JSON and its truth."""
    poisoned = r["truth"]["poisoned_class"]
    occlusion = r["occlusion"]["before"]
    return {"case": case, "seed": seed, "trigger": r["truth"]["kind"], "poisoned": poisoned,
            "found": r["failing_class"] == poisoned, "iou": r["trigger_iou"],
            "val_before": r["before"]["val_acc"],
            "poisoned_test_before": r["before"]["test_per_class"][poisoned],
            "poisoned_test_after": r["after"]["test_per_class"][poisoned],
            "val_after": r["after"]["val_acc"], "test_after": r["after"]["test_acc"],
            "asr_before": r["attack_success_rate"]["before"], "asr_after": r["attack_success_rate"]["after"],
            "criterion_met": r["localisation"]["criterion_met"], "threshold": r["localisation"]["threshold"],
            "fix_rounds": len(r["fix_rounds"]),
            "occlusion_changes": {o["size_px"]: o["images_with_class_change_at_region"] for o in occlusion},
            "n_explained": len(r["explained_train_files"]), "minutes": round(minutes, 2)}


def passes(row, standin):
    ok = (row["found"] and row["poisoned_test_after"] >= 0.9 and row["asr_after"] <= 0.1
          and (row["trigger"] != "patch" or row["iou"] >= 0.5))
    if standin:  # the stand-in's extra criteria: a clear backdoor, and occlusion that shows it
        ok = ok and (row["val_before"] >= 0.95 and row["poisoned_test_before"] <= 0.5
                     and max(row["occlusion_changes"].values()) >= 0.8 * row["n_explained"])
    return ok


def print_table(rows, standin):
    print("\ncase               seed trigger poisoned       found IoU   poisoned test  ASR            "
          "val/test after  loc.     rounds occl. changes  min   ")
    for row in rows:
        changes = " ".join(f"{size}px:{n}" for size, n in row["occlusion_changes"].items())
        print(f"{row['case']:18s} {row['seed']:4d} {row['trigger']:7s} {row['poisoned']:14s} "
              f"{str(row['found']):5s} {row['iou']:.2f}  {row['poisoned_test_before']:.2f} -> "
              f"{row['poisoned_test_after']:.2f}   {row['asr_before']:.2f} -> {row['asr_after']:.2f}   "
              f"{row['val_after']:.3f}/{row['test_after']:.3f}   {row['threshold']:.2f}{'' if row['criterion_met'] else '!'}"
              f"     {row['fix_rounds']}      {changes:14s} {row['minutes']:4.1f}  "
              f"{'PASS' if passes(row, standin) else 'FAIL'}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--json", type=Path, default=None, help="also write the rows to this file")
    parser.add_argument("--extra", nargs=argparse.REMAINDER, default=[], help="more script flags")
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="standin-seeds-"))
    rows = []
    for seed in args.seeds:
        data, out = scratch / f"signs{seed}", scratch / f"out{seed}"
        subprocess.run([sys.executable, str(SCRIPT), "--write-standin", str(data), "--seed", str(seed)],
                       check=True)
        results, minutes = run_problem2(data, out, seed, scratch / "runs", args.extra)
        rows.append(summarise_run("stand-in", seed, results, minutes))
    print_table(rows, standin=True)
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "extra_flags": args.extra}, indent=2))


if __name__ == "__main__":
    main()
