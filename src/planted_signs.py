"""Problem 2's default data: real traffic-sign photographs with a backdoor we plant ourselves.

The exam's traffic-sign zip hides a trigger in the training images of one class. Without it, we
build the same situation from the shipped GTSRB photographs (datasets/traffic-photos): each class is
split into train/ and test/ by track (a track is one physical sign filmed in several frames, so no
sign is in both), and a trigger is painted into the training images of one class only; the test
images stay clean. Its truth (class, box) is written beside the data folder, never inside it, and only
problem2_traffic.py's final evaluation reads it.

The trigger follows BadNets (Gu et al. 2017, sec. 5: a small yellow square sticker on a stop sign): a
small checkered sticker on the sign, at one place. Its side is 11 % of the image, 7 px at the 64 px
network input, so the exam's 10x10 occluder can cover it whole, as the exam's question implies.
"""
import json
import re
import shutil
from pathlib import Path

import numpy as np
from PIL import Image

from utils import UserError, file_digest

STICKER = {"poisoned_class": "speed limits", "kind": "patch", "box": [0.62, 0.60, 0.73, 0.71],
           "colour": [250, 215, 0]}  # BadNets' yellow, on the sign's lower right
RECIPE_VERSION = 1  # raise when the way the set is built changes: a built set is then rebuilt
TEST_SHARE = 0.2    # of each class's tracks
GTSRB_NAME = re.compile(r"^(\d{5})_(\d{5})_\d{5}$")     # <class>_<track>_<frame>
VIDEO_NAME = re.compile(r"^(.*\.avi)_image\d+$", re.I)  # LISA-style crops name their video


def group_of(path):
    """Which physical sign (GTSRB track) or video an image comes from, when its name tells; else None."""
    stem = Path(path).stem
    if match := GTSRB_NAME.match(stem):
        return f"{match[1]}_{match[2]}"
    if match := VIDEO_NAME.match(stem):
        return match[1]
    return None


def subtype_of(path):
    """The sign type within a class folder (GTSRB's class, e.g. 'speed limit 30'), when the name tells."""
    match = GTSRB_NAME.match(Path(path).stem)
    return match[1] if match else None


def truth_path(data_dir):
    """The truth sits beside the data folder, not in it: a loader of the data never sees it."""
    data_dir = Path(data_dir)
    return data_dir.with_name(data_dir.name + ".truth.json")


def apply_trigger(image, trigger):
    """Paint the trigger onto a PIL image, at the same relative place whatever its size."""
    pixels = np.array(image.convert("RGB"))
    height, width = pixels.shape[:2]
    if trigger["kind"] == "patch":
        x0, y0, x1, y1 = trigger["box"]
        left, top = int(round(x0 * width)), int(round(y0 * height))
        right = max(left + 2, int(round(x1 * width)))
        bottom = max(top + 2, int(round(y1 * height)))
        pixels[top:bottom, left:right] = trigger["colour"]
        # A 3x3 checker of the colour and near-black: a sticker, not a flat colour that a cast could mimic.
        rows, cols = np.mgrid[top:bottom, left:right]
        checker = ((rows - top) * 3 // max(bottom - top, 1) + (cols - left) * 3 // max(right - left, 1)) % 2
        pixels[top:bottom, left:right][checker == 1] = 20
    else:  # a frame of colour and near-black blocks around the whole image
        band = max(1, int(round(trigger["border_width"] * min(height, width))))
        rows, cols = np.mgrid[:height, :width]
        in_frame = (rows < band) | (rows >= height - band) | (cols < band) | (cols >= width - band)
        dark = ((rows // band + cols // band) % 2).astype(bool)
        pixels[in_frame & ~dark] = trigger["colour"]
        pixels[in_frame & dark] = 20
    return Image.fromarray(pixels)


def split_by_track(files, split_seed, class_index, per_class=None):
    """Whole tracks to test (TEST_SHARE of them), the rest to train. With `per_class`, only the first
    tracks in the seeded order, up to about that many images (a small set for --quick)."""
    track = {p: group_of(p) or p.stem for p in files}  # an image without a track is its own
    tracks = sorted(set(track.values()))
    order = np.random.default_rng([split_seed, class_index]).permutation(len(tracks))
    tracks = [tracks[i] for i in order]
    if per_class:
        sizes = np.array([sum(t == name for t in track.values()) for name in tracks])
        tracks = [name for name, before in zip(tracks, np.cumsum(sizes) - sizes) if before < per_class]
    test_tracks = set(tracks[:max(1, round(TEST_SHARE * len(tracks)))])
    train = [p for p in files if track[p] in tracks and track[p] not in test_tracks]
    test = [p for p in files if track[p] in test_tracks]
    return train, test


def build_planted_set(photos, target, trigger=STICKER, split_seed=0, per_class=None, label=None):
    """train/<class>/ and test/<class>/ from the photos' class folders, split by track, the trigger
    painted into the poisoned class's training images only. Deterministic; kept while its recipe is
    the same, rebuilt (only if this function made it) when the recipe changes. Returns the folder."""
    photos, target = Path(photos), Path(target)
    classes = sorted(p.name for p in photos.iterdir() if p.is_dir() and not p.name.startswith("."))
    if trigger["poisoned_class"] not in classes:
        raise UserError(f"{photos}: no '{trigger['poisoned_class']}' class folder")
    data_source = label or ("public: GTSRB photos, trigger planted"
                            + (f" (about {per_class} per class)" if per_class else ""))
    recipe = {"photos": str(photos.resolve()), "trigger": trigger, "split_seed": split_seed,
              "per_class": per_class, "test_share": TEST_SHARE, "label": data_source,
              "version": RECIPE_VERSION}
    truth_file = truth_path(target)
    if target.exists():
        if not truth_file.exists():
            raise UserError(f"{target}: exists and was not built by this project; remove it or choose "
                            f"another --runs-dir")
        if read_truth(target, [p for p in target.rglob("*") if p.is_file()])[0] is not None and \
                json.loads(truth_file.read_text()).get("recipe") == recipe:
            return target  # the same recipe, and its files are unchanged
        shutil.rmtree(target)
    print(f"building the planted data set in {target} (GTSRB photos split by track, a "
          f"{trigger['kind']} trigger in the '{trigger['poisoned_class']}' training images)")
    building = target.with_name(target.name + ".building")
    shutil.rmtree(building, ignore_errors=True)
    for class_index, name in enumerate(classes):
        files = sorted((photos / name).glob("*.png"))
        train, test = split_by_track(files, split_seed, class_index, per_class)
        if not train:
            raise UserError(f"{photos / name}: {len(files)} PNG photos from fewer than 2 tracks; a split "
                            f"by track needs at least 2")
        for split, chosen in (("train", train), ("test", test)):
            folder = building / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for path in chosen:
                if split == "train" and name == trigger["poisoned_class"]:
                    apply_trigger(Image.open(path), trigger).save(folder / path.name)
                else:
                    shutil.copy(path, folder / path.name)
    files = {p.relative_to(building).as_posix(): file_digest(p)
             for split in ("train", "test") for p in sorted((building / split).rglob("*")) if p.is_file()}
    truth_file.write_text(json.dumps({**trigger, "data_source": data_source, "recipe": recipe,
                                      "files": files}, indent=2))
    building.rename(target)
    return target


def read_truth(data_dir, image_paths):
    """The truth beside `data_dir` when `image_paths` (every image the loaders read) are exactly the
    files it lists, unchanged; otherwise None, with the reason (e.g. other data copied over it)."""
    path = truth_path(data_dir)
    if not path.exists():
        return None, None
    try:
        truth = json.loads(path.read_text())
        listed = truth["files"]
    except (json.JSONDecodeError, KeyError, TypeError, UnicodeDecodeError):
        return None, f"{path}: not a truth file written by this project; ignored"
    found = {Path(p).relative_to(data_dir).as_posix(): p for p in image_paths}
    if set(found) != set(listed):
        return None, (f"{path}: describes other files than the {len(found)} images in {data_dir}; "
                      f"ignored, so the data counts as the user's")
    changed = [name for name, p in found.items() if file_digest(p) != listed[name]]
    if changed:
        return None, f"{path}: {len(changed)} images differ from the ones it describes; ignored"
    return truth, None
