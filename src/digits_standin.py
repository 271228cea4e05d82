"""Test equipment for Problem 3: stand-ins for SVHN and MNIST in exactly their files' formats.

Used only when a default data folder holds none of a data set's files. problem3_adda.py reads what is
written here through the same loaders as the real files; each stand-in's marker lists the SHA-256 of
every file written, so a folder is labelled "stand-in" only while it still holds exactly those files.
"""
import gzip
import json
import struct
from pathlib import Path

import numpy as np
import scipy.io
from PIL import Image, ImageDraw, ImageFont
from scipy import ndimage

from utils import file_digest, progress

SVHN_FILES = {"train": "train_32x32.mat", "test": "test_32x32.mat"}
MNIST_IDX = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
             "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
MARKER = "STANDIN_{}.json"
# SVHN's published training-set class counts for the digits 0..9 (Netzer et al. 2011): 1 is the
# most common, 9 the rarest; the stand-in draws its labels with these frequencies.
SVHN_CLASS_COUNTS = np.array([4948, 13861, 10585, 8497, 7458, 6882, 5727, 5595, 5045, 4659])


def write_marker(directory, name, paths, generator, seed):
    marker = {"generator": generator, "seed": seed,
              "files": {Path(p).name: file_digest(p) for p in paths}}
    (Path(directory) / MARKER.format(name)).write_text(json.dumps(marker, indent=1))


def is_standin(directory, name, paths):
    """True only when the marker exists and lists exactly these files, unchanged."""
    marker_path = Path(directory) / MARKER.format(name)
    if not marker_path.is_file():
        return False
    try:
        listed = json.loads(marker_path.read_text()).get("files", {})
    except (json.JSONDecodeError, AttributeError):
        return False
    return (sorted(listed) == sorted(Path(p).name for p in paths)
            and all(file_digest(p) == listed[Path(p).name] for p in paths))


def font_files():
    from matplotlib import get_data_path
    folder = Path(get_data_path()) / "fonts" / "ttf"
    names = ["DejaVuSans", "DejaVuSans-Bold", "DejaVuSans-Oblique", "DejaVuSansMono",
             "DejaVuSansMono-Bold", "DejaVuSerif", "DejaVuSerif-Bold", "DejaVuSerif-Italic",
             "STIXGeneral", "STIXGeneralBol", "cmr10", "cmss10", "cmtt10", "cmb10"]
    return [folder / f"{name}.ttf" for name in names if (folder / f"{name}.ttf").exists()]


def render_house_numbers(count, rng, bar=0):
    """SVHN-like crops, 32x32 RGB. What makes real house numbers hard, each drawn per image: a low
    contrast between digit and background (often), colour casts and uneven light, neighbouring digits
    close enough to be cut by the crop edge, rotation, blur from a wide range (some crops are barely
    legible, as in SVHN), a box seen at a lower resolution and enlarged, with sensor noise at that
    resolution; labels with SVHN's class frequencies."""
    fonts = [ImageFont.truetype(str(path), size) for path in font_files() for size in (28, 32, 36, 40)]
    images = np.empty((count, 32, 32, 3), np.uint8)
    labels = rng.choice(10, count, p=SVHN_CLASS_COUNTS / SVHN_CLASS_COUNTS.sum())
    for i in progress(range(count), desc="SVHN stand-in", position=bar):
        # muted colours (walls and plates are mostly grey, beige, blue), either polarity
        lightness = rng.uniform(20, 235)
        background = np.clip(lightness + rng.normal(0, 18, 3), 0, 255)
        direction = -1 if lightness > 128 else 1
        if rng.random() < 0.3:
            direction = -direction  # the less likely polarity, where there is room for it
        magnitude = rng.uniform(25, 150)  # faint to strong contrast
        foreground = np.clip(background + direction * magnitude * rng.uniform(0.8, 1.2, 3), 0, 255)
        canvas = Image.new("RGB", (64, 48), tuple(int(v) for v in background))
        draw = ImageDraw.Draw(canvas)
        font = fonts[rng.integers(len(fonts))]
        spacing = font.size * rng.uniform(0.45, 0.65)
        center = (32 + rng.uniform(-3, 3), 24 + rng.uniform(-3, 3))
        for offset, digit in ((-spacing, rng.integers(10)), (0, labels[i]), (spacing, rng.integers(10))):
            if offset and rng.random() < 0.25:
                continue  # a house number's first or last digit
            draw.text((center[0] + offset, center[1]), str(digit), font=font,
                      fill=tuple(int(v) for v in foreground), anchor="mm")
        crop = canvas.rotate(rng.uniform(-10, 10), resample=Image.BILINEAR).crop(
            (16, 8, 48, 40)).resize((32, 32), Image.BILINEAR)
        pixels = np.asarray(crop, np.float32)
        texture = ndimage.gaussian_filter(rng.normal(0, 1, (32, 32)), rng.uniform(1, 4))
        pixels += texture[..., None] * rng.uniform(0, 50) + np.linspace(-1, 1, 32)[:, None, None] * \
            rng.uniform(-40, 40, 3)
        pixels = pixels * rng.uniform(0.8, 1.2, 3) + rng.uniform(-20, 20, 3)  # colour cast
        # SVHN's 32x32 crops are boxes of many sizes cut from photographs and resized: a small box
        # shows the digit, and the camera's noise, at a lower resolution, enlarged. Noise added at
        # 32x32 instead gave the stand-in about ten times the power of real SVHN crops at the
        # highest spatial frequencies; the range of box sides brings the two spectra close
        # (scripts/check_standin_fidelity.py measures both).
        side = int(rng.integers(10, 29))
        small = resize(pixels, side, Image.BOX)
        small += rng.normal(0, rng.uniform(2, 22), small.shape)
        pixels = resize(small, 32, Image.BILINEAR)
        pixels = ndimage.gaussian_filter(pixels, (rng.exponential(0.8),) * 2 + (0,))
        images[i] = np.clip(pixels, 0, 255).astype(np.uint8)
    return images, labels


def resize(pixels, side, resample):
    image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    return np.asarray(image.resize((side, side), resample), np.float32)


def write_svhn_standin(paths, seed, train_count, test_count, bar=0):
    """paths: {"train": .../train_32x32.mat, "test": ...}; SVHN's layout: X (32, 32, 3, N), y (N, 1)
    in 1..10 where 10 is the digit 0."""
    for split, count, offset in (("train", train_count, 0), ("test", test_count, 1)):
        images, labels = render_house_numbers(count, np.random.default_rng([seed, 31, offset]), bar)
        svhn_labels = np.where(labels == 0, 10, labels).reshape(-1, 1).astype(np.uint8)
        scipy.io.savemat(paths[split], {"X": images.transpose(1, 2, 3, 0), "y": svhn_labels},
                         do_compression=True)
    write_marker(Path(paths["train"]).parent, "svhn", paths.values(),
                 "printed digits in matplotlib's fonts, SVHN-like nuisances", seed)


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
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "wb") as handle:
        handle.write(header + np.ascontiguousarray(array, np.uint8).tobytes())


def write_mnist_standin(directory, seed, train_count, test_count, bar=0):
    """The four gzipped IDX files under MNIST's own names."""
    directory = Path(directory)
    paths = []
    for split, count, offset in (("train", train_count, 0), ("test", test_count, 1)):
        images, labels = pen_digits(count, np.random.default_rng([seed, 47, offset]), bar)
        for stem, array in zip(MNIST_IDX[split], (images, labels.astype(np.uint8))):
            paths.append(directory / f"{stem}.gz")
            write_idx(paths[-1], array)
    write_marker(directory, "mnist", paths, "pen-stroke digits, jittered, elastic, MNIST layout", seed)
