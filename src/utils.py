"""What the three exam scripts share, and nothing more.

Seeding, device choice, the common command-line flags, figures in one style, atomic results JSON,
resumable stage checkpoints, progress bars and one-line user errors.
"""
import argparse
import contextlib
import hashlib
import json
import os
import platform
import random
import shutil
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import confusion_matrix

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SHIPPED_DATA = PROJECT_ROOT / "datasets"  # the public data the project ships (datasets/README.md)


# --------------------------------------------------------------------------------------------------
# Errors the user can act on
# --------------------------------------------------------------------------------------------------
class UserError(Exception):
    """Bad input or environment: shown as one line naming the file and the problem, exit code 2."""


def run_main(main):
    """Run `main()`; a UserError becomes one line on stderr and exit code 2, never a traceback."""
    try:
        main()
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    except OSError as error:  # disk full, permissions changed mid-run: one line, the file if known
        files = " -> ".join(str(name) for name in (error.filename, error.filename2) if name is not None)
        print(f"error: {files + ': ' if files else ''}{error.strerror or error}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("\ninterrupted: run the same command again to resume from the last checkpoint",
              file=sys.stderr)
        sys.exit(130)


# --------------------------------------------------------------------------------------------------
# Reproducibility and device
# --------------------------------------------------------------------------------------------------
def seed_everything(seed):
    """Seed python, numpy and torch, and ask torch for deterministic kernels.

    On the CPU this makes a run bit-for-bit repeatable on the same machine and library versions;
    GPU kernels (and a different CPU/BLAS) may still differ in the last bits.
    """
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # needed for deterministic cuBLAS
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.benchmark = False


def choose_device(name):
    """'auto' picks CUDA when there is one; asking for CUDA without one is a user error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda was asked for, but torch sees no CUDA device")
    return torch.device(name)


# --------------------------------------------------------------------------------------------------
# What both networks' scripts compute alike
# --------------------------------------------------------------------------------------------------
def batched_outputs(model, inputs, batch_size=256, prepare=None):
    """`model(prepare(batch))` for the inputs a batch at a time, in eval mode and without
    gradients, on the model's device; the outputs come back on the CPU. `prepare` turns stored
    images into what the network sees (None: they already are)."""
    model.eval()
    device = next(model.parameters()).device
    with torch.no_grad():
        return torch.cat([model((batch if prepare is None else prepare(batch)).to(device)).cpu()
                          for batch in inputs.split(batch_size)])


def accuracy_report(labels, predictions, n_classes):
    """Accuracy, per-class accuracy (recall: the share of each true class predicted as itself)
    and the confusion matrix (rows: true class)."""
    matrix = confusion_matrix(labels, predictions, labels=range(n_classes))
    return {"acc": float((predictions == labels).float().mean()),
            "per_class": (matrix.diagonal() / np.maximum(matrix.sum(1), 1)).tolist(),
            "confusion": matrix.tolist()}


# ==================================================================================================
# Appendix: command line, figures, results files and checkpoints. No number depends on this part:
# a stage's checkpoint is keyed by the code above it (and by its script's code above its appendix).
# ==================================================================================================
# --------------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------------
def common_parser(description, resumable=False):
    """The flags every script shares; each script adds its own to the returned parser."""
    parser = argparse.ArgumentParser(description=description,
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.set_defaults(given_paths=[])
    parser.add_argument("--out", type=writable_folder, default="doc",  # a str: argparse checks it too
                        help="figures go to OUT/figures/, numbers to OUT/results/")
    parser.add_argument("--seed", type=int, default=0, help="seed for python, numpy and torch")
    parser.add_argument("--quick", action="store_true",
                        help="a small, fast smoke run (minutes become seconds; numbers are rough)")
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto",
                        help="where to compute")
    if resumable:
        parser.add_argument("--runs-dir", type=writable_folder, default="runs",
                            help="checkpoints and caches, so an interrupted run resumes")
        parser.add_argument("--fresh", action="store_true",
                            help="ignore this configuration's checkpoints and start over")
    return parser


def require_at_least_one(parser, args, names):
    """Counts (epochs, steps, images, ...) of 0 or less are a usage error, not a crash later."""
    for name in names:
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")


def writable_folder(text):
    """An output folder, checked before any work starts (not after a long run): it, or the
    nearest part of it that exists, must be a folder this user may write into."""
    path = Path(text)
    existing = next(part for part in [path, *path.parents] if part.exists() or part.is_symlink())
    if existing.is_symlink() and not existing.exists():
        raise argparse.ArgumentTypeError(f"{text}: {existing} is a link to nothing")
    if not existing.is_dir():
        raise argparse.ArgumentTypeError(f"{text}: {existing} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise argparse.ArgumentTypeError(f"{text}: no permission to write into {existing}")
    return path


class PathFlag(argparse.Action):
    """A path flag that remembers it was given: a folder the user typed is used as given, never
    replaced by the shipped data."""

    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, Path(values))
        namespace.given_paths = sorted(set(namespace.given_paths) | {self.dest})


def refuse_file_as_folder(path, expected):
    """A data flag names a folder; a file there (often the exam's zip) gets a one-line error."""
    if Path(path).is_file():
        raise UserError(f"{path}: a file, not a folder; give the folder that holds {expected} "
                        f"(unpack a zip first)")


def was_given(args, dest):
    return dest in args.given_paths


# --------------------------------------------------------------------------------------------------
# Figures and results
# --------------------------------------------------------------------------------------------------
def figure_style():
    """One look for every figure: readable at report size, no chart junk."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    plt.rcParams.update({
        "figure.dpi": 110, "savefig.dpi": 150, "savefig.bbox": "tight", "font.size": 9,
        "axes.titlesize": 9, "axes.labelsize": 9, "legend.fontsize": 8, "axes.spines.top": False,
        "axes.spines.right": False, "axes.grid": True, "grid.alpha": 0.3, "image.cmap": "viridis",
    })
    return plt


def save_figure(fig, out_dir, name):
    """Save `fig` as OUT/figures/NAME.pdf (for the report) and .png (for a quick look)."""
    import matplotlib.pyplot as plt
    figures = Path(out_dir) / "figures"
    figures.mkdir(parents=True, exist_ok=True)
    for suffix in (".pdf", ".png"):
        fig.savefig(figures / f"{name}{suffix}")
    plt.close(fig)
    return figures / f"{name}.pdf"


def draw_confusion(ax, matrix, names, as_percent=False, fontsize=9, rotation=0):
    """A confusion matrix (rows: true class) coloured by the share of each true class, with the
    count in every cell, or (as_percent) the share of its row in % in every cell of at least 1 %."""
    matrix = np.asarray(matrix)
    shares = matrix / np.maximum(matrix.sum(1, keepdims=True), 1)
    shown = ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    for i, j in np.ndindex(matrix.shape):
        if as_percent and shares[i, j] < 0.005:
            continue
        ax.text(j, i, f"{100 * shares[i, j]:.0f}" if as_percent else matrix[i, j], ha="center",
                va="center", fontsize=fontsize, color="white" if shares[i, j] > 0.5 else "black")
    ax.set_xticks(range(len(names)), names, rotation=rotation, ha="right" if rotation else "center")
    ax.set_yticks(range(len(names)), names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.grid(False)
    return shown


def write_json_atomic(path, payload):
    """Write JSON to a temp file in the same folder, then rename: a reader never sees half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w") as temp:
            json.dump(payload, temp, indent=2, default=_json_default)
            temp.flush()
            os.fsync(temp.fileno())
        os.replace(temp_name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp_name)
        raise


def _json_default(value):
    if isinstance(value, (np.integer, np.floating, np.bool_)):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, torch.device):
        return str(value)
    raise TypeError(f"cannot write {type(value).__name__} to JSON")


def package_versions():
    names = ["torch", "torchvision", "numpy", "scipy", "matplotlib", "scikit-learn", "pillow",
             "captum"]
    versions = {"python": platform.python_version()}
    for name in names:
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[name] = metadata.version(name)
    return versions


def write_results(args, problem, results, data_source, started_at, resumed_seconds=0.0):
    """Write OUT/results/problemN.json with the numbers and everything needed to trace them.
    compute_time_s adds the time the stages resumed from checkpoints took when they were computed."""
    arguments = dict(vars(args))
    payload = {
        **results,
        "data_source": data_source,
        "arguments": arguments,
        "seed": args.seed,
        "quick": args.quick,
        "versions": package_versions(),
        "wall_time_s": round(time.time() - started_at, 2),
        "compute_time_s": round(time.time() - started_at + resumed_seconds, 2),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    path = Path(args.out) / "results" / f"{problem}.json"
    write_json_atomic(path, payload)
    return path


# --------------------------------------------------------------------------------------------------
# Long runs: progress, stage timing, resumable checkpoints
# --------------------------------------------------------------------------------------------------
def progress(iterable=None, **kwargs):
    """A tqdm bar on a terminal; silent in logs (CI), where the stage lines say enough."""
    from tqdm.auto import tqdm
    kwargs.setdefault("dynamic_ncols", True)
    kwargs.setdefault("leave", False)
    kwargs.setdefault("disable", None)
    return tqdm(iterable, **kwargs)


def read_bookkeeping(path):
    """A checkpoint folder's JSON record (timings, code digests); an unreadable one is named in
    one line and started afresh (it only says which stages were timed and by which code)."""
    if not path.exists():
        return {}
    try:
        return json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as error:
        print(f"warning: {path} is unreadable ({type(error).__name__}); starting it afresh")
        return {}


def run_configuration(args, **extra):
    """What a run's checkpoints are keyed by: every flag that can change a number (not where the
    outputs go, nor --fresh or --device), plus `extra` (the data's folders and fingerprint)."""
    ignored = ("out", "fresh", "device", "runs_dir", "fixed_data_dir", "given_paths")
    return {**{k: v for k, v in vars(args).items() if k not in ignored}, **extra}


class Checkpoints:
    """Stage results under RUNS/<problem>/<config-hash>/, so that a rerun of the same configuration
    resumes where it stopped and a different configuration never reuses them. Each stage is also
    keyed by the code that computes numbers (`methods_digest` of the script files in `code` and of
    this one): a stage computed by other code is computed again, so the results are always those
    of the code that wrote them, while an edit to a figure (in an appendix) retrains nothing."""

    def __init__(self, runs_dir, problem, config, fresh=False, code=()):
        digest = hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode())
        self.directory = Path(runs_dir) / problem / digest.hexdigest()[:12]
        if fresh and self.directory.exists():
            shutil.rmtree(self.directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        write_json_atomic(self.directory / "config.json", config)
        self.timings = {}
        self.resumed = []
        self.resumed_seconds = 0.0
        self._timing_file = self.directory / "timings.json"
        self._stored = read_bookkeeping(self._timing_file)
        self.code_digest = methods_digest([*code, __file__])
        self._code_file = self.directory / "code.json"
        self._stage_code = read_bookkeeping(self._code_file)

    def path(self, name):
        return self.directory / name

    def reusable(self, name, path):
        """Whether `path`, stage `name`'s file, may be resumed: it exists and this code made it."""
        if not path.exists():
            return False
        if self._stage_code.get(name) != self.code_digest:
            print(f"[{name}] {path} was computed by other code than this; computing it again")
            return False
        return True

    def begin(self, name):
        """Stage `name` is being computed by this code (said before its first file is saved, so a
        run interrupted half-way resumes only under the same code)."""
        self._stage_code[name] = self.code_digest
        write_json_atomic(self._code_file, self._stage_code)

    def stage(self, name, compute):
        """Return the saved result of stage `name`, or compute, save and time it."""
        path = self.path(f"{name}.pt")
        if self.reusable(name, path):
            try:
                result = torch.load(path, weights_only=False)
            except Exception as error:  # truncated or corrupted: torch raises several types
                print(f"warning: [{name}] {path} is unreadable ({type(error).__name__}); computing it again")
            else:
                print(f"[{name}] resumed from {path}")
                self.note_resumed(name)
                return result
        self.begin(name)
        start = time.time()
        result = compute()
        save_atomic(result, path)
        self.record(name, time.time() - start)
        return result

    def record(self, name, seconds):
        """The time stage `name` took, kept beside its checkpoint for the runs that resume it."""
        self.timings[name] = self._stored[name] = round(seconds, 2)
        write_json_atomic(self._timing_file, self._stored)

    def note_resumed(self, name):
        self.resumed.append(name)
        if name in self._stored:  # the time it took when it was computed
            self.timings[name] = self._stored[name]
            self.resumed_seconds += self._stored[name]


def methods_digest(paths):
    """The first 16 hex digits of a SHA-256 over each source file's text above its appendix banner
    (a line starting '# Appendix'): the code that computes numbers, without plots and reports."""
    digest = hashlib.sha256()
    for path in paths:
        text = Path(path).read_text()
        digest.update(text.split("\n# Appendix", 1)[0].encode())
    return digest.hexdigest()[:16]


def file_digest(path):
    """The first 16 hex digits of a file's SHA-256: how a truth file recognises the files it describes."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]


def data_fingerprint(*paths):
    """A digest of the data files' names, sizes and modification times: part of a checkpoint's
    configuration, so that replacing the data (say, the shipped data by the exam's) starts over."""
    digest = hashlib.sha256()
    for root in map(Path, paths):
        files = sorted(root.rglob("*")) if root.is_dir() else [root]
        for path in files:
            if path.is_file():
                stat = path.stat()
                digest.update(f"{path.relative_to(root.parent)}|{stat.st_size}|{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


def save_atomic(obj, path):
    """torch.save through a temp file and a rename, so an interrupt never leaves a broken file. A
    failed write (torch reports a full disk as RuntimeError, not OSError) removes the temp file and
    becomes a one-line error naming the checkpoint."""
    path = Path(path)
    temp = path.with_name(f".{path.name}.tmp")
    try:
        torch.save(obj, temp)
        os.replace(temp, path)
    except (OSError, RuntimeError) as error:
        full = False
        with contextlib.suppress(OSError):  # measured before the partial file is removed
            full = shutil.disk_usage(path.parent).free < (1 << 20)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        raise UserError(f"{path}: {'no space left on device' if full else f'cannot be written ({error})'}") from None
