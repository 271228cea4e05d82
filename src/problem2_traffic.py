"""Problem 2: a ResNet-18 on traffic signs whose training data hides a backdoor.

Where each answer is (main() calls them in this order; the methods on the right):
  2b answer_2b  train a ResNet-18 on a stratified 80/20 split        train_classifier, evaluate
  2c answer_2c  test against validation: the class that fails        find_failing_class
  2d answer_2d  class saliency maps (Simonyan et al. 2013, sec. 3.1)  class_saliency_maps
  2e answer_2e  10x10 occlusion (Zeiler & Fergus 2014, sec. 4.2)      occlusion_maps
  2f answer_2f  localise the trigger; the training data without it    localise_trigger, write_trigger_free_data
  2g answer_2g  retrain on that data; the attack success rate         attack_success_rate
  2h answer_2h  the same explanations for the retrained model         (2d's and 2e's)
  2a is answered in the report. Plots, results and argument checks: the appendix at the bottom.

Data: train/<class>/* and test/<class>/* (the exam's problem2.zip) from --data-dir when given, else
from data/problem2 when it holds them; otherwise the shipped GTSRB photographs, split by track with a
trigger planted into one class's training images (planted_signs.py).
"""
import argparse
import hashlib
import json
import math
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
import torchvision
from PIL import Image, ImageOps
from scipy import ndimage
from skimage.restoration import inpaint_biharmonic
from sklearn.model_selection import StratifiedGroupKFold, train_test_split

from planted_signs import apply_trigger, build_planted_set, group_of, read_truth, subtype_of
from utils import (SHIPPED_DATA, Checkpoints, PathFlag, UserError, batched_outputs, choose_device,
                   accuracy_report, common_parser, data_fingerprint, draw_confusion, figure_style,
                   progress, refuse_file_as_folder, require_at_least_one, run_configuration, run_main,
                   save_atomic, save_figure, seed_everything, was_given, writable_folder, write_results)

plt = figure_style()

FIXED_MARKER = "MADE_BY_problem2_traffic.json"
LOCALISATION_THRESHOLDS = (0.5, 0.4, 0.3, 0.2, 0.15, 0.1)  # shares of the evidence's peak, tried in turn
CLASS_MODEL_STEPS = 200  # gradient-ascent steps of the class model visualisation (2a)
CLASS_MODEL_L2 = 0.01    # its lambda; the paper gives none (a per-pixel weight on the standardised input)
CLASS_MODEL_LR = 0.05    # its Adam step; the paper gives no step rule


# ==================================================================================================
# Config
# ==================================================================================================
def parse_arguments(argv=None):
    parser = common_parser(__doc__.split("\n")[0], resumable=True)
    parser.add_argument("--data-dir", action=PathFlag, default=Path("data/problem2"),
                        help="train/<class>/ and test/<class>/; without the exam's files in this "
                             "default folder, the shipped GTSRB photos with a planted trigger")
    model = parser.add_argument_group("model and training (2b, 2g)")
    model.add_argument("--image-size", type=int, default=64,
                       help="network input side; the 10x10 occluder covers 2.4%% of a 64x64 image")
    model.add_argument("--epochs", type=int, default=7, help="epochs per training (--quick: 3)")
    model.add_argument("--batch-size", type=int, default=32, help="images per Adam step")
    model.add_argument("--lr", type=float, default=2e-3, help="peak Adam learning rate (one-cycle)")
    model.add_argument("--weight-decay", type=float, default=1e-4, help="Adam's L2 penalty on all parameters")
    explain = parser.add_argument_group("explanations and the fix (2d-2h)")
    explain.add_argument("--n-explain", type=int, default=10, help="training images to explain")
    explain.add_argument("--occlusion-size", type=int, default=10, help="occluder side in pixels")
    explain.add_argument("--occlusion-stride", type=int, default=2, help="occluder step in pixels")
    explain.add_argument("--n-localise", type=int, default=60,
                         help="training images per group (failing class / others) aggregated to "
                              "localise the trigger")
    explain.add_argument("--fill", choices=("inpaint", "grey"), default="inpaint",
                         help="what replaces the localised region in the training images: an "
                              "inpainting from the pixels around it (biharmonic), or the training "
                              "images' mean colour (a side run to compare)")
    explain.add_argument("--fixed-data-dir", type=writable_folder, default=None,
                         help="where the modified training data goes (default: DATA_DIR-trigger-removed)")
    args = parser.parse_args(argv)
    if args.quick:
        args.epochs = min(args.epochs, 3)
        args.n_localise = min(args.n_localise, 12)
        args.occlusion_stride = max(args.occlusion_stride, 4)
    require_at_least_one(parser, args, ("epochs", "batch_size", "n_explain", "n_localise",
                                        "occlusion_size", "occlusion_stride"))
    if args.image_size < 2 * args.occlusion_size:
        raise UserError(f"--image-size {args.image_size} is too small for a "
                        f"{args.occlusion_size}x{args.occlusion_size} occluder")
    return args


# ==================================================================================================
# Data: the exam's layout, listed by torchvision's ImageFolder, with clear errors
# ==================================================================================================
def is_hidden(name):
    """What macOS, Windows, zip tools and Jupyter leave behind (.DS_Store, Thumbs.db, desktop.ini,
    __MACOSX, .ipynb_checkpoints)."""
    return name.startswith(".") or name in ("__MACOSX", "Thumbs.db", "desktop.ini")


class SignFolder(torchvision.datasets.ImageFolder):
    """ImageFolder whose classes are the visible sub-folders (a hidden folder is not a class)."""

    def find_classes(self, directory):
        classes = sorted(e.name for e in os.scandir(directory) if e.is_dir() and not is_hidden(e.name))
        return classes, {name: index for index, name in enumerate(classes)}


def list_images(split_dir):
    """(classes, [(path, label), ...]) for one split: every visible file below each class folder,
    nested folders included, in ImageFolder's order. The one listing used both to load the data and
    to write its modified copy, so the two always hold the same files. A stray non-image is not
    skipped: loading it gives a clear error."""
    split_dir = Path(split_dir)
    visible = lambda p: not any(is_hidden(part) for part in Path(p).relative_to(split_dir).parts)  # noqa: E731
    dataset = SignFolder(str(split_dir), loader=load_rgb, is_valid_file=visible, allow_empty=True)
    return dataset.classes, [(Path(path), label) for path, label in dataset.samples]


def load_rgb(path):
    try:
        with Image.open(path) as image:
            # A photo's EXIF orientation says how it was held: apply it, as any viewer does.
            image = ImageOps.exif_transpose(image)
            if image.mode.startswith("I"):  # 16- or 32-bit grey: convert("RGB") would clip at 255
                image = Image.fromarray(scale_to_8_bits(np.asarray(image)), "L")
            return image.convert("RGB")  # greyscale -> three equal channels
    except Exception as error:  # PIL raises many types for broken files
        raise UserError(f"{path}: not a readable image ({type(error).__name__})") from None


def scale_to_8_bits(grey):
    """A 16-bit grey image (PNG's I;16, or PIL's 32-bit I holding 16-bit values) to 0..255 by
    65535 -> 255; values that already fit in 8 bits stay as they are."""
    grey = grey.astype(np.float64)
    if grey.max() > 255:
        grey = grey / 257.0
    return np.clip(np.round(grey), 0, 255).astype(np.uint8)


def check_layout(data_dir):
    """The exam's layout, or a one-line error naming the folder and what is wrong. Returns the
    classes and both splits' listings."""
    for split in ("train", "test"):
        if not (data_dir / split).is_dir():
            nested = sorted(p.parent for p in [*data_dir.glob(f"*/{split}"), *data_dir.glob(f"*/*/{split}")]
                            if p.is_dir() and not any(is_hidden(part) for part in p.parts))
            where = f"; found {nested[0]}: use --data-dir {nested[0]}" if nested else ""
            raise UserError(f"{data_dir}: missing '{split}' folder (expected train/<class>/ and "
                            f"test/<class>/){where}")
    listings = {split: list_images(data_dir / split) for split in ("train", "test")}
    for split, (classes, samples) in listings.items():
        if not classes:
            raise UserError(f"{data_dir / split}: no class folders")
        if len(classes) < 2:
            raise UserError(f"{data_dir / split}: only one class folder ({classes[0]}); a classifier "
                            f"needs at least two")
        counts = np.bincount([label for _, label in samples], minlength=len(classes))
        for name, count in zip(classes, counts):
            if count == 0:
                raise UserError(f"{data_dir / split / name}: class folder has no images")
            if split == "train" and count < 5:
                raise UserError(f"{data_dir / split / name}: only {count} images; a per-class "
                                f"stratified 80/20 split needs at least 5")
    if listings["train"][0] != listings["test"][0]:
        only_train = sorted(set(listings["train"][0]) - set(listings["test"][0]))
        only_test = sorted(set(listings["test"][0]) - set(listings["train"][0]))
        raise UserError(f"{data_dir}: train and test have different classes (only in train: "
                        f"{only_train or 'none'}; only in test: {only_test or 'none'})")
    return listings["train"][0], listings["train"][1], listings["test"][1]


def load_images(samples, image_size, name):
    """Images resized once to the network's square input and kept in memory as uint8 (a few MB)."""
    images = torch.empty(len(samples), 3, image_size, image_size, dtype=torch.uint8)
    for i, (path, _) in enumerate(progress(samples, desc=f"loading {name}")):
        resized = load_rgb(path).resize((image_size, image_size), Image.BILINEAR)
        images[i] = torch.from_numpy(np.array(resized)).permute(2, 0, 1)
    return images, torch.tensor([label for _, label in samples])


def split_train_val(paths, labels, seed):
    """The exam's 80/20 split, per class (stratified). Frames of one physical sign are near-duplicates,
    so when every file name tells its group (a GTSRB track, the video of a LISA-style crop) whole
    groups go to one side (StratifiedGroupKFold, one fold of five as validation); otherwise the plain
    stratified split. Returns the two index arrays, which split was used and, for the plain one, why."""
    groups = [group_of(path) for path in paths]
    signs_per_class = {c: len({g for g, l in zip(groups, labels) if l == c}) for c in sorted(set(labels))}
    fewest = min(signs_per_class, key=signs_per_class.get)
    if not all(groups):
        reason = "the file names do not tell the physical sign"
    elif signs_per_class[fewest] < 5:  # a fold of five could then hold none of that class
        reason = f"class {fewest} has only {signs_per_class[fewest]} physical signs, fewer than 5"
    else:
        folds = StratifiedGroupKFold(n_splits=5, shuffle=True, random_state=seed)
        train_index, val_index = next(folds.split(np.zeros(len(labels)), labels, groups))
        return np.sort(train_index), np.sort(val_index), "stratified by class, grouped by physical sign", None
    train_index, val_index = train_test_split(np.arange(len(labels)), test_size=0.2,
                                              stratify=labels, random_state=seed)
    return np.sort(train_index), np.sort(val_index), "stratified by class", reason


def load_data(data_dir, image_size, seed, train_samples=None):
    """Train/val (80/20 per class, seeded, see split_train_val) and test, as uint8 tensors.
    `train_samples` replaces the listed training files by others in the same order (the modified
    copy of 2f), so the split is the same image for image."""
    classes, listed_train, test_samples = check_layout(data_dir)
    train_index, val_index, split_kind, split_reason = split_train_val(
        [path for path, _ in listed_train], [label for _, label in listed_train], seed)
    train_samples = train_samples or listed_train
    train_images, train_labels = load_images(train_samples, image_size, "train")
    test_images, test_labels = load_images(test_samples, image_size, "test")
    return {"classes": classes, "split": split_kind, "split_reason": split_reason,
            "train": (train_images[train_index], train_labels[train_index]),
            "val": (train_images[val_index], train_labels[val_index]),
            "test": (test_images, test_labels),
            "train_samples": train_samples, "test_samples": test_samples,
            "train_paths": [train_samples[i][0] for i in train_index],
            "listed_train_paths": [listed_train[i][0] for i in train_index],
            "split_index": {"train": train_index.tolist(), "val": val_index.tolist()}}


def choose_data_dir(args):
    """Where the data comes from, one rule: a --data-dir the user gives, as given; else the exam's
    files in the default data/problem2 when it holds any; else the shipped photographs with a
    planted trigger, built (once) under --runs-dir. Returns the folder and what it holds (a truth
    file beside it may say more, see data_label)."""
    data_dir = args.data_dir
    refuse_file_as_folder(data_dir, "train/ and test/")
    if was_given(args, "data_dir"):
        if not data_dir.exists():
            raise UserError(f"{data_dir}: no such folder (expected train/<class>/ and test/<class>/)")
        return data_dir, f"user folder {data_dir}"
    if data_dir.is_dir() and any(not is_hidden(entry.name) for entry in data_dir.iterdir()):
        return data_dir, "exam"
    photos = SHIPPED_DATA / "traffic-photos"
    if not photos.is_dir():
        raise UserError(f"{data_dir}: empty, and no shipped photographs at {photos}; put the exam's "
                        f"train/ and test/ folders in {data_dir}")
    per_class = 60 if args.quick else None  # --quick: a few dozen images per class, whole tracks
    target = args.runs_dir / "data" / ("traffic-photos-planted" + ("-quick" if per_class else ""))
    return build_planted_set(photos, target, per_class=per_class), "public: GTSRB photos"


def data_label(data_dir, data, default_label):
    """The truth file's label (planted data) only while the folder holds exactly the files it
    describes; otherwise the label the folder's origin gives."""
    paths = [path for path, _ in data["train_samples"] + data["test_samples"]]
    truth, reason = read_truth(data_dir, paths)
    if reason:
        print(f"note: {reason}")
    return (truth["data_source"] if truth else default_label), truth


def channel_statistics(images):
    pixels = images.float().div(255).permute(1, 0, 2, 3).reshape(3, -1)
    return pixels.mean(1), pixels.std(1)


# ==================================================================================================
# What passes between the answers
# ==================================================================================================
@dataclass
class Setup:
    """What every answer reads."""
    args: argparse.Namespace
    data: dict            # load_data(): the classes, the three splits as uint8 tensors, the files
    data_source: str      # the results' data_source: "exam", a user folder, or the shipped photos
    truth: dict | None    # the planted trigger's truth file; read by the results only, never by 2c-2h
    mean: torch.Tensor    # per-channel mean and standard deviation of the training images
    std: torch.Tensor
    device: torch.device
    checkpoints: Checkpoints
    fixed_dir: Path       # where 2f writes the modified training data
    started_at: float

    @property
    def classes(self):
        return self.data["classes"]

    @property
    def out(self):
        return self.args.out


@dataclass
class TrainedClassifier:
    model: torch.nn.Module
    history: dict         # per epoch: training and validation loss and accuracy
    report: dict          # evaluate(): accuracy overall and per class, confusion matrices, predictions


@dataclass
class FailingClass:
    name: str
    index: int
    val_to_test_drop: dict   # per class: validation accuracy minus test accuracy
    clean_test_recall: float
    chosen_on: torch.Tensor  # the half of its test images that 2f may look at (indices into test)
    scored_on: torch.Tensor  # the other half, which 2g scores and nothing chooses on


@dataclass
class ExplainedImages:
    """The failing class's training images that 2d, 2e and 2h explain."""
    index: torch.Tensor      # into the training split
    images: torch.Tensor     # uint8, as the figures show them
    inputs: torch.Tensor     # standardised, as the network sees them
    targets: torch.Tensor    # their class (the failing one)
    class_name: str


@dataclass
class Explanations:
    """One model's explanations: of the ExplainedImages, and of each class as a whole."""
    saliency: torch.Tensor
    occlusion: dict                 # occlusion_maps() with the exam's square
    class_model: torch.Tensor       # class_model_visualisation(): one standardised image per class


@dataclass
class Fix:
    """2f: where the trigger is, and the training data with that region filled."""
    localised: dict                 # localise_trigger()
    fill_colour: list               # the training images' mean colour, 0..255
    fixed_dir: Path
    samples: list                   # the modified training files, (path, label) as listed


@dataclass
class Retrained:
    """2g: the model trained on the modified data, and the attack check."""
    classifier: TrainedClassifier
    attack_success_rate: dict
    scored_half_acc: dict           # the failing class on its scored test half, before and after
    alternative: dict               # failing_class_only_fix(): the fix 2f argues against, measured


def set_up(args):
    """Data (see choose_data_dir), device, checkpoints."""
    started_at = time.time()
    seed_everything(args.seed)
    args.data_dir, origin = choose_data_dir(args)
    fixed_dir = args.fixed_data_dir or args.data_dir.with_name(args.data_dir.name + "-trigger-removed")
    refuse_output_inside_input(args.data_dir, {"--fixed-data-dir": fixed_dir, "--out": args.out,
                                               "--runs-dir": args.runs_dir})
    load_start = time.time()
    data = load_data(args.data_dir, args.image_size, args.seed)
    data_source, truth = data_label(args.data_dir, data, origin)
    config = run_configuration(args, data_dir=str(args.data_dir.resolve()),
                               data_fingerprint=data_fingerprint(args.data_dir / "train", args.data_dir / "test"))
    code = [__file__, Path(__file__).with_name("planted_signs.py")]
    checkpoints = Checkpoints(args.runs_dir, "problem2", config, fresh=args.fresh, code=code)
    checkpoints.timings["load_data"] = round(time.time() - load_start, 2)
    device = choose_device(args.device)
    mean, std = channel_statistics(data["train"][0])
    print(f"Problem 2 on {data_source} data from {args.data_dir} (device {device}; checkpoints in "
          f"{checkpoints.directory})")
    print(f"classes {data['classes']}; {len(data['train'][1])} train / {len(data['val'][1])} val "
          f"({data['split']}) / {len(data['test'][1])} test images at {args.image_size}x{args.image_size}")
    return Setup(args, data, data_source, truth, mean, std, device, checkpoints, fixed_dir, started_at)


# ==================================================================================================
# The model
# ==================================================================================================
def make_resnet18(n_classes):
    """torchvision's ResNet-18 (He et al. 2016), random init (He init in its conv layers), the
    ImageNet stem kept: at 64x64 input the last stage works on 2x2 maps."""
    return torchvision.models.resnet18(weights=None, num_classes=n_classes)


def standardise(images_uint8, mean, std):
    """uint8 images -> the standardised float tensor the network sees (the dataset's mean colour is
    0). Saliency and occlusion work on this tensor: 0 is the mean grey the occluder paints."""
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


# ==================================================================================================
# 2a, used: the model as a whole, by class model visualisation (Simonyan et al. 2013, sec. 2)
# ==================================================================================================
def class_model_visualisation(model, n_classes, side, steps=CLASS_MODEL_STEPS, l2_weight=CLASS_MODEL_L2,
                              lr=CLASS_MODEL_LR):
    """Simonyan et al. 2013, sec. 2, eq. 1: for each class c the image I* = argmax_I S_c(I) -
    lambda ||I||_2^2, with S_c the unnormalised class score (the logit) and I the standardised input,
    found by gradient ascent from the zero image (the dataset's mean colour). The paper gives no
    step rule: Adam for a fixed number of steps. One image per class, all in one batch
    (batch normalisation in eval mode keeps them independent)."""
    model.eval()
    device = next(model.parameters()).device
    images = torch.zeros(n_classes, 3, side, side, device=device, requires_grad=True)
    optimiser = torch.optim.Adam([images], lr=lr)
    classes = torch.arange(n_classes, device=device).view(-1, 1)
    for _ in range(steps):
        scores = model(images).gather(1, classes).squeeze(1)
        objective = scores - l2_weight * (images ** 2).sum(dim=(1, 2, 3))
        optimiser.zero_grad()
        (-objective.sum()).backward()
        optimiser.step()
    return images.detach().cpu()


def answer_2a(setup, model, when):
    """The class model visualisation of every class for the model `when` the fix; does the failing
    class's image paint the trigger? (The figure, before beside after, is drawn in 2h.)"""
    images = setup.checkpoints.stage(f"class_model_{when}", lambda: class_model_visualisation(
        model, len(setup.classes), setup.args.image_size))
    print(f"[2a] class model visualisation, model {when} the fix: {len(images)} class images")
    return images


# ==================================================================================================
# 2b: train the ResNet-18; accuracy on the training and validation splits
# ==================================================================================================
def train_classifier(name, data, setup):
    """Adam + one-cycle schedule, cross-entropy; resumable after every epoch."""
    args, mean, std = setup.args, setup.mean, setup.std
    seed_everything(args.seed)
    model = make_resnet18(len(data["classes"])).to(setup.device)
    optimiser = torch.optim.Adam(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    train_x, train_y = standardise(data["train"][0], mean, std), data["train"][1]
    val_x, val_y = standardise(data["val"][0], mean, std), data["val"][1]
    steps_per_epoch = math.ceil(len(train_y) / args.batch_size)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimiser, args.lr, epochs=args.epochs,
                                                    steps_per_epoch=steps_per_epoch)
    generator = torch.Generator().manual_seed(args.seed)
    history = {"epoch": [], "train_loss": [], "train_acc": [], "val_loss": [], "val_acc": []}
    stage, path = f"train_{name}", setup.checkpoints.path(f"{name}_training.pt")
    start_epoch = 0
    if setup.checkpoints.reusable(stage, path):
        state = torch.load(path, weights_only=False)
        model.load_state_dict(state["model"])
        optimiser.load_state_dict(state["optimiser"])
        scheduler.load_state_dict(state["scheduler"])
        generator.set_state(state["generator"])
        history, start_epoch = state["history"], state["epoch"]
        if start_epoch < args.epochs:
            print(f"[{name}] resuming training at epoch {start_epoch + 1}")
    else:
        setup.checkpoints.begin(stage)
    started = time.time()
    for epoch in range(start_epoch, args.epochs):
        model.train()
        order = torch.randperm(len(train_y), generator=generator)
        total_loss, correct = 0.0, 0
        for start in progress(range(0, len(order), args.batch_size),
                              desc=f"{name} epoch {epoch + 1}/{args.epochs}"):
            batch = order[start:start + args.batch_size]
            inputs = augment(train_x[batch], generator).to(setup.device)
            targets = train_y[batch].to(setup.device)
            logits = model(inputs)
            loss = F.cross_entropy(logits, targets)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            scheduler.step()
            total_loss += loss.item() * len(batch)
            correct += (logits.argmax(1) == targets).sum().item()
        val_logits = batched_outputs(model, val_x)
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
        setup.checkpoints.record(stage, time.time() - started)
    else:
        setup.checkpoints.note_resumed(stage)
    model.eval()
    return model, history


def evaluate(model, data, mean, std):
    """Accuracy overall and per class (recall), predictions and confusion matrices, per split."""
    report = {}
    for split in ("train", "val", "test"):
        images, labels = data[split]
        predictions = batched_outputs(model, standardise(images, mean, std)).argmax(1)
        scores = accuracy_report(labels, predictions, len(data["classes"]))
        report[split] = {**scores, "per_class": dict(zip(data["classes"], scores["per_class"])),
                         "predictions": predictions.tolist()}
    return report


def answer_2b(setup):
    plot_examples(setup.data, setup.args.seed, setup.out)
    model, history = train_classifier("before", setup.data, setup)
    report = evaluate(model, setup.data, setup.mean, setup.std)
    print(f"[2b] train {report['train']['acc']:.3f}, val {report['val']['acc']:.3f}")
    return TrainedClassifier(model, history, report)


# ==================================================================================================
# 2c: the test set against validation, and the class that fails
# ==================================================================================================
def find_failing_class(report, classes):
    """The class whose accuracy drops most from validation to test: what a backdoor looks like."""
    drops = {name: report["val"]["per_class"][name] - report["test"]["per_class"][name]
             for name in classes}
    return max(drops, key=drops.get), drops


def halves_of_failing_test(setup, failing_index):
    """The failing class's test images in two seeded halves: whatever chooses a setting of the fix
    (2f) may look at the first; 2g scores the fix on the second, so the images that grade the fix
    never chose it. Whole physical signs go to one half (frames of one sign are near-copies):
    the signs in a seeded order, each to the half that has fewer images so far; one image per sign
    when the file names do not tell the sign."""
    members = torch.nonzero(setup.data["test"][1] == failing_index).flatten().tolist()
    paths = [setup.data["test_samples"][i][0] for i in members]
    signs = {}
    for index, path in zip(members, paths):
        signs.setdefault(group_of(path) or str(path), []).append(index)
    if len(signs) < 2:
        raise UserError(f"{setup.args.data_dir / 'test'}: the failing class has {len(members)} test image(s) "
                        f"of {len(signs)} sign(s); a half that chooses and a half that scores need two")
    order = torch.randperm(len(signs), generator=torch.Generator().manual_seed(setup.args.seed)).tolist()
    halves = ([], [])
    for k in order:
        group = list(signs.values())[k]
        halves[len(halves[0]) > len(halves[1])].extend(group)
    return tuple(torch.tensor(sorted(half)) for half in halves)


def answer_2c(setup, first_model):
    report = first_model.report
    name, drops = find_failing_class(report, setup.classes)
    print(f"[2c] test {report['test']['acc']:.3f} (val {report['val']['acc']:.3f}); failing class "
          f"'{name}': val {report['val']['per_class'][name]:.3f} -> test {report['test']['per_class'][name]:.3f}")
    plot_confusions(report, setup.classes, setup.out, "p2_confusion_before",
                    "before the fix: validation against test")
    plot_test_predictions(setup.data, report, setup.args.seed, setup.out, "p2_test_predictions_before")
    index = setup.classes.index(name)
    chosen_on, scored_on = halves_of_failing_test(setup, index)
    failing = FailingClass(name, index, drops, report["test"]["per_class"][name], chosen_on, scored_on)
    plot_failing_class(setup, report, failing)
    return failing


# ==================================================================================================
# 2d: class saliency maps (Simonyan et al. 2013, sec. 3.1)
# ==================================================================================================
def spread_over_signs(paths, labels, class_index, count, seed):
    """`count` images of one class, seeded, and spread over sign types and physical signs where
    the file names tell them (round robin over the types, one image per sign), so that ten images
    are not ten frames of three signs of one type. Indices into `labels`."""
    members = torch.nonzero(labels == class_index).flatten().tolist()
    order = np.random.default_rng(seed).permutation(len(members))
    by_type, signs_seen, rest = {}, set(), []
    for k in order:
        path = paths[members[k]]
        sign = group_of(path) or path
        (rest if sign in signs_seen else by_type.setdefault(subtype_of(path), [])).append(members[k])
        signs_seen.add(sign)
    chosen = []
    while len(chosen) < count and any(by_type.values()):
        for queue in by_type.values():
            if queue and len(chosen) < count:
                chosen.append(queue.pop(0))
    chosen += rest[:count - len(chosen)]
    return torch.tensor(chosen, dtype=torch.long)


def choose_images_to_explain(setup, failing):
    """--n-explain training images of the failing class, spread over its signs: the images of 2d,
    2e and 2h."""
    images, labels = setup.data["train"]
    index = spread_over_signs(setup.data["listed_train_paths"], labels, failing.index,
                              setup.args.n_explain, setup.args.seed)
    return ExplainedImages(index, images[index], standardise(images[index], setup.mean, setup.std),
                           labels[index], failing.name)


def class_saliency_maps(model, inputs, target_classes):
    """|d S_c / d I| for the unnormalised class score S_c (the logit, not the softmax, which would
    also depend on the other classes), max of the absolute value over the colour channels. I is the
    standardised input (per channel (pixel - mean) / std), as the network sees it."""
    model.eval()
    device = next(model.parameters()).device
    inputs = inputs.to(device).clone().requires_grad_(True)
    scores = model(inputs)
    scores.gather(1, target_classes.to(device).view(-1, 1)).sum().backward()  # eval BN: independent
    return inputs.grad.abs().amax(dim=1).detach().cpu()


def answer_2d(setup, model, explained, when):
    saliency = class_saliency_maps(model, explained.inputs, explained.targets)
    plot_saliency(explained.images, saliency, setup.out, f"p2_saliency_{when}",
                  f"class saliency maps, '{explained.class_name}' training images, model {when} the fix")
    return saliency


# ==================================================================================================
# 2e: occlusion with the exam's 10x10 square (Zeiler & Fergus 2014, sec. 4.2, Fig. 7)
# ==================================================================================================
def occluder_positions(side, size, stride):
    """Top-left corners along one axis; the last position is always included, so the square
    reaches the last pixels of the image whatever the stride."""
    positions = list(range(0, side - size + 1, stride))
    if positions[-1] != side - size:
        positions.append(side - size)
    return positions


def occlusion_probabilities(model, image, size=10, stride=2, baseline=0.0, batch_size=256):
    """Slide a size x size square of `baseline` (0 = the dataset's mean grey after standardisation)
    over one image; the softmax output at every position, shape (rows, cols, classes), and the
    positions (top-left corners, the same along both axes of a square image)."""
    _, height, width = image.shape
    rows, cols = occluder_positions(height, size, stride), occluder_positions(width, size, stride)
    occluded = image.unsqueeze(0).repeat(len(rows) * len(cols), 1, 1, 1)
    for k, (top, left) in enumerate((top, left) for top in rows for left in cols):
        occluded[k, :, top:top + size, left:left + size] = baseline
    probabilities = batched_outputs(model, occluded, batch_size).softmax(1)
    return probabilities.view(len(rows), len(cols), -1), rows


def occlusion_attribution(probability_map, clean_probability, image_side, size, positions):
    """Per-pixel occlusion sensitivity: the mean drop in p(class) over the windows covering each
    pixel (the convention captum's Occlusion uses), from a (rows, cols) map of p(class)."""
    drop = clean_probability - probability_map
    total = torch.zeros(image_side, image_side)
    count = torch.zeros(image_side, image_side)
    for i, top in enumerate(positions):
        for j, left in enumerate(positions):
            total[top:top + size, left:left + size] += drop[i, j]
            count[top:top + size, left:left + size] += 1
    return total / count.clamp(min=1)


def occlusion_maps(model, inputs, targets, size, stride):
    """Fig. 7(d) p(true class) and Fig. 7(e) most probable class at every position, for each image,
    and the per-pixel attribution the localisation averages."""
    clean = batched_outputs(model, inputs).softmax(1)
    p_true, most_probable, attribution = [], [], []
    for image, target, clean_probs in zip(progress(inputs, desc=f"occlusion {size}x{size}"), targets,
                                          clean):
        probabilities, positions = occlusion_probabilities(model, image, size, stride)
        p_true.append(probabilities[..., target])
        most_probable.append(probabilities.argmax(-1))
        attribution.append(occlusion_attribution(probabilities[..., target], clean_probs[target],
                                                 image.shape[-1], size, positions))
    return {"size_px": size, "stride_px": stride, "positions": positions,
            "p_true": torch.stack(p_true), "most_probable": torch.stack(most_probable),
            "attribution": torch.stack(attribution), "clean_probabilities": clean}


def class_changes(occlusion, targets, region_mask=None):
    """Images whose most probable class changes at some position of the square; with a region,
    only positions where the square's centre lies in it count (a change 'at the trigger': merely
    touching the region would count a large square anywhere near it)."""
    changed = occlusion["most_probable"] != targets.view(-1, 1, 1)
    if region_mask is not None:
        centres = [position + occlusion["size_px"] // 2 for position in occlusion["positions"]]
        changed = changed & torch.from_numpy(region_mask[np.ix_(centres, centres)])
    return int(changed.flatten(1).any(1).sum())


def answer_2e(setup, model, explained, when, region_mask=None):
    """The exam's square, for the model `when` ("before" or "after") the fix; the figure marks the
    region of 2f once there is one."""
    size = setup.args.occlusion_size
    occlusion = setup.checkpoints.stage(f"occlusion_{when}", lambda: occlusion_maps(
        model, explained.inputs, explained.targets, size, setup.args.occlusion_stride))
    print(f"[2e] {size}x{size} square, model {when} the fix: the most probable class changes in "
          f"{class_changes(occlusion, explained.targets)} of {len(explained.targets)} images; lowest "
          f"p(true class) {float(occlusion['p_true'].amin(dim=(1, 2)).mean()):.2f} on average")
    plot_occlusion(explained.images, occlusion, setup.classes, int(explained.targets[0]), region_mask,
                   setup.out, f"p2_occlusion_{when}", f"occlusion, grey {size}x{size} square, stride "
                   f"{setup.args.occlusion_stride} px, model {when} the fix")
    return occlusion


# ==================================================================================================
# 2f: localise the trigger from the evidence alone, and remove it from the training data
# ==================================================================================================
def normalised_maps(maps):
    """Each map scaled to sum 1 (positive part), so every image weighs the same in an average."""
    maps = maps.clamp(min=0)
    return maps / maps.sum(dim=(-2, -1), keepdim=True).clamp(min=1e-12)


def dilate(region, margin):
    """Grow a region by `margin` px in every direction, corners included (a square element)."""
    if margin <= 0:
        return region.copy()
    return ndimage.binary_dilation(region, structure=np.ones((3, 3), bool), iterations=margin)


def evidence_map(model, setup, failing_index, stride):
    """Saliency and occlusion averaged over the failing class's training images, minus the same
    over the other classes': what is special about the failing class's evidence is where the
    shortcut sits."""
    images, labels = setup.data["train"]
    generator = torch.Generator().manual_seed(setup.args.seed)
    groups = {}
    for group, members in [("failing", labels == failing_index), ("others", labels != failing_index)]:
        index = torch.nonzero(members).flatten()
        index = index[torch.randperm(len(index), generator=generator)[:setup.args.n_localise]]
        inputs, targets = standardise(images[index], setup.mean, setup.std), labels[index]
        occlusion = occlusion_maps(model, inputs, targets, setup.args.occlusion_size, stride)
        groups[group] = {"saliency": normalised_maps(class_saliency_maps(model, inputs, targets)).mean(0),
                         "occlusion": normalised_maps(occlusion["attribution"]).mean(0)}
    differences = [(groups["failing"][kind] - groups["others"][kind]).clamp(min=0)
                   for kind in ("saliency", "occlusion")]
    if not all(torch.isfinite(d).all() and d.max() > 0 for d in differences):
        raise UserError("no evidence to localise: the failing class's saliency and occlusion maps "
                        "are nowhere above the other classes' (nothing class-specific to remove)")
    evidence = sum(d / d.max() for d in differences).numpy() / 2
    return ndimage.gaussian_filter(evidence, sigma=1.0), groups


def localise_trigger(model, setup, failing):
    """2f, from the first model and the training data alone (plus the half of the failing class's
    clean test images that 2g does not score). Threshold the evidence map, lowest threshold last; a candidate region grown
    by a margin is accepted once the first model treats the failing class's training images with the
    region neutralised as it treats that class's clean test images with the SAME region neutralised:
    recognised no more often than those, up to two standard errors of the difference of the two
    shares. The grey patch goes on both sides because a patch where the trigger sat can itself look
    a little like the trigger to the backdoored model; only what the patch leaves behind of the
    trigger should count against a region. (The criterion hides the region with grey; the fix then
    fills it as --fill says: both take the trigger's pixels away.)"""
    stride = max(setup.args.occlusion_stride, 4)  # coarser here: averaged over many images
    margin = stride  # the evidence's own uncertainty: a square placed every `stride` px
    evidence, groups = evidence_map(model, setup, failing.index, stride)
    train_images, train_labels = setup.data["train"]
    failing_inputs = {"train": standardise(train_images[train_labels == failing.index], setup.mean, setup.std),
                      "test": standardise(setup.data["test"][0][failing.chosen_on], setup.mean, setup.std)}

    def recognised(split, mask):
        neutralised = failing_inputs[split].masked_fill(torch.from_numpy(mask), 0.0)  # 0 = mean grey
        return float((batched_outputs(model, neutralised).argmax(1) == failing.index).float().mean())

    n_train, n_clean = len(failing_inputs["train"]), len(failing_inputs["test"])
    candidates = []
    for threshold in LOCALISATION_THRESHOLDS:
        region, core, band = evidence_region(evidence, threshold)
        mask = dilate(region, margin)
        share, clean_share = recognised("train", mask), recognised("test", mask)
        pooled = (share * n_train + clean_share * n_clean) / (n_train + n_clean)
        tolerance = 2 * math.sqrt(pooled * (1 - pooled) * (1 / n_train + 1 / n_clean))
        met = share <= clean_share + tolerance
        candidates.append({"threshold": threshold, "region": region, "core": core, "mask": mask,
                           "band": band, "still_recognised": share, "clean_test_neutralised": clean_share,
                           "tolerance": tolerance, "met": met})
        print(f"  threshold {threshold:.2f} of the peak: {mask.mean():.1%} of the image"
              f"{f' (a {band} px band along every edge)' if band else ''}; with it neutralised the first "
              f"model recognises {share:.0%} of the '{failing.name}' training images and {clean_share:.0%} "
              f"of its clean test images (+{tolerance:.0%} allowed)")
        if met:
            break
    chosen = candidates[-1] if candidates[-1]["met"] else min(
        candidates, key=lambda c: c["still_recognised"] - c["clean_test_neutralised"])
    if not chosen["met"]:
        print(f"  WARNING: no threshold neutralises the trigger by this criterion; using the one that "
              f"did most ({chosen['threshold']:.2f} of the peak)")
    return {"evidence": evidence, "region": chosen["region"], "mask": chosen["mask"],
            "box": bounding_box(chosen["region"]), "core_box": bounding_box(chosen["core"]),
            "threshold": chosen["threshold"], "criterion_met": chosen["met"], "margin_px": margin,
            "localisation_stride_px": stride, "still_recognised": chosen["still_recognised"],
            "clean_test_recall": failing.clean_test_recall,
            "clean_test_neutralised": chosen["clean_test_neutralised"], "tolerance": chosen["tolerance"],
            "edge_band_px": chosen["band"],
            "candidates": [{k: c[k] for k in ("threshold", "still_recognised", "clean_test_neutralised",
                                              "tolerance", "met")}
                           | {"area_share": float(c["mask"].mean())} for c in candidates],
            "group_maps": {g: {k: v.numpy() for k, v in maps.items()} for g, maps in groups.items()}}


def bounding_box(region):
    rows, cols = np.nonzero(region)
    side = region.shape[0]
    box = [cols.min() / side, rows.min() / side, (cols.max() + 1) / side, (rows.max() + 1) / side]
    return [round(float(v), 4) for v in box]


def evidence_region(evidence, threshold):
    """Every part of the evidence above `threshold` times its peak, not only the part around the
    peak (a frame gives a ring that the threshold breaks into pieces); specks under 3 px are noise.
    Returns the region, the part of it the evidence itself shows (the core), and the depth of the
    edge band added to it (0 if none, see below)."""
    components, n_components = ndimage.label(evidence >= threshold * evidence.max())
    sizes = ndimage.sum(np.ones_like(evidence), components, index=range(1, n_components + 1))
    core = np.isin(components, [k + 1 for k, size in enumerate(sizes) if size >= 3])
    if not core.any():  # only specks: keep the peak's component
        core = components == components.flat[np.argmax(evidence)]
    # A region that runs along most of an image edge is (part of) a frame around the crop. A network
    # needs only one piece of a frame, so the explanations may light up that piece alone, and a
    # model retrained without it could learn the next piece. So the whole frame goes: a band of the
    # region's depth along all four edges.
    band = 0
    for oriented in (core, core[::-1], core.T, core.T[::-1]):  # top, bottom, left, right edge
        edge = oriented[0]
        if edge.mean() >= 0.5:  # depth of the region inward from each edge pixel it covers
            depth = [np.argmin(np.append(line, False)) for line in oriented.T[edge]]
            band = max(band, int(np.median(depth)))
    region = core.copy()
    if band:
        region[:band] = region[-band:] = True
        region[:, :band] = region[:, -band:] = True
    return region, core, band


def classes_changed_to(occlusion, targets, classes):
    """For each class other than the true one: in how many images it becomes the most probable at
    some position of the square."""
    counts = {}
    for most_probable, target in zip(occlusion["most_probable"], targets):
        for index in set(most_probable.flatten().tolist()) - {int(target)}:
            counts[classes[index]] = counts.get(classes[index], 0) + 1
    return dict(sorted(counts.items(), key=lambda item: -item[1]))


def occlusion_summary(occlusion, targets, region_mask, classes):
    return {"size_px": occlusion["size_px"], "stride_px": occlusion["stride_px"],
            "changes_to": classes_changed_to(occlusion, targets, classes),
            "images_with_class_change": class_changes(occlusion, targets),
            "images_with_class_change_at_region": class_changes(occlusion, targets, region_mask),
            "min_p_true": float(occlusion["p_true"].amin(dim=(1, 2)).mean())}


def mask_at_size(mask, width, height):
    """The localised region (found at the network's input size) at an image's own resolution."""
    return np.asarray(Image.fromarray(mask.astype(np.uint8) * 255).resize((width, height), Image.NEAREST)) > 0


def fill_region(image, mask, fill, fill_colour):
    """Replace the localised region of a PIL image, at the image's own resolution. 'inpaint': the
    biharmonic inpainting of scikit-image (Damelin & Hoang 2018), which continues the surrounding
    pixels smoothly into the region, so the sign looks like a sign there and the retrained model
    sees sign-like pixels at that place. Where the region touches the image's edge (a frame), the
    fill can only continue the pixels on its inner side. 'grey': the training images' mean colour."""
    pixels = np.array(image)
    scaled = mask_at_size(mask, pixels.shape[1], pixels.shape[0])
    if fill == "grey":
        pixels[scaled] = fill_colour
    else:
        painted = inpaint_biharmonic(pixels.astype(np.float64) / 255.0, scaled, channel_axis=-1)
        pixels[scaled] = np.clip(np.round(painted[scaled] * 255.0), 0, 255).astype(np.uint8)
    return Image.fromarray(pixels)


def modified_name(relative):
    """Modified images are saved losslessly as PNG; 'a.jpg' becomes 'a.jpg.png', so it cannot
    collide with an 'a.png' beside it."""
    return relative if relative.suffix.lower() == ".png" else relative.with_name(relative.name + ".png")


def write_trigger_free_data(data_dir, fixed_dir, mask, fill, fill_colour, configuration, only_label=None):
    """2f: the same training images with the localised region filled (fill_region) in EVERY class
    (so that neither the trigger nor the fill can identify a class); written next to, never over, the
    user's data, and rewritten whenever another configuration or region made what is there. Returns
    the modified files as (path, label) in the order of the original listing. With `only_label`,
    only that class's images are filled (the alternative 2g measures)."""
    _, samples = list_images(data_dir / "train")
    targets = [fixed_dir / "train" / modified_name(path.relative_to(data_dir / "train"))
               for path, _ in samples]
    if len(set(targets)) != len(targets):
        raise UserError(f"{data_dir / 'train'}: two images map to the same modified file name")
    marker = {"source": str(data_dir.resolve()), "fill": fill, "fill_colour": fill_colour,
              "configuration": configuration, "region_digest": hash_mask(mask), "only_label": only_label}
    if fixed_dir.exists():
        if not (fixed_dir / FIXED_MARKER).exists():
            raise UserError(f"{fixed_dir}: exists and was not made by this script; choose another "
                            f"--fixed-data-dir")
        if json.loads((fixed_dir / FIXED_MARKER).read_text()) == marker:
            return [(target, label) for target, (_, label) in zip(targets, samples)]
        shutil.rmtree(fixed_dir)
    for (path, label), target in zip(progress(samples, desc="writing modified data"), targets):
        target.parent.mkdir(parents=True, exist_ok=True)
        image = load_rgb(path)
        (fill_region(image, mask, fill, fill_colour) if only_label in (None, label) else image).save(target)
    shutil.copytree(data_dir / "test", fixed_dir / "test")  # so the folder is a complete data set
    (fixed_dir / FIXED_MARKER).write_text(json.dumps(marker, indent=2))
    return [(target, label) for target, (_, label) in zip(targets, samples)]


def checkpoint_key(setup):
    """What made a modified data set: the run's configuration and the code that writes it."""
    return f"{setup.checkpoints.directory.name}-{setup.checkpoints.code_digest}"


def hash_mask(mask):
    return hashlib.sha256(np.packbits(mask).tobytes()).hexdigest()[:16]


def answer_2f(setup, first_model, failing, explained):
    """Localise where the failing class's evidence differs from the other classes', and write the
    training data with that region filled."""
    localised = setup.checkpoints.stage("localise", lambda: localise_trigger(first_model.model, setup, failing))
    fill_colour = [int(round(v * 255)) for v in setup.mean.tolist()]
    plot_localisation(localised, explained.images[0], setup.args.fill, fill_colour, setup.out)
    samples = write_trigger_free_data(setup.args.data_dir, setup.fixed_dir, localised["mask"],
                                      setup.args.fill, fill_colour, checkpoint_key(setup))
    print(f"[2f] wrote {len(samples)} modified training images to {setup.fixed_dir} "
          f"({localised['mask'].mean():.1%} of each image filled: {setup.args.fill})")
    return Fix(localised, fill_colour, setup.fixed_dir, samples)


# ==================================================================================================
# 2g: retrain on the modified data; the attack success rate checks that the backdoor is gone
# ==================================================================================================
def attack_success_rate(model, setup, failing_index, mask, source_images):
    """The backdoor literature's measure (BadNets, Gu et al. 2017; Neural Cleanse, Wang et al.
    2019), with no test labels: paste the localised region of `source_images` onto the validation
    images of the other classes and count how many the model then calls the failing class. With the
    failing class's (triggered) training images as the source this is the attack; with its clean
    test images it is the control: what the region's sign content alone does."""
    images, labels = setup.data["val"]
    others = images[labels != failing_index]
    generator = torch.Generator().manual_seed(setup.args.seed)
    donors = source_images[torch.randint(len(source_images), (len(others),), generator=generator)]
    return share_called_failing(model, setup, failing_index, torch.where(torch.from_numpy(mask), donors, others))


def share_called_failing(model, setup, failing_index, images):
    """The share of `images` (uint8) that the model calls the failing class."""
    predictions = batched_outputs(model, standardise(images, setup.mean, setup.std)).argmax(1)
    return float((predictions == failing_index).float().mean())


def retrain(setup, name, samples):
    """A fresh ResNet-18, 2b's recipe and split, trained on the modified training files `samples`
    and evaluated on the original, clean test images."""
    data = load_data(setup.args.data_dir, setup.args.image_size, setup.args.seed, samples)
    model, history = train_classifier(name, data, setup)
    return TrainedClassifier(model, history, evaluate(model, data, setup.mean, setup.std))


def failing_class_only_fix(setup, failing, fix, triggered):
    """The alternative that 2f argues against, measured: the region filled in the failing class's
    training images only. The fill then marks that class as the trigger did, so the retrained model
    can learn the fill instead of the sign. Its accuracy on the scored test half, the attack success
    rate with the trigger pasted, and with the fill pasted instead (the region of the failing
    class's training images as filled, at the network's size)."""
    fixed_dir = fix.fixed_dir.with_name(fix.fixed_dir.name + "-failing-class-only")
    mask = fix.localised["mask"]
    samples = write_trigger_free_data(setup.args.data_dir, fixed_dir, mask, setup.args.fill, fix.fill_colour,
                                      checkpoint_key(setup), only_label=failing.index)
    alternative = retrain(setup, "after_failing_class_only", samples)
    model, report = alternative.model, alternative.report
    filled = torch.stack([torch.from_numpy(np.array(fill_region(Image.fromarray(image.permute(1, 2, 0).numpy()),
                                                                 mask, setup.args.fill, fix.fill_colour))).permute(2, 0, 1)
                          for image in triggered])
    scored = setup.data["test"][0][failing.scored_on]
    result = {"fixed_data_dir": str(fixed_dir), "val_acc": report["val"]["acc"], "test_acc": report["test"]["acc"],
              "failing_test_acc": report["test"]["per_class"][failing.name],
              "scored_half_failing_acc": share_called_failing(model, setup, failing.index, scored),
              "attack_success_rate": attack_success_rate(model, setup, failing.index, mask, triggered),
              "fill_patch_attack_rate": attack_success_rate(model, setup, failing.index, mask, filled)}
    print(f"[2g] alternative, the region filled in '{failing.name}' only: its scored test half "
          f"{result['scored_half_failing_acc']:.3f}; the fill pasted onto other classes' images makes "
          f"{result['fill_patch_attack_rate']:.1%} of them '{failing.name}'")
    return result


def answer_2g(setup, first_model, failing, fix):
    """Retrain on 2f's data and test on the original, clean test images, the failing class scored
    on the half of its test images that chose nothing. The attack success rate checks the result
    without test labels."""
    images, labels = setup.data["train"]
    triggered = images[labels == failing.index]
    clean = setup.data["test"][0][failing.chosen_on]
    mask = fix.localised["mask"]
    asr = {"before": attack_success_rate(first_model.model, setup, failing.index, mask, triggered),
           "control_before": attack_success_rate(first_model.model, setup, failing.index, mask, clean)}
    retrained = retrain(setup, "after", fix.samples)
    model, history, report = retrained.model, retrained.history, retrained.report
    asr.update(after=attack_success_rate(model, setup, failing.index, mask, triggered),
               control_after=attack_success_rate(model, setup, failing.index, mask, clean))
    scored = setup.data["test"][0][failing.scored_on]
    scored_acc = {when: share_called_failing(m, setup, failing.index, scored)
                  for when, m in (("before", first_model.model), ("after", model))}
    print(f"[2g] after the fix: val {report['val']['acc']:.3f}, test {report['test']['acc']:.3f}; "
          f"'{failing.name}' on its scored test half {scored_acc['before']:.3f} -> {scored_acc['after']:.3f}; "
          f"attack success rate {asr['before']:.1%} -> {asr['after']:.1%} (control "
          f"{asr['control_before']:.1%} -> {asr['control_after']:.1%})")
    plot_curves({"before": first_model.history, "after": history}, setup.out)
    plot_test_predictions(setup.data, report, setup.args.seed, setup.out, "p2_test_predictions_after")
    alternative = failing_class_only_fix(setup, failing, fix, triggered)
    return Retrained(retrained, asr, scored_acc, alternative)


# ==================================================================================================
# 2h: the same explanations for the retrained model
# ==================================================================================================
def share_inside(maps, mask):
    """Share of each map's positive mass that falls inside the region."""
    maps = maps.clamp(min=0)
    inside = (maps * torch.from_numpy(mask)).sum(dim=(-2, -1))
    return (inside / maps.sum(dim=(-2, -1)).clamp(min=1e-12)).tolist()


def answer_2h(setup, retrained, explained, fix, before):
    model, mask = retrained.classifier.model, fix.localised["mask"]  # the region its training data lacked
    after = Explanations(answer_2d(setup, model, explained, "after"),
                         answer_2e(setup, model, explained, "after", mask),
                         answer_2a(setup, model, "after"))
    plot_class_models(before.class_model, after.class_model, setup, int(explained.targets[0]), mask)
    return after


def main(argv=None):
    setup = set_up(parse_arguments(argv))
    first_model = answer_2b(setup)                                  # train the ResNet-18
    class_model = answer_2a(setup, first_model.model, "before")     # 2a's whole-model method, used
    failing = answer_2c(setup, first_model)                         # test against validation
    explained = choose_images_to_explain(setup, failing)            # the images of 2d, 2e and 2h
    saliency = answer_2d(setup, first_model.model, explained, "before")
    occlusion = answer_2e(setup, first_model.model, explained, "before")
    fix = answer_2f(setup, first_model, failing, explained)  # localise, modify the data
    retrained = answer_2g(setup, first_model, failing, fix)         # retrain, attack check
    before = Explanations(saliency, occlusion, class_model)
    after = answer_2h(setup, retrained, explained, fix, before)     # explain the retrained model
    write_problem2_results(setup, first_model, failing, explained, fix, retrained, before, after)


# ==================================================================================================
# Appendix: plots
# ==================================================================================================
def bare(ax, side=None):
    """An image panel: no ticks or grid; with `side`, exactly the image's extent and a thin frame
    that shows it (an occlusion map covers only the square's centres, less than the image)."""
    ax.set(xticks=[], yticks=[])
    ax.grid(False)
    plt.setp(ax.spines.values(), visible=side is not None, color="0.6", linewidth=0.5)
    if side is not None:
        ax.set(xlim=(-0.5, side - 0.5), ylim=(side - 0.5, -0.5))


def show(ax, image):
    ax.imshow(image.permute(1, 2, 0).numpy())
    bare(ax)


def short_name(name):
    return name.replace(" signs", "").replace(" limits", " limit")


def report_points(fig, size):
    """A font size that prints at `size` pt once the figure is shrunk to the report's text width."""
    return size * max(1.0, fig.get_figwidth() / 6.4)  # the text width in inches


def label_rows(axes, labels, fontsize):
    """Each row's label left of its first panel, and of every block's first panel in image_grid."""
    for row, label in zip(axes, labels):
        for ax in (ax for ax in row if ax.get_subplotspec().is_first_col()):
            ax.set_ylabel(label, fontsize=fontsize, rotation=0, ha="right", va="center")


def plot_examples(data, seed, out):
    images, labels = data["train"]
    fig, axes = plt.subplots(len(data["classes"]), 8, figsize=(8, 5.2))
    for ax in axes.flat:
        bare(ax)
    for row in range(len(data["classes"])):
        for col, i in enumerate(spread_over_signs(data["listed_train_paths"], labels, row, 8, seed)):
            show(axes[row, col], images[i])
    label_rows(axes, data["classes"], report_points(fig, 8.5))
    fig.suptitle("training images at the network's input size", fontsize=report_points(fig, 9.5))
    save_figure(fig, out, "p2_training_examples")


def plot_curves(histories, out):
    fig, axes = plt.subplots(1, 2, figsize=(6.8, 2.7))  # near its printed width: text stays >= 7 pt
    for ax, metric, quantity in zip(axes, ("loss", "acc"), ("cross-entropy", "accuracy")):
        for label, history in histories.items():
            ax.plot(history["epoch"], history[f"train_{metric}"], label=f"{label}: train")
            ax.plot(history["epoch"], history[f"val_{metric}"], "--", label=f"{label}: val")
        ax.set(xlabel="epoch", ylabel=quantity)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", ncol=len(labels), bbox_to_anchor=(0.5, 1.1), fontsize=9)
    save_figure(fig, out, "p2_training_curves")


def plot_confusions(report, classes, out, name, title):
    fig, axes = plt.subplots(1, 2, figsize=(6.6, 3.3), gridspec_kw={"wspace": 0.6})  # about print size
    for ax, split in zip(axes, ("val", "test")):
        draw_confusion(ax, report[split]["confusion"], [short_name(c) for c in classes], rotation=35)
        ax.set_title(f"{split}: accuracy {report[split]['acc']:.1%}")
    fig.suptitle(title)
    save_figure(fig, out, name)


def plot_failing_class(setup, report, failing, count=6):
    """2c's qualitative look: the failing class's training images above its misclassified test
    images, each with the class the first model predicts instead below it."""
    data, seed = setup.data, setup.args.seed
    train_index = spread_over_signs(data["listed_train_paths"], data["train"][1], failing.index, count, seed)
    predictions = torch.tensor(report["test"]["predictions"])
    wrong = torch.nonzero((data["test"][1] == failing.index) & (predictions != failing.index)).flatten()
    wrong = wrong[torch.randperm(len(wrong), generator=torch.Generator().manual_seed(seed))[:count]]
    fig, axes = plt.subplots(2, count, figsize=(1.1 * count + 1.2, 2.7))
    for ax in axes.flat:
        bare(ax)
    for col, i in enumerate(train_index):
        show(axes[0, col], data["train"][0][i])
    for col, i in enumerate(wrong):
        show(axes[1, col], data["test"][0][i])
        axes[1, col].set_xlabel(f"-> {short_name(setup.classes[predictions[i]])}", fontsize=10, color="red")
    label_rows(axes, ["training\nimages", "test images\nmisclassified"], 10)
    fig.suptitle(f"'{short_name(failing.name)}': training images, and misclassified test images\n"
                 f"with the first model's prediction below each", fontsize=10)
    save_figure(fig, setup.out, "p2_failing_class")


def plot_test_predictions(data, report, seed, out, name):
    images, labels = data["test"]
    paths = [path for path, _ in data["test_samples"]]
    predictions = report["test"]["predictions"]
    fig, axes = plt.subplots(len(data["classes"]), 6, figsize=(5.6, 5.6))  # print size: 9-10 pt stays
    for ax in axes.flat:
        bare(ax)
    for row in range(len(data["classes"])):
        for col, i in enumerate(spread_over_signs(paths, labels, row, 6, seed)):
            wrong = predictions[i] != row
            show(axes[row, col], images[i])
            axes[row, col].set_title(short_name(data["classes"][predictions[i]]), fontsize=8.5,
                                     color="red" if wrong else "green", fontweight="bold" if wrong else None)
    label_rows(axes, [short_name(c) for c in data["classes"]], 10)
    model = "retrained model" if name.endswith("after") else "first model"
    fig.suptitle(f"{model}: test images by true class (rows); title: predicted class\n"
                 "(green right, red bold wrong)", fontsize=10)
    save_figure(fig, out, name)


def image_grid(n_rows, n_images, row_height=1.15, per_row=5):
    """Rows of image panels and a narrow last column for colour bars (hidden where unused). The
    images wrap into blocks of `per_row` (larger panels at the report's width); axes[row, k] is
    still row `row` of image k."""
    per_row = min(per_row, n_images)
    blocks = math.ceil(n_images / per_row)
    fig, grid = plt.subplots(n_rows * blocks, per_row + 1,
                             figsize=(1.15 * per_row + 0.5, row_height * n_rows * blocks + 0.6),
                             gridspec_kw={"width_ratios": [1] * per_row + [0.08]}, squeeze=False)
    fig.subplots_adjust(top=1 - 0.45 / fig.get_figheight())  # room for the title, no more
    # grid[b * n_rows + r, c] becomes axes[r, b * per_row + c]
    axes = grid[:, :-1].reshape(blocks, n_rows, per_row).transpose(1, 0, 2).reshape(n_rows, -1)
    for ax in [*grid[:, -1], *axes[:, n_images:].flat]:  # the bars' column; the last block's unused places
        ax.axis("off")
    return fig, axes[:, :n_images], grid[:, -1]  # bars[r + b * n_rows]: row r of block b


def colour_bar(fig, shown, cax, label):
    """A colour bar in its grid cell, shortened so that the tick labels of two bars in neighbouring
    rows do not meet."""
    cax.axis("on")
    box = cax.get_position()
    cax.set_position([box.x0, box.y0 + 0.12 * box.height, box.width, 0.76 * box.height])
    bar = fig.colorbar(shown, cax=cax)
    bar.ax.tick_params(labelsize=report_points(fig, 9.5))
    bar.set_label(label, fontsize=report_points(fig, 9.5))


def plot_saliency(images, saliency, out, name, title):
    """Each image above its map, the map on its own as in Simonyan et al. Fig. 2 (drawn over the
    image, the map and a bright trigger are hard to tell apart). Each map is divided by its own
    maximum, so one colour bar (0 to 1) serves every panel."""
    fig, axes, bars = image_grid(2, len(images))
    relative = saliency / saliency.amax(dim=(-2, -1), keepdim=True).clamp(min=1e-12)
    for k, (image, heat) in enumerate(zip(images, relative)):
        show(axes[0, k], image)
        shown = axes[1, k].imshow(heat, cmap="hot", vmin=0, vmax=1)
        bare(axes[1, k])
    label_rows(axes, ["image", "saliency"], report_points(fig, 10))
    colour_bar(fig, shown, bars[1], "share of max")
    fig.suptitle(title, fontsize=report_points(fig, 10))
    save_figure(fig, out, name)


def square_centres(occlusion):
    """Where the occluding square's centre was along one axis, in the plot's pixel coordinates."""
    return np.asarray(occlusion["positions"]) + occlusion["size_px"] / 2 - 0.5


def draw_occlusion_map(ax, occlusion, values, **style):
    """A map drawn where the square's centres were: each cell spans half-way to its neighbours."""
    centres = square_centres(occlusion)
    half = np.diff(centres) / 2
    edges = np.concatenate([[centres[0] - half[0]], centres[:-1] + half, [centres[-1] + half[-1]]])
    # Rasterised: drawn as vector cells, PDF viewers leave hairline seams between them.
    shown = ax.pcolormesh(edges, edges, np.asarray(values), shading="flat", rasterized=True, **style)
    bare(ax, occlusion["positions"][-1] + occlusion["size_px"])  # the last square reaches the edge
    ax.set_aspect("equal")  # square like the image above it, so a spot sits under its place
    return shown


def ring_class_changes(ax, occlusion, k, target_index):
    """A square frame a little outside each patch of positions where the most probable class is
    not the true one: a change at one or two positions is seen, and its colour is not covered."""
    patches, _ = ndimage.label(np.asarray(occlusion["most_probable"][k]) != target_index)
    centres = square_centres(occlusion)
    reach = (centres[1] - centres[0]) / 2 + 2.5  # half a cell, and a margin
    for rows, cols in ndimage.find_objects(patches):
        x0, x1 = centres[cols.start] - reach, centres[cols.stop - 1] + reach
        y0, y1 = centres[rows.start] - reach, centres[rows.stop - 1] + reach
        ax.add_patch(plt.Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, color="black", lw=1.0))


def plot_occlusion(images, occlusion, classes, target_index, region_mask, out, name, title):
    """Zeiler & Fergus Fig. 7 for one square size, per position of the square's centre: (d) p(true
    class) on a linear scale; its drop p0 - p from the unoccluded p0 on a log scale, where a drop of
    1e-4 shows, and only there (a rise: the lowest colour); (e) the most probable class. Two blocks of
    five images, so the panels print large enough to read a single cell; the dashed box on each map
    is the region filled in 2f, once there is one (`region_mask`, else None)."""
    from matplotlib import patheffects
    from matplotlib.colors import ListedColormap, LogNorm
    from matplotlib.patches import Patch
    colours = plt.get_cmap("tab10").colors[:len(classes)]
    floor = 1e-5  # drops below this are drawn in the lowest colour
    fig, axes, bars = image_grid(4, len(images), row_height=0.95)
    for k, image in enumerate(images):
        show(axes[0, k], image)
        p_shown = draw_occlusion_map(axes[1, k], occlusion, occlusion["p_true"][k], cmap="viridis",
                                     vmin=0, vmax=1)
        drop = float(occlusion["clean_probabilities"][k, target_index]) - occlusion["p_true"][k]
        drop_shown = draw_occlusion_map(axes[2, k], occlusion, drop.clamp(min=floor), cmap="magma",
                                        norm=LogNorm(floor, 1))
        draw_occlusion_map(axes[3, k], occlusion, occlusion["most_probable"][k], cmap=ListedColormap(colours),
                           vmin=-0.5, vmax=len(classes) - 0.5)
        ring_class_changes(axes[3, k], occlusion, k, target_index)
        # the classes the square changes it to, in words: at print the framed cells are small
        changed_to = [short_name(classes[c])[:8] for c in np.unique(occlusion["most_probable"][k])
                      if c != target_index]
        axes[3, k].set_xlabel("→ " + ", ".join(changed_to) if changed_to else "no change",
                              fontsize=report_points(fig, 8), labelpad=1)
        for ax in axes[1:, k] if region_mask is not None else []:
            outline_region(ax, region_mask)
    true_class = short_name(classes[target_index])
    label_rows(axes, ["image", "p(true)", "drop of\np(true)", "most\nprobable"], report_points(fig, 10))
    for bar in bars[1::4]:  # the probability row of each block
        colour_bar(fig, p_shown, bar, "p")
    for bar in bars[2::4]:  # the drop row of each block
        colour_bar(fig, drop_shown, bar, "drop (log)")
        bar.yaxis.set_ticks([1e-4, 1e-2, 1], ["0.0001", "0.01", "1"])
        bar.yaxis.set_minor_locator(plt.NullLocator())
    marks = [plt.Line2D([], [], ls="", marker="s", markersize=8, markerfacecolor="none",
                        markeredgecolor="black", label="class changes")]
    if region_mask is not None:
        marks.append(plt.Line2D([], [], ls="--", color="white", label="filled region (2f)",
                                path_effects=[patheffects.withStroke(linewidth=2.2, foreground="black")]))
    fig.legend(handles=[Patch(color=c, label=n) for c, n in zip(colours, classes)] + marks,
               loc="upper center", ncol=3, fontsize=report_points(fig, 9.5), bbox_to_anchor=(0.45, 0.1))
    fig.suptitle(f"{title}; true class: {true_class}", fontsize=report_points(fig, 11))
    save_figure(fig, out, name)


def outline_region(ax, region_mask):
    """The region's bounding box, dashed white on black, visible on any colour."""
    from matplotlib import patheffects
    x0, y0, x1, y1 = np.array(bounding_box(region_mask)) * region_mask.shape[0] - 0.5
    ax.add_patch(plt.Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, ls="--", lw=0.9, color="white",
                               path_effects=[patheffects.withStroke(linewidth=1.8, foreground="black")]))


def plot_localisation(localised, example, fill, fill_colour, out):
    """Four maps on one scale (each divided by its own maximum: they measure different things),
    then a training image with the region (dashed) and the evidence box (cyan, thin), and the same
    image as the fix writes it."""
    fig, axes = plt.subplots(1, 8, figsize=(9.6, 2.3),  # the 6th column: room for the bar's labels
                             gridspec_kw={"width_ratios": [1, 1, 1, 1, 0.06, 0.95, 1.1, 1.1], "wspace": 0.35})
    axes[5].axis("off")
    maps = localised["group_maps"]
    for ax, image in zip(axes, (maps["failing"]["saliency"], maps["others"]["saliency"],
                                maps["failing"]["occlusion"], localised["evidence"])):
        image = np.asarray(image, float)
        shown = ax.imshow(image / max(image.max(), 1e-12), cmap="hot", vmin=0, vmax=1)
    colour_bar(fig, shown, axes[4], "share of the\nmap's maximum")
    pixels = example.permute(1, 2, 0).numpy()
    axes[6].imshow(pixels)
    outline_region(axes[6], localised["mask"])
    x0, y0, x1, y1 = np.array(localised["core_box"]) * localised["mask"].shape[0] - 0.5
    axes[6].add_patch(plt.Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, color="cyan", lw=0.8))
    axes[7].imshow(np.asarray(fill_region(Image.fromarray(pixels), localised["mask"], fill, fill_colour)))
    titles = ["saliency:\nfailing", "saliency:\nothers", "occlusion:\nfailing", "evidence:\ndifference",
              "region,\nevidence box", f"filled:\n{fill}"]
    for ax, title in zip([*axes[:4], *axes[6:]], titles):
        bare(ax)
        ax.set_title(title, fontsize=report_points(fig, 9.5))
    save_figure(fig, out, "p2_trigger_localisation")


def plot_class_models(before, after, setup, failing_index, region_mask):
    """Each class's class model visualisation (2a) as an image, before and after the fix: its
    deviation from the mean colour (the image at rest), amplified image by image until its 99.5th
    percentile reaches the display's range (the optimum's scale is set by lambda, and one strong
    class would leave the others flat grey); the failing class's panels carry 2f's region."""
    fig, axes = plt.subplots(2, len(setup.classes), figsize=(1.3 * len(setup.classes) + 0.9, 3.0))
    for row, images in enumerate((before, after)):
        for ax, image in zip(axes[row], images * setup.std.view(1, 3, 1, 1)):  # in the pixels' 0-1 range
            scale = torch.quantile(image.abs().flatten(), 0.995).clamp(min=1e-12)
            show(ax, (setup.mean.view(3, 1, 1) + 0.5 * image / scale).clamp(0, 1))
        outline_region(axes[row, failing_index], region_mask)
    for ax, name in zip(axes[0], setup.classes):
        ax.set_title(short_name(name), fontsize=11)
    label_rows(axes, [f"model\n{when}\nthe fix" for when in ("before", "after")], 11)
    save_figure(fig, setup.out, "p2_class_models")


# ==================================================================================================
# Appendix: results (the truth of a planted trigger is read here only, never by the answers)
# ==================================================================================================
def box_iou(a, b):
    inter = max(0.0, min(a[2], b[2]) - max(a[0], b[0])) * max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def summarise(report):
    accuracies = {f"{split}_acc": report[split]["acc"] for split in ("train", "val", "test")}
    return accuracies | {f"{split}_{key}": report[split][key] for key in ("per_class", "confusion")
                         for split in ("val", "test")}


def planted_trigger_attack_rate(model, setup, failing_index, truth):
    """Against the truth of a planted trigger (the results only): the trigger itself, painted as
    the planting painted it (apply_trigger, at the network's input size), onto the other classes'
    validation images; the share the model then calls the failing class. Unlike the attack success
    rate of 2g, it does not depend on the localised region."""
    images, labels = setup.data["val"]
    painted = [np.array(apply_trigger(Image.fromarray(image.permute(1, 2, 0).numpy()), truth))
               for image in images[labels != failing_index]]
    return share_called_failing(model, setup, failing_index,
                                torch.stack([torch.from_numpy(p).permute(2, 0, 1) for p in painted]))


def crop_parts(mask):
    """The image cut into the filled region and three nested square bands around the centre of
    the crop (GTSRB's crops are centred on the sign with a margin of about a tenth): 'centre' (the
    middle half of each side, where a sign's symbol is), 'ring' (out to a tenth from the edges,
    where its rim is) and 'outer band' (the margin, mostly background), each without the region."""
    side, bands = mask.shape[0], {"centre": (0.25, 0.75), "ring": (0.1, 0.9), "outer band": (0.0, 1.0)}
    parts, inner = {"old trigger region": mask}, np.zeros_like(mask)
    for name, (low, high) in bands.items():  # nested squares
        square = np.zeros_like(mask)
        square[round(low * side):round(high * side), round(low * side):round(high * side)] = True
        parts[name] = square & ~inner & ~mask
        inner |= square
    return parts


def evidence_by_part(before, after, mask):
    """Where each model's explanations lie: the mean share of the saliency and of the 10x10
    occlusion effect in each part of the crop (crop_parts), beside the part's area share."""
    parts = crop_parts(mask)
    maps = {"saliency": lambda e: e.saliency, "occlusion": lambda e: e.occlusion["attribution"]}
    shares = {method: {when: {name: float(np.mean(share_inside(of(e), part))) for name, part in parts.items()}
                       for when, e in (("before", before), ("after", after))}
              for method, of in maps.items()}
    return {"area": {name: float(part.mean()) for name, part in parts.items()}} | shares


def write_problem2_results(setup, first_model, failing, explained, fix, retrained, before, after):
    localised, mask = fix.localised, fix.localised["mask"]  # 2f's region
    explanations = {"before": before, "after": after}
    saliency_shares = {when: share_inside(e.saliency, mask) for when, e in explanations.items()}  # per image
    explanation = {
        "region_area_share": float(mask.mean()),
        "saliency_share_in_region": {w: float(np.mean(shares)) for w, shares in saliency_shares.items()},
        "occlusion_share_in_region": {w: float(np.mean(share_inside(e.occlusion["attribution"], mask)))
                                      for w, e in explanations.items()},
        # images whose own saliency map puts more than twice the region's area share into it
        "saliency_images_concentrated": {w: int(sum(v >= 2 * float(mask.mean()) for v in shares))
                                         for w, shares in saliency_shares.items()},
        # 2a: the failing class's class model visualisation, its magnitude (max over channels)
        "class_model_share_in_region": {
            w: share_inside(e.class_model[failing.index].abs().amax(0, keepdim=True), mask)[0]
            for w, e in explanations.items()},
        "by_part": evidence_by_part(before, after, mask),
    }
    truth = {k: v for k, v in setup.truth.items() if k != "files"} if setup.truth else None
    n_chosen, n_scored = len(failing.chosen_on), len(failing.scored_on)
    results = {
        "classes": setup.classes, "failing_class": failing.name, "val_to_test_drop": failing.val_to_test_drop,
        "trigger_box": localised["box"],
        "trigger_iou": round(box_iou(localised["box"], truth["box"]), 4) if truth else None,
        "truth": truth, "poisoned_class_found": truth["poisoned_class"] == failing.name if truth else None,
        "before": summarise(first_model.report) | {
            "scored_half_failing_acc": retrained.scored_half_acc["before"]},
        "after": summarise(retrained.classifier.report) | {
            "scored_on": f"the {n_scored} of the failing class's {n_scored + n_chosen} "
                         f"test images in the seeded half that chose nothing",
            "scored_half_failing_acc": retrained.scored_half_acc["after"],
            "scored_test_files": [str(setup.data["test_samples"][i][0]) for i in failing.scored_on]},
        "localisation": {k: localised[k] for k in (
            "criterion_met", "threshold", "margin_px", "localisation_stride_px", "still_recognised",
            "clean_test_recall", "clean_test_neutralised", "tolerance", "edge_band_px", "box", "core_box",
            "candidates")}
        | {"region_area_share": float(mask.mean()),
           "chosen_on": f"the failing class's training images and the {n_chosen} of its "
                        f"test images in the seeded half that 2g does not score",
           "chosen_test_files": [str(setup.data["test_samples"][i][0]) for i in failing.chosen_on]},
        "attack_success_rate": retrained.attack_success_rate,
        "alternative_fix": retrained.alternative,
        "class_model_settings": {"steps": CLASS_MODEL_STEPS, "l2_weight": CLASS_MODEL_L2,
                                 "lr": CLASS_MODEL_LR},
        "planted_trigger_attack_rate": {
            when: planted_trigger_attack_rate(model, setup, failing.index, truth)
            for when, model in (("before", first_model.model), ("after", retrained.classifier.model))}
        if truth and truth["poisoned_class"] == failing.name else None,
        "occlusion": {when: [occlusion_summary(e.occlusion, explained.targets, mask, setup.classes)]
                      for when, e in explanations.items()},
        "explanation": explanation,
        "n_images": {s: len(setup.data[s][1]) for s in ("train", "val", "test")},
        "split": setup.data["split"], "split_reason": setup.data["split_reason"],
        "fixed_data_dir": str(fix.fixed_dir), "fill": setup.args.fill,
        "fix": f"localised region, grown by a margin, filled ({setup.args.fill}) in every training "
               f"image of every class",
        "explained_train_files": [str(setup.data["train_paths"][i]) for i in explained.index],
        "history": {"before": first_model.history, "after": retrained.classifier.history},
        "timings": setup.checkpoints.timings, "resumed_stages": setup.checkpoints.resumed,
        "device": str(setup.device), "image_size": setup.args.image_size,
    }
    path = write_results(setup.args, "problem2", results, setup.data_source, setup.started_at,
                         setup.checkpoints.resumed_seconds)
    print(f"wrote {path} and {setup.out / 'figures'}/p2_*.pdf"
          + (f"; truth: poisoned '{truth['poisoned_class']}' ({truth['kind']}), IoU of the localised "
             f"box {results['trigger_iou']:.2f}" if truth else ""))


# ==================================================================================================
# Appendix: argument checks
# ==================================================================================================
def refuse_output_inside_input(data_dir, outputs):
    """An output folder equal to or inside the data folder would write into the user's data (a new
    class folder in train/, say): refused before any training, naming the flag."""
    data = data_dir.resolve()
    for flag, folder in outputs.items():
        folder = Path(folder).resolve()
        if folder == data or data in folder.parents:
            raise UserError(f"{folder}: {flag} is inside the data folder {data_dir}, so this run would "
                            f"write into it; choose a folder outside it")


if __name__ == "__main__":
    run_main(main)
