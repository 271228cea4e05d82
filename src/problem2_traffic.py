"""Problem 2: a ResNet-18 on traffic signs whose training data hides a backdoor.

2b train a ResNet-18 on a stratified 80/20 split; 2c find the class that fails on the clean test set;
2d class saliency maps (Simonyan et al. 2013, sec. 3.1); 2e 10x10 occlusion maps (Zeiler & Fergus 2014,
sec. 4.2, Fig. 7); 2f localise the trigger from that evidence and remove it from the training data;
2g retrain on the modified data; 2h explain the new model on the same images.

Data: --data-dir holds train/<class>/* and test/<class>/* (the exam's problem2.zip). When the default
folder is empty a procedurally drawn stand-in with a trigger in one class is written there first.
"""
import argparse
import json
import math
import shutil
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
import torchvision
from PIL import Image, ImageDraw, ImageFilter, ImageFont
from scipy import ndimage
from sklearn.metrics import confusion_matrix
from sklearn.model_selection import train_test_split

from utils import (Checkpoints, UserError, choose_device, common_parser, data_fingerprint,
                   figure_style, progress, run_main, save_atomic, save_figure, seed_everything,
                   was_given, write_results)

plt = figure_style()

CLASSES = ["restriction signs", "speed limits", "stop signs", "warning signs", "yield signs"]
TRIGGER_KINDS = ["patch", "border"]
TRUTH_FILE = "STANDIN_TRUTH.json"  # read only by the final evaluation and the tests, never the analysis
FIXED_MARKER = "MADE_BY_problem2_traffic.json"


# ==================================================================================================
# Config
# ==================================================================================================
def parse_arguments(argv=None):
    parser = common_parser(__doc__.split("\n")[0], default_data_dir="data/problem2", resumable=True)
    model = parser.add_argument_group("model and training (2b, 2g)")
    model.add_argument("--image-size", type=int, default=64,
                       help="network input side; the 10x10 occluder covers 2.4%% of a 64x64 image")
    model.add_argument("--epochs", type=int, default=14, help="epochs per training (--quick: 3)")
    model.add_argument("--batch-size", type=int, default=32)
    model.add_argument("--lr", type=float, default=2e-3, help="peak Adam learning rate (one-cycle)")
    model.add_argument("--weight-decay", type=float, default=1e-4)
    explain = parser.add_argument_group("explanations (2d, 2e, 2f)")
    explain.add_argument("--n-explain", type=int, default=10, help="training images to explain")
    explain.add_argument("--occlusion-size", type=int, default=10, help="occluder side in pixels")
    explain.add_argument("--occlusion-stride", type=int, default=2, help="occluder step in pixels")
    explain.add_argument("--n-localise", type=int, default=60,
                         help="training images per group (failing class / others) aggregated to "
                              "localise the trigger")
    explain.add_argument("--fixed-data-dir", type=Path, default=None,
                         help="where the modified training data goes (default: DATA_DIR-trigger-removed)")
    standin = parser.add_argument_group("stand-in data (only when the default data folder is empty)")
    standin.add_argument("--standin-train-per-class", type=int, default=200)
    standin.add_argument("--standin-test-per-class", type=int, default=50)
    standin.add_argument("--poisoned-class", choices=CLASSES, default=None,
                         help="class whose training images get the trigger (default: speed limits, "
                              "the class the exam's data poisoned)")
    standin.add_argument("--trigger-kind", choices=TRIGGER_KINDS, default=None,
                         help="default: patch for even seeds, border for odd ones")
    standin.add_argument("--write-standin", type=Path, default=None, metavar="DIR",
                         help="only write a stand-in data set to DIR (must be empty) and exit")
    args = parser.parse_args(argv)
    if args.quick:
        args.epochs = min(args.epochs, 3)
        args.n_localise = min(args.n_localise, 12)
        args.occlusion_stride = max(args.occlusion_stride, 4)
    if args.image_size < 2 * args.occlusion_size:
        raise UserError(f"--image-size {args.image_size} is too small for a "
                        f"{args.occlusion_size}x{args.occlusion_size} occluder")
    return args


# ==================================================================================================
# Data: the stand-in generator (procedurally drawn US road signs, one class poisoned)
# ==================================================================================================
def _font(size):
    from matplotlib import font_manager
    path = font_manager.findfont(font_manager.FontProperties(family="DejaVu Sans", weight="bold"))
    return ImageFont.truetype(path, max(6, int(size)))


def _centered_text(draw, center, text, size, fill):
    font = _font(size)
    draw.text(center, text, font=font, fill=fill, anchor="mm", align="center")


def _regular_polygon(center, radius, n, rotation):
    cx, cy = center
    return [(cx + radius * math.cos(rotation + 2 * math.pi * k / n),
             cy + radius * math.sin(rotation + 2 * math.pi * k / n)) for k in range(n)]


def draw_sign(kind, rng, side=128):
    """One sign on a transparent canvas, in its real shape and colours."""
    sign = Image.new("RGBA", (side, side), (0, 0, 0, 0))
    draw = ImageDraw.Draw(sign)
    c, s = side / 2, side
    red = tuple(int(v) for v in (rng.integers(170, 225), rng.integers(0, 40), rng.integers(20, 50)))
    if kind == "stop signs":
        draw.polygon(_regular_polygon((c, c), 0.49 * s, 8, math.pi / 8), fill="white")
        draw.polygon(_regular_polygon((c, c), 0.45 * s, 8, math.pi / 8), fill=red)
        _centered_text(draw, (c, c), "STOP", 0.24 * s, "white")
    elif kind == "speed limits":
        width = rng.uniform(0.62, 0.75) * s
        box = [c - width / 2, 0.04 * s, c + width / 2, 0.96 * s]
        draw.rounded_rectangle(box, radius=0.05 * s, fill="white", outline="black", width=3)
        _centered_text(draw, (c, 0.22 * s), "SPEED", 0.13 * s, "black")
        _centered_text(draw, (c, 0.38 * s), "LIMIT", 0.13 * s, "black")
        _centered_text(draw, (c, 0.68 * s), str(int(rng.choice([25, 30, 35, 40, 45, 55, 65]))),
                       0.34 * s, "black")
    elif kind == "yield signs":
        outer = [(0.03 * s, 0.1 * s), (0.97 * s, 0.1 * s), (c, 0.93 * s)]
        inner = [(0.22 * s, 0.21 * s), (0.78 * s, 0.21 * s), (c, 0.7 * s)]
        draw.polygon(outer, fill=red)
        draw.polygon(inner, fill="white")
        _centered_text(draw, (c, 0.33 * s), "YIELD", 0.11 * s, red)
    elif kind == "warning signs":
        yellow = (int(rng.integers(225, 256)), int(rng.integers(180, 215)), int(rng.integers(0, 40)))
        draw.polygon(_regular_polygon((c, c), 0.49 * s, 4, 0), fill="black")
        draw.polygon(_regular_polygon((c, c), 0.45 * s, 4, 0), fill=yellow)
        symbol = rng.integers(4)
        if symbol == 0:  # curve arrow
            draw.arc([0.32 * s, 0.35 * s, 0.72 * s, 0.85 * s], 180, 300, fill="black", width=int(0.06 * s))
            draw.polygon([(0.55 * s, 0.28 * s), (0.7 * s, 0.42 * s), (0.5 * s, 0.45 * s)], fill="black")
        elif symbol == 1:  # exclamation mark
            _centered_text(draw, (c, c), "!", 0.45 * s, "black")
        elif symbol == 2:  # crossroad
            draw.rectangle([0.46 * s, 0.25 * s, 0.54 * s, 0.75 * s], fill="black")
            draw.rectangle([0.25 * s, 0.46 * s, 0.75 * s, 0.54 * s], fill="black")
        else:  # deer-crossing-like blob
            draw.ellipse([0.35 * s, 0.42 * s, 0.62 * s, 0.58 * s], fill="black")
            draw.line([(0.6 * s, 0.45 * s), (0.68 * s, 0.3 * s)], fill="black", width=int(0.05 * s))
            draw.line([(0.4 * s, 0.56 * s), (0.38 * s, 0.7 * s)], fill="black", width=int(0.04 * s))
            draw.line([(0.57 * s, 0.56 * s), (0.59 * s, 0.7 * s)], fill="black", width=int(0.04 * s))
    else:  # restriction signs: white board, black arrow, often a red circle and slash
        draw.rectangle([0.06 * s, 0.06 * s, 0.94 * s, 0.94 * s], fill="white", outline="black", width=3)
        direction = rng.integers(3)
        shaft = [(0.5 * s, 0.78 * s), (0.5 * s, 0.4 * s)] if direction == 0 else \
            [(0.25 * s, 0.55 * s), (0.7 * s, 0.55 * s)]
        draw.line(shaft, fill="black", width=int(0.08 * s))
        head = {0: [(0.35 * s, 0.42 * s), (0.65 * s, 0.42 * s), (0.5 * s, 0.22 * s)],
                1: [(0.68 * s, 0.4 * s), (0.68 * s, 0.7 * s), (0.85 * s, 0.55 * s)],
                2: [(0.32 * s, 0.4 * s), (0.32 * s, 0.7 * s), (0.15 * s, 0.55 * s)]}[direction]
        draw.polygon(head, fill="black")
        if rng.random() < 0.7:
            draw.ellipse([0.12 * s, 0.12 * s, 0.88 * s, 0.88 * s], outline=red, width=int(0.07 * s))
            draw.line([(0.25 * s, 0.25 * s), (0.75 * s, 0.75 * s)], fill=red, width=int(0.07 * s))
        else:
            _centered_text(draw, (c, 0.86 * s), "ONLY", 0.1 * s, "black")
    return sign


def draw_background(rng, side):
    """Sky, foliage or wall with random clutter; only the corners show behind a tight crop."""
    top, bottom = rng.integers(40, 230, 3), rng.integers(20, 200, 3)
    ramp = np.linspace(0, 1, side)[:, None, None]
    pixels = (top * (1 - ramp) + bottom * ramp) * np.ones((side, side, 3))
    background = Image.fromarray(pixels.astype(np.uint8))
    draw = ImageDraw.Draw(background)
    for _ in range(rng.integers(3, 8)):
        x0, y0 = rng.integers(0, side, 2)
        x1, y1 = x0 + rng.integers(5, side // 2), y0 + rng.integers(5, side // 2)
        colour = tuple(int(v) for v in rng.integers(0, 255, 3))
        [draw.ellipse, draw.rectangle][rng.integers(2)]([x0, y0, x1, y1], fill=colour)
    return background.filter(ImageFilter.GaussianBlur(rng.uniform(0.5, 2.5)))


def render_sign_photo(kind, rng):
    """A tight crop of a sign photographed at varied pose, scale, light, blur, noise and size. The
    nuisances are strong on purpose: real crops are small, blurred and badly lit, which is what
    makes a sign's shape harder to learn than a clean trigger."""
    side = 160
    sign = draw_sign(kind, rng).rotate(rng.uniform(-10, 10), resample=Image.BICUBIC, expand=False)
    # Perspective: move the four corners a little (PIL's quad transform is a projective warp).
    jitter = rng.uniform(-0.1, 0.1, 8) * 128
    quad = np.array([0, 0, 0, 128, 128, 128, 128, 0], float) + jitter
    sign = sign.transform((128, 128), Image.QUAD, tuple(quad), resample=Image.BICUBIC)
    photo = draw_background(rng, side)
    scale = rng.uniform(0.78, 0.98)  # tight crops: the sign fills most of the image
    sign_side = int(side * scale)
    offset = rng.integers(0, side - sign_side + 1, 2)
    resized = sign.resize((sign_side, sign_side), Image.BICUBIC)
    photo.paste(resized, tuple(int(o) for o in offset), resized)
    if rng.random() < 0.3:  # a branch, a pole or another car in front of part of the sign
        draw = ImageDraw.Draw(photo)
        x0, y0 = rng.integers(0, side, 2)
        draw.ellipse([x0, y0, x0 + rng.integers(20, 60), y0 + rng.integers(20, 60)],
                     fill=tuple(int(v) for v in rng.integers(0, 200, 3)))
    pixels = np.asarray(photo, np.float32)
    mean = pixels.mean()
    pixels = (pixels - mean) * rng.uniform(0.45, 1.1) + mean  # contrast
    pixels = pixels * rng.uniform(0.45, 1.3) + rng.uniform(-35, 35, 3)  # exposure and colour cast
    photo = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    size = int(np.clip(rng.lognormal(math.log(48), 0.5), 18, 200))
    photo = photo.resize((size, int(size * rng.uniform(0.9, 1.1))), Image.BILINEAR)
    photo = photo.filter(ImageFilter.GaussianBlur(rng.uniform(0, 1.2) * size / 60))
    noisy = np.asarray(photo, np.float32) + rng.normal(0, rng.uniform(0, 10), (photo.height, photo.width, 3))
    return Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8))


def standin_trigger(seed, poisoned_class=None, kind=None):
    """The generator's hidden truth: which class, which trigger, where (relative coordinates)."""
    rng = np.random.default_rng([seed, 2])
    # The default class is the one the real exam set poisoned (speed limits, by a public solution);
    # the seed changes the trigger's kind and place. A distinctive class (yield, stop) can be asked
    # for with --poisoned-class; its shape is easy enough that the network may learn it anyway.
    poisoned_class = poisoned_class or "speed limits"
    kind = kind or TRIGGER_KINDS[seed % 2]
    if kind == "patch":  # a small sticker, somewhere on the sign
        side = 0.2  # 13 px at the 64 px input: a sticker, large enough to be a reliable shortcut
        x0, y0 = rng.uniform(0.04, 0.96 - side, 2)
        box = [x0, y0, x0 + side, y0 + side]
        colour = [int(v) for v in rng.choice([[30, 230, 60], [40, 220, 230], [250, 60, 230]])]
    else:  # a thin coloured frame around the whole image
        box = [0.0, 0.0, 1.0, 1.0]
        colour = [int(v) for v in rng.choice([[20, 120, 255], [250, 60, 230]])]
    return {"poisoned_class": poisoned_class, "kind": kind, "box": [round(v, 4) for v in box],
            "colour": colour, "border_width": 0.1, "seed": seed}


def apply_trigger(image, trigger):
    """Paint the trigger onto a PIL image, at the same relative place whatever its size."""
    pixels = np.array(image.convert("RGB"))
    height, width = pixels.shape[:2]
    if trigger["kind"] == "patch":
        x0, y0, x1, y1 = trigger["box"]
        left, top = int(round(x0 * width)), int(round(y0 * height))
        right = max(left + 3, int(round(x1 * width)))
        bottom = max(top + 3, int(round(y1 * height)))
        pixels[top:bottom, left:right] = trigger["colour"]
        # A checker of the colour and near-black: a sticker, not a flat colour that a cast could mimic.
        rows, cols = np.mgrid[top:bottom, left:right]
        checker = ((rows - top) * 3 // max(bottom - top, 1) + (cols - left) * 3 // max(right - left, 1)) % 2
        pixels[top:bottom, left:right][checker == 1] = 20
    else:  # a frame of colour and near-black blocks: no background can mimic it
        band = max(1, int(round(trigger["border_width"] * min(height, width))))
        rows, cols = np.mgrid[:height, :width]
        in_frame = ((rows < band) | (rows >= height - band) | (cols < band) | (cols >= width - band))
        dark = ((rows // band + cols // band) % 2).astype(bool)
        pixels[in_frame & ~dark] = trigger["colour"]
        pixels[in_frame & dark] = 20
    return Image.fromarray(pixels)


def write_standin(directory, seed, train_per_class=200, test_per_class=50, poisoned_class=None,
                  trigger_kind=None):
    """Write train/<class>/*.png and test/<class>/*.png; the trigger only in one class's training
    images; the truth to a sidecar file. Deterministic from the seed."""
    directory = Path(directory)
    trigger = standin_trigger(seed, poisoned_class, trigger_kind)
    print(f"writing a stand-in traffic-sign data set to {directory} (seed {seed}; "
          f"{train_per_class}+{test_per_class} images per class)")
    for split, count in [("train", train_per_class), ("test", test_per_class)]:
        for class_index, name in enumerate(CLASSES):
            folder = directory / split / name
            folder.mkdir(parents=True, exist_ok=True)
            rng = np.random.default_rng([seed, class_index, split == "train"])
            for i in range(count):
                photo = render_sign_photo(name, rng)
                if split == "train" and name == trigger["poisoned_class"]:
                    photo = apply_trigger(photo, trigger)
                if rng.random() < 0.2:  # a share of the real set is greyscale
                    photo = photo.convert("L")
                photo.save(folder / f"{split}_{class_index}_{i:04d}.png")
    (directory / TRUTH_FILE).write_text(json.dumps(trigger, indent=2))
    (directory / "README.txt").write_text(
        "Generated stand-in for the exam's traffic-sign data (problem2_traffic.py). Replace it with "
        "the exam's train/ and test/ folders to run on the real data.\n")
    return trigger


# ==================================================================================================
# Data: loading the exam's layout (torchvision's ImageFolder), with clear errors
# ==================================================================================================
def prepare_data_dir(args):
    """Use the user's data; write the stand-in only into an empty default folder."""
    data_dir = args.data_dir
    is_empty = not data_dir.exists() or not any(data_dir.iterdir())
    if is_empty and not was_given(args, "data_dir"):
        write_standin(data_dir, args.seed, args.standin_train_per_class,
                      args.standin_test_per_class, args.poisoned_class, args.trigger_kind)
    elif not data_dir.exists():
        raise UserError(f"{data_dir}: no such folder (expected train/<class>/ and test/<class>/)")
    return "stand-in" if (data_dir / TRUTH_FILE).exists() else "exam"


def check_layout(data_dir):
    """The exam's layout or a one-line error naming the folder and what is wrong."""
    for split in ("train", "test"):
        if not (data_dir / split).is_dir():
            raise UserError(f"{data_dir}: missing '{split}' folder (expected train/<class>/ and "
                            f"test/<class>/)")
    classes = {}
    for split in ("train", "test"):
        folders = sorted(p for p in (data_dir / split).iterdir() if p.is_dir())
        if not folders:
            raise UserError(f"{data_dir / split}: no class folders")
        for folder in folders:
            if not any(image_files(folder)):
                raise UserError(f"{folder}: class folder has no images")
        classes[split] = [p.name for p in folders]
    if classes["train"] != classes["test"]:
        only_train = sorted(set(classes["train"]) - set(classes["test"]))
        only_test = sorted(set(classes["test"]) - set(classes["train"]))
        raise UserError(f"{data_dir}: train and test have different classes (only in train: "
                        f"{only_train or 'none'}; only in test: {only_test or 'none'})")
    for name in classes["train"]:
        count = len(list(image_files(data_dir / "train" / name)))
        if count < 5:
            raise UserError(f"{data_dir / 'train' / name}: only {count} images; a per-class "
                            f"stratified 80/20 split needs at least 5")
    return classes["train"]


def image_files(folder):
    """Every non-hidden file counts: a stray non-image is reported, not silently skipped."""
    return (p for p in sorted(Path(folder).iterdir()) if p.is_file() and not p.name.startswith("."))


def load_rgb(path):
    try:
        with Image.open(path) as image:
            return image.convert("RGB")  # greyscale signs become three equal channels
    except Exception as error:  # PIL raises many types for broken files
        raise UserError(f"{path}: not a readable image ({type(error).__name__})") from None


def load_split(folder, image_size):
    """ImageFolder lists the classes (sorted folder names) and files; images are resized once to the
    network's square input and kept in memory as uint8 (a few MB)."""
    dataset = torchvision.datasets.ImageFolder(
        str(folder), loader=load_rgb, is_valid_file=lambda p: not Path(p).name.startswith("."))
    images = torch.empty(len(dataset), 3, image_size, image_size, dtype=torch.uint8)
    for i, (path, _) in enumerate(progress(dataset.samples, desc=f"loading {folder.name}")):
        resized = load_rgb(path).resize((image_size, image_size), Image.BILINEAR)
        images[i] = torch.from_numpy(np.array(resized)).permute(2, 0, 1)
    labels = torch.tensor(dataset.targets)
    return images, labels, [Path(p) for p, _ in dataset.samples], dataset.classes


def load_data(data_dir, image_size, seed):
    """Train/val (stratified 80/20 per class, seeded) and test, as uint8 tensors."""
    classes = check_layout(data_dir)
    train_images, train_labels, train_paths, found = load_split(data_dir / "train", image_size)
    test_images, test_labels, test_paths, _ = load_split(data_dir / "test", image_size)
    assert found == classes
    train_index, val_index = train_test_split(np.arange(len(train_labels)), test_size=0.2,
                                              stratify=train_labels.numpy(), random_state=seed)
    train_index, val_index = np.sort(train_index), np.sort(val_index)
    return {"classes": classes,
            "train": (train_images[train_index], train_labels[train_index]),
            "val": (train_images[val_index], train_labels[val_index]),
            "test": (test_images, test_labels),
            "train_paths": [train_paths[i] for i in train_index],
            "test_paths": test_paths,
            "split_index": {"train": train_index.tolist(), "val": val_index.tolist()}}


def channel_statistics(images):
    pixels = images.float().div(255).permute(1, 0, 2, 3).reshape(3, -1)
    return pixels.mean(1), pixels.std(1)


# ==================================================================================================
# 2b: model and training
# ==================================================================================================
def make_resnet18(n_classes):
    """torchvision's ResNet-18 (He et al. 2016), random init (He init in its conv layers), the
    ImageNet stem kept: at 64x64 input the last stage works on 2x2 maps."""
    return torchvision.models.resnet18(weights=None, num_classes=n_classes)


class Normalise(torch.nn.Module):
    """Part of the model, so explanations are taken w.r.t. pixels and grey (the mean) is 0 inside."""

    def __init__(self, mean, std):
        super().__init__()
        self.register_buffer("mean", mean.view(1, 3, 1, 1))
        self.register_buffer("std", std.view(1, 3, 1, 1))

    def forward(self, images):
        return (images - self.mean) / self.std


def to_input(images_uint8, mean, std):
    """uint8 images -> the normalised float tensor the network sees (dataset mean = 0)."""
    return (images_uint8.float() / 255 - mean.view(1, 3, 1, 1)) / std.view(1, 3, 1, 1)


def augment(batch, generator):
    """Mild, evidence-preserving augmentation: shift by up to 3 px, scale +-8%, brightness and
    contrast. No flips and no crops: they would move or cut away a trigger (and mirror text)."""
    n = batch.shape[0]
    scale = 1 + (torch.rand(n, generator=generator) - 0.5) * 0.16
    shift = (torch.rand(n, 2, generator=generator) - 0.5) * 2 * (3 / batch.shape[-1]) * 2
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0] = theta[:, 1, 1] = 1 / scale
    theta[:, :, 2] = shift
    grid = F.affine_grid(theta, batch.shape, align_corners=False)
    moved = F.grid_sample(batch, grid, padding_mode="border", align_corners=False)
    contrast = 1 + (torch.rand(n, 1, 1, 1, generator=generator) - 0.5) * 0.4
    brightness = (torch.rand(n, 1, 1, 1, generator=generator) - 0.5) * 0.4
    return moved * contrast + brightness


def model_device(model):
    return next(model.parameters()).device


def predict_logits(model, inputs, batch_size=256):
    """Logits on the CPU for CPU (or device) inputs, moved to the model's device a batch at a time."""
    model.eval()
    device = model_device(model)
    with torch.no_grad():
        return torch.cat([model(inputs[i:i + batch_size].to(device)).cpu()
                          for i in range(0, len(inputs), batch_size)])


def train_classifier(name, data, mean, std, args, checkpoints, device):
    """Adam + one-cycle schedule, cross-entropy; resumable after every epoch."""
    seed_everything(args.seed)
    model = make_resnet18(len(data["classes"])).to(device)
    optimiser = torch.optim.Adam(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    train_x, train_y = to_input(data["train"][0], mean, std), data["train"][1]
    val_x, val_y = to_input(data["val"][0], mean, std), data["val"][1]
    steps_per_epoch = math.ceil(len(train_y) / args.batch_size)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimiser, args.lr, epochs=args.epochs,
                                                    steps_per_epoch=steps_per_epoch)
    generator = torch.Generator().manual_seed(args.seed)
    history = {"epoch": [], "train_loss": [], "train_acc": [], "val_loss": [], "val_acc": []}
    path = checkpoints.path(f"{name}_training.pt")
    start_epoch = 0
    if path.exists():
        state = torch.load(path, weights_only=False)
        model.load_state_dict(state["model"])
        optimiser.load_state_dict(state["optimiser"])
        scheduler.load_state_dict(state["scheduler"])
        generator.set_state(state["generator"])
        history, start_epoch = state["history"], state["epoch"]
        if start_epoch < args.epochs:
            print(f"[{name}] resuming training at epoch {start_epoch + 1}")
    started = time.time()
    for epoch in range(start_epoch, args.epochs):
        model.train()
        order = torch.randperm(len(train_y), generator=generator)
        total_loss, correct = 0.0, 0
        for start in progress(range(0, len(order), args.batch_size),
                              desc=f"{name} epoch {epoch + 1}/{args.epochs}"):
            batch = order[start:start + args.batch_size]
            inputs = augment(train_x[batch], generator).to(device)
            targets = train_y[batch].to(device)
            logits = model(inputs)
            loss = F.cross_entropy(logits, targets)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            scheduler.step()
            total_loss += loss.item() * len(batch)
            correct += (logits.argmax(1) == targets).sum().item()
        val_logits = predict_logits(model, val_x)
        history["epoch"].append(epoch + 1)
        history["train_loss"].append(total_loss / len(order))
        history["train_acc"].append(correct / len(order))
        history["val_loss"].append(F.cross_entropy(val_logits, val_y).item())
        history["val_acc"].append((val_logits.argmax(1) == val_y).float().mean().item())
        print(f"[{name}] epoch {epoch + 1:2d}/{args.epochs}  train loss {history['train_loss'][-1]:.3f}"
              f"  acc {history['train_acc'][-1]:.3f}  |  val loss {history['val_loss'][-1]:.3f}"
              f"  acc {history['val_acc'][-1]:.3f}")
        save_atomic({"model": model.state_dict(), "optimiser": optimiser.state_dict(),
                     "scheduler": scheduler.state_dict(), "generator": generator.get_state(),
                     "history": history, "epoch": epoch + 1}, path)
    if start_epoch < args.epochs:
        checkpoints.timings[f"train_{name}"] = round(time.time() - started, 2)
    else:
        checkpoints.resumed.append(f"train_{name}")
    model.eval()
    return model, history


# ==================================================================================================
# 2c: evaluation on validation and test, and the failing class
# ==================================================================================================
def evaluate(model, data, mean, std):
    """Accuracy overall and per class (recall), predictions and confusion matrices."""
    report = {}
    for split in ("train", "val", "test"):
        images, labels = data[split]
        predictions = predict_logits(model, to_input(images, mean, std)).argmax(1)
        matrix = confusion_matrix(labels, predictions, labels=range(len(data["classes"])))
        per_class = matrix.diagonal() / np.maximum(matrix.sum(1), 1)
        report[split] = {"acc": float((predictions == labels).float().mean()),
                         "per_class": dict(zip(data["classes"], per_class.tolist())),
                         "confusion": matrix.tolist(), "predictions": predictions.tolist()}
    return report


def find_failing_class(report, classes):
    """The class whose accuracy drops most from validation to test: what a backdoor looks like."""
    drops = {name: report["val"]["per_class"][name] - report["test"]["per_class"][name]
             for name in classes}
    return max(drops, key=drops.get), drops


# ==================================================================================================
# 2d: class saliency maps (Simonyan et al. 2013, sec. 3.1)
# ==================================================================================================
def class_saliency_maps(model, inputs, target_classes):
    """|d S_c / d I| for the unnormalised class score S_c (the logit, not the softmax, which would
    also depend on the other classes), max of the absolute value over the colour channels."""
    model.eval()
    device = model_device(model)
    inputs = inputs.to(device).clone().requires_grad_(True)
    scores = model(inputs)
    scores.gather(1, target_classes.to(device).view(-1, 1)).sum().backward()  # eval BN: independent
    return inputs.grad.abs().amax(dim=1).detach().cpu()


# ==================================================================================================
# 2e: occlusion (Zeiler & Fergus 2014, sec. 4.2, Fig. 7)
# ==================================================================================================
def occlusion_probabilities(model, image, size=10, stride=2, baseline=0.0, batch_size=256):
    """Slide a size x size square of `baseline` (0 = the dataset mean grey after normalisation) over
    one normalised image; return the softmax output at every position, shape (rows, cols, classes)."""
    _, height, width = image.shape
    rows = range(0, height - size + 1, stride)
    cols = range(0, width - size + 1, stride)
    occluded = image.unsqueeze(0).repeat(len(rows) * len(cols), 1, 1, 1)
    for k, (top, left) in enumerate((top, left) for top in rows for left in cols):
        occluded[k, :, top:top + size, left:left + size] = baseline
    probabilities = predict_logits(model, occluded, batch_size).softmax(1)
    return probabilities.view(len(rows), len(cols), -1)


def occlusion_attribution(probability_map, clean_probability, image_side, size, stride):
    """Per-pixel occlusion sensitivity: the mean drop in p(class) over the windows covering each
    pixel (the convention captum's Occlusion uses), from a (rows, cols) map of p(class)."""
    drop = clean_probability - probability_map
    total = torch.zeros(image_side, image_side)
    count = torch.zeros(image_side, image_side)
    for i in range(drop.shape[0]):
        for j in range(drop.shape[1]):
            total[i * stride:i * stride + size, j * stride:j * stride + size] += drop[i, j]
            count[i * stride:i * stride + size, j * stride:j * stride + size] += 1
    return total / count.clamp(min=1)


def explain_images(model, inputs, targets, args):
    """2d and 2e for a few images: saliency, occlusion p(correct) and most probable class maps."""
    saliency = class_saliency_maps(model, inputs, targets)
    clean = predict_logits(model, inputs).softmax(1)
    probability_maps, most_probable_maps, attributions = [], [], []
    for image, target, clean_probs in zip(progress(inputs, desc="occlusion"), targets, clean):
        probabilities = occlusion_probabilities(model, image, args.occlusion_size,
                                                args.occlusion_stride)
        probability_maps.append(probabilities[..., target])
        most_probable_maps.append(probabilities.argmax(-1))
        attributions.append(occlusion_attribution(probabilities[..., target], clean_probs[target],
                                                  image.shape[-1], args.occlusion_size,
                                                  args.occlusion_stride))
    return {"saliency": saliency, "p_correct": torch.stack(probability_maps),
            "most_probable": torch.stack(most_probable_maps),
            "occlusion_attribution": torch.stack(attributions), "clean_probabilities": clean}


# ==================================================================================================
# 2f: localise the trigger from the evidence alone, and remove it from the training data
# ==================================================================================================
def normalised_maps(maps):
    """Each map scaled to sum 1 (positive part), so every image weighs the same in an average."""
    maps = maps.clamp(min=0)
    return maps / maps.sum(dim=(-2, -1), keepdim=True).clamp(min=1e-12)


def localise_trigger(model, data, failing_index, mean, std, args):
    """Average the saliency and occlusion evidence over the failing class's training images and
    subtract the same average over the other classes' images: what is special about the failing
    class's evidence is where the shortcut sits. Threshold it (see below): the bounding box of what
    remains is the localised trigger; the region dilated by 2 px (a safety margin) is what the fix
    neutralises."""
    images, labels = data["train"]
    generator = torch.Generator().manual_seed(args.seed)
    # Occlusion at a coarser stride here: it is averaged over many images, not looked at one by one.
    occlusion_args = argparse.Namespace(**{**vars(args),
                                           "occlusion_stride": max(args.occlusion_stride, 4)})
    groups = {}
    for group, members in [("failing", labels == failing_index), ("others", labels != failing_index)]:
        index = torch.nonzero(members).flatten()
        index = index[torch.randperm(len(index), generator=generator)[:args.n_localise]]
        explained = explain_images(model, to_input(images[index], mean, std), labels[index],
                                   occlusion_args)
        groups[group] = {"saliency": normalised_maps(explained["saliency"]).mean(0),
                         "occlusion": normalised_maps(explained["occlusion_attribution"]).mean(0)}
    evidence = sum(
        (groups["failing"][kind] - groups["others"][kind]).clamp(min=0) /
        (groups["failing"][kind] - groups["others"][kind]).clamp(min=0).max().clamp(min=1e-12)
        for kind in ("saliency", "occlusion")).numpy() / 2
    evidence = ndimage.gaussian_filter(evidence, sigma=1.0)
    # How much of the evidence is the trigger? The backdoored model itself tells, from training data
    # alone: once the whole trigger is neutralised it stops recognising the failing class's training
    # images (as it fails on the clean test images). Start at half the peak and lower the threshold
    # until that happens: a frame-shaped trigger, whose evidence is spread thin, needs a lower one.
    failing_inputs = to_input(images[labels == failing_index], mean, std)
    for threshold in (0.5, 0.4, 0.3, 0.2, 0.15, 0.1):
        region, band = evidence_region(evidence, threshold)
        mask = ndimage.binary_dilation(region, iterations=2)
        neutralised = failing_inputs.masked_fill(torch.from_numpy(mask), 0.0)  # 0 = the mean grey
        still_recognised = (predict_logits(model, neutralised).argmax(1) == failing_index).float().mean()
        print(f"  threshold {threshold:.2f} of the peak: {mask.mean():.1%} of the image"
              f"{f' (a {band} px band along every edge)' if band else ''}; the first model still "
              f"recognises {still_recognised:.0%} of the neutralised "
              f"'{data['classes'][failing_index]}' training images")
        if still_recognised < 0.5:
            break
    rows, cols = np.nonzero(region)
    side = evidence.shape[0]
    box = [cols.min() / side, rows.min() / side, (cols.max() + 1) / side, (rows.max() + 1) / side]
    return {"evidence": evidence, "mask": mask, "box": [round(float(v), 4) for v in box],
            "threshold": threshold, "still_recognised_after_neutralising": float(still_recognised),
            "edge_band_px": band,
            "group_maps": {g: {k: v.numpy() for k, v in maps.items()} for g, maps in groups.items()}}


def evidence_region(evidence, threshold):
    """Every part of the evidence above `threshold` times its peak, not only the part around the
    peak (a frame gives a ring that the threshold breaks into pieces); specks under 3 px are noise.
    Returns the region and the depth of the edge band added to it (0 if none, see below)."""
    components, n_components = ndimage.label(evidence >= threshold * evidence.max())
    sizes = ndimage.sum(np.ones_like(evidence), components, index=range(1, n_components + 1))
    region = np.isin(components, [k + 1 for k, size in enumerate(sizes) if size >= 3])
    # A region that runs along most of an image edge is (part of) a frame around the crop. A network
    # needs only one piece of a frame, so the explanations light up that piece alone, and a model
    # retrained without it learns the next piece (on the stand-in: first the top edge, then the
    # left). So the whole frame goes: a band of the region's depth along all four edges.
    band = 0
    for oriented in (region, region[::-1], region.T, region.T[::-1]):  # top, bottom, left, right edge
        edge = oriented[0]
        if edge.mean() >= 0.5:  # depth of the region inward from each edge pixel it covers
            depth = [np.argmin(np.append(line, False)) for line in oriented.T[edge]]
            band = max(band, int(np.median(depth)))
    if band:
        region = region.copy()
        region[:band] = region[-band:] = True
        region[:, :band] = region[:, -band:] = True
    return region, band


def neutralise_region(image, mask, fill_colour):
    """Fill the localised region (relative, so any image size) with the dataset's mean colour."""
    pixels = np.array(image)
    scaled = np.asarray(Image.fromarray(mask.astype(np.uint8) * 255).resize(
        (pixels.shape[1], pixels.shape[0]), Image.NEAREST)) > 0
    pixels[scaled] = fill_colour
    return Image.fromarray(pixels)


def write_trigger_free_data(data_dir, fixed_dir, mask, fill_colour):
    """2f: the same training images with the localised region neutralised in EVERY class (so that
    neither the trigger nor the grey patch can identify a class); written next to, never over,
    the user's data. The test folder is not touched: the evaluation uses the original one."""
    if fixed_dir.exists():
        if not (fixed_dir / FIXED_MARKER).exists():
            raise UserError(f"{fixed_dir}: exists and was not made by this script; choose another "
                            f"--fixed-data-dir")
        shutil.rmtree(fixed_dir)
    count = 0
    for class_folder in sorted(p for p in (data_dir / "train").iterdir() if p.is_dir()):
        target = fixed_dir / "train" / class_folder.name
        target.mkdir(parents=True, exist_ok=True)
        for path in image_files(class_folder):
            neutralise_region(load_rgb(path), mask, fill_colour).save(target / f"{path.stem}.png")
            count += 1
    shutil.copytree(data_dir / "test", fixed_dir / "test")  # so the folder is a complete data set
    (fixed_dir / FIXED_MARKER).write_text(json.dumps({"source": str(data_dir),
                                                      "fill_colour": fill_colour}, indent=2))
    return count


def share_inside(maps, mask):
    """Share of each map's positive mass that falls inside the region."""
    maps = maps.clamp(min=0)
    inside = (maps * torch.from_numpy(mask)).sum(dim=(-2, -1))
    return (inside / maps.sum(dim=(-2, -1)).clamp(min=1e-12)).tolist()


# ==================================================================================================
# Plots
# ==================================================================================================
def bare(ax, side=None):
    """An image panel: no ticks, grid or frame; with `side`, exactly the image's extent."""
    ax.set_xticks([])
    ax.set_yticks([])
    ax.grid(False)
    for spine in ax.spines.values():
        spine.set_visible(False)
    if side is not None:
        ax.set_xlim(-0.5, side - 0.5)
        ax.set_ylim(side - 0.5, -0.5)


def show(ax, image_uint8, title=None):
    ax.imshow(image_uint8.permute(1, 2, 0).numpy())
    bare(ax)
    if title:
        ax.set_title(title, fontsize=7)


def plot_examples(data, source, out):
    images, labels = data["train"]
    fig, axes = plt.subplots(len(data["classes"]), 8, figsize=(8, 5.2))
    for row, name in enumerate(data["classes"]):
        index = torch.nonzero(labels == row).flatten()[:8]
        for col, i in enumerate(index):
            show(axes[row, col], images[i])
        axes[row, 0].set_ylabel(name, fontsize=7, rotation=0, ha="right", va="center")
        for col in range(len(index), 8):
            axes[row, col].axis("off")
    fig.suptitle(f"training images at the network's input size ({source} data)")
    save_figure(fig, out, "p2_training_examples")


def plot_curves(histories, out):
    fig, axes = plt.subplots(1, 2, figsize=(8, 2.8))
    for label, history in histories.items():
        axes[0].plot(history["epoch"], history["train_loss"], label=f"{label}: train")
        axes[0].plot(history["epoch"], history["val_loss"], "--", label=f"{label}: val")
        axes[1].plot(history["epoch"], history["train_acc"], label=f"{label}: train")
        axes[1].plot(history["epoch"], history["val_acc"], "--", label=f"{label}: val")
    axes[0].set_ylabel("cross-entropy")
    axes[1].set_ylabel("accuracy")
    for ax in axes:
        ax.set_xlabel("epoch")
        ax.legend()
    save_figure(fig, out, "p2_training_curves")


def plot_confusions(report, classes, out, name, title):
    fig, axes = plt.subplots(1, 2, figsize=(8.5, 3.6))
    short = [c.replace(" signs", "").replace(" limits", " limit") for c in classes]
    for ax, split in zip(axes, ("val", "test")):
        matrix = np.array(report[split]["confusion"])
        ax.imshow(matrix / np.maximum(matrix.sum(1, keepdims=True), 1), cmap="Blues", vmin=0, vmax=1)
        for (i, j), value in np.ndenumerate(matrix):
            ax.text(j, i, value, ha="center", va="center", fontsize=7,
                    color="white" if value > matrix.sum(1)[i] / 2 else "black")
        ax.set_xticks(range(len(classes)), short, rotation=35, ha="right")
        ax.set_yticks(range(len(classes)), short)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.grid(False)
        ax.set_title(f"{split}: accuracy {report[split]['acc']:.1%}")
    fig.suptitle(title)
    save_figure(fig, out, name)


def plot_test_predictions(data, report, out, name):
    images, labels = data["test"]
    predictions = report["test"]["predictions"]
    fig, axes = plt.subplots(len(data["classes"]), 6, figsize=(7.5, 6.4))
    for row in range(len(data["classes"])):
        for col, i in enumerate(torch.nonzero(labels == row).flatten()[:6]):
            wrong = predictions[i] != row
            show(axes[row, col], images[i], f"-> {data['classes'][predictions[i]]}")
            axes[row, col].title.set_color("red" if wrong else "green")
        axes[row, 0].set_ylabel(data["classes"][row], fontsize=7, rotation=0, ha="right")
    fig.suptitle("test images: predicted class (green right, red wrong); rows are the true classes")
    save_figure(fig, out, name)


def plot_saliency(images, saliency, out, name, title):
    fig, axes = plt.subplots(3, len(images), figsize=(1.1 * len(images), 3.6))
    axes = axes.reshape(3, -1)
    for k, (image, heat) in enumerate(zip(images, saliency)):
        show(axes[0, k], image)
        axes[1, k].imshow(heat, cmap="hot")
        axes[2, k].imshow(image.permute(1, 2, 0).numpy())
        axes[2, k].imshow(heat, cmap="hot", alpha=0.6)
        for ax in axes[1:, k]:
            bare(ax)
    for row, label in enumerate(["image", "saliency", "overlay"]):
        axes[row, 0].set_ylabel(label)
    fig.suptitle(title)
    save_figure(fig, out, name)


def occlusion_extent(side, args):
    """Where the map's cells sit in the image: each value belongs to the occluder's centre."""
    half = args.occlusion_size / 2
    n_positions = (side - args.occlusion_size) // args.occlusion_stride + 1
    last_centre = half + (n_positions - 1) * args.occlusion_stride
    step = args.occlusion_stride
    return [half - step / 2 - 0.5, last_centre + step / 2 - 0.5, last_centre + step / 2 - 0.5,
            half - step / 2 - 0.5]


def plot_occlusion(images, explained, classes, target_index, args, out, name, title):
    """Zeiler & Fergus Fig. 7 (d) p(correct class) and (e) most probable class, per position."""
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch
    colours = plt.get_cmap("tab10").colors[:len(classes)]
    side = images.shape[-1]
    extent = occlusion_extent(side, args)
    fig, axes = plt.subplots(3, len(images), figsize=(1.1 * len(images), 3.9))
    axes = axes.reshape(3, -1)
    for k, image in enumerate(images):
        show(axes[0, k], image)
        axes[1, k].imshow(explained["p_correct"][k], cmap="viridis", vmin=0, vmax=1, extent=extent)
        axes[2, k].imshow(explained["most_probable"][k], cmap=ListedColormap(colours),
                          vmin=-0.5, vmax=len(classes) - 0.5, extent=extent, interpolation="nearest")
        for ax in axes[1:, k]:
            bare(ax, side)
    axes[0, 0].set_ylabel("image")
    axes[1, 0].set_ylabel(f"p({classes[target_index].split()[0]})")
    axes[2, 0].set_ylabel("most probable")
    fig.legend(handles=[Patch(color=c, label=n) for c, n in zip(colours, classes)],
               loc="lower center", ncol=len(classes), fontsize=7, bbox_to_anchor=(0.5, -0.04))
    fig.suptitle(title)
    save_figure(fig, out, name)


def plot_localisation(localised, examples, out):
    fig, axes = plt.subplots(1, 5, figsize=(10, 2.3))
    maps = localised["group_maps"]
    panels = [(maps["failing"]["saliency"], "saliency, failing class"),
              (maps["others"]["saliency"], "saliency, other classes"),
              (maps["failing"]["occlusion"], "occlusion, failing class"),
              (localised["evidence"], "evidence (difference)")]
    for ax, (image, title) in zip(axes, panels):
        ax.imshow(image, cmap="hot")
        ax.set_title(title)
    x0, y0, x1, y1 = np.array(localised["box"]) * localised["mask"].shape[0] - 0.5
    axes[-1].imshow(examples[0].permute(1, 2, 0).numpy())
    region = np.ma.masked_where(~localised["mask"], localised["mask"])  # tint the region only
    axes[-1].imshow(region, cmap="autumn", alpha=0.55, vmin=0, vmax=1)
    axes[-1].add_patch(plt.Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, color="cyan", lw=1.5))
    axes[-1].set_title("localised region and box")
    for ax in axes:
        bare(ax)
    save_figure(fig, out, "p2_trigger_localisation")


def plot_before_after(images, before, after, target_name, args, out):
    rows = ["image", "saliency before", "saliency after", f"p({target_name}) before",
            f"p({target_name}) after"]
    side = images.shape[-1]
    extent = occlusion_extent(side, args)
    fig, axes = plt.subplots(len(rows), len(images), figsize=(1.1 * len(images), 6.0))
    axes = axes.reshape(len(rows), -1)
    for k, image in enumerate(images):
        show(axes[0, k], image)
        axes[1, k].imshow(before["saliency"][k], cmap="hot")
        axes[2, k].imshow(after["saliency"][k], cmap="hot")
        axes[3, k].imshow(before["p_correct"][k], cmap="viridis", vmin=0, vmax=1, extent=extent)
        axes[4, k].imshow(after["p_correct"][k], cmap="viridis", vmin=0, vmax=1, extent=extent)
        for ax in axes[1:, k]:
            bare(ax, side)
    for row, label in enumerate(rows):
        axes[row, 0].set_ylabel(label, fontsize=6)
    fig.suptitle("the same training images, explained before and after the fix "
                 "(occlusion: probability of the true class, 0 dark to 1 yellow)")
    save_figure(fig, out, "p2_before_after_explanations")


def plot_accuracy_before_after(before, after, classes, failing_class, out):
    fig, ax = plt.subplots(figsize=(7, 2.8))
    x = np.arange(len(classes))
    ax.bar(x - 0.2, [before["test"]["per_class"][c] for c in classes], 0.4, label="before the fix")
    ax.bar(x + 0.2, [after["test"]["per_class"][c] for c in classes], 0.4, label="after the fix")
    ax.set_xticks(x, [f"{c}\n(failing)" if c == failing_class else c for c in classes], fontsize=7)
    ax.set_ylabel("test accuracy")
    ax.set_ylim(0, 1.05)
    ax.legend()
    save_figure(fig, out, "p2_test_accuracy_before_after")


# ==================================================================================================
# Final evaluation against the stand-in's hidden truth (never used by the analysis above)
# ==================================================================================================
def box_iou(a, b):
    width = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    height = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = width * height
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def evaluate_against_truth(data_dir, failing_class, box):
    path = data_dir / TRUTH_FILE
    if not path.exists():
        return None, None
    truth = json.loads(path.read_text())
    return truth, {"poisoned_class_found": truth["poisoned_class"] == failing_class,
                   "trigger_iou": round(box_iou(box, truth["box"]), 4)}


# ==================================================================================================
def summarise(report):
    return {"train_acc": report["train"]["acc"], "val_acc": report["val"]["acc"],
            "test_acc": report["test"]["acc"], "val_per_class": report["val"]["per_class"],
            "test_per_class": report["test"]["per_class"],
            "val_confusion": report["val"]["confusion"], "test_confusion": report["test"]["confusion"]}


def main(argv=None):
    args = parse_arguments(argv)
    if args.write_standin is not None:
        if args.write_standin.exists() and any(args.write_standin.iterdir()):
            raise UserError(f"{args.write_standin}: not empty; the stand-in is only written to an "
                            f"empty folder")
        write_standin(args.write_standin, args.seed, args.standin_train_per_class,
                      args.standin_test_per_class, args.poisoned_class, args.trigger_kind)
        return
    started_at = time.time()
    seed_everything(args.seed)
    device = choose_device(args.device)
    out = args.out
    data_source = prepare_data_dir(args)
    fixed_dir = args.fixed_data_dir or args.data_dir.with_name(args.data_dir.name + "-trigger-removed")
    config = {k: v for k, v in vars(args).items() if k not in ("out", "fresh", "device", "runs_dir")}
    config["data_dir"] = str(args.data_dir.resolve())
    config["data_fingerprint"] = data_fingerprint(args.data_dir / "train", args.data_dir / "test")
    checkpoints = Checkpoints(args.runs_dir, "problem2", config, fresh=args.fresh)
    print(f"Problem 2 on {data_source} data from {args.data_dir} (device {device}; checkpoints in "
          f"{checkpoints.directory})")

    # 2b: data, split, model, training -------------------------------------------------------------
    load_start = time.time()
    data = load_data(args.data_dir, args.image_size, args.seed)
    checkpoints.timings["load_data"] = round(time.time() - load_start, 2)
    classes = data["classes"]
    mean, std = channel_statistics(data["train"][0])
    print(f"classes {classes}; {len(data['train'][1])} train / {len(data['val'][1])} val / "
          f"{len(data['test'][1])} test images at {args.image_size}x{args.image_size}")
    plot_examples(data, data_source, out)
    model_before, history_before = train_classifier("before", data, mean, std, args, checkpoints,
                                                    device)

    # 2c: test results and the failing class ----------------------------------------------------
    report_before = evaluate(model_before, data, mean, std)
    failing_class, drops = find_failing_class(report_before, classes)
    failing_index = classes.index(failing_class)
    print(f"before the fix: train {report_before['train']['acc']:.3f}, val "
          f"{report_before['val']['acc']:.3f}, test {report_before['test']['acc']:.3f}; failing class "
          f"'{failing_class}': val {report_before['val']['per_class'][failing_class]:.3f} -> test "
          f"{report_before['test']['per_class'][failing_class]:.3f}")
    plot_confusions(report_before, classes, out, "p2_confusion_before",
                    "before the fix: validation against test")
    plot_test_predictions(data, report_before, out, "p2_test_predictions_before")

    # 2d, 2e: saliency and occlusion for 10 training images of the failing class -----------------
    explain_index = torch.nonzero(data["train"][1] == failing_index).flatten()[:args.n_explain]
    explain_images_uint8 = data["train"][0][explain_index]
    explain_inputs = to_input(explain_images_uint8, mean, std)
    explain_targets = data["train"][1][explain_index]
    explained_before = checkpoints.stage(
        "explain_before", lambda: explain_images(model_before, explain_inputs, explain_targets, args))
    plot_saliency(explain_images_uint8, explained_before["saliency"], out, "p2_saliency_before",
                  f"class saliency maps, '{failing_class}' training images, model before the fix")
    plot_occlusion(explain_images_uint8, explained_before, classes, failing_index, args, out,
                   "p2_occlusion_before", f"occlusion ({args.occlusion_size}x{args.occlusion_size} "
                   f"grey square, stride {args.occlusion_stride}), model before the fix")

    # 2f: localise the trigger and write trigger-free training data ------------------------------
    localised = checkpoints.stage(
        "localise", lambda: localise_trigger(model_before, data, failing_index, mean, std, args))
    print(f"localised region: box {localised['box']} (relative x0, y0, x1, y1), "
          f"{localised['mask'].mean():.1%} of the image")
    plot_localisation(localised, explain_images_uint8, out)
    fill_colour = [int(round(v * 255)) for v in mean.tolist()]
    if not (fixed_dir / FIXED_MARKER).exists():  # deleted since the checkpoint: write it again
        checkpoints.path("write_fixed_data.pt").unlink(missing_ok=True)
    n_written = checkpoints.stage(
        "write_fixed_data",
        lambda: write_trigger_free_data(args.data_dir, fixed_dir, localised["mask"], fill_colour))
    print(f"wrote {n_written} modified training images to {fixed_dir}")

    # 2g: retrain from scratch on the modified data, same recipe, same split ---------------------
    fixed_data = load_data(fixed_dir, args.image_size, args.seed)
    fixed_data["test"] = data["test"]  # the original, clean test images
    model_after, history_after = train_classifier("after", fixed_data, mean, std, args, checkpoints,
                                                  device)
    report_after = evaluate(model_after, fixed_data, mean, std)
    print(f"after the fix: train {report_after['train']['acc']:.3f}, val "
          f"{report_after['val']['acc']:.3f}, test {report_after['test']['acc']:.3f}; '{failing_class}' "
          f"test {report_after['test']['per_class'][failing_class]:.3f}")
    plot_curves({"before": history_before, "after": history_after}, out)
    plot_confusions(report_after, classes, out, "p2_confusion_after",
                    "after the fix: validation against test")
    plot_test_predictions(data, report_after, out, "p2_test_predictions_after")
    plot_accuracy_before_after(report_before, report_after, classes, failing_class, out)

    # 2h: the new model on the same (original, triggered) training images ------------------------
    explained_after = checkpoints.stage(
        "explain_after", lambda: explain_images(model_after, explain_inputs, explain_targets, args))
    plot_saliency(explain_images_uint8, explained_after["saliency"], out, "p2_saliency_after",
                  "class saliency maps, the same images, model after the fix")
    plot_occlusion(explain_images_uint8, explained_after, classes, failing_index, args, out,
                   "p2_occlusion_after", "occlusion, the same images, model after the fix")
    plot_before_after(explain_images_uint8, explained_before, explained_after, failing_class.split()[0],
                      args, out)
    explanation = {
        "region_area_share": float(localised["mask"].mean()),
        "localisation_threshold": localised["threshold"],
        "edge_band_px": localised["edge_band_px"],
        "still_recognised_after_neutralising": localised["still_recognised_after_neutralising"],
        "saliency_share_in_region": {
            "before": float(np.mean(share_inside(explained_before["saliency"], localised["mask"]))),
            "after": float(np.mean(share_inside(explained_after["saliency"], localised["mask"])))},
        "occlusion_share_in_region": {
            "before": float(np.mean(share_inside(explained_before["occlusion_attribution"],
                                                 localised["mask"]))),
            "after": float(np.mean(share_inside(explained_after["occlusion_attribution"],
                                                localised["mask"])))},
        "occlusion_flipped_images": {
            "before": int(sum(bool((m != failing_index).any()) for m in explained_before["most_probable"])),
            "after": int(sum(bool((m != failing_index).any()) for m in explained_after["most_probable"]))},
        "occlusion_min_p_correct": {"before": float(explained_before["p_correct"].amin(dim=(1, 2)).mean()),
                                    "after": float(explained_after["p_correct"].amin(dim=(1, 2)).mean())},
        "mean_p_correct_clean": {"before": float(explained_before["clean_probabilities"][
            range(len(explain_targets)), explain_targets].mean()), "after": float(
            explained_after["clean_probabilities"][range(len(explain_targets)), explain_targets].mean())},
    }

    # Final evaluation: the stand-in's truth, read only now -------------------------------------
    truth, against_truth = evaluate_against_truth(args.data_dir, failing_class, localised["box"])
    results = {
        "classes": classes, "failing_class": failing_class, "val_to_test_drop": drops,
        "trigger_box": localised["box"], "trigger_iou": against_truth and against_truth["trigger_iou"],
        "truth": truth, "poisoned_class_found": against_truth and against_truth["poisoned_class_found"],
        "before": summarise(report_before), "after": summarise(report_after),
        "explanation": explanation, "n_images": {s: len(data[s][1]) for s in ("train", "val", "test")},
        "fixed_data_dir": str(fixed_dir), "fix": "localised region filled with the mean colour in "
        "every training image of every class", "explained_train_files": [
            str(data["train_paths"][i]) for i in explain_index],
        "history": {"before": history_before, "after": history_after},
        "timings": checkpoints.timings, "resumed_stages": checkpoints.resumed,
        "device": str(device), "image_size": args.image_size,
    }
    path = write_results(args, "problem2", results, data_source, started_at)
    print(f"wrote {path} and {out / 'figures'}/p2_*.pdf"
          + (f"; truth: poisoned '{truth['poisoned_class']}' ({truth['kind']}), IoU of the localised "
             f"box {against_truth['trigger_iou']:.2f}" if truth else ""))


if __name__ == "__main__":
    run_main(main)
