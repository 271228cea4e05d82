"""Problem 3: a wide LeNet-5 trained on SVHN, tested on MNIST, then adapted with ADDA.

3a train the wide LeNet-5 of the exam's Figure 1 on SVHN; 3b use it unchanged on MNIST; 3c run the
variant where the discriminator is replaced by an MSE loss between target and source features;
3d adversarial discriminative domain adaptation (Tzeng et al. 2017) with a 500-500 discriminator.

Data: SVHN as train_32x32.mat / test_32x32.mat (--svhn-dir), MNIST as the official IDX files, a
mnist.npz or a mnist.mat (--mnist-dir). When a default folder holds none of a data set's files, a
labelled stand-in in exactly that format is written there first and read back by the same loader.
"""
import copy
import gzip
import json
import struct
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import scipy.io
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image, ImageDraw, ImageFont
from scipy import ndimage
from sklearn.manifold import TSNE
from sklearn.metrics import confusion_matrix

from utils import (Checkpoints, PathFlag, UserError, choose_device, common_parser,
                   data_fingerprint, figure_style, progress, run_main, save_figure, seed_everything,
                   was_given, write_results)

plt = figure_style()

SVHN_FILES = {"train": "train_32x32.mat", "test": "test_32x32.mat"}
MNIST_IDX = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
             "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
STANDIN_MARKER = "STANDIN_{}.json"


# ==================================================================================================
# Config
# ==================================================================================================
def parse_arguments(argv=None):
    parser = common_parser(__doc__.split("\n")[0], resumable=True)
    parser.add_argument("--svhn-dir", action=PathFlag, default=Path("data/problem3"),
                        help="folder with train_32x32.mat and test_32x32.mat")
    parser.add_argument("--mnist-dir", action=PathFlag, default=Path("data/problem3"),
                        help="folder with the MNIST IDX files (.gz or not), mnist.npz or mnist.mat")
    model = parser.add_argument_group("wide LeNet-5 (3a)")
    model.add_argument("--conv-widths", type=int, nargs=2, default=[18, 48],
                       help="channels of C1 and C3: 3x the classic 6 and 16")
    model.add_argument("--fc-widths", type=int, nargs=2, default=[360, 252],
                       help="units of F5 and F6: 3x the classic 120 and 84")
    model.add_argument("--source-epochs", type=int, default=5)
    model.add_argument("--batch-size", type=int, default=128)
    model.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate, source training")
    adapt = parser.add_argument_group("adaptation (3c, 3d)")
    adapt.add_argument("--adapt-seeds", type=int, default=3, help="ADDA and MSE runs, seeds SEED+k")
    adapt.add_argument("--adda-iterations", type=int, default=1000)
    adapt.add_argument("--adda-lr-target", type=float, default=2e-4,
                       help="Adam lr of the target encoder (ADDA's own setting)")
    adapt.add_argument("--adda-lr-discriminator", type=float, default=2e-4,
                       help="Adam lr of the discriminator; equal to the encoder's keeps the game balanced")
    adapt.add_argument("--mse-iterations", type=int, default=500)
    adapt.add_argument("--mse-lr", type=float, default=2e-4, help="as ADDA's target encoder")
    adapt.add_argument("--monitor-every", type=int, default=100,
                       help="iterations between target-accuracy readings (monitoring only)")
    adapt.add_argument("--monitor-images", type=int, default=2000,
                       help="MNIST test images in each monitoring reading (the final accuracy "
                            "uses all of them)")
    standin = parser.add_argument_group("stand-in data (only when a default folder is empty)")
    standin.add_argument("--standin-svhn", type=int, nargs=2, default=[20000, 5000],
                         metavar=("TRAIN", "TEST"))
    standin.add_argument("--standin-mnist", type=int, nargs=2, default=[10000, 3000],
                         metavar=("TRAIN", "TEST"))
    args = parser.parse_args(argv)
    if args.quick:
        args.source_epochs = min(args.source_epochs, 2)
        args.adda_iterations = min(args.adda_iterations, 300)
        args.mse_iterations = min(args.mse_iterations, 100)
        args.monitor_images = min(args.monitor_images, 1000)
        args.monitor_every = min(args.monitor_every, 50)
        args.adapt_seeds = min(args.adapt_seeds, 2)
    return args


# ==================================================================================================
# Data: loaders for the real formats, with one-line errors naming the file
# ==================================================================================================
def load_svhn_mat(path):
    """SVHN cropped digits: X uint8 (32, 32, 3, N), y (N, 1) in 1..10 where 10 is the digit 0."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: missing (expected SVHN's {path.name})")
    try:
        contents = scipy.io.loadmat(path)
    except Exception as error:
        raise UserError(f"{path}: not a readable .mat file ({type(error).__name__})") from None
    if "X" not in contents or "y" not in contents:
        raise UserError(f"{path}: has no variable X and y (found {sorted(k for k in contents if not k.startswith('__'))})")
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


def load_mnist(directory):
    """MNIST from the official IDX files (.gz or not), else mnist.npz, else mnist.mat;
    returns {split: (images uint8 (N, 28, 28), labels int64)}."""
    directory = Path(directory)
    if not directory.is_dir():
        raise UserError(f"{directory}: no such folder (expected the MNIST files)")
    splits = {}
    if find_idx(directory, MNIST_IDX["train"][0]) or find_idx(directory, MNIST_IDX["test"][0]):
        for split, (image_stem, label_stem) in MNIST_IDX.items():
            image_path, label_path = find_idx(directory, image_stem), find_idx(directory, label_stem)
            for found, stem in ((image_path, image_stem), (label_path, label_stem)):
                if found is None:
                    raise UserError(f"{directory / stem}: missing (or {stem}.gz)")
            images, labels = read_idx(image_path, 2051), read_idx(label_path, 2049)
            if images.ndim != 3 or images.shape[1:] != (28, 28):
                raise UserError(f"{image_path}: images must be 28x28, not {images.shape[1:]}")
            splits[split] = check_mnist_pair(image_path, images, labels)
    elif (directory / "mnist.npz").is_file() or (directory / "mnist.mat").is_file():
        path = directory / ("mnist.npz" if (directory / "mnist.npz").is_file() else "mnist.mat")
        try:
            contents = np.load(path) if path.suffix == ".npz" else scipy.io.loadmat(path)
        except Exception as error:
            raise UserError(f"{path}: cannot be read ({type(error).__name__})") from None
        for split in ("train", "test"):
            if f"x_{split}" not in contents or f"y_{split}" not in contents:
                raise UserError(f"{path}: needs x_train, y_train, x_test and y_test")
            images = np.asarray(contents[f"x_{split}"])
            if images.ndim != 3 or images.shape[1:] != (28, 28) or images.dtype != np.uint8:
                raise UserError(f"{path}: x_{split} must be uint8 (N, 28, 28), not {images.dtype} "
                                f"{images.shape}")
            splits[split] = check_mnist_pair(path, images, np.asarray(contents[f"y_{split}"]).reshape(-1))
    else:
        raise UserError(f"{directory}: no MNIST files (expected train-images-idx3-ubyte[.gz] and the "
                        f"other three IDX files, or mnist.npz, or mnist.mat)")
    return splits


def check_mnist_pair(path, images, labels):
    if len(images) != len(labels):
        raise UserError(f"{path}: {len(images)} images but {len(labels)} labels")
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise UserError(f"{path}: labels must be 0..9, found {labels.min()}..{labels.max()}")
    return torch.from_numpy(np.array(images)), torch.from_numpy(labels.astype(np.int64))


def mnist_to_network(images):
    """28x28 grey -> 32x32 (bilinear) with three equal channels, the shape SVHN has."""
    resized = F.interpolate(images.float().unsqueeze(1), size=(32, 32), mode="bilinear",
                            align_corners=False)
    return resized.clamp(0, 255).round().to(torch.uint8).repeat(1, 3, 1, 1)


def to_input(images_uint8):
    """Both domains the same way: [0, 255] -> [-1, 1]. No per-domain statistics, because matching
    those would already be a (crude) adaptation and the comparison would not be clean."""
    return images_uint8.float() / 127.5 - 1


# ==================================================================================================
# Data: stand-ins in exactly the real formats
# ==================================================================================================
def font_files():
    from matplotlib import get_data_path
    folder = Path(get_data_path()) / "fonts" / "ttf"
    names = ["DejaVuSans", "DejaVuSans-Bold", "DejaVuSans-Oblique", "DejaVuSansMono",
             "DejaVuSansMono-Bold", "DejaVuSerif", "DejaVuSerif-Bold", "DejaVuSerif-Italic",
             "STIXGeneral", "STIXGeneralBol", "cmr10", "cmss10", "cmtt10", "cmb10"]
    return [folder / f"{name}.ttf" for name in names if (folder / f"{name}.ttf").exists()]


def render_house_numbers(count, rng, bar=0):
    """SVHN-like: a printed digit in a varied font and colour on a textured background, parts of the
    neighbouring digits visible, then blur and noise; 32x32 RGB."""
    fonts = [ImageFont.truetype(str(path), size) for path in font_files() for size in (26, 30, 34)]
    images = np.empty((count, 32, 32, 3), np.uint8)
    labels = rng.integers(0, 10, count)
    for i in progress(range(count), desc="SVHN stand-in", position=bar):
        background = rng.integers(0, 256, 3)
        foreground = rng.integers(0, 256, 3)
        while np.abs(foreground.astype(int) - background).sum() < 160:  # legible contrast
            foreground = rng.integers(0, 256, 3)
        canvas = Image.new("RGB", (64, 48), tuple(int(v) for v in background))
        draw = ImageDraw.Draw(canvas)
        font = fonts[rng.integers(len(fonts))]
        spacing = font.size * rng.uniform(0.55, 0.75)
        center = (32 + rng.uniform(-2, 2), 24 + rng.uniform(-2, 2))
        for offset, digit in ((-spacing, rng.integers(10)), (0, labels[i]), (spacing, rng.integers(10))):
            if offset and rng.random() < 0.3:
                continue  # a house number's first or last digit
            draw.text((center[0] + offset, center[1]), str(digit), font=font,
                      fill=tuple(int(v) for v in foreground), anchor="mm")
        crop = canvas.rotate(rng.uniform(-8, 8), resample=Image.BILINEAR).crop(
            (16, 8, 48, 40)).resize((32, 32), Image.BILINEAR)
        pixels = np.asarray(crop, np.float32)
        texture = ndimage.gaussian_filter(rng.normal(0, 1, (32, 32)), rng.uniform(1, 4))
        pixels += texture[..., None] * rng.uniform(0, 40) + np.linspace(-1, 1, 32)[:, None, None] * \
            rng.uniform(-30, 30, 3)
        pixels = ndimage.gaussian_filter(pixels, (rng.uniform(0, 1.0),) * 2 + (0,))
        pixels += rng.normal(0, rng.uniform(0, 10), pixels.shape)
        images[i] = np.clip(pixels, 0, 255).astype(np.uint8)
    return images, labels


def write_svhn_standin(directory, seed, train_count, test_count, bar=0):
    directory.mkdir(parents=True, exist_ok=True)
    for split, count, offset in (("train", train_count, 0), ("test", test_count, 1)):
        images, labels = render_house_numbers(count, np.random.default_rng([seed, 31, offset]), bar)
        svhn_labels = np.where(labels == 0, 10, labels).reshape(-1, 1).astype(np.uint8)
        scipy.io.savemat(directory / SVHN_FILES[split],
                         {"X": images.transpose(1, 2, 3, 0), "y": svhn_labels}, do_compression=True)
    (directory / STANDIN_MARKER.format("svhn")).write_text(json.dumps(
        {"generator": "printed digits in matplotlib's fonts", "seed": seed}))


# Pen trajectories of the ten digits in a unit box (x right, y down), as a writer would draw them;
# each is one or two strokes through these control points.
DIGIT_STROKES = {
    0: [[(.5, .05), (.22, .2), (.17, .55), (.3, .88), (.55, .95), (.8, .75), (.82, .35), (.65, .08), (.5, .05)]],
    1: [[(.35, .22), (.55, .05), (.52, .5), (.5, .95)]],
    2: [[(.2, .3), (.35, .08), (.6, .06), (.78, .25), (.65, .5), (.38, .74), (.15, .95), (.5, .92), (.85, .94)]],
    3: [[(.2, .12), (.5, .04), (.76, .16), (.7, .38), (.45, .48), (.75, .6), (.78, .84), (.5, .96), (.18, .86)]],
    4: [[(.6, .05), (.35, .4), (.15, .65), (.55, .66), (.88, .63)], [(.68, .35), (.66, .65), (.65, .96)]],
    5: [[(.8, .06), (.35, .06), (.28, .45), (.55, .4), (.78, .56), (.78, .82), (.52, .96), (.2, .86)]],
    6: [[(.72, .05), (.42, .22), (.26, .52), (.28, .84), (.52, .96), (.75, .8), (.72, .58), (.48, .52), (.28, .66)]],
    7: [[(.15, .1), (.5, .07), (.86, .08), (.62, .5), (.45, .95)]],
    8: [[(.55, .5), (.28, .34), (.32, .1), (.55, .04), (.74, .14), (.7, .34), (.45, .55), (.24, .75),
         (.36, .95), (.62, .95), (.78, .76), (.55, .5)]],
    9: [[(.76, .32), (.52, .48), (.28, .36), (.32, .1), (.58, .05), (.76, .22), (.74, .55), (.66, .8),
         (.55, .96)]],
}


JITTER, ELASTIC = 0.08, 8  # writer variation; sets how far the target is from printed digits


def pen_digits(count, rng, bar=0):
    """MNIST-like handwriting: each digit's pen trajectory with per-writer jitter of its control
    points, slant, aspect and stroke width, drawn as a smooth thin stroke, elastically deformed and
    laid out as MNIST is (a 20x20 box, centred by mass in 28x28). scikit-learn's real handwritten
    digits were tried first: at 8x8 they upsample to blobs in which 1, 2 and 7 are ambiguous even
    to a person, so no adaptation could recover them; pen strokes keep MNIST's thin, clear lines."""
    from scipy.interpolate import splev, splprep
    images = np.zeros((count, 28, 28), np.uint8)
    labels = rng.integers(0, 10, count)
    scale = 4  # draw at 4x and downsample: anti-aliased strokes
    for i in progress(range(count), desc="MNIST stand-in", position=bar):
        canvas = Image.new("L", (28 * scale, 28 * scale), 0)
        draw = ImageDraw.Draw(canvas)
        slant, aspect = rng.uniform(-0.35, 0.25), rng.uniform(0.65, 1.15)
        width = int(rng.uniform(1.8, 3.4) * scale)
        for stroke in DIGIT_STROKES[int(labels[i])]:
            points = np.array(stroke) + rng.normal(0, JITTER, (len(stroke), 2))
            x = (points[:, 0] - 0.5) * aspect - slant * (points[:, 1] - 0.5) + 0.5
            y = points[:, 1]
            tck, _ = splprep([x, y], s=0, k=min(3, len(stroke) - 1))
            smooth_x, smooth_y = splev(np.linspace(0, 1, 80), tck)
            path = [(4 * scale + 20 * scale * px, 4 * scale + 20 * scale * py)
                    for px, py in zip(smooth_x, smooth_y)]
            draw.line(path, fill=255, width=width, joint="curve")
        digit = np.asarray(canvas.resize((28, 28), Image.LANCZOS), np.float64) / 255
        digit = np.clip(digit / max(digit.max(), 1e-6) * 1.4, 0, 1)  # MNIST's strokes saturate
        field = [ndimage.gaussian_filter(rng.uniform(-1, 1, digit.shape), 3) * ELASTIC for _ in range(2)]
        rows, cols = np.meshgrid(np.arange(28), np.arange(28), indexing="ij")
        digit = ndimage.map_coordinates(digit, [rows + field[0], cols + field[1]], order=1)
        images[i] = mnist_layout(digit)
    return images, labels


def mnist_layout(digit):
    """MNIST's normalisation: fit the digit's bounding box into 20x20, then centre its mass in 28x28."""
    ys, xs = np.nonzero(digit > 0.1)
    if len(ys) == 0:
        return np.zeros((28, 28), np.uint8)
    box = digit[ys.min():ys.max() + 1, xs.min():xs.max() + 1]
    factor = 20 / max(box.shape)
    box = np.asarray(Image.fromarray((box * 255).clip(0, 255).astype(np.uint8)).resize(
        (max(1, round(box.shape[1] * factor)), max(1, round(box.shape[0] * factor))), Image.LANCZOS))
    canvas = np.zeros((28, 28))
    top, left = (28 - box.shape[0]) // 2, (28 - box.shape[1]) // 2
    canvas[top:top + box.shape[0], left:left + box.shape[1]] = box
    cy, cx = ndimage.center_of_mass(canvas)
    return ndimage.shift(canvas, (13.5 - cy, 13.5 - cx), order=1).clip(0, 255).astype(np.uint8)


def write_idx(path, array):
    magic = 2051 if array.ndim == 3 else 2049
    header = struct.pack(f">I{array.ndim}I", magic, *array.shape)
    with gzip.open(path, "wb") as handle:
        handle.write(header + np.ascontiguousarray(array, np.uint8).tobytes())


def write_mnist_standin(directory, seed, train_count, test_count, bar=0):
    directory.mkdir(parents=True, exist_ok=True)
    for split, count, offset in (("train", train_count, 0), ("test", test_count, 1)):
        images, labels = pen_digits(count, np.random.default_rng([seed, 47, offset]), bar)
        write_idx(directory / f"{MNIST_IDX[split][0]}.gz", images)
        write_idx(directory / f"{MNIST_IDX[split][1]}.gz", labels.astype(np.uint8))
    (directory / STANDIN_MARKER.format("mnist")).write_text(json.dumps(
        {"generator": "pen-stroke digits, jittered, elastic, MNIST layout", "seed": seed}))


def has_mnist_files(directory):
    return directory.is_dir() and (find_idx(directory, MNIST_IDX["train"][0]) is not None or
                                   (directory / "mnist.npz").exists() or
                                   (directory / "mnist.mat").exists())


def prepare_data(args):
    """Stand-ins only where a default folder holds none of that data set's files."""
    writers = []
    if not any((args.svhn_dir / name).exists() for name in SVHN_FILES.values()):
        if was_given(args, "svhn_dir"):
            raise UserError(f"{args.svhn_dir / SVHN_FILES['train']}: missing (expected SVHN's "
                            f"train_32x32.mat and test_32x32.mat in {args.svhn_dir})")
        writers.append(("SVHN (printed digits)", write_svhn_standin, args.svhn_dir, args.standin_svhn))
    if not has_mnist_files(args.mnist_dir):
        if was_given(args, "mnist_dir"):
            load_mnist(args.mnist_dir)  # raises the precise error
        writers.append(("MNIST (pen-stroke handwriting)", write_mnist_standin, args.mnist_dir,
                        args.standin_mnist))
    for name, _, directory, (train_count, test_count) in writers:
        print(f"writing a stand-in {name}; {train_count}+{test_count} images, to {directory}")
    if len(writers) == 2:  # independent, each seeded on its own: one process each, same files
        sys.stdout.flush()  # a forked child would print what is still buffered again
        with ProcessPoolExecutor(max_workers=2) as pool:
            for done in [pool.submit(write, directory, args.seed, *counts, bar)
                         for bar, (_, write, directory, counts) in enumerate(writers)]:
                done.result()
    else:
        for _, write, directory, counts in writers:
            write(directory, args.seed, *counts)
    svhn = {split: load_svhn_mat(args.svhn_dir / name) for split, name in SVHN_FILES.items()}
    mnist = {split: (mnist_to_network(images), labels)
             for split, (images, labels) in load_mnist(args.mnist_dir).items()}
    source = {name: "stand-in" if (getattr(args, f"{name}_dir") / STANDIN_MARKER.format(name)).exists()
              else "real" for name in ("svhn", "mnist")}
    return svhn, mnist, source


# ==================================================================================================
# 3a: the wide LeNet-5 (exam Fig. 1): C1-P2-C3-P4-F5-F6 form the feature extractor, O the classifier
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


def make_discriminator(feature_dim, hidden=500):
    """Two 500-unit ReLU layers and the output layer (a domain logit), as the exam and ADDA's
    SVHN->MNIST setting (Tzeng et al. 2017, sec. 5.1) prescribe."""
    return nn.Sequential(nn.Linear(feature_dim, hidden), nn.ReLU(), nn.Linear(hidden, hidden),
                         nn.ReLU(), nn.Linear(hidden, 1))


def batches(n, batch_size, generator):
    order = torch.randperm(n, generator=generator)
    return [order[i:i + batch_size] for i in range(0, n, batch_size)]


def train_source(svhn, args, checkpoints, device):
    """Supervised cross-entropy on SVHN; Adam; the stage is saved once done."""
    seed_everything(args.seed)
    encoder = WideLeNetEncoder(args.conv_widths, args.fc_widths).to(device)
    classifier = nn.Linear(encoder.feature_dim, 10).to(device)
    parameters = list(encoder.parameters()) + list(classifier.parameters())
    optimiser = torch.optim.Adam(parameters, lr=args.lr)
    images, labels = to_input(svhn["train"][0]), svhn["train"][1]
    generator = torch.Generator().manual_seed(args.seed)
    history = {"epoch": [], "train_loss": [], "train_acc": [], "test_acc": []}
    for epoch in range(args.source_epochs):
        total_loss, correct = 0.0, 0
        for batch in progress(batches(len(labels), args.batch_size, generator),
                              desc=f"source epoch {epoch + 1}/{args.source_epochs}"):
            logits = classifier(encoder(images[batch].to(device)))
            loss = F.cross_entropy(logits, labels[batch].to(device))
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            total_loss += loss.item() * len(batch)
            correct += (logits.argmax(1).cpu() == labels[batch]).sum().item()
        test_acc = accuracy(encoder, classifier, svhn["test"], device)
        history["epoch"].append(epoch + 1)
        history["train_loss"].append(total_loss / len(labels))
        history["train_acc"].append(correct / len(labels))
        history["test_acc"].append(test_acc)
        print(f"[source] epoch {epoch + 1}/{args.source_epochs}  loss {history['train_loss'][-1]:.3f}"
              f"  train acc {history['train_acc'][-1]:.3f}  SVHN test acc {test_acc:.3f}")
    return {"encoder": encoder.state_dict(), "classifier": classifier.state_dict(),
            "history": history}


def predict(encoder, classifier, images, device, batch_size=1024):
    encoder.eval()
    with torch.no_grad():
        return torch.cat([classifier(encoder(to_input(images[i:i + batch_size]).to(device))).argmax(1).cpu()
                          for i in range(0, len(images), batch_size)])


def accuracy(encoder, classifier, split, device):
    return (predict(encoder, classifier, split[0], device) == split[1]).float().mean().item()


def features(encoder, images, device, batch_size=1024):
    encoder.eval()
    with torch.no_grad():
        return torch.cat([encoder(to_input(images[i:i + batch_size]).to(device)).cpu()
                          for i in range(0, len(images), batch_size)])


# ==================================================================================================
# 3b: the source model on MNIST
# ==================================================================================================
def per_class_report(encoder, classifier, split, device):
    predictions = predict(encoder, classifier, split[0], device)
    matrix = confusion_matrix(split[1], predictions, labels=range(10))
    return {"acc": float((predictions == split[1]).float().mean()),
            "per_class": (matrix.diagonal() / np.maximum(matrix.sum(1), 1)).tolist(),
            "confusion": matrix.tolist()}


# ==================================================================================================
# 3d: ADDA (Tzeng et al. 2017, sec. 4 and 5.1) and 3c: the MSE variant
# ==================================================================================================
def adda_step(source_encoder, target_encoder, discriminator, source_images, target_images,
              discriminator_optimiser, target_optimiser):
    """One alternating update. The discriminator learns source = 1, target = 0; the target encoder
    then minimises the GAN loss with inverted labels, -log D(M_t(x_t)) (ADDA eq. 9), which gives
    stronger gradients than maximising the discriminator's loss. The source encoder is fixed."""
    with torch.no_grad():
        source_features = source_encoder(source_images)
    target_features = target_encoder(target_images)
    domain_logits = discriminator(torch.cat([source_features, target_features.detach()]))
    domain_labels = torch.cat([torch.ones(len(source_features)), torch.zeros(len(target_features))])
    discriminator_loss = F.binary_cross_entropy_with_logits(domain_logits.squeeze(1),
                                                            domain_labels.to(domain_logits.device))
    discriminator_optimiser.zero_grad()
    discriminator_loss.backward()
    discriminator_optimiser.step()

    inverted = discriminator(target_features)
    target_loss = F.binary_cross_entropy_with_logits(inverted.squeeze(1), torch.ones_like(inverted.squeeze(1)))
    target_optimiser.zero_grad()
    target_loss.backward()
    target_optimiser.step()
    discriminator_accuracy = ((domain_logits.squeeze(1) > 0).float().cpu() == domain_labels).float().mean()
    return discriminator_loss.item(), target_loss.item(), discriminator_accuracy.item()


def mse_step(source_encoder, target_encoder, source_images, target_images, optimiser):
    """Exam Fig. 3: minimise ||M_t(x_t) - M_s(x_s)||^2 for UNPAIRED x_s, x_t. Its minimiser maps every
    target image to the mean source feature, whatever the digit."""
    with torch.no_grad():
        source_features = source_encoder(source_images)
    loss = F.mse_loss(target_encoder(target_images), source_features)
    optimiser.zero_grad()
    loss.backward()
    optimiser.step()
    return loss.item()


def feature_statistics(target_features, source_features):
    """How spread out the target features are, next to the source's (collapse shows as spread -> 0)."""
    return {"target_total_variance": float(target_features.var(0).sum()),
            "source_total_variance": float(source_features.var(0).sum()),
            "mean_distance": float((target_features.mean(0) - source_features.mean(0)).norm())}


def adapt(method, seed, source, svhn, mnist, args, device):
    """Run ADDA or the MSE variant from the source encoder; target labels only for monitoring."""
    seed_everything(seed)
    source_encoder = WideLeNetEncoder(args.conv_widths, args.fc_widths).to(device)
    source_encoder.load_state_dict(source["encoder"])
    classifier = nn.Linear(source_encoder.feature_dim, 10).to(device)
    classifier.load_state_dict(source["classifier"])
    for module in (source_encoder, classifier):  # dashed lines in the exam's Fig. 2: fixed
        module.requires_grad_(False)
        module.eval()
    target_encoder = copy.deepcopy(source_encoder).requires_grad_(True)  # initialised from source
    target_encoder.train()
    generator = torch.Generator().manual_seed(seed)
    source_images, target_images = to_input(svhn["train"][0]), to_input(mnist["train"][0])
    if method == "adda":
        discriminator = make_discriminator(source_encoder.feature_dim).to(device)
        # Adam with beta1 = 0.5, the usual setting for adversarial training (Radford et al. 2016)
        discriminator_optimiser = torch.optim.Adam(discriminator.parameters(),
                                                   lr=args.adda_lr_discriminator, betas=(0.5, 0.999))
        target_optimiser = torch.optim.Adam(target_encoder.parameters(), lr=args.adda_lr_target,
                                            betas=(0.5, 0.999))
        iterations = args.adda_iterations
    else:
        target_optimiser = torch.optim.Adam(target_encoder.parameters(), lr=args.mse_lr)
        iterations = args.mse_iterations
    monitor_subset = slice(0, min(args.monitor_images, len(mnist["test"][1])))
    source_reference = features(source_encoder, svhn["test"][0][:2000], device)
    curves = {"iteration": [], "discriminator_loss": [], "target_loss": [], "discriminator_acc": [],
              "mse_loss": [], "monitor_iteration": [], "target_acc": [], "target_total_variance": []}

    def monitor(iteration):
        test_images = mnist["test"][0][monitor_subset]
        curves["monitor_iteration"].append(iteration)
        curves["target_acc"].append((predict(target_encoder, classifier, test_images, device) ==
                                     mnist["test"][1][monitor_subset]).float().mean().item())
        stats = feature_statistics(features(target_encoder, test_images, device), source_reference)
        curves["target_total_variance"].append(stats["target_total_variance"])
        target_encoder.train()

    monitor(0)
    for iteration in progress(range(1, iterations + 1), desc=f"{method} seed {seed}"):
        source_batch = torch.randint(len(source_images), (args.batch_size,), generator=generator)
        target_batch = torch.randint(len(target_images), (args.batch_size,), generator=generator)
        xs, xt = source_images[source_batch].to(device), target_images[target_batch].to(device)
        curves["iteration"].append(iteration)
        if method == "adda":
            d_loss, t_loss, d_acc = adda_step(source_encoder, target_encoder, discriminator, xs, xt,
                                              discriminator_optimiser, target_optimiser)
            curves["discriminator_loss"].append(d_loss)
            curves["target_loss"].append(t_loss)
            curves["discriminator_acc"].append(d_acc)
        else:
            curves["mse_loss"].append(mse_step(source_encoder, target_encoder, xs, xt, target_optimiser))
        if iteration % args.monitor_every == 0 or iteration == iterations:
            monitor(iteration)
    # A fixed schedule: the final encoder is the one reported, never the best monitored one.
    final = per_class_report(target_encoder, classifier, mnist["test"], device)
    statistics = feature_statistics(features(target_encoder, mnist["test"][0][:2000], device),
                                    source_reference)
    return {"acc": final["acc"], "report": final, "curves": curves, "feature_statistics": statistics,
            "target_encoder": target_encoder.state_dict()}


def mean_std(values):
    values = np.asarray(values, float)
    return {"per_seed": values.tolist(), "mean": float(values.mean()),
            "std": float(values.std(ddof=1)) if len(values) > 1 else 0.0}


# ==================================================================================================
# Plots
# ==================================================================================================
def plot_examples(svhn, mnist, data_source, out):
    fig, axes = plt.subplots(2, 12, figsize=(9, 1.8))
    for row, (name, split) in enumerate([("SVHN", svhn["train"]), ("MNIST", mnist["train"])]):
        for col in range(12):
            axes[row, col].imshow(split[0][col].permute(1, 2, 0).numpy())
            axes[row, col].set_title(str(int(split[1][col])), fontsize=7)
            axes[row, col].axis("off")
        axes[row, 0].text(-6, 16, f"{name}\n({data_source[name.lower()]})", ha="right", va="center",
                          fontsize=7)
    save_figure(fig, out, "p3_examples")


def plot_source_curves(history, out):
    fig, axes = plt.subplots(1, 2, figsize=(7, 2.5))
    axes[0].plot(history["epoch"], history["train_loss"])
    axes[0].set_ylabel("cross-entropy")
    axes[1].plot(history["epoch"], history["train_acc"], label="SVHN train")
    axes[1].plot(history["epoch"], history["test_acc"], label="SVHN test")
    axes[1].set_ylabel("accuracy")
    axes[1].legend()
    for ax in axes:
        ax.set_xlabel("epoch")
    save_figure(fig, out, "p3_source_training")


def plot_confusion(matrix, title, out, name):
    fig, ax = plt.subplots(figsize=(3.4, 3.2))
    matrix = np.array(matrix)
    ax.imshow(matrix / np.maximum(matrix.sum(1, keepdims=True), 1), cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(10))
    ax.set_yticks(range(10))
    ax.set_xlabel("predicted digit")
    ax.set_ylabel("true digit")
    ax.grid(False)
    ax.set_title(title)
    save_figure(fig, out, name)


def smooth(values, window=25):
    values = np.asarray(values, float)
    if len(values) < window:
        return values
    return np.convolve(values, np.ones(window) / window, mode="valid")


def plot_adaptation_curves(runs, source_only, out):
    fig, axes = plt.subplots(1, 3, figsize=(11, 2.9))
    for seed, run in runs["adda"].items():
        curves = run["curves"]
        x = np.array(curves["iteration"])
        axes[0].plot(x[len(x) - len(smooth(curves["discriminator_loss"])):],
                     smooth(curves["discriminator_loss"]), label=f"D, seed {seed}")
        axes[0].plot(x[len(x) - len(smooth(curves["target_loss"])):], smooth(curves["target_loss"]),
                     "--", label=f"target encoder, seed {seed}")
        axes[2].plot(curves["monitor_iteration"], curves["target_acc"], label=f"ADDA seed {seed}")
    for seed, run in runs["mse"].items():
        curves = run["curves"]
        axes[1].semilogy(curves["iteration"], curves["mse_loss"], label=f"seed {seed}")
        axes[2].plot(curves["monitor_iteration"], curves["target_acc"], ":", label=f"MSE seed {seed}")
    axes[2].axhline(source_only, color="k", lw=0.8, label="source only")
    axes[0].set_title("ADDA losses (moving average)")
    axes[1].set_title("MSE variant: feature MSE")
    axes[2].set_title("MNIST test accuracy (monitoring only)")
    for ax in axes:
        ax.set_xlabel("iteration")
    axes[0].legend(fontsize=6, ncol=2, loc="lower right")
    axes[2].legend(fontsize=6)
    save_figure(fig, out, "p3_adaptation_curves")


def plot_feature_statistics(runs, source_variance, out):
    fig, ax = plt.subplots(figsize=(4.5, 2.8))
    for method, style in (("adda", "-"), ("mse", ":")):
        for seed, run in runs[method].items():
            curves = run["curves"]
            ax.plot(curves["monitor_iteration"], curves["target_total_variance"], style,
                    label=f"{method.upper()} seed {seed}")
    ax.axhline(source_variance, color="k", lw=0.8, label="source features (SVHN)")
    ax.set_yscale("symlog", linthresh=1e-2)
    ax.set_xlabel("iteration")
    ax.set_ylabel("total variance of target features")
    ax.legend(fontsize=6)
    save_figure(fig, out, "p3_feature_spread")


def plot_tsne(embeddings, out):
    fig, axes = plt.subplots(1, 2, figsize=(9, 4))
    for ax, (title, points, domains, labels) in zip(axes, embeddings):
        for domain, marker in ((0, "o"), (1, "^")):
            chosen = domains == domain
            ax.scatter(points[chosen, 0], points[chosen, 1], c=labels[chosen], cmap="tab10",
                       vmin=-0.5, vmax=9.5, s=5, marker=marker, alpha=0.7,
                       label="SVHN (source)" if domain == 0 else "MNIST (target)")
        ax.set_title(title)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.legend(fontsize=7, markerscale=2)
    fig.suptitle("t-SNE of the features; colour = digit, marker = domain")
    save_figure(fig, out, "p3_tsne")


def tsne_embeddings(source_encoder_state, target_encoder_state, svhn, mnist, args, device):
    encoder = WideLeNetEncoder(args.conv_widths, args.fc_widths).to(device)
    n = min(300 if args.quick else 700, len(svhn["test"][1]), len(mnist["test"][1]))
    result = []
    for title, state in (("before adaptation (source encoder on MNIST)", source_encoder_state),
                         ("after ADDA (target encoder on MNIST)", target_encoder_state)):
        encoder.load_state_dict(source_encoder_state)
        source_features = features(encoder, svhn["test"][0][:n], device)
        encoder.load_state_dict(state)
        target_features = features(encoder, mnist["test"][0][:n], device)
        points = TSNE(2, init="pca", perplexity=30, random_state=args.seed).fit_transform(
            torch.cat([source_features, target_features]).numpy())
        domains = np.r_[np.zeros(n), np.ones(n)]
        labels = np.r_[svhn["test"][1][:n].numpy(), mnist["test"][1][:n].numpy()]
        result.append((title, points, domains, labels))
    return result


# ==================================================================================================
def main(argv=None):
    args = parse_arguments(argv)
    started_at = time.time()
    seed_everything(args.seed)
    device = choose_device(args.device)
    out = args.out
    svhn, mnist, data_source = prepare_data(args)
    config = {k: v for k, v in vars(args).items() if k not in ("out", "fresh", "device", "runs_dir")}
    config.update(svhn_dir=str(args.svhn_dir.resolve()), mnist_dir=str(args.mnist_dir.resolve()),
                  data_fingerprint=data_fingerprint(*[args.svhn_dir / name for name in SVHN_FILES.values()],
                                                    args.mnist_dir))
    checkpoints = Checkpoints(args.runs_dir, "problem3", config, fresh=args.fresh)
    print(f"Problem 3: SVHN ({data_source['svhn']}) {len(svhn['train'][1])} train / "
          f"{len(svhn['test'][1])} test; MNIST ({data_source['mnist']}) {len(mnist['train'][1])} "
          f"train / {len(mnist['test'][1])} test (device {device})")
    plot_examples(svhn, mnist, data_source, out)

    # 3a: the wide LeNet-5 on SVHN -----------------------------------------------------------------
    encoder = WideLeNetEncoder(args.conv_widths, args.fc_widths)
    classifier = nn.Linear(encoder.feature_dim, 10)
    shapes = layer_shapes(encoder, classifier)
    for name, shape in shapes:
        print(f"  {name:10s} -> {'x'.join(map(str, shape))}")
    source = checkpoints.stage("source", lambda: train_source(svhn, args, checkpoints, device))
    encoder.load_state_dict(source["encoder"])
    classifier.load_state_dict(source["classifier"])
    encoder, classifier = encoder.to(device), classifier.to(device)
    svhn_train_acc = accuracy(encoder, classifier, svhn["train"], device)
    svhn_test_acc = accuracy(encoder, classifier, svhn["test"], device)
    plot_source_curves(source["history"], out)

    # 3b: the same network on MNIST ------------------------------------------------------------
    source_only = per_class_report(encoder, classifier, mnist["test"], device)
    print(f"SVHN train {svhn_train_acc:.3f}, SVHN test {svhn_test_acc:.3f}; MNIST test, source only "
          f"{source_only['acc']:.3f}")
    plot_confusion(source_only["confusion"], f"source only on MNIST: {source_only['acc']:.1%}", out,
                   "p3_confusion_source_only")

    # 3c and 3d: the MSE variant and ADDA, several seeds each ---------------------------------------
    runs = {"adda": {}, "mse": {}}
    for method in ("adda", "mse"):
        for k in range(args.adapt_seeds):
            seed = args.seed + k
            runs[method][seed] = checkpoints.stage(
                f"{method}_seed{seed}", lambda: adapt(method, seed, source, svhn, mnist, args, device))
            print(f"[{method}] seed {seed}: MNIST test accuracy {runs[method][seed]['acc']:.3f}")
    adda = mean_std([run["acc"] for run in runs["adda"].values()])
    mse = mean_std([run["acc"] for run in runs["mse"].values()])
    source_variance = feature_statistics(features(encoder, mnist["test"][0][:2000], device),
                                         features(encoder, svhn["test"][0][:2000], device))
    first_adda = runs["adda"][args.seed]
    plot_adaptation_curves(runs, source_only["acc"], out)
    plot_feature_statistics(runs, source_variance["source_total_variance"], out)
    plot_confusion(first_adda["report"]["confusion"], f"ADDA (seed {args.seed}) on MNIST: "
                   f"{first_adda['acc']:.1%}", out, "p3_confusion_adda")
    tsne_start = time.time()
    plot_tsne(tsne_embeddings(source["encoder"], first_adda["target_encoder"], svhn, mnist, args,
                              device), out)
    checkpoints.timings["tsne"] = round(time.time() - tsne_start, 2)
    print(f"ADDA {adda['mean']:.3f} +- {adda['std']:.3f}; MSE {mse['mean']:.3f} +- {mse['std']:.3f}; "
          f"source only {source_only['acc']:.3f}")

    results = {
        "architecture": {"conv_widths": args.conv_widths, "fc_widths": args.fc_widths,
                         "layer_shapes": shapes, "feature_dim": encoder.feature_dim,
                         "discriminator": [encoder.feature_dim, 500, 500, 1],
                         "parameters": sum(p.numel() for p in encoder.parameters())
                         + sum(p.numel() for p in classifier.parameters())},
        "source": {"svhn_train_acc": svhn_train_acc, "svhn_test_acc": svhn_test_acc,
                   "history": source["history"]},
        "source_only_mnist_acc": source_only["acc"],
        "source_only": {**mean_std([source_only["acc"]]), "per_class": source_only["per_class"],
                        "note": "one source model (trained once); adaptation seeds start from it"},
        "adda": {**adda, "per_class_seed0": first_adda["report"]["per_class"],
                 "feature_statistics": {s: r["feature_statistics"] for s, r in runs["adda"].items()},
                 "settings": {"iterations": args.adda_iterations, "lr_target": args.adda_lr_target,
                              "lr_discriminator": args.adda_lr_discriminator, "betas": [0.5, 0.999],
                              "batch_size": args.batch_size, "stopping": "fixed schedule"}},
        "mse": {**mse, "feature_statistics": {s: r["feature_statistics"] for s, r in runs["mse"].items()},
                "settings": {"iterations": args.mse_iterations, "lr": args.mse_lr}},
        "source_feature_statistics": source_variance,
        "n_images": {"svhn_train": len(svhn["train"][1]), "svhn_test": len(svhn["test"][1]),
                     "mnist_train": len(mnist["train"][1]), "mnist_test": len(mnist["test"][1])},
        "timings": checkpoints.timings, "resumed_stages": checkpoints.resumed, "device": str(device),
    }
    path = write_results(args, "problem3", results, data_source, started_at)
    print(f"wrote {path} and {out / 'figures'}/p3_*.pdf")


if __name__ == "__main__":
    run_main(main)
