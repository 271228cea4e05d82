"""Benchmark of Problems 2 and 3: per-stage times, throughput, FLOP rate and peak memory.

Runs each script's full default configuration from scratch (--fresh) on the default data (the
shipped public data when data/ holds no exam files) into a scratch folder, then prints what its results JSON timed, the
training throughput, the ResNet-18 training step's FLOP rate as a fraction of a large float32
matmul on this machine, and the peak resident memory of the run.

    .venv/bin/python scripts/benchmark.py [--problem 2 3] [--quick] [--full-size-memory]
"""
import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import torchvision
from torch.utils.flop_counter import FlopCounterMode

ROOT = Path(__file__).resolve().parent.parent


def run_script(script, extra, scratch):
    """Run one script in a child process; return its results, wall time and peak RSS (MiB)."""
    out, runs = scratch / script.stem / "out", scratch / script.stem / "runs"
    command = [sys.executable, str(script), "--fresh", "--out", str(out), "--runs-dir", str(runs), *extra]
    print("$", " ".join(command), flush=True)
    start = time.time()
    child = subprocess.Popen(command, cwd=ROOT)
    _, status, usage = __import__("os").wait4(child.pid, 0)
    wall = time.time() - start
    if status != 0:
        sys.exit(f"benchmark: {script.name} failed (status {status})")
    results = json.loads((out / "results" / f"{script.stem.split('_')[0]}.json").read_text())
    return results, wall, usage.ru_maxrss / 1024


def matmul_gflops(size=4096, repeats=5):
    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * size ** 3 * repeats / (time.perf_counter() - start) / 1e9


def resnet_training_gflops(image_size=64, batch_size=32, steps=6, channels_last=False):
    """FLOPs of one ResNet-18 training step (forward + backward, counted by torch's FlopCounterMode)
    divided by its measured time; optionally with weights and inputs in channels-last layout."""
    model = torchvision.models.resnet18(num_classes=5)
    images, labels = torch.randn(batch_size, 3, image_size, image_size), torch.randint(0, 5, (batch_size,))
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        images = images.contiguous(memory_format=torch.channels_last)
    optimiser = torch.optim.Adam(model.parameters(), 1e-3)

    def step():
        loss = torch.nn.functional.cross_entropy(model(images), labels)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()

    counter = FlopCounterMode(display=False)
    with counter:
        step()
    step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    seconds = (time.perf_counter() - start) / steps
    return counter.get_total_flops() / seconds / 1e9, counter.get_total_flops() / batch_size / 1e9


def report_stages(results, wall, peak_mib):
    print(f"  wall time {wall:.1f} s, peak memory {peak_mib:.0f} MiB")
    for stage, seconds in results["timings"].items():
        print(f"    {stage:20s} {seconds:8.1f} s")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--problem", type=int, nargs="+", default=[2, 3], choices=[2, 3])
    parser.add_argument("--quick", action="store_true", help="benchmark the --quick runs instead")
    parser.add_argument("--full-size-memory", action="store_true",
                        help="also: peak memory of Problem 3 with files of the full SVHN's and MNIST's "
                             "sizes (random pixels)")
    parser.add_argument("--flops-only", action="store_true",
                        help="only the matmul rate and the ResNet-18 training step's FLOP rate")
    args = parser.parse_args()
    extra = ["--quick"] if args.quick else []
    scratch = Path(tempfile.mkdtemp(prefix="benchmark-"))
    peak_gflops = matmul_gflops()
    print(f"float32 4096x4096 matmul: {peak_gflops:.0f} GFLOP/s on {torch.get_num_threads()} threads")
    if args.flops_only:
        for channels_last in (False, True):
            rates = [resnet_training_gflops(channels_last=channels_last) for _ in range(3)]
            per_image = rates[0][1]
            print(f"ResNet-18 training step at 64x64, batch 32, "
                  f"{'channels-last' if channels_last else 'contiguous (NCHW)'}: {per_image:.2f} GFLOP "
                  f"per image; 3 runs: " + ", ".join(f"{r:.0f} GFLOP/s = {r / peak_gflops:.0%}" for r, _ in rates)
                  + " of the matmul rate (goal >= 50%)")
        return
    if 2 in args.problem:
        results, wall, peak = run_script(ROOT / "src" / "problem2_traffic.py", extra, scratch)
        print(f"Problem 2 ({results['data_source']} data, {'quick' if args.quick else 'full'} run):")
        report_stages(results, wall, peak)
        n_train, epochs = results["n_images"]["train"], results["arguments"]["epochs"]
        train_seconds = results["timings"].get("train_before", float("nan"))
        print(f"  training throughput {n_train * epochs / train_seconds:.0f} images/s "
              f"(before-fix training, {epochs} epochs of {n_train} images)")
        achieved, per_image = resnet_training_gflops(results["image_size"], results["arguments"]["batch_size"])
        print(f"  ResNet-18 training step: {per_image:.2f} GFLOP per image, {achieved:.0f} GFLOP/s = "
              f"{achieved / peak_gflops:.0%} of the matmul rate (goal >= 50%)")
    if 3 in args.problem:
        results, wall, peak = run_script(ROOT / "src" / "problem3_adda.py", extra, scratch)
        print(f"Problem 3 ({results['data_source']} data, {'quick' if args.quick else 'full'} run):")
        report_stages(results, wall, peak)
        timings, arguments = results["timings"], results["arguments"]
        source_times = [v for k, v in timings.items() if k.startswith("source_")]
        if source_times:  # early stopping: each seed runs its own number of steps
            images = sum(results["source"]["steps_run"]) * arguments["batch_size"]
            print(f"  source training {images / sum(source_times):.0f} images/s")
        for method in ("adda", "mse"):
            times = [v for k, v in timings.items() if k.startswith(f"{method}_")]
            if times:
                seconds = sum(times) / len(times)
                print(f"  {method.upper()} {arguments['adapt_iterations'] / seconds:.1f} iterations/s "
                      f"({arguments['adapt_iterations'] * arguments['batch_size'] * 2 / seconds:.0f} "
                      f"images/s, source + target)")
    if args.full_size_memory:
        folder = write_full_size_svhn(scratch / "full-size")
        results, wall, peak = run_script(ROOT / "src" / "problem3_adda.py",
                                         ["--quick", "--seeds", "1", "--svhn-dir", str(folder)], scratch)
        print(f"Problem 3 with full-size SVHN ({results['n_images']['svhn_train']} + "
              f"{results['n_images']['svhn_test']}) and MNIST ({results['n_images']['mnist_train']} + "
              f"{results['n_images']['mnist_test']}), --quick --seeds 1: peak memory {peak:.0f} MiB "
              f"(goal < 2048 MiB), wall time {wall:.0f} s")


def write_full_size_svhn(folder):
    """Random pixels in SVHN files of the full data set's sizes (73,257 + 26,032): memory depends on
    the sizes, not on what the pixels show. MNIST is the shipped one, already complete."""
    import numpy as np
    import scipy.io
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name, count in (("train_32x32.mat", 73257), ("test_32x32.mat", 26032)):
        scipy.io.savemat(folder / name, {"X": rng.integers(0, 256, (32, 32, 3, count), dtype=np.uint8),
                                         "y": rng.integers(1, 11, (count, 1), dtype=np.uint8)})
    return folder


if __name__ == "__main__":
    main()
