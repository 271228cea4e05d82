"""Problem 2's acceptance check on the stand-in: for each seed, write a fresh stand-in (the seed picks
the trigger's kind and place), run the full default analysis on it and print the criteria.

    .venv/bin/python scripts/check_standin_seeds.py --seeds 0 1 2
"""
import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--extra", nargs=argparse.REMAINDER, default=[], help="more script flags")
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="standin-seeds-"))
    rows = []
    for seed in args.seeds:
        data, out = scratch / f"signs{seed}", scratch / f"out{seed}"
        script = str(ROOT / "src" / "problem2_traffic.py")
        subprocess.run([sys.executable, script, "--write-standin", str(data), "--seed", str(seed)], check=True)
        start = time.time()
        subprocess.run([sys.executable, script, "--data-dir", str(data), "--out", str(out), "--seed",
                        str(seed), "--runs-dir", str(scratch / "runs"), *args.extra], check=True)
        r = json.loads((out / "results" / "problem2.json").read_text())
        poisoned = r["truth"]["poisoned_class"]
        rows.append({
            "seed": seed, "trigger": r["truth"]["kind"], "poisoned": poisoned, "found": r["failing_class"],
            "val_before": r["before"]["val_acc"], "poisoned_test_before": r["before"]["test_per_class"][poisoned],
            "poisoned_test_after": r["after"]["test_per_class"][poisoned], "val_after": r["after"]["val_acc"],
            "test_after": r["after"]["test_acc"], "iou": r["trigger_iou"], "minutes": (time.time() - start) / 60})
    print("\nseed trigger poisoned        found?  val   poisoned test  after  val/test after   IoU   min")
    for row in rows:
        ok = (row["found"] == row["poisoned"] and row["val_before"] >= 0.95
              and row["poisoned_test_before"] <= 0.5 and row["poisoned_test_after"] >= 0.9
              and abs(row["val_after"] - row["test_after"]) <= 0.05
              and (row["trigger"] != "patch" or row["iou"] >= 0.5))
        print(f"{row['seed']:4d} {row['trigger']:7s} {row['poisoned']:15s} {str(row['found'] == row['poisoned']):6s} "
              f"{row['val_before']:.3f}  {row['poisoned_test_before']:.3f} -> {row['poisoned_test_after']:.3f}"
              f"   {row['val_after']:.3f}/{row['test_after']:.3f}  {row['iou']:.2f}  {row['minutes']:.1f}"
              f"  {'PASS' if ok else 'FAIL'}")


if __name__ == "__main__":
    main()
