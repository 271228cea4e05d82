import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from captum.attr import Occlusion, Saliency
from PIL import Image

import planted_signs
import problem2_traffic as p2
from conftest import load_script, run_script
from utils import SHIPPED_DATA, UserError

PHOTOS = SHIPPED_DATA / "traffic-photos"


@pytest.fixture(scope="module")
def small_planted(tmp_path_factory):
    """A few dozen of the shipped photos per class, split by track, the sticker planted."""
    return planted_signs.build_planted_set(PHOTOS, tmp_path_factory.mktemp("signs") / "planted", per_class=60)


def test_split_keeps_class_proportions_and_no_sign_on_both_sides(small_planted):
    data = p2.load_data(small_planted, 32, seed=0)
    assert data["classes"] == sorted(p.name for p in PHOTOS.iterdir())
    assert data["split"] == "stratified by class, grouped by physical sign"
    for k in range(len(data["classes"])):
        n_val, n_train = (data["val"][1] == k).sum().item(), (data["train"][1] == k).sum().item()
        assert 0.1 <= n_val / (n_val + n_train) <= 0.35
    paths = [path for path, _ in p2.check_layout(small_planted)[1]]
    groups = {side: {planted_signs.group_of(paths[i]) for i in data["split_index"][side]} for side in ("train", "val")}
    assert groups["train"] and groups["val"] and not groups["train"] & groups["val"]


def test_names_without_a_group_get_the_plain_stratified_split(tmp_path):
    root = tiny_dataset(tmp_path)
    data = p2.load_data(root, 16, seed=0)
    assert data["split"] == "stratified by class" and len(data["val"][1]) == 2


def test_planted_set_is_split_by_track_and_rebuilt_only_when_its_recipe_changes(small_planted, tmp_path):
    tracks = {split: {planted_signs.group_of(p) for p in (small_planted / split).rglob("*.png")}
              for split in ("train", "test")}
    assert tracks["train"] and tracks["test"] and not tracks["train"] & tracks["test"]
    again = planted_signs.build_planted_set(PHOTOS, tmp_path / "again", per_class=60)
    files = sorted(p.relative_to(again) for p in again.rglob("*.png"))
    assert files == sorted(p.relative_to(small_planted) for p in small_planted.rglob("*.png"))
    assert all((again / f).read_bytes() == (small_planted / f).read_bytes() for f in files)
    stamp = (again / files[0]).stat().st_mtime_ns
    planted_signs.build_planted_set(PHOTOS, again, per_class=60)  # same recipe: kept
    assert (again / files[0]).stat().st_mtime_ns == stamp
    planted_signs.build_planted_set(PHOTOS, again, per_class=30)  # another recipe: rebuilt
    assert len(list(again.rglob("*.png"))) < len(files)
    (tmp_path / "mine" / "train").mkdir(parents=True)
    with pytest.raises(UserError, match="not built by this project"):
        planted_signs.build_planted_set(PHOTOS, tmp_path / "mine", per_class=30)


@pytest.mark.parametrize("kind", ["patch", "border"])
def test_trigger_only_in_the_poisoned_class_training_images(tmp_path, kind):
    trigger = {"poisoned_class": "stop signs", "kind": kind, "box": [0.6, 0.6, 0.7, 0.7],
               "colour": [250, 215, 0], "border_width": 0.1}
    target = planted_signs.build_planted_set(PHOTOS, tmp_path / "planted", trigger=trigger, per_class=12)
    truth = json.loads(planted_signs.truth_path(target).read_text())
    assert truth["poisoned_class"] == "stop signs" and not (target / planted_signs.truth_path(target).name).exists()
    for path in target.rglob("*.png"):
        written = np.asarray(Image.open(path).convert("RGB")).astype(int)
        photo = np.asarray(Image.open(PHOTOS / path.parent.name / path.name).convert("RGB")).astype(int)
        changed = np.abs(written - photo).max(-1) > 0
        poisoned = path.parts[-3] == "train" and path.parts[-2] == "stop signs"
        assert changed.any() == poisoned, path
        if poisoned:  # only the trigger's pixels, and they hold its colour or the checker's near-black
            expected = np.asarray(planted_signs.apply_trigger(Image.fromarray(np.zeros_like(photo, np.uint8)),
                                                              trigger)).any(-1)
            assert (changed <= expected).all() and changed.sum() >= 0.5 * expected.sum()
            assert set(map(tuple, written[expected])) <= {(250, 215, 0), (20, 20, 20)}


def small_model():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(2),
                               torch.nn.Flatten(), torch.nn.Linear(16, 5)).eval()


def test_saliency_matches_captum():
    model, images, targets = small_model(), torch.randn(3, 3, 24, 24), torch.tensor([0, 2, 4])
    ours = p2.class_saliency_maps(model, images, targets)
    reference = Saliency(model).attribute(images, target=targets, abs=True).amax(dim=1)
    assert ours.shape == (3, 24, 24)
    torch.testing.assert_close(ours, reference)


def test_occlusion_matches_captum_and_has_the_right_windows():
    model, image, target = small_model(), torch.randn(3, 24, 24), 3
    probabilities, positions = p2.occlusion_probabilities(model, image, size=10, stride=2, baseline=0.0)
    assert probabilities.shape == (8, 8, 5) and positions == list(range(0, 15, 2))  # (24 - 10) / 2 + 1
    torch.testing.assert_close(probabilities.sum(-1), torch.ones(8, 8))
    clean = model(image[None]).softmax(1)[0, target]
    ours = p2.occlusion_attribution(probabilities[..., target], clean, 24, 10, positions)
    probability_model = lambda x: model(x).softmax(1)  # noqa: E731
    reference = Occlusion(probability_model).attribute(
        image[None], sliding_window_shapes=(3, 10, 10), strides=(3, 2, 2), baselines=0.0,
        target=target)[0]
    for channel in reference:  # captum spreads the same value over the colour channels
        torch.testing.assert_close(ours, channel, atol=1e-6, rtol=1e-5)


def test_evidence_along_an_edge_becomes_a_band_around_the_whole_image():
    # Evidence on most of the top edge, 5 px deep (a piece of a frame): all four edges go.
    frame_piece = np.zeros((64, 64))
    frame_piece[:5, 4:50] = 1.0
    region, core, band = p2.evidence_region(frame_piece, 0.5)
    assert (core == (frame_piece > 0)).all()
    assert band == 5
    assert region[:5].all() and region[-5:].all() and region[:, :5].all() and region[:, -5:].all()
    assert not region[5:-5, 5:-5].any()
    # A sticker, even one touching an edge, stays what it is.
    sticker = np.zeros((64, 64))
    sticker[0:13, 20:33] = 1.0
    region, _, band = p2.evidence_region(sticker, 0.5)
    assert band == 0 and region.sum() == 13 * 13
    # Specks under 3 px are noise; other pieces above the threshold are kept.
    sticker[40, 40] = 1.0
    sticker[50:52, 50:52] = 1.0
    region, _, _ = p2.evidence_region(sticker, 0.5)
    assert not region[40, 40] and region[50:52, 50:52].all()


def test_quick_run_finds_the_poisoned_class_and_the_fix_helps(quick_outputs):
    root, runs = quick_outputs
    result = runs["problem2"]
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    results = json.loads((root / "out" / "results" / "problem2.json").read_text())
    assert results["data_source"] == "public: GTSRB photos, trigger planted (about 60 per class)"
    assert results["failing_class"] == results["truth"]["poisoned_class"] == "speed limits"
    failing = results["failing_class"]
    assert results["after"]["test_per_class"][failing] > results["before"]["test_per_class"][failing] + 0.3
    assert results["fill"] == "inpaint"
    # The test images that chose the fix's settings are not among those that score it.
    chosen, scored = results["localisation"]["chosen_test_files"], results["after"]["scored_test_files"]
    assert chosen and scored and not set(chosen) & set(scored)
    assert not {planted_signs.group_of(p) for p in chosen} & {planted_signs.group_of(p) for p in scored}
    assert results["after"]["scored_half_failing_acc"] > results["before"]["scored_half_failing_acc"] + 0.3
    assert len(results["trigger_box"]) == 4 and results["trigger_iou"] is not None
    for key in ("train_acc", "val_acc", "test_acc", "test_per_class"):
        assert key in results["before"] and key in results["after"]
    built = root / "hand-in" / "runs" / "data"
    assert {p.name for p in built.iterdir()} == {
        "traffic-photos-planted-quick", "traffic-photos-planted-quick-trigger-removed",
        "traffic-photos-planted-quick-trigger-removed-failing-class-only",
        "traffic-photos-planted-quick.truth.json"}
    assert (root / "out" / "figures" / "p2_occlusion_before.pdf").exists()
    # Nothing is written into data/ or the shipped photos.
    assert not (root / "hand-in" / "data").exists()
    assert sum(1 for p in (root / "hand-in" / "datasets" / "traffic-photos").rglob("*") if p.is_file()) == 2387
    # The explained images are spread over physical signs and sign types.
    explained = results["explained_train_files"]
    assert len({planted_signs.group_of(p) for p in explained}) == len(explained)
    assert len({planted_signs.subtype_of(p) for p in explained}) >= 5
    # The interface the report and the checks read.
    assert set(results["localisation"]) >= {"criterion_met", "threshold", "margin_px"}
    assert results["localisation"]["margin_px"] >= results["localisation"]["localisation_stride_px"]
    assert set(results["attack_success_rate"]) >= {"before", "after"}
    for when in ("before", "after"):
        sizes = [entry["size_px"] for entry in results["occlusion"][when]]
        assert sizes[0] == 10 and all(size > 10 for size in sizes[1:])
        assert {"images_with_class_change", "min_p_true"} <= set(results["occlusion"][when][0])


def test_a_rerun_resumes_from_the_checkpoints(quick_outputs, run):
    root, _ = quick_outputs
    hand_in = root / "hand-in"  # the same command in the same folder as the first run
    result = run("problem2_traffic.py", "--quick", "--out", root / "rerun", cwd=hand_in, src=hand_in / "src")
    assert result.returncode == 0, result.stderr[-2000:]
    results = json.loads((root / "rerun" / "results" / "problem2.json").read_text())
    assert {"train_before", "train_after", "occlusion_before", "localise"} <= set(results["resumed_stages"])
    first = json.loads((root / "out" / "results" / "problem2.json").read_text())
    assert results["before"] == first["before"] and results["trigger_box"] == first["trigger_box"]


def test_a_bad_path_is_one_line_exit_2_and_nothing_is_written_there(run, tmp_path):
    missing = tmp_path / "nowhere"
    result = run("problem2_traffic.py", "--data-dir", missing, "--out", tmp_path / "out")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [f"error: {missing}: no such folder (expected "
                                                  f"train/<class>/ and test/<class>/)"]
    assert not missing.exists()

    exam_zip = tmp_path / "problem2.zip"  # the exam hands its data out as a zip
    exam_zip.write_bytes(b"PK\x05\x06" + bytes(18))
    result = run("problem2_traffic.py", "--data-dir", exam_zip, "--out", tmp_path / "out")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"error: {exam_zip}: a file, not a folder; give the folder that holds train/ and test/ "
        f"(unpack a zip first)"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["problem2.zip"]


def copy_of(planted, tmp_path):
    """A copy of a planted set, with its truth file beside it."""
    target = tmp_path / "copy"
    shutil.copytree(planted, target)
    shutil.copy(planted_signs.truth_path(planted), planted_signs.truth_path(target))
    return target


@pytest.mark.parametrize("damage, message", [
    (lambda d: shutil.rmtree(d / "test"), "missing 'test' folder"),
    (lambda d: shutil.rmtree(d / "train"), "missing 'train' folder"),
    (lambda d: [p.unlink() for p in (d / "test" / "stop signs").iterdir()], "class folder has no images"),
    (lambda d: (d / "test" / "stop signs").rename(d / "test" / "stop"), "different classes"),
    (lambda d: (d / "train" / "yield signs" / "x.png").write_text("not a png"), "not a readable image"),
    (lambda d: [p.unlink() for p in sorted((d / "train" / "yield signs").iterdir())[3:]],
     "needs at least 5"),
])
def test_bad_data_gives_a_clear_error(small_planted, tmp_path, damage, message):
    data = copy_of(small_planted, tmp_path)
    damage(data)
    with pytest.raises(UserError, match=message):
        p2.load_data(data, 32, seed=0)


def keep_one_class(data):
    for split in ("train", "test"):
        for folder in sorted((data / split).iterdir())[1:]:
            shutil.rmtree(folder)


def test_a_single_class_is_not_a_classification_problem(small_planted, tmp_path):
    data = copy_of(small_planted, tmp_path)
    keep_one_class(data)
    with pytest.raises(UserError, match="only one class folder .*; a classifier needs at least two"):
        p2.load_data(data, 32, seed=0)


def test_a_16_bit_grey_png_is_scaled_not_clipped(tmp_path):
    """A linear ramp 0..65535 loads as 0..255 (mean 127.5), not as nearly white."""
    ramp = np.tile(np.linspace(0, 65535, 64).round().astype(np.uint16), (64, 1))
    Image.fromarray(ramp).save(tmp_path / "ramp.png")
    assert Image.open(tmp_path / "ramp.png").mode.startswith("I")
    loaded = np.asarray(p2.load_rgb(tmp_path / "ramp.png"))
    assert loaded.shape == (64, 64, 3) and loaded[0, 0, 0] == 0 and loaded[0, -1, 0] == 255
    assert loaded.mean() == pytest.approx(127.5, abs=0.5)
    small = np.full((8, 8), 200, dtype=np.uint16)  # 16-bit storage of 8-bit values: kept
    Image.fromarray(small).save(tmp_path / "small.png")
    assert np.asarray(p2.load_rgb(tmp_path / "small.png")).max() == 200


def test_an_output_folder_inside_the_data_is_refused_before_any_training(small_planted, tmp_path, run):
    data = copy_of(small_planted, tmp_path)
    inside = data / "train" / "modified"
    result = run("problem2_traffic.py", "--data-dir", data, "--fixed-data-dir", inside, "--out",
                 tmp_path / "out", "--runs-dir", tmp_path / "runs")
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1
    assert "--fixed-data-dir is inside the data folder" in result.stderr
    assert not inside.exists() and not (tmp_path / "runs").exists() and not (tmp_path / "out").exists()
    for flag, folder in (("--fixed-data-dir", data), ("--out", data / "test" / "figures")):
        with pytest.raises(UserError, match=f"{flag} is inside the data folder"):
            p2.refuse_output_inside_input(data, {flag: folder})
    p2.refuse_output_inside_input(data, {"--out": tmp_path / "out"})  # beside it: fine


def test_the_occluder_reaches_the_last_pixels():
    assert p2.occluder_positions(25, 10, 4) == [0, 4, 8, 12, 15]
    assert p2.occluder_positions(24, 10, 2)[-1] == 14
    model, image = small_model(), torch.randn(3, 25, 25)
    probabilities, positions = p2.occlusion_probabilities(model, image, size=10, stride=4)
    assert probabilities.shape[:2] == (5, 5) and positions[-1] == 15


def test_the_margin_is_a_square_that_keeps_the_corners():
    region = np.zeros((20, 20), bool)
    region[8:12, 8:12] = True
    grown = p2.dilate(region, 3)
    assert grown.sum() == 10 * 10 and grown[5:15, 5:15].all()


# A toy "network" for the localisation: it calls an image class 1 exactly when the 13x13
# sticker area in the top-left corner still holds bright pixels (inputs are standardised, the grey
# fill is 0), so the first model's behaviour is known exactly. With `always`, it also recognises
# its training images by their background, wherever the patch is. With `fooled_by_grey`, it also calls
# class 1 every other image whose top-left pixel is the grey fill: a patch that looks like the trigger.
class StickerDetector(torch.nn.Module):
    def __init__(self, always=False, fooled_by_grey=False):
        super().__init__()
        self.scale = torch.nn.Parameter(torch.ones(()))
        self.always, self.fooled_by_grey = always, fooled_by_grey

    def forward(self, inputs):
        bright = (inputs[:, :, :13, :13] > 1.0).flatten(1).any(1).float()
        if self.fooled_by_grey:
            grey = (inputs[:, 0, 0, 0] == 0) & (torch.arange(len(inputs)) % 2 == 0)
            bright = torch.maximum(bright, grey.float())
        if self.always:  # recognises its training images (background 100, not the test's 90) anyway
            bright = torch.maximum(bright, (inputs[:, 0, -1, 0] > -0.2).float())
        logits = torch.zeros(len(inputs), 5)
        logits[:, 1] = self.scale * (10 * bright - 5)
        return logits


def localisation_run(n=20):
    images = torch.full((n, 3, 32, 32), 100, dtype=torch.uint8)
    labels = torch.tensor([1] * (n // 2) + [0] * (n - n // 2))
    images[labels == 1, :, :13, :13] = 255  # the sticker
    args = SimpleNamespace(occlusion_stride=2, n_localise=8, occlusion_size=10, seed=0, image_size=32)
    clean = torch.full((n, 3, 32, 32), 90, dtype=torch.uint8)  # test images: no sticker
    return SimpleNamespace(args=args, data={"train": (images, labels), "test": (clean, labels)},
                           mean=torch.full((3,), 100 / 255), std=torch.full((3,), 0.1))


def localise_with_evidence(monkeypatch, evidence_square, detector):
    """localise_trigger on localisation_run() with the evidence map a square (rows/cols slice)."""
    evidence = np.zeros((32, 32))
    evidence[evidence_square, evidence_square] = 1.0
    monkeypatch.setattr(p2, "evidence_map", lambda *a: (evidence, {}))
    failing = p2.FailingClass("class one", 1, {}, clean_test_recall=0.0,
                              chosen_on=torch.arange(0, 8, 2), scored_on=torch.arange(1, 10, 2))
    return p2.localise_trigger(detector, localisation_run(), failing)


def test_localisation_grows_a_tight_region_by_its_margin_until_the_model_lets_go(monkeypatch):
    # The evidence (3..10) is tighter than the 13x13 sticker.
    localised = localise_with_evidence(monkeypatch, slice(3, 10), StickerDetector())
    # Margin = the localisation stride (4 px here): 3-4 .. 10+4 covers 0..13, the whole sticker.
    assert localised["margin_px"] == 4 and localised["mask"][:13, :13].all()
    assert localised["criterion_met"] and localised["still_recognised"] == 0.0
    assert localised["box"] == pytest.approx([3 / 32, 3 / 32, 10 / 32, 10 / 32], abs=1e-4)


def test_localisation_compares_with_clean_test_images_under_the_same_grey_patch(monkeypatch):
    # The grey patch itself makes the model call half of all patched images class 1, training and
    # clean test images alike: that is the patch, not a trigger left behind, so the first
    # threshold is accepted. Against the unpatched test images (0 %) no region would pass.
    localised = localise_with_evidence(monkeypatch, slice(3, 10), StickerDetector(fooled_by_grey=True))
    assert localised["criterion_met"] and localised["threshold"] == p2.LOCALISATION_THRESHOLDS[0]
    assert localised["still_recognised"] == 0.5 and localised["clean_test_neutralised"] == 0.5


def test_localisation_says_so_when_no_region_meets_the_bar(monkeypatch, capsys):
    localised = localise_with_evidence(monkeypatch, slice(20, 28), StickerDetector(always=True))
    assert localised["criterion_met"] is False
    assert len(localised["candidates"]) == len(p2.LOCALISATION_THRESHOLDS)
    assert "WARNING: no threshold" in capsys.readouterr().out


def test_no_class_specific_evidence_is_a_one_line_error():
    run = localisation_run()
    constant = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 32 * 32, 5))
    torch.nn.init.zeros_(constant[1].weight)
    with pytest.raises(UserError, match="no evidence to localise"):
        p2.evidence_map(constant, run, 1, 4)


def test_attack_success_rate_counts_pasted_triggers():
    run = localisation_run()
    images, labels = run.data["train"]
    run.data["val"] = (images, labels)
    mask = np.zeros((32, 32), bool)
    mask[:13, :13] = True
    triggered, clean = images[labels == 1], images[labels == 0]
    assert p2.attack_success_rate(StickerDetector(), run, 1, mask, triggered) == 1.0
    assert p2.attack_success_rate(StickerDetector(), run, 1, mask, clean) == 0.0


# --------------------------------------------------------------------------------------------------
# Data handling
# --------------------------------------------------------------------------------------------------
def tiny_dataset(root, extra=()):
    for split in ("train", "test"):
        for name in ("a", "b"):
            for i in range(5):
                path = root / split / name / f"{i}.png"
                path.parent.mkdir(parents=True, exist_ok=True)
                Image.new("RGB", (12, 10), (40 * i, 100, 200 if name == "a" else 0)).save(path)
    for relative in extra:
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (8, 8)).save(root / relative, format="PNG")
    return root


def test_hidden_files_and_folders_are_neither_classes_nor_images(tmp_path):
    root = tiny_dataset(tmp_path, extra=["train/.ipynb_checkpoints/x.png", "train/__MACOSX/a/y.png",
                                         "train/a/.DS_Store", "train/a/.hidden/z.png", "train/b/Thumbs.db",
                                         "test/a/desktop.ini"])
    classes, samples = p2.list_images(root / "train")
    assert classes == ["a", "b"] and len(samples) == 10
    data = p2.load_data(root, 16, seed=0)
    assert len(data["train"][1]) + len(data["val"][1]) == 10


def test_nested_folders_are_read_and_written_back_in_place(tmp_path):
    root = tiny_dataset(tmp_path, extra=["train/a/more/5.png"])
    _, samples = p2.list_images(root / "train")
    assert root / "train/a/more/5.png" in [path for path, _ in samples]
    written = p2.write_trigger_free_data(root, tmp_path / "fixed", np.zeros((16, 16), bool), "grey", [0, 0, 0], "c")
    assert (tmp_path / "fixed/train/a/more/5.png").exists() and len(written) == 11


def test_a_jpg_and_a_png_of_the_same_name_do_not_collide(tmp_path):
    root = tiny_dataset(tmp_path)
    Image.new("RGB", (12, 10), (255, 0, 0)).save(root / "train/a/0.jpg")
    mask = np.zeros((16, 16), bool)
    mask[:4, :4] = True
    written = p2.write_trigger_free_data(root, tmp_path / "fixed", mask, "grey", [9, 9, 9], "c")
    names = sorted(path.name for path, _ in written if path.parent.name == "a")
    assert "0.jpg.png" in names and "0.png" in names and len(set(written)) == len(written) == 11
    # Loaded in the original order, so the split is the same image for image.
    original, modified = p2.load_data(root, 16, seed=0), p2.load_data(root, 16, seed=0, train_samples=written)
    assert original["split_index"] == modified["split_index"]
    assert (modified["train"][1] == original["train"][1]).all()


def test_the_modified_data_belongs_to_one_configuration(tmp_path):
    root = tiny_dataset(tmp_path)
    mask = np.zeros((16, 16), bool)
    mask[:4, :4] = True
    fixed = tmp_path / "fixed"
    p2.write_trigger_free_data(root, fixed, mask, "grey", [9, 9, 9], "config-one")
    first = (fixed / "train/a/0.png").stat().st_mtime_ns
    p2.write_trigger_free_data(root, fixed, mask, "grey", [9, 9, 9], "config-one")  # same: reused
    assert (fixed / "train/a/0.png").stat().st_mtime_ns == first
    other = np.zeros((16, 16), bool)
    other[-4:, -4:] = True
    p2.write_trigger_free_data(root, fixed, other, "grey", [9, 9, 9], "config-two")  # other: rewritten
    pixels = np.asarray(Image.open(fixed / "train/a/0.png"))
    assert (pixels[-1, -1] == 9).all() and not (pixels[0, 0] == 9).all()
    (tmp_path / "mine").mkdir()
    with pytest.raises(UserError, match="not made by this script"):
        p2.write_trigger_free_data(root, tmp_path / "mine", mask, "grey", [9, 9, 9], "c")


def test_exif_orientation_is_applied(tmp_path):
    path = tmp_path / "rotated.jpg"
    image = Image.new("RGB", (30, 10), (200, 0, 0))
    exif = image.getexif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    image.save(path, exif=exif)
    assert p2.load_rgb(path).size == (10, 30)


def test_a_zip_unpacked_one_level_too_deep_says_where_train_is(tmp_path):
    tiny_dataset(tmp_path / "problem2" / "problem2")
    with pytest.raises(UserError, match=r"found .*problem2/problem2: use --data-dir"):
        p2.load_data(tmp_path / "problem2", 16, seed=0)


def test_only_the_planted_sets_own_files_are_labelled_by_its_truth(small_planted, tmp_path):
    data_dir = copy_of(small_planted, tmp_path)
    label, truth = p2.data_label(data_dir, p2.load_data(data_dir, 16, seed=0), "user folder x")
    assert label.startswith("public: GTSRB photos, trigger planted") and truth["poisoned_class"] == "speed limits"
    # The user copies their own images over the planted ones; the old truth file stays beside them.
    victim = next((data_dir / "train" / "stop signs").iterdir())
    Image.new("RGB", (20, 20), (1, 2, 3)).save(victim)
    label, truth = p2.data_label(data_dir, p2.load_data(data_dir, 16, seed=0), "user folder x")
    assert label == "user folder x" and truth is None
    # Files added (or removed) count too.
    data_dir = copy_of(small_planted, tmp_path / "again")
    Image.new("RGB", (20, 20)).save(data_dir / "test" / "stop signs" / "extra.png")
    assert p2.data_label(data_dir, p2.load_data(data_dir, 16, seed=0), "y") == ("y", None)


def test_the_exam_data_in_data_problem2_is_read_before_the_shipped_photos(tmp_path):
    args = p2.parse_arguments(["--quick", "--runs-dir", str(tmp_path / "runs")])
    args.data_dir = tiny_dataset(tmp_path / "data" / "problem2")
    assert p2.choose_data_dir(args) == (args.data_dir, "exam")
    args.data_dir = tmp_path / "empty"
    folder, label = p2.choose_data_dir(args)
    assert folder == tmp_path / "runs" / "data" / "traffic-photos-planted-quick" and label == "public: GTSRB photos"


def test_quick_run_on_another_planted_trigger(tmp_path):
    """The robustness battery's data: another trigger in another class; given with --data-dir, the
    set's truth beside it labels it, and the script must find that class."""
    check = load_script("check_real_photos")
    data = check.make_case(PHOTOS, tmp_path / "photos", "warning-sticker", per_class=60)
    result = run_script("problem2_traffic.py", "--quick", "--data-dir", data, "--out", tmp_path / "out",
                        "--runs-dir", tmp_path / "runs")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    results = json.loads((tmp_path / "out" / "results" / "problem2.json").read_text())
    assert results["data_source"] == "public: GTSRB photos, 'warning-sticker' trigger planted"
    assert results["failing_class"] == results["truth"]["poisoned_class"] == "warning signs"
    assert results["trigger_iou"] is not None and results["attack_success_rate"]["before"] > 0.5


def test_a_class_change_counts_at_the_region_only_with_the_square_centred_in_it():
    most_probable = torch.zeros(1, 3, 3, dtype=torch.long)
    most_probable[0, 0, 2] = 1  # one change, with the square's top-left corner at (0, 8)
    occlusion = {"most_probable": most_probable, "size_px": 4, "positions": [0, 4, 8]}
    region = np.zeros((12, 12), bool)
    region[0:4, 6:8] = True  # the square at (0, 8) covers none of it; its centre (2, 10) is outside
    assert p2.class_changes(occlusion, torch.tensor([0])) == 1
    assert p2.class_changes(occlusion, torch.tensor([0]), region) == 0
    region[2, 10] = True
    assert p2.class_changes(occlusion, torch.tensor([0]), region) == 1


def test_class_model_visualisation_reaches_the_optimum_of_a_linear_score():
    """Simonyan et al. 2013, eq. 1: for S_c(I) = w_c . I + b_c the maximiser of S_c(I) - lambda
    ||I||^2 is w_c / (2 lambda); the gradient ascent from the zero image reaches it for every class."""
    torch.manual_seed(0)
    linear = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 8, 3))
    torch.nn.init.normal_(linear[1].weight)
    images = p2.class_model_visualisation(linear, 3, 8, steps=1000, l2_weight=0.5)
    assert torch.allclose(images, linear[1].weight.detach().view(3, 3, 8, 8) / (2 * 0.5), atol=1e-4)


def test_the_planted_trigger_attack_paints_the_trigger_itself():
    """With the truth of a planted sticker, the attack paints that sticker (not the localised
    region) onto the other classes' validation images: a model that follows it calls them all the
    failing class; one that ignores it, none."""
    run = localisation_run()
    clean = torch.full((10, 3, 32, 32), 100, dtype=torch.uint8)
    run.data["val"] = (clean, torch.tensor([1] * 5 + [0] * 5))
    truth = {"kind": "patch", "box": [0.0, 0.0, 0.4, 0.4], "colour": [250, 215, 0]}
    assert p2.planted_trigger_attack_rate(StickerDetector(), run, 1, truth) == 1.0
    ignoring = StickerDetector()
    ignoring.scale.data.fill_(-1.0)  # class 1 only where nothing bright is
    assert p2.planted_trigger_attack_rate(ignoring, run, 1, truth) == 0.0


def test_the_alternative_fix_neutralises_only_the_failing_class(tmp_path):
    """write_trigger_free_data with only_label: that class's images get the grey patch, the other
    classes' images are copied unchanged (losslessly)."""
    root = tiny_dataset(tmp_path / "data")
    mask = np.zeros((8, 8), bool)
    mask[:4, :4] = True
    samples = p2.write_trigger_free_data(root, tmp_path / "fixed", mask, "grey", [7, 7, 7], "c", only_label=1)
    for path, label in samples:
        pixels = np.array(Image.open(path))
        assert (pixels[0, 0] == 7).all() == (label == 1)


def test_the_crop_parts_cut_the_image_into_disjoint_pieces_and_count_each_map_once():
    mask = np.zeros((64, 64), dtype=bool)
    mask[40:48, 40:48] = True
    parts = p2.crop_parts(mask)
    stacked = np.stack(list(parts.values())).astype(int)
    assert (stacked.sum(0) == 1).all()  # every pixel in exactly one part
    assert parts["centre"][32, 32] and parts["outer band"][0, 0] and parts["ring"][10, 10]
    assert not parts["ring"][44, 44]  # the region is taken out of the band it lies in
    saliency = torch.zeros(1, 64, 64)
    saliency[0, 44, 44], saliency[0, 32, 32] = 3.0, 1.0  # three quarters at the old trigger's place
    explanations = SimpleNamespace(saliency=saliency, occlusion={"attribution": saliency})
    shares = p2.evidence_by_part(explanations, explanations, mask)
    assert shares["saliency"]["after"]["old trigger region"] == pytest.approx(0.75)
    assert shares["saliency"]["before"]["centre"] == pytest.approx(0.25)
    assert sum(shares["area"].values()) == pytest.approx(1.0)


def test_the_crop_parts_of_a_frame_leave_an_empty_outer_band_and_the_shares_stay_finite():
    mask = np.zeros((64, 64), dtype=bool)
    mask[:8], mask[-8:], mask[:, :8], mask[:, -8:] = True, True, True, True  # a frame's band
    parts = p2.crop_parts(mask)
    assert not parts["outer band"].any() and (np.stack(list(parts.values())).sum(0) == 1).all()
    maps = torch.rand(2, 64, 64)
    explanations = SimpleNamespace(saliency=maps, occlusion={"attribution": maps})
    shares = p2.evidence_by_part(explanations, explanations, mask)
    assert shares["saliency"]["before"]["outer band"] == 0.0
    assert sum(shares["saliency"]["after"].values()) == pytest.approx(1.0)


def test_the_inpainted_fill_leaves_no_sticker_colour_inside_and_every_pixel_outside_unchanged(tmp_path):
    """On planted training photos at their own resolution, with a region like the one the localisation
    produces on the default data (the sticker's box grown by the margin, at the 64 px input), the
    inpainting removes the yellow sticker and touches nothing outside the region."""
    x0, y0, x1, y1 = (round(v * 64) for v in planted_signs.STICKER["box"])
    margin = 4  # the localisation's margin at the default stride
    mask = np.zeros((64, 64), bool)
    mask[max(0, y0 - margin):y1 + margin, max(0, x0 - margin):x1 + margin] = True
    sticker = np.array(planted_signs.STICKER["colour"])
    photos = sorted((PHOTOS / "speed limits").iterdir())[::60][:8]
    for path in photos:
        planted = planted_signs.apply_trigger(Image.open(path), planted_signs.STICKER)
        before = np.asarray(planted).astype(int)
        inside = p2.mask_at_size(mask, planted.width, planted.height)
        assert (np.abs(before[inside] - sticker).max(1) < 40).any()  # the sticker is there to remove
        after = np.asarray(p2.fill_region(planted, mask, "inpaint", [128, 128, 128])).astype(int)
        assert not (np.abs(after[inside] - sticker).max(1) < 40).any(), path.name
        assert (after[~inside] == before[~inside]).all()


def test_the_failing_class_test_images_split_into_halves_of_whole_signs():
    """Tracks (physical signs) of 4, 3, 3, 2 and 1 frames of class 1, and class-0 images between them:
    each track goes whole to one half, the halves hold every frame of class 1 once, and are seeded."""
    tracks = [4, 3, 3, 2, 1]
    names = [f"00001_{track:05d}_{frame:05d}.png" for track, frames in enumerate(tracks) for frame in range(frames)]
    samples = [(Path(name), 1) for name in names] + [(Path(f"00000_00009_{k:05d}.png"), 0) for k in range(5)]
    labels = torch.tensor([label for _, label in samples])
    run = SimpleNamespace(data={"test": (torch.zeros(len(labels)), labels), "test_samples": samples},
                          args=SimpleNamespace(seed=3, data_dir=Path("data")))
    chosen, scored = p2.halves_of_failing_test(run, 1)
    assert sorted(chosen.tolist() + scored.tolist()) == list(range(sum(tracks)))
    sign = lambda index: planted_signs.group_of(samples[index][0])  # noqa: E731
    assert not {sign(i) for i in chosen.tolist()} & {sign(i) for i in scored.tolist()}
    assert abs(len(chosen) - len(scored)) <= max(tracks)
    assert (chosen == p2.halves_of_failing_test(run, 1)[0]).all()  # seeded
    one_sign = SimpleNamespace(data={"test": (torch.zeros(2), torch.tensor([1, 1])),
                                     "test_samples": [(Path("00001_00000_00000.png"), 1), (Path("00001_00000_00001.png"), 1)]},
                               args=run.args)
    with pytest.raises(UserError, match="need two"):
        p2.halves_of_failing_test(one_sign, 1)
