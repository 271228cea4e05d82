"""Problem 3: a wide LeNet-5 trained on SVHN, tested on MNIST, then adapted with ADDA.

Where each answer is (main() calls them in this order; every seed repeats the whole pipeline):
  3a answer_3a  the wide LeNet-5 of the exam's Fig. 1, trained on SVHN  WideLeNetEncoder, train_source
  3b answer_3b  the source model, unchanged, on MNIST                   per_class_report
  3c answer_3c  the discriminator replaced by a feature MSE (Fig. 3)    adapt, MseStep
  3d answer_3d  ADDA (Tzeng et al. 2017), a 500-500 discriminator       adapt, AdversarialStep
  Plots and the results file: the appendix at the bottom.

Data: SVHN as train_32x32.mat / test_32x32.mat (--svhn-dir), MNIST as the official IDX files (.gz
or not; also under torchvision's MNIST/raw/), a mnist.npz or a mnist.mat (--mnist-dir). A folder the
user gives is used as given; else each data set comes from data/problem3 when it holds its files,
otherwise from the shipped public data (datasets/: 5,000 real SVHN crops, the complete MNIST).
"""
import argparse
import copy
import gzip
import math
import struct
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.io
import scipy.stats
import torch
import torch.nn as nn
import torch.nn.functional as F
from sklearn.manifold import TSNE
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from torch.optim.lr_scheduler import LambdaLR

from utils import (SHIPPED_DATA, Checkpoints, PathFlag, UserError, batched_outputs, choose_device,
                   accuracy_report, common_parser, data_fingerprint, draw_confusion, figure_style,
                   progress, refuse_file_as_folder, require_at_least_one, run_configuration, run_main,
                   save_figure, seed_everything, was_given, write_results)

plt = figure_style()

SVHN_FILES = {"train": "train_32x32.mat", "test": "test_32x32.mat"}
MNIST_IDX = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
             "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
EXAM_DATA = Path("data/problem3")


# ==================================================================================================
# Config
# ==================================================================================================
def parse_arguments(argv=None):
    parser = common_parser(__doc__.split("\n")[0], resumable=True)
    parser.add_argument("--svhn-dir", action=PathFlag, default=EXAM_DATA,
                        help="folder with train_32x32.mat and test_32x32.mat; without them in this "
                             "default folder, the shipped 5,000 real SVHN crops")
    parser.add_argument("--mnist-dir", action=PathFlag, default=EXAM_DATA,
                        help="folder with the MNIST IDX files (.gz or not; or MNIST/raw/ below it), "
                             "mnist.npz or mnist.mat; without them in this default folder, the "
                             "shipped MNIST")
    parser.add_argument("--seeds", type=int, default=5,
                        help="whole-pipeline repeats (source training and adaptation), seeds SEED+k")
    model = parser.add_argument_group("wide LeNet-5 (3a)")
    model.add_argument("--conv-widths", type=int, nargs=2, default=[18, 48],
                       help="channels of C1 and C3: 3x the classic 6 and 16")
    model.add_argument("--fc-widths", type=int, nargs=2, default=[360, 252],
                       help="units of F5 and F6: 3x the classic 120 and 84")
    model.add_argument("--source-steps", type=int, default=2000,
                       help="most Adam steps of source training; the weights of the step with the "
                            "best accuracy on a stratified tenth held out of the SVHN training crops "
                            "are kept, and training stops after --source-patience readings without "
                            "a better one")
    model.add_argument("--source-patience", type=int, default=5,
                       help="readings (one per twentieth of --source-steps) without a better "
                            "held-out accuracy before source training stops")
    model.add_argument("--batch-size", type=int, default=128,
                       help="images per step, per domain, in source training and adaptation")
    model.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate, source training")
    model.add_argument("--source-weight-decay", type=float, default=2.5e-5,
                       help="L2 penalty on the weights in source training (ADDA's LeNet: 2.5e-5)")
    model.add_argument("--no-augment", action="store_true",
                       help="no affine jitter of the SVHN crops (source training and the source "
                            "features of the adaptation): a side run")
    model.add_argument("--svhn-train-crops", type=int, default=None,
                       help="train the source model on this many SVHN training images (spread over "
                            "the set) instead of all: a weaker source model, a side run")
    adapt = parser.add_argument_group("adaptation (3c, 3d): ADDA and the MSE variant alike")
    adapt.add_argument("--adapt-iterations", type=int, default=1500,
                       help="iterations of ADDA and of the MSE variant (the paper's code: 10000)")
    adapt.add_argument("--adapt-lr", type=float, default=2e-4,
                       help="peak Adam learning rate of both players (ADDA's recipe), annealed to "
                            "zero along a half cosine")
    adapt.add_argument("--discriminator-dropout", type=float, default=0.0,
                       help="dropout after each hidden layer of the discriminator (CDAN's code uses "
                            "0.5); 0 here, since at 0.5 the discriminator stayed at chance while a "
                            "fresh judge told the domains apart better after ADDA than before")
    adapt.add_argument("--mse-seeds", type=int, default=2,
                       help="the MSE variant (3c) runs on the first this many seeds (0: not at all)")
    adapt.add_argument("--monitor-every", type=int, default=150,
                       help="iterations between readings of the curves (MNIST accuracy: "
                            "monitoring only, it chooses nothing)")
    adapt.add_argument("--monitor-images", type=int, default=2000,
                       help="MNIST test images in each accuracy reading (the final accuracy "
                            "uses all of them)")
    args = parser.parse_args(argv)
    if args.quick:
        args.source_steps = min(args.source_steps, 300)
        args.adapt_iterations = min(args.adapt_iterations, 200)
        args.monitor_images = min(args.monitor_images, 1000)
        args.monitor_every = min(args.monitor_every, 50)
        args.seeds = min(args.seeds, 2)
        args.mse_seeds = min(args.mse_seeds, 1)
    require_at_least_one(parser, args, ("seeds", "source_steps", "source_patience", "adapt_iterations",
                                        "batch_size", "monitor_every"))
    if args.svhn_train_crops is not None and args.svhn_train_crops < 100:
        parser.error("--svhn-train-crops must be at least 100 (ten per digit to hold out)")
    if not 0 <= args.discriminator_dropout < 1 or args.mse_seeds < 0:
        parser.error("--discriminator-dropout must lie in [0, 1) and --mse-seeds be at least 0")
    return args


# ==================================================================================================
# Data: loaders for the real formats, with one-line errors naming the file
# ==================================================================================================
def read_mat(path, variables):
    """scipy.io.loadmat, with one-line errors; a MATLAB v7.3 file (HDF5) is refused with how to
    save it in the format scipy reads."""
    try:
        return scipy.io.loadmat(path)
    except NotImplementedError:  # scipy's answer to MATLAB v7.3, which is HDF5
        names = ", ".join(f"'{name}'" for name in variables)
        raise UserError(f"{path}: a MATLAB v7.3 (HDF5) file, which scipy cannot read; save it as "
                        f"v7 (MATLAB/Octave: load it, then save('{path.name}', {names}, '-v7'))") from None
    except Exception as error:
        raise UserError(f"{path}: not a readable .mat file ({type(error).__name__}: {error})") from None


def load_svhn_mat(path):
    """SVHN cropped digits: X uint8 (32, 32, 3, N), y (N, 1) in 1..10 where 10 is the digit 0.
    Returns uint8 images (N, 3, 32, 32) and labels 0..9; floats are made per batch (`normalise_contrast`)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: missing (expected SVHN's {path.name})")
    contents = read_mat(path, ["X", "y"])
    if "X" not in contents or "y" not in contents:
        raise UserError(f"{path}: has no variable X and y (found "
                        f"{sorted(k for k in contents if not k.startswith('__'))})")
    images, labels = contents["X"], contents["y"]
    if images.ndim != 4 or images.shape[:3] != (32, 32, 3) or images.dtype != np.uint8:
        raise UserError(f"{path}: X must be uint8 of shape (32, 32, 3, N), not {images.dtype} "
                        f"{images.shape}")
    labels = labels.reshape(-1)
    if labels.shape[0] != images.shape[3]:
        raise UserError(f"{path}: {images.shape[3]} images but {labels.shape[0]} labels")
    if labels.size and (labels.min() < 1 or labels.max() > 10 or np.any(labels != np.round(labels))):
        raise UserError(f"{path}: labels must be integers 1..10 (10 is the digit 0), found "
                        f"{labels.min()}..{labels.max()}")
    return (torch.from_numpy(np.ascontiguousarray(images.transpose(3, 2, 0, 1))),
            torch.from_numpy(remap_svhn_labels(labels)))


def remap_svhn_labels(labels):
    """The exam's hint: SVHN's label 10 is the digit 0; map to 0..9 like MNIST."""
    labels = np.asarray(labels).astype(np.int64).reshape(-1)
    return np.where(labels == 10, 0, labels)


def read_idx(path, expected_magic):
    """The IDX format of MNIST: big-endian magic, dimensions, then the uint8 body."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as handle:
            raw = handle.read()
    except (OSError, EOFError) as error:
        raise UserError(f"{path}: cannot be read ({error})") from None
    if len(raw) < 8:
        raise UserError(f"{path}: too short to be an IDX file")
    magic = struct.unpack(">I", raw[:4])[0]
    if magic != expected_magic:
        raise UserError(f"{path}: wrong magic number {magic} (expected {expected_magic})")
    n_dims = magic & 0xFF
    shape = struct.unpack(f">{n_dims}I", raw[4:4 + 4 * n_dims])
    body = raw[4 + 4 * n_dims:]
    if len(body) != int(np.prod(shape)):
        raise UserError(f"{path}: truncated body: {len(body)} bytes for shape {shape} "
                        f"({int(np.prod(shape))} expected)")
    return np.frombuffer(body, np.uint8).reshape(shape)


def find_idx(directory, stem):
    for name in (stem, stem + ".gz", stem.replace("-idx", ".idx"), stem.replace("-idx", ".idx") + ".gz"):
        if (directory / name).is_file():
            return directory / name
    return None


def mnist_folder(directory):
    """Where the MNIST files are: the folder itself, or torchvision's layout below it (MNIST/raw/
    or raw/); None when none of MNIST's files is anywhere there."""
    stems = [stem for pair in MNIST_IDX.values() for stem in pair]
    for folder in (directory, directory / "raw", directory / "MNIST" / "raw"):
        if (any(find_idx(folder, stem) for stem in stems) or (folder / "mnist.npz").exists()
                or (folder / "mnist.mat").exists()):
            return folder
    return None


def load_mnist(directory):
    """MNIST from the official IDX files (.gz or not), else mnist.npz, else mnist.mat; returns
    ({split: (images uint8 (N, 28, 28), labels int64)}, the files read)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise UserError(f"{directory}: no such folder (expected the MNIST files)")
    folder = mnist_folder(directory)
    if folder is None:
        raise UserError(f"{directory}: no MNIST files (expected train-images-idx3-ubyte[.gz] and the "
                        f"other three IDX files, or mnist.npz, or mnist.mat; MNIST/raw/ is searched too)")
    splits, files = {}, []
    if (folder / "mnist.npz").is_file() or (folder / "mnist.mat").is_file():
        path = folder / ("mnist.npz" if (folder / "mnist.npz").is_file() else "mnist.mat")
        if path.suffix == ".mat":
            contents = read_mat(path, ["x_train", "y_train", "x_test", "y_test"])
        else:
            try:
                contents = np.load(path)
            except Exception as error:
                raise UserError(f"{path}: cannot be read ({type(error).__name__}: {error})") from None
        for split in ("train", "test"):
            if f"x_{split}" not in contents or f"y_{split}" not in contents:
                raise UserError(f"{path}: needs x_train, y_train, x_test and y_test")
            images = np.asarray(contents[f"x_{split}"])
            if images.ndim != 3 or images.shape[1:] != (28, 28) or images.dtype != np.uint8:
                raise UserError(f"{path}: x_{split} must be uint8 (N, 28, 28), not {images.dtype} "
                                f"{images.shape}")
            splits[split] = check_mnist_pair(path, images, np.asarray(contents[f"y_{split}"]).reshape(-1))
        return splits, [path]
    for split, (image_stem, label_stem) in MNIST_IDX.items():
        image_path, label_path = find_idx(folder, image_stem), find_idx(folder, label_stem)
        for found, stem in ((image_path, image_stem), (label_path, label_stem)):
            if found is None:
                raise UserError(f"{folder / stem}: missing (or {stem}.gz); MNIST needs all four IDX files")
        images, labels = read_idx(image_path, 2051), read_idx(label_path, 2049)
        if images.ndim != 3 or images.shape[1:] != (28, 28):
            raise UserError(f"{image_path}: images must be 28x28, not {images.shape[1:]}")
        splits[split] = check_mnist_pair(image_path, images, labels)
        files += [image_path, label_path]
    return splits, files


def check_mnist_pair(path, images, labels):
    if len(images) != len(labels):
        raise UserError(f"{path}: {len(images)} images but {len(labels)} labels")
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise UserError(f"{path}: labels must be 0..9, found {labels.min()}..{labels.max()}")
    return torch.from_numpy(np.array(images)), torch.from_numpy(labels.astype(np.int64))


def mnist_to_network(images, batch_size=10000):
    """28x28 -> 32x32 (bilinear), still uint8 and one channel: the network's spatial size."""
    return torch.cat([F.interpolate(images[i:i + batch_size].float().unsqueeze(1), size=(32, 32),
                                    mode="bilinear", align_corners=False).clamp(0, 255).round()
                      .to(torch.uint8) for i in range(0, len(images), batch_size)])


def normalise_contrast(images_uint8):
    """Both domains alike, image by image: grey value, centred on the image's mean and divided by
    its standard deviation plus one grey level, repeated over three channels. Colour says nothing
    about a digit; per-image contrast normalisation (as in the SVHN literature) removes SVHN's
    varying brightness and contrast using no statistics of a domain, so it adapts nothing, and it
    leaves polarity to the adaptation. Called per batch: the data stay uint8 in memory."""
    images = images_uint8.float()
    if images.shape[1] == 3:
        images = (0.299 * images[:, :1] + 0.587 * images[:, 1:2] + 0.114 * images[:, 2:])
    mean = images.mean((1, 2, 3), keepdim=True)
    spread = images.std((1, 2, 3), keepdim=True)
    standardised = (images - mean) / (spread + 1.0)  # +1 grey level: a flat image stays flat, not noise
    return standardised.expand(-1, 3, -1, -1).contiguous(memory_format=torch.channels_last)


def spread_subset(total, count):
    """Indices of `count` images spread evenly over all `total`: MNIST's test set is ordered (its
    first half is the cleaner one, by its documentation), so its first images are no fair sample."""
    return torch.linspace(0, total - 1, min(count, total)).round().long()


def has_svhn_files(directory):
    return any((directory / name).exists() for name in SVHN_FILES.values())


def choose_data_folder(args, dest, has_files, shipped, shipped_label):
    """The one rule for where a data set comes from: a folder the user gives, as given; else the
    exam's files in data/problem3 when it holds that data set's; else the shipped public data.
    Returns the folder and its label (the results' data_source)."""
    folder = getattr(args, dest)
    if was_given(args, dest):
        return folder, shipped_label if folder.resolve() == shipped.resolve() else f"user folder {folder}"
    if has_files(folder):
        return folder, "exam"
    if not has_files(shipped):
        raise UserError(f"{folder}: holds no {dest.split('_')[0].upper()} files, and none are shipped at "
                        f"{shipped}; put the exam's files in {folder}")
    return shipped, shipped_label


def prepare_data(args):
    """SVHN and MNIST as uint8 tensors (MNIST at 32x32), their labels, and the files read; the
    folders read replace args.svhn_dir and args.mnist_dir, so the results name them. A folder with
    some but not all of a data set's files is an error naming the missing file."""
    for dest, expected in (("svhn_dir", "train_32x32.mat and test_32x32.mat"), ("mnist_dir", "the MNIST files")):
        refuse_file_as_folder(getattr(args, dest), expected)
    svhn_dir, svhn_source = choose_data_folder(args, "svhn_dir", has_svhn_files,
                                               SHIPPED_DATA / "svhn-subset", "public: SVHN subset")
    mnist_dir, mnist_source = choose_data_folder(args, "mnist_dir", lambda d: mnist_folder(d) is not None,
                                                 SHIPPED_DATA / "mnist", "public: MNIST")
    if not has_svhn_files(svhn_dir):  # only a given folder can lack them
        raise UserError(f"{svhn_dir / SVHN_FILES['train']}: missing (expected SVHN's train_32x32.mat and "
                        f"test_32x32.mat in {svhn_dir})")
    args.svhn_dir, args.mnist_dir = svhn_dir, mnist_dir
    svhn_paths = {split: svhn_dir / name for split, name in SVHN_FILES.items()}
    svhn = {split: load_svhn_mat(path) for split, path in svhn_paths.items()}
    if args.svhn_train_crops is not None:  # a weaker source model, for the robustness checks
        chosen = spread_subset(len(svhn["train"][1]), args.svhn_train_crops)
        svhn["train"] = (svhn["train"][0][chosen], svhn["train"][1][chosen])
    mnist_raw, mnist_files = load_mnist(mnist_dir)
    mnist = {split: (mnist_to_network(images), labels) for split, (images, labels) in mnist_raw.items()}
    return svhn, mnist, {"svhn": svhn_source, "mnist": mnist_source}, [*svhn_paths.values(), *mnist_files]


@dataclass
class Setup:
    """What every answer reads."""
    args: argparse.Namespace
    svhn: dict            # split -> (uint8 images (N, 3, 32, 32), labels 0..9)
    mnist: dict           # split -> (uint8 images (N, 1, 32, 32), labels 0..9)
    data_source: dict     # the results' data_source, per data set
    seeds: list           # one whole pipeline per seed
    device: torch.device
    checkpoints: Checkpoints
    started_at: float

    @property
    def out(self):
        return self.args.out


def set_up(args):
    """Data (see choose_data_folder), device, checkpoints."""
    started_at = time.time()
    seed_everything(args.seed)
    device = choose_device(args.device)
    svhn, mnist, data_source, data_files = prepare_data(args)
    config = run_configuration(args, svhn_dir=str(args.svhn_dir.resolve()), mnist_dir=str(args.mnist_dir.resolve()),
                               data_fingerprint=data_fingerprint(*data_files))
    checkpoints = Checkpoints(args.runs_dir, "problem3", config, fresh=args.fresh, code=[__file__])
    seeds = [args.seed + k for k in range(args.seeds)]
    print(f"Problem 3: SVHN ({data_source['svhn']}) {len(svhn['train'][1])} train / "
          f"{len(svhn['test'][1])} test; MNIST ({data_source['mnist']}) {len(mnist['train'][1])} "
          f"train / {len(mnist['test'][1])} test; seeds {seeds} (device {device})")
    return Setup(args, svhn, mnist, data_source, seeds, device, checkpoints, started_at)


# ==================================================================================================
# The wide LeNet-5 (exam Fig. 1): C1-P2-C3-P4-F5-F6 form the feature extractor, O the classifier
# ==================================================================================================
class WideLeNetEncoder(nn.Module):
    """32x32x3 -> C 5x5 (no padding, stride 1) + ReLU -> P 2x2/2 -> C 5x5 + ReLU -> P -> F + ReLU
    -> F + ReLU. Everything but the output layer: the features ADDA aligns."""

    def __init__(self, conv_widths=(18, 48), fc_widths=(360, 252)):
        super().__init__()
        c1, c3 = conv_widths
        self.layers = nn.Sequential(
            nn.Conv2d(3, c1, 5), nn.ReLU(), nn.MaxPool2d(2, 2),
            nn.Conv2d(c1, c3, 5), nn.ReLU(), nn.MaxPool2d(2, 2), nn.Flatten(),
            nn.Linear(c3 * 5 * 5, fc_widths[0]), nn.ReLU(),
            nn.Linear(fc_widths[0], fc_widths[1]), nn.ReLU())
        self.feature_dim = fc_widths[1]
        # Channels-last weights: PyTorch's CPU convolutions run about 1.3-2x faster with them here
        # (inputs follow); the numbers computed are the same up to rounding.
        self.to(memory_format=torch.channels_last)

    def forward(self, images):
        return self.layers(images)


def layer_shapes(encoder, classifier):
    """Each layer's output size for one 32x32x3 input (printed, and tested)."""
    shapes, x = [("input", [3, 32, 32])], torch.zeros(1, 3, 32, 32)
    for layer in list(encoder.layers) + [classifier]:
        x = layer(x)
        shapes.append((type(layer).__name__, list(x.shape[1:])))
    return shapes


def predict(encoder, classifier, images):
    """The digit each image is classified as."""
    return batched_outputs(nn.Sequential(encoder, classifier), images, 1024, normalise_contrast).argmax(1)


def features(encoder, images):
    """The encoder's features of each image (what ADDA aligns)."""
    return batched_outputs(encoder, images, 1024, normalise_contrast)


def accuracy(encoder, classifier, split):
    return (predict(encoder, classifier, split[0]) == split[1]).float().mean().item()


def encoder_from_state(state, args, device):
    """A feature extractor C1-F6 with the weights of `state` (a source or adapted encoder)."""
    encoder = WideLeNetEncoder(args.conv_widths, args.fc_widths).to(device)
    encoder.load_state_dict(state)
    return encoder


def load_source(source, args, device):
    """The frozen source encoder M_s and classifier C (dashed in the exam's Fig. 2)."""
    encoder = encoder_from_state(source["encoder"], args, device)
    classifier = nn.Linear(encoder.feature_dim, 10).to(device)
    classifier.load_state_dict(source["classifier"])
    for module in (encoder, classifier):
        module.requires_grad_(False)
        module.eval()
    return encoder, classifier


# ==================================================================================================
# 3a: train the wide LeNet-5 on SVHN
# ==================================================================================================
def endless_batches(next_epoch, batch_size):
    """Batches of `batch_size` indices, epoch after epoch (`next_epoch()` gives one epoch's order);
    an epoch's last partial batch is completed from the next epoch."""
    order = torch.empty(0, dtype=torch.long)
    while True:
        while len(order) < batch_size:
            order = torch.cat([order, next_epoch()])
        yield order[:batch_size]
        order = order[batch_size:]


def shuffled_batches(count, batch_size, generator):
    """Each pass over `count` images in a fresh random order (as ADDA's input queues shuffle)."""
    return endless_batches(lambda: torch.randperm(count, generator=generator), batch_size)


def affine_jitter(images, generator):
    """A small random affine distortion of each network input, drawn per image: rotation within
    +-10 degrees, scale within 0.9-1.1, shift within +-2 px, the border repeated into uncovered
    corners. The augmentation of the SVHN literature (Sermanet et al. 2012 jitter position, scale
    and rotation): a digit stays the same digit, so the model learns its shape and not the 4,000
    crops' exact pixels. No inversion: SVHN holds both polarities already."""
    n = len(images)
    draws = torch.rand(n, 4, generator=generator) * 2 - 1
    angle, scale = draws[:, 0] * math.radians(10), 1 + 0.1 * draws[:, 1]
    shift = draws[:, 2:] * 2 / 16  # affine_grid's units: the image's half-width, 16 px
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1),
                         torch.stack([sin, cos, shift[:, 1]], 1)], 1).to(images)
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, padding_mode="border", align_corners=False).contiguous(
        memory_format=torch.channels_last)


def network_input(images_uint8, generator=None):
    """normalise_contrast, then affine_jitter when a generator is given (training batches only)."""
    images = normalise_contrast(images_uint8)
    return images if generator is None else affine_jitter(images, generator)


def held_out_tenth(labels, seed):
    """A stratified tenth of the SVHN training crops, held out to choose source training's step
    count: (indices to train on, indices held out). SVHN labels only; never the test crops."""
    indices = np.arange(len(labels))
    fit, held = train_test_split(indices, test_size=0.1, stratify=labels.numpy(), random_state=seed)
    return torch.from_numpy(np.sort(fit)), torch.from_numpy(np.sort(held))


def train_source(svhn, seed, args, device):
    """Supervised cross-entropy on nine tenths of the SVHN training crops with Adam, each batch
    jittered (affine_jitter), with ADDA's LeNet regulariser: an L2 penalty of 2.5e-5 on the weights
    (not the biases), added to the gradient as TensorFlow's regularisation loss is. Early stopping
    (Prechelt 1998): the held-out tenth is read every twentieth of --source-steps; the weights of
    the best reading are kept, and training stops after --source-patience readings without a better
    one. The SVHN test crops are read at each reading for the curves only."""
    seed_everything(seed)
    encoder = WideLeNetEncoder(args.conv_widths, args.fc_widths).to(device)
    classifier = nn.Linear(encoder.feature_dim, 10).to(device)
    parameters = list(encoder.parameters()) + list(classifier.parameters())
    optimiser = torch.optim.Adam([
        {"params": [p for p in parameters if p.dim() > 1], "weight_decay": args.source_weight_decay},
        {"params": [p for p in parameters if p.dim() == 1], "weight_decay": 0.0}], lr=args.lr)
    images, labels = svhn["train"]
    fit, held = held_out_tenth(labels, seed)
    generator = torch.Generator().manual_seed(seed)
    jitter = None if args.no_augment else generator
    batches = shuffled_batches(len(fit), args.batch_size, generator)
    history = {"step": [], "train_loss": [], "train_acc": [], "held_out_acc": [], "test_acc": []}
    every = max(1, args.source_steps // 20)
    best = {"held_out_acc": -1.0}
    loss_sum, correct, seen = 0.0, 0, 0
    encoder.train()
    for step in progress(range(1, args.source_steps + 1), desc=f"source seed {seed}"):
        batch = fit[next(batches)]
        logits = classifier(encoder(network_input(images[batch], jitter).to(device)))
        loss = F.cross_entropy(logits, labels[batch].to(device))
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        loss_sum += loss.item() * len(batch)
        correct += (logits.argmax(1).cpu() == labels[batch]).sum().item()
        seen += len(batch)
        if step % every == 0 or step == args.source_steps:
            history["step"].append(step)
            history["train_loss"].append(loss_sum / seen)
            history["train_acc"].append(correct / seen)
            history["held_out_acc"].append(accuracy(encoder, classifier, (images[held], labels[held])))
            history["test_acc"].append(accuracy(encoder, classifier, svhn["test"]))
            loss_sum, correct, seen = 0.0, 0, 0
            encoder.train()
            if history["held_out_acc"][-1] > best["held_out_acc"]:
                best = {"held_out_acc": history["held_out_acc"][-1], "step": step,
                        "encoder": copy.deepcopy(encoder.state_dict()),
                        "classifier": copy.deepcopy(classifier.state_dict())}
            elif (step - best["step"]) // every >= args.source_patience:
                break
    encoder.load_state_dict(best["encoder"])
    classifier.load_state_dict(best["classifier"])
    return {"encoder": best["encoder"], "classifier": best["classifier"], "history": history,
            "chosen_step": best["step"], "steps_run": history["step"][-1],
            "svhn_train_acc": accuracy(encoder, classifier, (images[fit], labels[fit])),
            "svhn_held_out_acc": best["held_out_acc"],
            "svhn_test_acc": accuracy(encoder, classifier, svhn["test"])}


@dataclass
class SourceModels:
    runs: dict            # seed -> train_source(): the weights, the history, SVHN accuracies
    layer_shapes: list
    parameters: int       # the encoder's and the classifier's


def answer_3a(setup):
    """Train the wide LeNet-5 on SVHN, once per seed."""
    args = setup.args
    encoder = WideLeNetEncoder(args.conv_widths, args.fc_widths)
    shapes = layer_shapes(encoder, nn.Linear(encoder.feature_dim, 10))
    for name, shape in shapes:
        print(f"  {name:10s} -> {'x'.join(map(str, shape))}")
    sources = {}
    for seed in setup.seeds:
        sources[seed] = setup.checkpoints.stage(f"source_seed{seed}", lambda: train_source(
            setup.svhn, seed, args, setup.device))
        print(f"[3a] seed {seed}: step {sources[seed]['chosen_step']} kept; SVHN train "
              f"{sources[seed]['svhn_train_acc']:.3f}, held out {sources[seed]['svhn_held_out_acc']:.3f}, "
              f"test crops {sources[seed]['svhn_test_acc']:.3f}")
    plot_examples(setup.svhn, setup.mnist, setup.out)
    plot_source_curves(sources, setup.out)
    parameters = sum(p.numel() for p in encoder.parameters()) + 10 * (encoder.feature_dim + 1)
    return SourceModels(sources, shapes, parameters)


# ==================================================================================================
# 3b: the source model, unchanged, on MNIST
# ==================================================================================================
def per_class_report(encoder, classifier, split):
    """Accuracy overall and per digit, and the confusion matrix, on one split."""
    return accuracy_report(split[1], predict(encoder, classifier, split[0]), 10)


def feature_statistics(target_features, source_features):
    """How spread out the target features are, next to the source's (collapse shows as spread -> 0)."""
    return {"target_total_variance": float(target_features.var(0).sum()),
            "source_total_variance": float(source_features.var(0).sum())}


@dataclass
class SourceOnMnist:
    reports: dict         # seed -> per_class_report() on the MNIST test set
    inverted_acc: dict    # seed -> accuracy on the MNIST test images with inverted polarity
    feature_spread: dict  # feature_statistics() of the first seed's source encoder: MNIST and SVHN


def answer_3b(setup, sources):
    """Each seed's source model on the MNIST test set, and on the same images with inverted polarity
    (255 - x: MNIST's light digits on dark become dark on light), a test of the domain gap's
    explanation, read after the fact and used to choose nothing. The first seed's
    feature spread on MNIST next to SVHN's (the reference line of the feature-spread figure)."""
    images, labels = setup.mnist["test"]
    reports, inverted = {}, {}
    for seed, source in sources.runs.items():
        encoder, classifier = load_source(source, setup.args, setup.device)
        reports[seed] = per_class_report(encoder, classifier, (images, labels))
        inverted[seed] = accuracy(encoder, classifier, (255 - images, labels))
        print(f"[3b] seed {seed}: MNIST test accuracy, source only {reports[seed]['acc']:.3f} "
              f"(inverted polarity {inverted[seed]:.3f})")
    first_seed = setup.seeds[0]
    plot_confusion(reports[first_seed]["confusion"], f"source only on MNIST (seed {first_seed}): "
                   f"{reports[first_seed]['acc']:.1%}", setup.out, "p3_confusion_source_only")
    encoder, _ = load_source(sources.runs[first_seed], setup.args, setup.device)
    spread = feature_statistics(features(encoder, monitored_mnist(setup)[0]),
                                features(encoder, svhn_reference(setup)))
    return SourceOnMnist(reports, inverted, spread)


# ==================================================================================================
# The adaptation 3c and 3d share (batches, optimiser, schedule, monitoring, the domain judge)
# ==================================================================================================
def cosine_to_zero(iterations):
    """The learning-rate factor before iteration i + 1 of a half cosine from 1 to 0 over the
    schedule (Loshchilov & Hutter 2017, without restarts). The final iterate is what is reported,
    with no choice among iterates; a step size that ends at zero makes it the end of small steps
    rather than a sample of the game's last large ones."""
    return lambda i: 0.5 * (1.0 + math.cos(math.pi * min(i, iterations) / iterations))


def balanced_batches(labels, batch_size, generator):
    """Class-balanced batches of source indices: each epoch holds every class N // 10 times, each
    class's images in a fresh random order (cycled when a class has fewer), the epoch shuffled.
    SVHN's digits are far from uniform (a fifth of the crops are 1s); matching marginal feature
    distributions would pull MNIST towards SVHN's class frequencies (Zhao et al., ICML 2019).
    Balanced batches give the source side a uniform prior over digits, the maximum-entropy one:
    no MNIST label is read to choose it."""
    pools = [torch.nonzero(labels == digit).squeeze(1) for digit in torch.unique(labels)]
    queues = [torch.empty(0, dtype=torch.long) for _ in pools]
    per_class = max(1, len(labels) // len(pools))

    def take(k):
        while len(queues[k]) < per_class:
            queues[k] = torch.cat([queues[k], pools[k][torch.randperm(len(pools[k]), generator=generator)]])
        taken, queues[k] = queues[k][:per_class], queues[k][per_class:]
        return taken

    def next_epoch():
        epoch = torch.cat([take(k) for k in range(len(pools))])
        return epoch[torch.randperm(len(epoch), generator=generator)]
    return endless_batches(next_epoch, batch_size)


def domain_classifier_accuracy(source_features, target_features, seed):
    """The proxy A-distance's classifier (Ben-David et al. 2010; Ganin et al. 2016, sec. 5.1.1): a
    fresh classifier learns to tell source from target features on half of them, and its accuracy
    on the other half is returned. 0.5: the domains cannot be told apart; 1: they separate fully.
    A judge that did not play: a 500-500 ReLU network (the discriminator's shape, scikit-learn's
    MLP on standardised features), trained after the adaptation on frozen features. A collapse of
    the target features to one point is easy to tell from the source's spread: it scores near 1."""
    x = torch.cat([source_features, target_features]).numpy()
    y = np.r_[np.zeros(len(source_features)), np.ones(len(target_features))]
    x_fit, x_test, y_fit, y_test = train_test_split(x, y, test_size=0.5, stratify=y, random_state=seed)
    judge = make_pipeline(StandardScaler(), MLPClassifier((500, 500), early_stopping=True,
                                                          max_iter=200, random_state=seed))
    judge.fit(x_fit, y_fit)
    return float(judge.score(x_test, y_test))


def monitored_mnist(setup):
    """The MNIST test images (and labels) the curves are read on: --monitor-images of them, spread
    evenly over the test set."""
    images, labels = setup.mnist["test"]
    subset = spread_subset(len(labels), setup.args.monitor_images)
    return images[subset], labels[subset]


def svhn_reference(setup):
    """The SVHN test crops (never trained on) whose source features the feature spread and the
    domain judge are measured against: up to 1,000."""
    return setup.svhn["test"][0][:1000]


def adapt(name, seed, source, setup, step_class):
    """From the source encoder, train a target encoder M_t (initialised from M_s) for a fixed number
    of iterations with `step_class(target_encoder, optimiser, lr_factor, args)`, a callable
    step(M_s(x_s), x_t) -> dict of losses. ADDA and the MSE variant share all of this; only the loss
    differs:
    - Adam (beta1 0.5, ADDA's recipe) at ADDA's rate 2e-4, annealed to zero along a half cosine;
    - source batches class-balanced (balanced_batches), their features M_s(x_s) computed per batch
      from jittered crops (affine_jitter), so no two batches show the discriminator the same
      vectors; target batches are per-epoch shuffles of the MNIST training images;
    - the final iterate is reported; the MNIST test accuracy read along the way (on a spread subset)
      is for the curves only.
    After training, the domain judge (domain_classifier_accuracy) on source features of SVHN test
    crops against MNIST test features, before (source encoder) and after (adapted encoder)."""
    args, svhn, mnist, device = setup.args, setup.svhn, setup.mnist, setup.device
    seed_everything(seed)
    source_encoder, classifier = load_source(source, args, device)
    target_encoder = copy.deepcopy(source_encoder).requires_grad_(True)
    target_encoder.train()
    lr_factor = cosine_to_zero(args.adapt_iterations)
    optimiser = torch.optim.Adam(target_encoder.parameters(), lr=args.adapt_lr, betas=(0.5, 0.999))
    schedule = LambdaLR(optimiser, lr_factor)
    step = step_class(target_encoder, optimiser, lr_factor, args)
    generator = torch.Generator().manual_seed(seed)
    jitter = None if args.no_augment else generator
    source_images, source_labels = svhn["train"]
    fit, held = held_out_tenth(source_labels, seed)  # the crops the source model was trained on
    source_batches = balanced_batches(source_labels[fit], args.batch_size, generator)
    target_batches = shuffled_batches(len(mnist["train"][1]), args.batch_size, generator)
    monitor_images, monitor_labels = monitored_mnist(setup)
    source_reference = features(source_encoder, svhn_reference(setup))
    curves = {"iteration": [], "monitor_iteration": [], "target_acc": [], "target_total_variance": []}

    def monitor(iteration):
        target_features = features(target_encoder, monitor_images)
        with torch.no_grad():
            predictions = classifier(target_features.to(device)).argmax(1).cpu()
        curves["monitor_iteration"].append(iteration)
        curves["target_acc"].append((predictions == monitor_labels).float().mean().item())
        curves["target_total_variance"].append(
            feature_statistics(target_features, source_reference)["target_total_variance"])
        target_encoder.train()

    monitor(0)
    for iteration in progress(range(1, args.adapt_iterations + 1), desc=f"{name} seed {seed}"):
        with torch.no_grad():
            source_features = source_encoder(network_input(source_images[fit[next(source_batches)]],
                                                           jitter).to(device))
        losses = step(source_features, normalise_contrast(mnist["train"][0][next(target_batches)]).to(device))
        schedule.step()
        curves["iteration"].append(iteration)
        for key, value in losses.items():
            curves.setdefault(key, []).append(value)
        if iteration % args.monitor_every == 0 or iteration == args.adapt_iterations:
            monitor(iteration)
    target_encoder.eval()
    report = per_class_report(target_encoder, classifier, mnist["test"])
    judge_images = mnist["test"][0][spread_subset(len(mnist["test"][1]), len(source_reference))]
    judged = {when: domain_classifier_accuracy(source_reference, features(encoder, judge_images), seed)
              for when, encoder in (("before", source_encoder), ("after", target_encoder))}
    held_out_gap = (discriminator_held_out_gap(step.discriminator, source_encoder, source_images[fit],
                                               source_images[held], device)
                    if hasattr(step, "discriminator") else None)
    return {"acc": report["acc"], "report": report, "curves": curves,
            "feature_statistics": feature_statistics(features(target_encoder, monitor_images), source_reference),
            "target_encoder": target_encoder.state_dict(), "domain_classifier_acc": judged,
            "discriminator_held_out_gap": held_out_gap,
            "best_monitored": max(curves["target_acc"]), "final_monitored": curves["target_acc"][-1]}


# ==================================================================================================
# 3c: the discriminator replaced by an MSE between target and source features
# ==================================================================================================
class MseStep:
    """3c, exam Fig. 3: minimise ||M_t(x_t) - M_s(x_s)||^2 for UNPAIRED x_s, x_t. Its minimiser maps
    every target image to the mean source feature, whatever the digit. (`lr_factor` anneals a
    second player; the MSE variant has none.)"""

    def __init__(self, target_encoder, optimiser, lr_factor, args):
        self.target_encoder, self.optimiser = target_encoder, optimiser

    def __call__(self, source_features, target_images):
        loss = F.mse_loss(self.target_encoder(target_images), source_features)
        self.optimiser.zero_grad()
        loss.backward()
        self.optimiser.step()
        return {"mse_loss": loss.item()}


def mse_floor(adaptation, feature_dim):
    """The lowest expected MSE against a random source feature: tr(Sigma_s) / dimension, reached
    when every target feature sits at the source mean (3c)."""
    return adaptation["feature_statistics"]["source_total_variance"] / feature_dim


def answer_3c(setup, sources):
    """The MSE variant on the first --mse-seeds seeds, trained exactly like ADDA: only the loss
    differs."""
    runs = {}
    for seed in setup.seeds[:setup.args.mse_seeds]:
        runs[seed] = setup.checkpoints.stage(f"mse_seed{seed}", lambda: adapt(
            "MSE", seed, sources.runs[seed], setup, MseStep))
        print(f"[3c] seed {seed}: MSE variant, MNIST test accuracy {runs[seed]['acc']:.3f} (MSE at the "
              f"end {settled_loss(runs[seed], 'mse_loss'):.2f}; its floor tr(Sigma_s)/d "
              f"{mse_floor(runs[seed], setup.args.fc_widths[-1]):.2f})")
    return runs


# ==================================================================================================
# 3d: ADDA (Tzeng et al. 2017) with a 500-500 discriminator
# ==================================================================================================
def make_discriminator(feature_dim, hidden=500, dropout=0.0):
    """Two 500-unit ReLU layers and the output layer (a domain logit), as the exam and ADDA's
    SVHN->MNIST setting (Tzeng et al. 2017, sec. 5.1) prescribe; dropout after each hidden layer
    when asked for."""
    hidden_layer = lambda inputs: [nn.Linear(inputs, hidden), nn.ReLU()] + ([nn.Dropout(dropout)] if dropout else [])  # noqa: E731
    return nn.Sequential(*hidden_layer(feature_dim), *hidden_layer(hidden), nn.Linear(hidden, 1))


class AdversarialStep:
    """3d, ADDA (Tzeng et al. 2017, sec. 4, eq. 9): one alternating update. The discriminator learns
    source = 1, target = 0; the target encoder then minimises the GAN loss with inverted labels,
    -log D(M_t(x_t)), which gives stronger gradients than maximising the discriminator's loss.
    Both players use Adam at the same rate on the same annealing, as the paper's code does."""

    def __init__(self, target_encoder, target_optimiser, lr_factor, args):
        self.target_encoder, self.target_optimiser = target_encoder, target_optimiser
        device = next(target_encoder.parameters()).device
        self.discriminator = make_discriminator(target_encoder.feature_dim,
                                                dropout=args.discriminator_dropout).to(device)
        self.discriminator_optimiser = torch.optim.Adam(self.discriminator.parameters(),
                                                        lr=args.adapt_lr, betas=(0.5, 0.999))
        self.discriminator_schedule = LambdaLR(self.discriminator_optimiser, lr_factor)

    def __call__(self, source_features, target_images):
        target_features = self.target_encoder(target_images)
        domain_logits = self.discriminator(torch.cat([source_features, target_features.detach()])).squeeze(1)
        domain_labels = torch.cat([torch.ones(len(source_features)),
                                   torch.zeros(len(target_features))]).to(domain_logits.device)
        discriminator_loss = F.binary_cross_entropy_with_logits(domain_logits, domain_labels)
        self.discriminator_optimiser.zero_grad()
        discriminator_loss.backward()
        self.discriminator_optimiser.step()
        self.discriminator_schedule.step()

        inverted = self.discriminator(target_features).squeeze(1)
        target_loss = F.binary_cross_entropy_with_logits(inverted, torch.ones_like(inverted))
        self.target_optimiser.zero_grad()
        target_loss.backward()
        self.target_optimiser.step()
        return {"discriminator_loss": discriminator_loss.item(), "target_loss": target_loss.item(),
                "discriminator_acc": ((domain_logits > 0).float() == domain_labels).float().mean().item()}


def discriminator_held_out_gap(discriminator, source_encoder, trained_crops, held_crops, device):
    """Whether the discriminator memorised the source crops: its mean probability 'source' on the
    crops it was trained on minus that on the held-out tenth (never shown to it), both through the
    frozen source encoder, without jitter or dropout. Near 0: no memorisation."""
    discriminator.eval()
    count = min(len(trained_crops), len(held_crops))
    with torch.no_grad():
        means = [torch.sigmoid(discriminator(features(source_encoder, crops[:count]).to(device))).mean().item()
                 for crops in (trained_crops, held_crops)]
    return means[0] - means[1]


def tsne_embeddings(source_encoder_state, target_encoder_state, setup):
    """t-SNE (sklearn) of the first SVHN and MNIST test images' features, before (source encoder on
    both) and after ADDA (source encoder on SVHN, adapted encoder on MNIST)."""
    svhn, mnist = setup.svhn, setup.mnist
    encoder = encoder_from_state(source_encoder_state, setup.args, setup.device)
    n = min(300 if setup.args.quick else 500, len(svhn["test"][1]), len(mnist["test"][1]))
    source_features = features(encoder, svhn["test"][0][:n])
    domains = np.r_[np.zeros(n), np.ones(n)]
    labels = np.r_[svhn["test"][1][:n].numpy(), mnist["test"][1][:n].numpy()]
    result = []
    for title, state in (("before adaptation\n(source encoder on MNIST)", source_encoder_state),
                         ("after ADDA\n(target encoder on MNIST)", target_encoder_state)):
        encoder.load_state_dict(state)
        target_features = features(encoder, mnist["test"][0][:n])
        points = TSNE(2, init="pca", perplexity=30, random_state=setup.args.seed).fit_transform(
            torch.cat([source_features, target_features]).numpy())
        result.append((title, points, domains, labels))
    return result


def tsne_class_separation(embeddings):
    """How well the MNIST points sit with their own digit's SVHN points in each t-SNE panel: the
    share of MNIST points whose nearest SVHN neighbour has the same digit (report's t-SNE sentence)."""
    shares = []
    for _, points, domains, labels in embeddings:
        source, target = points[domains == 0], points[domains == 1]
        nearest = ((target[:, None, :] - source[None, :, :]) ** 2).sum(-1).argmin(1)
        shares.append(float((labels[domains == 0][nearest] == labels[domains == 1]).mean()))
    return {"before": shares[0], "after": shares[1]}


@dataclass
class AdaptedRuns:
    runs: dict            # seed -> adapt()
    tsne_same_digit_neighbour: dict  # the first seed's t-SNE: MNIST points beside their own digit


def answer_3d(setup, sources, source_only, mse_runs):
    """ADDA from each seed's source model, its curves beside the MSE variant's (3c) and source-only
    accuracy (3b); for the first seed, a t-SNE of where its MNIST features land among SVHN's."""
    runs = {}
    for seed, source in sources.runs.items():
        runs[seed] = setup.checkpoints.stage(f"adda_seed{seed}", lambda: adapt(
            "ADDA", seed, source, setup, AdversarialStep))
        print(f"[3d] seed {seed}: ADDA, MNIST test accuracy {runs[seed]['acc']:.3f} (discriminator "
              f"loss at the end {settled_loss(runs[seed]):.3f}; log 2 = 0.693)")
    first_seed = setup.seeds[0]
    plot_confusion(runs[first_seed]["report"]["confusion"], f"ADDA (seed {first_seed}) on MNIST: "
                   f"{runs[first_seed]['acc']:.1%}", setup.out, "p3_confusion_adda")
    encoders = (sources.runs[first_seed]["encoder"], runs[first_seed]["target_encoder"])
    tsne_start = time.time()
    embeddings = tsne_embeddings(*encoders, setup)
    plot_tsne(embeddings, setup.out)
    setup.checkpoints.timings["tsne"] = round(time.time() - tsne_start, 2)
    plot_adaptation_curves(runs, mse_runs, source_only.reports, setup.out)
    plot_feature_statistics(runs, mse_runs, source_only.feature_spread["source_total_variance"], setup.out)
    return AdaptedRuns(runs, tsne_class_separation(embeddings))


def main(argv=None):
    setup = set_up(parse_arguments(argv))
    sources = answer_3a(setup)                                 # wide LeNet-5 on SVHN, per seed
    source_only = answer_3b(setup, sources)                    # unchanged on MNIST
    mse_runs = answer_3c(setup, sources)                       # MSE instead of D, first seeds
    adda = answer_3d(setup, sources, source_only, mse_runs)    # ADDA, beside 3b and 3c
    write_problem3_results(setup, sources, source_only, mse_runs, adda)


# ==================================================================================================
# Appendix: plots
# ==================================================================================================
def plot_examples(svhn, mnist, out):
    fig, axes = plt.subplots(3, 12, figsize=(8, 2.8))
    svhn_images = svhn["train"][0][:12]
    rows = [("SVHN", svhn_images, svhn["train"][1]),
            ("SVHN\nnetwork input", normalise_contrast(svhn_images)[:, :1], svhn["train"][1]),
            ("MNIST", mnist["train"][0][:12], mnist["train"][1])]
    for row, (name, images, labels) in zip(axes, rows):
        # a uint8 image on its 0-255 scale, the network's (float, one grey channel) input on its own range
        scale = {"vmin": 0, "vmax": 255} if images.dtype == torch.uint8 else {}
        for ax, image, label in zip(row, images.permute(0, 2, 3, 1).numpy(), labels):
            ax.imshow(image[..., 0] if image.shape[2] == 1 else image, cmap="gray", **scale)
            ax.set_title(str(int(label)), fontsize=10.5)
            ax.axis("off")
        row[0].text(-6, 16, name, ha="right", va="center", fontsize=10.5)
    save_figure(fig, out, "p3_examples")


def plot_source_curves(sources, out):
    fig, axes = plt.subplots(1, 2, figsize=(6.6, 2.7))  # printed at about this width
    kept = {"marker": "o", "mec": "k", "mew": 0.5}
    for k, (seed, source) in enumerate(sources.items()):
        history, colour = source["history"], f"C{k}"
        axes[0].plot(history["step"], history["train_loss"], color=colour, label=f"seed {seed}")
        axes[1].plot(history["step"], history["held_out_acc"], color=colour, label=f"seed {seed}")
        axes[1].plot(history["step"], history["train_acc"], ":", color=colour)
        axes[1].plot(source["chosen_step"], source["svhn_held_out_acc"], ls="", color=colour, **kept)
    styles = [plt.Line2D([], [], ls="-", color="0.4", label="held-out tenth"),
              plt.Line2D([], [], ls=":", color="0.4", label="training batches"),
              plt.Line2D([], [], ls="", color="0.4", label="step kept", **kept)]
    for ax, title in zip(axes, ("cross-entropy on the training batches", "SVHN accuracy")):
        ax.set(title=title, xlabel="optimiser step")
    axes[1].legend(handles=styles, fontsize=8, loc="lower right")
    fig.legend(*axes[0].get_legend_handles_labels(), fontsize=8, loc="upper center", ncol=len(sources),
               bbox_to_anchor=(0.5, -0.05), frameon=False)
    save_figure(fig, out, "p3_source_training")


def plot_confusion(matrix, title, out, name):
    fig, ax = plt.subplots(figsize=(3.4, 3.0))  # printed at about this width, two side by side
    # each digit's accuracy on the diagonal: the report's text quotes them
    shown = draw_confusion(ax, matrix, [str(digit) for digit in range(10)], as_percent=True, fontsize=7)
    fig.colorbar(shown, ax=ax, fraction=0.046, pad=0.04, label="share of the true digit's images (cells: %)")
    ax.set(xlabel="predicted digit", ylabel="true digit")
    ax.set_title(title, fontsize=9)
    save_figure(fig, out, name)


def plot_adaptation_curves(adda_runs, mse_runs, source_only, out):
    """ADDA's losses, the MSE variant's loss and the MNIST accuracy along the way (a spread subset
    of the test set, monitoring only); the reported final accuracies (whole test set) are marked."""
    fig, axes = plt.subplots(1, 3 if mse_runs else 2, figsize=(7.4 if mse_runs else 6.8, 3.0),
                             gridspec_kw={"wspace": 0.5 if mse_runs else 0.75})
    losses, mse, accuracy = axes if mse_runs else (axes[0], None, axes[1])
    seeds = f"{len(adda_runs)} seeds" if len(adda_runs) > 1 else f"seed {next(iter(adda_runs))}"
    reported = {"marker": "*", "ms": 9, "mec": "k", "mew": 0.5}
    for k, (seed, adaptation) in enumerate(adda_runs.items()):
        curves = adaptation["curves"]
        for key, colour, label in (("discriminator_loss", "C3", "discriminator D"),
                                   ("target_loss", "C0", "target encoder $M_t$")):
            values, x = np.asarray(curves[key], float), curves["iteration"]
            if len(values) >= 25:  # a moving average over 25 iterations
                values = np.convolve(values, np.ones(25) / 25, mode="valid")
            losses.plot(x[len(x) - len(values):], values, color=colour, lw=0.8,
                        label=f"{label} ({seeds})" if k == 0 else None)
        monitored = curves["monitor_iteration"]
        accuracy.plot(monitored, curves["target_acc"], color=f"C{k}", lw=1, label=f"seed {seed}")
        accuracy.plot(monitored[-1], adaptation["acc"], ls="", color=f"C{k}", **reported)
    losses.axhline(np.log(2), color="k", lw=0.8, ls=":", label="log 2 (D at chance)")
    losses.set(title="ADDA losses\n(moving average)", ylabel="binary cross-entropy")
    for k, (seed, adaptation) in enumerate(mse_runs.items()):
        curves = adaptation["curves"]
        mse.semilogy(curves["iteration"], curves["mse_loss"], color=f"C{k}", lw=0.8, label=f"seed {seed}")
    if mse_runs:
        mse.set(title="MSE variant: feature MSE", ylabel="mean squared error (log)")
        mse.yaxis.set_major_locator(plt.LogLocator(subs=(1, 2, 5)))
        mse.yaxis.set_major_formatter(plt.FormatStrFormatter("%g"))
        mse.yaxis.set_minor_formatter(plt.NullFormatter())
    source_mean = np.mean([report["acc"] for report in source_only.values()])
    accuracy.axhline(source_mean, color="k", lw=0.8, ls="--", label="source only, mean over seeds")
    accuracy.plot([], [], ls="", color="0.5", label="reported (whole test set)", **reported)
    accuracy.set(title="ADDA on MNIST\n(curves: monitoring subset)", ylabel="MNIST test accuracy")
    for ax in fig.axes:
        ax.set_xlabel("iteration")
        ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.2), frameon=False)
    save_figure(fig, out, "p3_adaptation_curves")


def plot_feature_statistics(adda_runs, mse_runs, source_total_variance, out):
    """A variance is never negative: a log axis shows the collapse over its whole range."""
    fig, ax = plt.subplots(figsize=(5.6, 3.0))
    for label, runs, style in (("ADDA", adda_runs, "-"), ("MSE", mse_runs, "--")):
        for k, (seed, adaptation) in enumerate(runs.items()):
            curves = adaptation["curves"]
            ax.plot(curves["monitor_iteration"], curves["target_total_variance"], style,
                    color=f"C{k}", label=f"{label} seed {seed}")
    ax.axhline(source_total_variance, color="k", lw=0.8,
               label=f"source features (SVHN), seed {next(iter(adda_runs))}")
    ax.set(yscale="log", xlabel="iteration", ylabel="total variance of\nMNIST features")
    ax.legend(fontsize=9, ncol=3, loc="upper center", bbox_to_anchor=(0.45, -0.22), frameon=False)
    save_figure(fig, out, "p3_feature_spread")


def plot_tsne(embeddings, out):
    fig, axes = plt.subplots(1, 2, figsize=(7.2, 3.5))  # printed at about this width
    for ax, (title, points, domains, labels) in zip(axes, embeddings):
        # SVHN as open rings, MNIST as filled triangles: told apart by shape in print, coloured by digit.
        colours = plt.cm.tab10(labels.astype(int))
        source, target = domains == 0, domains == 1
        ax.scatter(*points[source].T, s=22, facecolors="none", edgecolors=colours[source], linewidths=0.7)
        ax.scatter(*points[target].T, s=9, marker="^", c=colours[target], linewidths=0)
        ax.set_title(title, fontsize=10)
        ax.set(xticks=[], yticks=[])
    # One legend below both panels, so that it covers no points.
    markers = [plt.Line2D([], [], ls="", marker="o", ms=5, mfc="none", mec="0.3",
                          label="SVHN (source): rings"),
               plt.Line2D([], [], ls="", marker="^", ms=4, color="0.3",
                          label="MNIST (target): filled triangles")]
    digits = [plt.Line2D([], [], ls="", marker="s", ms=7, color=plt.cm.tab10(digit), label=str(digit))
              for digit in range(10)]
    below = {"fontsize": 9, "loc": "upper center", "frameon": False}
    fig.legend(handles=markers, ncol=2, bbox_to_anchor=(0.5, 0.02), **below)
    fig.legend(handles=digits, ncol=10, title="digit (colour)", title_fontsize=9, bbox_to_anchor=(0.5, -0.05),
               handletextpad=0.1, columnspacing=0.9, **below)
    fig.suptitle(f"t-SNE of the features of {len(points) // 2} SVHN and {len(points) // 2} MNIST "
                 f"test images; colour = digit", y=1.06)  # above the two-line panel titles
    save_figure(fig, out, "p3_tsne")


# ==================================================================================================
# Appendix: results
# ==================================================================================================
def mean_std(values):
    values = np.asarray(values, float)
    return {"per_seed": values.tolist(), "mean": float(values.mean()),
            "std": float(values.std(ddof=1)) if len(values) > 1 else 0.0}


def settled_loss(adaptation, name="discriminator_loss"):
    """Mean of a loss over the last tenth of a run (the discriminator's: log 2 = 0.693 at ADDA's
    equilibrium)."""
    losses = adaptation["curves"][name]
    return float(np.mean(losses[-max(1, len(losses) // 10):]))


def paired_gain_summary(gains):
    """How sure a gain over seeds is (each seed's adapted model against its own source model): the
    seeds that gain, the exact two-sided sign test of 'a gain is as likely as a loss' (ties left
    out), and a 95 % percentile bootstrap interval of the mean gain (10,000 resamples of the seeds,
    fixed generator)."""
    gains = np.asarray(gains, float)
    gaining, untied = int((gains > 0).sum()), int((gains != 0).sum())
    resampled = gains[np.random.default_rng(0).integers(0, len(gains), (10000, len(gains)))].mean(1)
    return {"seeds_gaining": gaining, "seeds_not_tied": untied,
            "sign_test_p": float(scipy.stats.binomtest(gaining, untied, 0.5).pvalue) if untied else 1.0,
            "gain_bootstrap_95": [float(bound) for bound in np.percentile(resampled, [2.5, 97.5])]}


def adaptation_summary(runs, source_reports, seeds):
    """The per-seed numbers of one adaptation method (ADDA or the MSE variant) on its seeds."""
    acc, source_acc = ([reports[s]["acc"] for s in seeds] for reports in (runs, source_reports))
    best, final = ([runs[s][key] for s in seeds] for key in ("best_monitored", "final_monitored"))
    gains = [a - b for a, b in zip(acc, source_acc)]
    per_digit = [runs[s]["report"]["per_class"] for s in seeds]
    return {**mean_std(acc), "seeds": seeds, "gain_per_seed": gains, "source_only_per_seed": source_acc,
            **paired_gain_summary(gains),
            "lowest_digit_acc": [min(d) for d in per_digit],
            "collapsed_digits": [[k for k, a in enumerate(d) if a < 0.10] for d in per_digit],
            "domain_classifier_acc": {when: [runs[s]["domain_classifier_acc"][when] for s in seeds]
                                      for when in ("before", "after")},
            "feature_statistics": {s: runs[s]["feature_statistics"] for s in seeds},
            "best_monitored": best, "final_monitored": final,
            "drop_from_best": [b - f for b, f in zip(best, final)],
            "monitor": {s: {"iteration": runs[s]["curves"]["monitor_iteration"],
                            "target_acc": runs[s]["curves"]["target_acc"]} for s in seeds}}


def write_problem3_results(setup, sources, source_only, mse_runs, adda):
    args, seeds, first_seed = setup.args, setup.seeds, setup.seeds[0]
    svhn, mnist = setup.svhn, setup.mnist
    adda_runs, source_reports, source_runs = adda.runs, source_only.reports, sources.runs
    feature_dim = args.fc_widths[-1]
    source_acc = mean_std([source_reports[s]["acc"] for s in seeds])
    adda_summary = adaptation_summary(adda_runs, source_reports, seeds)
    print(f"source only {source_acc['mean']:.3f} +- {source_acc['std']:.3f}; ADDA {adda_summary['mean']:.3f} "
          f"+- {adda_summary['std']:.3f} ({adda_summary['seeds_gaining']} of {len(seeds)} seeds gain) over "
          f"seeds {seeds}")
    settings = {"iterations": args.adapt_iterations, "lr": args.adapt_lr, "betas": [0.5, 0.999],
                "batch_size": args.batch_size, "optimiser": "Adam, both players",
                "lr_schedule": "half cosine to zero, both players", "reported": "final iterate",
                "source_batches": "class-balanced", "augment": not args.no_augment,
                "discriminator_dropout": args.discriminator_dropout}
    svhn_acc = {split: [source_runs[s][f"svhn_{split}_acc"] for s in seeds]
                for split in ("train", "held_out", "test")}
    results = {
        "architecture": {"conv_widths": args.conv_widths, "fc_widths": args.fc_widths,
                         "layer_shapes": sources.layer_shapes, "feature_dim": feature_dim,
                         "discriminator": [feature_dim, 500, 500, 1],
                         "parameters": sources.parameters},
        "preprocessing": "grey value, each image minus its mean, divided by (its sd + 1 grey level), "
                         "3 equal channels",
        "seeds": seeds,
        "source": {**{f"svhn_{split}_acc": float(np.mean(accs)) for split, accs in svhn_acc.items()},
                   **{f"svhn_{split}_per_seed": accs for split, accs in svhn_acc.items()},
                   **{key: [source_runs[s][key] for s in seeds] for key in ("chosen_step", "steps_run")},
                   "max_steps": args.source_steps, "patience": args.source_patience,
                   "weight_decay": args.source_weight_decay, "augment": not args.no_augment,
                   "train_images": len(svhn["train"][1]),
                   "fit_images": len(held_out_tenth(svhn["train"][1], first_seed)[0]),
                   "history": source_runs[first_seed]["history"]},
        "source_only_mnist_acc": source_acc["mean"],
        "source_only": {**source_acc, "per_class_seed0": source_reports[first_seed]["per_class"],
                        "confusion_seed0": source_reports[first_seed]["confusion"],
                        "inverted_mnist": mean_std([source_only.inverted_acc[s] for s in seeds])},
        "adda": {**adda_summary,
                 "per_class_seed0": adda_runs[first_seed]["report"]["per_class"],
                 "confusion_seed0": adda_runs[first_seed]["report"]["confusion"],
                 "discriminator_loss_final": [settled_loss(adda_runs[s]) for s in seeds],
                 "discriminator_acc_final": [settled_loss(adda_runs[s], "discriminator_acc") for s in seeds],
                 "discriminator_held_out_gap": [adda_runs[s]["discriminator_held_out_gap"] for s in seeds],
                 "settings": settings},
        "mse": None if not mse_runs else {
            **adaptation_summary(mse_runs, source_reports, list(mse_runs)),
            "loss_final": [settled_loss(run, "mse_loss") for run in mse_runs.values()],
            "loss_floor": [mse_floor(run, feature_dim) for run in mse_runs.values()],
            "settings": settings},
        "tsne_same_digit_neighbour": adda.tsne_same_digit_neighbour,
        "source_feature_statistics": source_only.feature_spread,
        "n_images": {"svhn_train": len(svhn["train"][1]), "svhn_test": len(svhn["test"][1]),
                     "mnist_train": len(mnist["train"][1]), "mnist_test": len(mnist["test"][1])},
        "timings": setup.checkpoints.timings, "resumed_stages": setup.checkpoints.resumed,
        "device": str(setup.device),
    }
    path = write_results(args, "problem3", results, setup.data_source, setup.started_at,
                         setup.checkpoints.resumed_seconds)
    print(f"wrote {path} and {setup.out / 'figures'}/p3_*.pdf")


if __name__ == "__main__":
    run_main(main)
