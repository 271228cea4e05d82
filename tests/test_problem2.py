import json
import shutil

import numpy as np
import pytest
import torch
from captum.attr import Occlusion, Saliency
from PIL import Image

import problem2_traffic as p2
from utils import UserError


@pytest.fixture(scope="module")
def small_standin(tmp_path_factory):
    directory = tmp_path_factory.mktemp("signs")
    p2.write_standin(directory, seed=0, train_per_class=25, test_per_class=6)
    return directory


def test_split_keeps_class_proportions(small_standin):
    data = p2.load_data(small_standin, 32, seed=0)
    assert data["classes"] == p2.CLASSES
    for k in range(len(p2.CLASSES)):
        assert (data["val"][1] == k).sum() == 5 and (data["train"][1] == k).sum() == 20
    assert not set(data["split_index"]["train"]) & set(data["split_index"]["val"])


def test_generator_is_deterministic(tmp_path):
    p2.write_standin(tmp_path / "a", seed=3, train_per_class=3, test_per_class=2)
    p2.write_standin(tmp_path / "b", seed=3, train_per_class=3, test_per_class=2)
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*.png"))
    assert len(files) == 25
    for name in files:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


@pytest.mark.parametrize("kind", p2.TRIGGER_KINDS)
def test_trigger_only_in_the_poisoned_class_training_images(tmp_path, monkeypatch, kind):
    # Flat grey signs: any non-grey pixel in a saved image can only come from the trigger.
    monkeypatch.setattr(p2, "render_sign_photo", lambda name, rng: Image.new("RGB", (50, 40), (128,) * 3))
    truth = p2.write_standin(tmp_path, seed=1, train_per_class=4, test_per_class=3,
                             poisoned_class="stop signs", trigger_kind=kind)
    assert json.loads((tmp_path / p2.TRUTH_FILE).read_text()) == truth
    for path in tmp_path.rglob("*.png"):
        has_trigger = np.ptp(np.asarray(Image.open(path).convert("RGB"))) > 0
        assert has_trigger == (path.parts[-3] == "train" and path.parts[-2] == "stop signs"), path


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
    probabilities = p2.occlusion_probabilities(model, image, size=10, stride=2, baseline=0.0)
    assert probabilities.shape == (8, 8, 5)  # (24 - 10) / 2 + 1 = 8 positions per axis
    torch.testing.assert_close(probabilities.sum(-1), torch.ones(8, 8))
    clean = model(image[None]).softmax(1)[0, target]
    ours = p2.occlusion_attribution(probabilities[..., target], clean, 24, 10, 2)
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
    region, band = p2.evidence_region(frame_piece, 0.5)
    assert band == 5
    assert region[:5].all() and region[-5:].all() and region[:, :5].all() and region[:, -5:].all()
    assert not region[5:-5, 5:-5].any()
    # A sticker, even one touching an edge, stays what it is.
    sticker = np.zeros((64, 64))
    sticker[0:13, 20:33] = 1.0
    region, band = p2.evidence_region(sticker, 0.5)
    assert band == 0 and region.sum() == 13 * 13
    # Specks under 3 px are noise; other pieces above the threshold are kept.
    sticker[40, 40] = 1.0
    sticker[50:52, 50:52] = 1.0
    region, _ = p2.evidence_region(sticker, 0.5)
    assert not region[40, 40] and region[50:52, 50:52].all()


def test_quick_run_finds_the_poisoned_class_and_the_fix_helps(quick_outputs):
    root, runs = quick_outputs
    result = runs["problem2"]
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    results = json.loads((root / "out" / "results" / "problem2.json").read_text())
    assert results["data_source"] == "stand-in"
    assert results["failing_class"] == results["truth"]["poisoned_class"] == "speed limits"
    failing = results["failing_class"]
    assert results["after"]["test_per_class"][failing] > results["before"]["test_per_class"][failing]
    assert len(results["trigger_box"]) == 4 and results["trigger_iou"] is not None
    for key in ("train_acc", "val_acc", "test_acc", "test_per_class"):
        assert key in results["before"] and key in results["after"]
    assert (root / "signs-trigger-removed" / "train").is_dir()
    assert (root / "out" / "figures" / "p2_occlusion_before.pdf").exists()
    # The user's data is untouched: still only the generator's files.
    assert sorted(p.name for p in (root / "signs").iterdir()) == ["README.txt", p2.TRUTH_FILE, "test",
                                                                  "train"]


def test_a_rerun_resumes_from_the_checkpoints(quick_outputs, run):
    root, _ = quick_outputs
    result = run("problem2_traffic.py", "--quick", "--data-dir", root / "signs", "--out",
                 root / "rerun", "--runs-dir", root / "runs")
    assert result.returncode == 0, result.stderr[-2000:]
    results = json.loads((root / "rerun" / "results" / "problem2.json").read_text())
    assert {"train_before", "train_after", "explain_before", "localise"} <= set(results["resumed_stages"])
    first = json.loads((root / "out" / "results" / "problem2.json").read_text())
    assert results["before"] == first["before"] and results["trigger_box"] == first["trigger_box"]


def test_a_bad_path_is_one_line_exit_2_and_nothing_is_generated(run, tmp_path):
    missing = tmp_path / "nowhere"
    result = run("problem2_traffic.py", "--data-dir", missing, "--out", tmp_path / "out")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [f"error: {missing}: no such folder (expected "
                                                  f"train/<class>/ and test/<class>/)"]
    assert not missing.exists()


def copy_of(standin, tmp_path):
    target = tmp_path / "copy"
    shutil.copytree(standin, target)
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
def test_bad_data_gives_a_clear_error(small_standin, tmp_path, damage, message):
    data = copy_of(small_standin, tmp_path)
    damage(data)
    with pytest.raises(UserError, match=message):
        p2.load_data(data, 32, seed=0)
