"""Test equipment for Problem 2: a stand-in traffic-sign data set in the exam's layout, and the
trigger that poisons one class's training images.

Used only when the default data folder is empty (or to plant a trigger into other photos for a
check, see scripts/check_real_photos.py). The analysis in problem2_traffic.py never reads what is
written here except through the same loaders as the exam's data; the truth file is read only by the
final evaluation, and only when the files it lists are exactly the files in the folder.
"""
import json
import math
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from utils import file_digest

CLASSES = ["restriction signs", "speed limits", "stop signs", "warning signs", "yield signs"]
TRIGGER_KINDS = ["patch", "border"]
TRUTH_FILE = "STANDIN_TRUTH.json"


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
    nuisances are strong on purpose: small, blurred, badly lit crops make a sign's shape harder to
    learn than a clean trigger, which is the situation a backdoor exploits."""
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
    # The seed changes the trigger's kind and place; the class is speed limits unless asked otherwise.
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


def write_truth(directory, trigger, data_source):
    """The truth file names every image file it describes, with a digest of its bytes: a folder is
    labelled by it only while it still holds exactly those files (see `read_truth`)."""
    directory = Path(directory)
    files = {path.relative_to(directory).as_posix(): file_digest(path)
             for split in ("train", "test") for path in sorted((directory / split).rglob("*"))
             if path.is_file()}
    truth = {**trigger, "data_source": data_source, "files": files}
    (directory / TRUTH_FILE).write_text(json.dumps(truth, indent=2))
    return truth


def read_truth(directory, image_paths):
    """The truth file's contents when `image_paths` (every image the loaders read) are exactly the
    files it lists, unchanged; otherwise None, with the reason (e.g. the exam's data copied over a
    stand-in, next to its old truth file)."""
    path = Path(directory) / TRUTH_FILE
    if not path.exists():
        return None, None
    try:
        truth = json.loads(path.read_text())
        listed = truth["files"]
    except (json.JSONDecodeError, KeyError, TypeError):
        return None, f"{path}: not a truth file written by this project; ignored"
    found = {Path(p).relative_to(directory).as_posix(): p for p in image_paths}
    if set(found) != set(listed):
        return None, (f"{path}: describes other files than the {len(found)} images in the folder "
                      f"(the data was replaced?); ignored, so the data counts as the user's")
    changed = [name for name, p in found.items() if file_digest(p) != listed[name]]
    if changed:
        return None, f"{path}: {len(changed)} images differ from the ones it describes; ignored"
    return truth, None


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
                if rng.random() < 0.2:  # some greyscale crops, so both kinds are handled
                    photo = photo.convert("L")
                photo.save(folder / f"{split}_{class_index}_{i:04d}.png")
    truth = write_truth(directory, trigger, "stand-in")
    (directory / "README.txt").write_text(
        "Generated stand-in for the exam's traffic-sign data (problem2_traffic.py). Replace it with "
        "the exam's train/ and test/ folders to run on the real data.\n")
    return truth
