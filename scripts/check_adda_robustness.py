"""Problem 3's robustness check: the final ADDA design on source models of different strength,
made from the SVHN crops the script reads (by default the shipped 4,000 training crops: fewer of
them, shorter or longer source training), three whole-pipeline seeds each. One row per run, its monitored curves, and one figure.

    .venv/bin/python scripts/check_adda_robustness.py --json doc/results/problem3_robustness.json

Each variant runs src/problem3_adda.py as a user runs it, with one flag changed (and --no-mse: the
check is about ADDA's curve). Nothing in problem3_adda.py is set from these runs: they measure
whether its reported encoder still ends near the best reading of its own run.
"""
import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
from utils import figure_style, save_figure  # noqa: E402

SCRIPT = ROOT / "src" / "problem3_adda.py"
VARIANTS = {
    "2,000 training crops": ["--svhn-train-crops", "2000"],
    "source 1,000 steps": ["--source-steps", "1000"],
    "source 4,000 steps": ["--source-steps", "4000"],
}


def run_variant(flags, out, runs_dir, seeds):
    """One full run of the script; its results JSON and the minutes it took."""
    start = time.time()
    subprocess.run([sys.executable, str(SCRIPT), "--no-mse", "--seeds", str(seeds), "--out", str(out),
                    "--runs-dir", str(runs_dir), *flags], check=True)
    return json.loads((Path(out) / "results" / "problem3.json").read_text()), (time.time() - start) / 60


def summarise(name, flags, results, minutes):
    """The variant's per-seed figures that the issue's criteria read."""
    adda = results["adda"]
    return {"variant": name, "flags": flags, "minutes": round(minutes, 1),
            "svhn_train_images": results["n_images"]["svhn_train"],
            "source_steps": results["source"]["steps"],
            "svhn_test_acc": results["source"]["svhn_test_per_seed"],
            "source_only": results["source_only"]["per_seed"], "adda": adda["per_seed"],
            "gain_per_seed": adda["gain_per_seed"], "best_monitored": adda["best_monitored"],
            "reported_monitored": adda["reported_monitored"], "drop_from_best": adda["drop_from_best"],
            "raw_final_acc": adda["raw_final_acc"], "monitor": adda["monitor"]}


def plot_curves(rows, out):
    """One panel per variant: each seed's averaged encoder (solid) and raw iterate (thin) on the
    monitored images, with that seed's source-only reading at iteration 0."""
    plt = figure_style()
    fig, axes = plt.subplots(1, len(rows), figsize=(2.6 * len(rows), 2.8), sharey=True, squeeze=False)
    for ax, row in zip(axes[0], rows):
        for k, (seed, curve) in enumerate(row["monitor"].items()):
            ax.plot(curve["iteration"], curve["averaged_acc"], color=f"C{k}", label=f"seed {seed}")
            ax.plot(curve["iteration"], curve["target_acc"], color=f"C{k}", lw=0.7, alpha=0.45)
        ax.set_title(f"{row['variant']}\n(SVHN test {100 * sum(row['svhn_test_acc']) / len(row['svhn_test_acc']):.0f} %)", fontsize=9)
        ax.set_xlabel("iteration")
    axes[0][0].set_ylabel("MNIST accuracy\n(monitored images)")
    axes[0][0].legend(fontsize=9, frameon=False, ncol=len(rows[0]["monitor"]), loc="upper center",
                      bbox_to_anchor=(0.5 * len(rows) + 0.05 * (len(rows) - 1), -0.25))  # below the panels
    return save_figure(fig, out, "p3_robustness_curves")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--scratch", type=Path, default=ROOT / "runs" / "robustness",
                        help="where each variant's figures, results and checkpoints go")
    parser.add_argument("--json", type=Path, help="write the rows here")
    parser.add_argument("--out", type=Path, default=ROOT / "doc",
                        help="its figures/ folder gets p3_robustness_curves.pdf")
    args = parser.parse_args()
    rows = []
    for name in args.variants:
        slug = name.replace(",", "").replace(" ", "-")
        results, minutes = run_variant(VARIANTS[name], args.scratch / slug, args.scratch / "checkpoints",
                                       args.seeds)
        rows.append(summarise(name, VARIANTS[name], results, minutes))
        row = rows[-1]
        print(f"{name}: SVHN test {row['svhn_test_acc']}, gain {[round(g, 3) for g in row['gain_per_seed']]}, "
              f"drop from best {[round(d, 3) for d in row['drop_from_best']]} ({minutes:.1f} min)")
    figure = plot_curves(rows, args.out)
    print(f"wrote {figure}")
    if args.json:
        args.json.write_text(json.dumps({"variants": rows}, indent=1))
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
