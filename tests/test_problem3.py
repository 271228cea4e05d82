import copy
import json
import math
import struct
from types import SimpleNamespace

import numpy as np
import pytest
import scipy.io
import torch

import problem3_adda as p3
from utils import SHIPPED_DATA, UserError


def test_layer_output_sizes_follow_the_exam_figure():
    encoder = p3.WideLeNetEncoder((18, 48), (360, 252))
    shapes = [shape for _, shape in p3.layer_shapes(encoder, torch.nn.Linear(252, 10))]
    assert shapes == [[3, 32, 32], [18, 28, 28], [18, 28, 28], [18, 14, 14], [48, 10, 10],
                      [48, 10, 10], [48, 5, 5], [1200], [360], [360], [252], [252], [10]]
    wider = p3.WideLeNetEncoder((24, 64), (480, 336))
    assert p3.layer_shapes(wider, torch.nn.Linear(336, 10))[6][1] == [64, 5, 5]


def test_svhn_label_10_is_the_digit_0():
    assert p3.remap_svhn_labels(np.array([[10], [1], [9], [10]])).tolist() == [0, 1, 9, 0]


def write_svhn(path, n=7, labels=None, images=None):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (32, 32, 3, n), dtype=np.uint8) if images is None else images
    labels = np.arange(n).reshape(-1, 1) % 10 + 1 if labels is None else labels
    scipy.io.savemat(path, {"X": images, "y": labels})
    return images, labels


def test_svhn_loader_round_trip(tmp_path):
    images, labels = write_svhn(tmp_path / "train_32x32.mat", n=12)
    loaded, loaded_labels = p3.load_svhn_mat(tmp_path / "train_32x32.mat")
    assert loaded.shape == (12, 3, 32, 32) and loaded.dtype == torch.uint8
    assert np.array_equal(loaded[5].permute(1, 2, 0).numpy(), images[:, :, :, 5])
    assert loaded_labels.tolist() == [1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1, 2]


def test_shipped_mnist_loads_with_its_known_counts():
    splits, files = p3.load_mnist(SHIPPED_DATA / "mnist")
    assert len(files) == 4
    assert splits["train"][0].shape == (60000, 28, 28) and splits["test"][0].shape == (10000, 28, 28)
    assert np.bincount(splits["test"][1].numpy()).tolist() == [980, 1135, 1032, 1010, 982, 892, 958,
                                                               1028, 974, 1009]
    assert abs(splits["train"][0].float().mean().item() / 255 - 0.1307) < 1e-3
    assert p3.mnist_to_network(splits["test"][0][:4]).shape == (4, 1, 32, 32)


@pytest.mark.parametrize("kind", ["npz", "mat"])
def test_mnist_npz_and_mat(tmp_path, kind):
    rng = np.random.default_rng(0)
    arrays = {"x_train": rng.integers(0, 256, (5, 28, 28), dtype=np.uint8), "y_train": np.arange(5),
              "x_test": rng.integers(0, 256, (3, 28, 28), dtype=np.uint8), "y_test": np.arange(3)}
    if kind == "npz":
        np.savez(tmp_path / "mnist.npz", **arrays)
    else:
        scipy.io.savemat(tmp_path / "mnist.mat", arrays)
    splits, _ = p3.load_mnist(tmp_path)
    assert np.array_equal(splits["train"][0].numpy(), arrays["x_train"])
    assert splits["test"][1].tolist() == [0, 1, 2]


def test_shipped_svhn_subset_loads_with_its_known_counts():
    svhn = {split: p3.load_svhn_mat(SHIPPED_DATA / "svhn-subset" / name) for split, name in p3.SVHN_FILES.items()}
    assert len(svhn["train"][1]) == 4000 and len(svhn["test"][1]) == 1000
    assert np.bincount(svhn["train"][1].numpy()).tolist() == [271, 790, 620, 449, 397, 360, 305, 301, 253, 254]


def test_data_comes_from_the_exam_folder_else_the_shipped_data_and_a_given_folder_as_given(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # data/problem3 is relative to where the script runs
    _, _, source, files = p3.prepare_data(p3.parse_arguments([]))
    assert source == {"svhn": "public: SVHN subset", "mnist": "public: MNIST"}
    assert files[0] == SHIPPED_DATA / "svhn-subset" / "train_32x32.mat"
    exam = tmp_path / "data" / "problem3"
    exam.mkdir(parents=True)
    write_svhn(exam / "train_32x32.mat")
    write_svhn(exam / "test_32x32.mat")
    args = p3.parse_arguments([])
    svhn, _, source, _ = p3.prepare_data(args)
    assert source == {"svhn": "exam", "mnist": "public: MNIST"} and len(svhn["train"][1]) == 7
    assert args.svhn_dir == p3.EXAM_DATA and args.mnist_dir == SHIPPED_DATA / "mnist"  # recorded as read
    given = tmp_path / "mine"
    given.mkdir()
    write_mnist_idx(given)
    _, mnist, source, _ = p3.prepare_data(p3.parse_arguments(["--mnist-dir", str(given)]))
    assert source["mnist"] == f"user folder {given}" and len(mnist["train"][1]) == 2
    _, _, source, _ = p3.prepare_data(p3.parse_arguments(["--svhn-dir", str(SHIPPED_DATA / "svhn-subset")]))
    assert source["svhn"] == "public: SVHN subset"  # the shipped folder, named: still the shipped data


def test_a_partial_mnist_in_the_exam_folder_is_an_error_not_replaced_by_the_shipped_one(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "data" / "problem3"
    folder.mkdir(parents=True)
    write_mnist_idx(folder)
    (folder / "train-images-idx3-ubyte").unlink()
    (folder / "train-labels-idx1-ubyte").unlink()
    before = {path.name: path.read_bytes() for path in folder.iterdir()}
    args = p3.parse_arguments(["--svhn-dir", str(tmp_path / "svhn")])
    (tmp_path / "svhn").mkdir()
    write_svhn(tmp_path / "svhn" / "train_32x32.mat")
    write_svhn(tmp_path / "svhn" / "test_32x32.mat")
    with pytest.raises(UserError, match="train-images-idx3-ubyte: missing"):
        p3.prepare_data(args)
    assert {path.name: path.read_bytes() for path in folder.iterdir()} == before


def test_torchvision_mnist_raw_layout_is_found(tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    write_mnist_idx(raw)
    splits, files = p3.load_mnist(tmp_path)
    assert splits["train"][0].shape == (2, 28, 28) and files[0].parent == raw


def write_matlab_v73(path):
    """A v7.3 .mat is HDF5 behind MATLAB's 128-byte header with version 0x0200."""
    header = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Mon Jan  1 00:00:00 2024 HDF5 schema"
    path.write_bytes(header.ljust(116, b" ") + b"\0" * 8 + b"\x00\x02IM" + b"\x89HDF\r\n\x1a\n" + b"\0" * 100)


def test_matlab_v73_svhn_is_refused_with_how_to_convert(tmp_path):
    write_matlab_v73(tmp_path / "train_32x32.mat")
    with pytest.raises(UserError, match=r"v7\.3 \(HDF5\).*'X', 'y', '-v7'") as error:
        p3.load_svhn_mat(tmp_path / "train_32x32.mat")
    assert "train_32x32.mat" in str(error.value)


def test_matlab_v73_mnist_is_refused_with_how_to_convert(tmp_path):
    write_matlab_v73(tmp_path / "mnist.mat")
    with pytest.raises(UserError, match=r"mnist\.mat: a MATLAB v7\.3 \(HDF5\).*'y_test', '-v7'"):
        p3.load_mnist(tmp_path)


def test_normalise_contrast_is_per_image_grey_standardised_and_float_only_per_batch():
    rng = np.random.default_rng(0)
    colour = torch.from_numpy(rng.integers(0, 256, (4, 3, 32, 32), dtype=np.uint8))
    inputs = p3.normalise_contrast(colour)
    assert inputs.shape == (4, 3, 32, 32) and inputs.dtype == torch.float32
    assert torch.equal(inputs[:, 0], inputs[:, 2])  # grey: three equal channels
    assert torch.allclose(inputs.mean((1, 2, 3)), torch.zeros(4), atol=1e-5)
    grey = 0.299 * colour[:, 0].float() + 0.587 * colour[:, 1].float() + 0.114 * colour[:, 2].float()
    spread = grey.std((1, 2))
    assert torch.allclose(inputs[:, 0].std((1, 2)), spread / (spread + 1), atol=1e-4)  # ~1 for real contrast
    # brightness and contrast of an image do not change its input (the point of the normalisation)
    brighter = (colour.float() * 0.5 + 60).round().to(torch.uint8)
    brighter_inputs = p3.normalise_contrast(brighter)
    for a, b in zip(brighter_inputs, inputs):
        assert np.corrcoef(a.flatten().numpy(), b.flatten().numpy())[0, 1] > 0.999
    one_channel = torch.from_numpy(rng.integers(0, 256, (2, 1, 32, 32), dtype=np.uint8))
    assert p3.normalise_contrast(one_channel).shape == (2, 3, 32, 32)
    flat = torch.full((1, 1, 32, 32), 200, dtype=torch.uint8)
    assert torch.equal(p3.normalise_contrast(flat), torch.zeros(1, 3, 32, 32))


def test_monitoring_reads_images_spread_over_the_whole_mnist_test_set():
    """MNIST's test set is ordered (its first half the cleaner): the curves read both halves alike."""
    indices = p3.spread_subset(10000, 2000)
    assert len(indices) == len(set(indices.tolist())) == 2000
    assert indices[0] == 0 and indices[-1] == 9999 and int((indices >= 5000).sum()) == 1000
    assert p3.spread_subset(3000, 5000).tolist() == list(range(3000))


def test_discriminator_is_500_500_and_an_output():
    layers = list(p3.make_discriminator(252, dropout=p3.parse_arguments([]).discriminator_dropout))
    linear = [(layer.in_features, layer.out_features) for layer in layers
              if isinstance(layer, torch.nn.Linear)]
    assert linear == [(252, 500), (500, 500), (500, 1)]
    assert [type(layer).__name__ for layer in layers] == ["Linear", "ReLU", "Linear", "ReLU", "Linear"]
    with_dropout = [type(layer).__name__ for layer in p3.make_discriminator(252, dropout=0.5)]
    assert with_dropout == ["Linear", "ReLU", "Dropout", "Linear", "ReLU", "Dropout", "Linear"]


def one_step(make_step):
    """One step from a fresh target encoder; which parameters changed, the losses, the step."""
    torch.manual_seed(0)
    target_encoder = p3.WideLeNetEncoder((6, 16), (120, 84))
    step = make_step(target_encoder, torch.optim.Adam(target_encoder.parameters(), 1e-3),
                     lambda i: 1.0, p3.parse_arguments([]))
    modules = {"target": target_encoder, "discriminator": getattr(step, "discriminator", torch.nn.Identity())}
    before = {name: [p.clone() for p in module.parameters()] for name, module in modules.items()}
    losses = step(torch.randn(8, 84), torch.randn(8, 3, 32, 32))  # source features, target images
    changed = {name: any(not torch.equal(a, b) for a, b in zip(before[name], module.parameters()))
               for name, module in modules.items()}
    return changed, losses


def test_one_adda_step_changes_the_target_encoder_and_the_discriminator():
    changed, losses = one_step(p3.AdversarialStep)
    assert changed == {"target": True, "discriminator": True}
    assert set(losses) == {"discriminator_loss", "target_loss", "discriminator_acc"}


def test_one_mse_step_changes_the_target_encoder():
    changed, losses = one_step(p3.MseStep)
    assert changed == {"target": True, "discriminator": False} and set(losses) == {"mse_loss"}


def test_the_target_encoder_is_trained_with_inverted_labels():
    """ADDA eq. 9: M_t minimises -log D(M_t(x_t)), i.e. cross-entropy with the label "source" (1) on
    target features, not the discriminator's own label (0) with the sign flipped."""
    torch.manual_seed(0)
    target_encoder = p3.WideLeNetEncoder((6, 16), (120, 84))
    before = copy.deepcopy(target_encoder)
    step = p3.AdversarialStep(target_encoder, torch.optim.Adam(target_encoder.parameters(), 1e-3),
                              lambda i: 1.0, p3.parse_arguments(["--discriminator-dropout", "0"]))
    target_images = torch.randn(16, 3, 32, 32)
    losses = step(torch.randn(16, 84), target_images)
    with torch.no_grad():  # D after its own update is the D the encoder's loss was computed with
        logits = step.discriminator(before(target_images)).squeeze(1)
    inverted = torch.nn.functional.softplus(-logits).mean().item()   # -log sigmoid(logit)
    minimax = -torch.nn.functional.softplus(logits).mean().item()    # log(1 - D), the saturating form
    assert losses["target_loss"] == pytest.approx(inverted, rel=1e-4)
    assert losses["target_loss"] != pytest.approx(minimax, rel=1e-2)


def test_quick_run_adda_holds_and_mse_collapses(quick_outputs):
    """A --quick run is too short for ADDA to pull ahead (its first few hundred iterations dip, see
    the full runs' curves): it must not collapse, while the MSE variant must. Whether ADDA beats
    source-only is a full run's result, stated in the report from its JSON."""
    root, runs = quick_outputs
    result = runs["problem3"]
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    results = json.loads((root / "out" / "results" / "problem3.json").read_text())
    assert results["data_source"] == {"svhn": "public: SVHN subset", "mnist": "public: MNIST"}
    assert results["source"]["svhn_test_acc"] > 0.5
    assert results["adda"]["mean"] >= results["source_only_mnist_acc"] - 0.15
    assert results["adda"]["mean"] >= results["mse"]["mean"] + 0.3
    before = results["source_feature_statistics"]["target_total_variance"]
    assert results["mse"]["seeds"] == [0]  # --quick: the MSE variant on the first seed only
    assert results["mse"]["feature_statistics"]["0"]["target_total_variance"] < 0.1 * before
    for seed in ("0", "1"):
        assert results["adda"]["feature_statistics"][seed]["target_total_variance"] > 0.1 * before
    for method in ("source_only", "adda"):
        assert len(results[method]["per_seed"]) == 2
    assert len(results["adda"]["domain_classifier_acc"]["after"]) == 2
    # whole-pipeline seeds: each seed trains its own source model
    assert results["source"]["svhn_test_per_seed"][0] != results["source"]["svhn_test_per_seed"][1]
    assert results["mse"]["settings"]["iterations"] == results["adda"]["settings"]["iterations"]
    assert results["mse"]["settings"]["betas"] == results["adda"]["settings"]["betas"]
    for key in ("svhn_train_acc", "svhn_held_out_acc", "svhn_test_acc"):
        assert key in results["source"]
    assert (root / "out" / "figures" / "p3_tsne.pdf").exists()


def test_the_hand_in_alone_runs_all_three_problems(quick_outputs):
    """The fixture ran every script from the unzipped hand-in: doc/ and src/ only, nothing else."""
    root, runs = quick_outputs
    assert all(result.returncode == 0 for result in runs.values())
    hand_in = root / "hand-in"
    assert not (hand_in / "Makefile").exists() and not (hand_in / "tests").exists()
    assert (hand_in / "src" / "README.md").exists() and (hand_in / "src" / "requirements.txt").exists()
    assert {p.name for p in hand_in.iterdir()} == {"doc", "src", "datasets", "runs"}  # datasets: linked in


def test_a_missing_svhn_file_is_one_line_exit_2(run, tmp_path):
    result = run("problem3_adda.py", "--svhn-dir", tmp_path, "--out", tmp_path / "out")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"error: {tmp_path / 'train_32x32.mat'}: missing (expected SVHN's train_32x32.mat and "
        f"test_32x32.mat in {tmp_path})"]
    assert list(tmp_path.iterdir()) == []  # nothing generated into a path the user gave


def test_a_file_given_as_a_data_folder_is_named(tmp_path):
    svhn_file = tmp_path / "train_32x32.mat"
    svhn_file.write_bytes(b"MATLAB")
    for flag in ("svhn_dir", "mnist_dir"):
        args = p3.parse_arguments([f"--{flag.replace('_', '-')}", str(svhn_file)])
        with pytest.raises(UserError, match=f"^{svhn_file}: a file, not a folder; give the folder that holds"):
            p3.prepare_data(args)
    assert svhn_file.read_bytes() == b"MATLAB"


def idx_bytes(magic, shape, body):
    return struct.pack(f">I{len(shape)}I", magic, *shape) + bytes(body)


def write_mnist_idx(folder, images=(2051, (2, 28, 28), 2 * 784), labels=(2049, (2,), [1, 2])):
    for split in ("train", "t10k"):
        (folder / f"{split}-images-idx3-ubyte").write_bytes(
            idx_bytes(images[0], images[1], [0] * images[2] if isinstance(images[2], int) else images[2]))
        (folder / f"{split}-labels-idx1-ubyte").write_bytes(idx_bytes(*labels))


@pytest.mark.parametrize("damage, message", [
    (lambda f: write_svhn(f / "x.mat", n=3) and scipy.io.savemat(f / "x.mat", {"Z": np.zeros(3)}),
     "has no variable X and y"),
    (lambda f: write_svhn(f / "x.mat", images=np.zeros((28, 28, 3, 4), np.uint8), labels=np.ones((4, 1))),
     r"X must be uint8 of shape \(32, 32, 3, N\)"),
    (lambda f: write_svhn(f / "x.mat", images=np.zeros((32, 32, 3, 4), np.float64), labels=np.ones((4, 1))),
     "X must be uint8"),
    (lambda f: write_svhn(f / "x.mat", n=4, labels=np.array([[0], [1], [2], [3]])), "labels must be integers 1..10"),
    (lambda f: write_svhn(f / "x.mat", n=4, labels=np.array([[11], [1], [2], [3]])), "labels must be integers 1..10"),
    (lambda f: write_svhn(f / "x.mat", n=4, labels=np.ones((3, 1))), "4 images but 3 labels"),
])
def test_bad_svhn_gives_a_clear_error(tmp_path, damage, message):
    damage(tmp_path)
    with pytest.raises(UserError, match=message) as error:
        p3.load_svhn_mat(tmp_path / "x.mat")
    assert "x.mat" in str(error.value)
    with pytest.raises(UserError, match="missing"):
        p3.load_svhn_mat(tmp_path / "test_32x32.mat")


@pytest.mark.parametrize("kwargs, message", [
    ({"images": (2049, (2, 28, 28), 2 * 784)}, "wrong magic number 2049"),
    ({"labels": (2051, (2,), [1, 2])}, "wrong magic number 2051"),
    ({"images": (2051, (2, 28, 28), 784)}, "truncated body"),
    ({"labels": (2049, (3,), [1, 2, 3])}, "2 images but 3 labels"),
    ({"labels": (2049, (2,), [1, 10])}, "labels must be 0..9"),
])
def test_bad_mnist_gives_a_clear_error(tmp_path, kwargs, message):
    write_mnist_idx(tmp_path, **kwargs)
    with pytest.raises(UserError, match=message) as error:
        p3.load_mnist(tmp_path)
    assert "ubyte" in str(error.value)



def test_missing_mnist_label_file_is_named(tmp_path):
    write_mnist_idx(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(UserError, match="t10k-labels-idx1-ubyte: missing"):
        p3.load_mnist(tmp_path)


def test_batches_are_per_epoch_shuffles_of_full_size():
    """ADDA's input queues shuffle per epoch: each pass sees every image once, in a new order."""
    batches = p3.shuffled_batches(10, 4, torch.Generator().manual_seed(0))
    drawn = torch.cat([next(batches) for _ in range(5)])  # 20 indices = two passes
    assert all(len(batch) == 4 for batch in drawn.split(4))
    assert sorted(drawn[:10].tolist()) == list(range(10)) and sorted(drawn[10:].tolist()) == list(range(10))
    assert drawn[:10].tolist() != drawn[10:].tolist()


def test_cosine_schedule_starts_at_one_and_ends_at_zero():
    factor = p3.cosine_to_zero(100)
    assert factor(0) == 1.0 and factor(100) == pytest.approx(0.0, abs=1e-12)
    assert factor(50) == pytest.approx(0.5) and factor(90) < 0.03
    assert all(factor(i) >= factor(i + 1) for i in range(100))


def tiny_domains(n=200):
    generator = torch.Generator().manual_seed(0)
    images = lambda count, channels: torch.randint(0, 256, (count, channels, 32, 32), dtype=torch.uint8,
                                                   generator=generator)
    labels = lambda count: torch.arange(count) % 10
    svhn = {"train": (images(n, 3), labels(n)), "test": (images(n, 3), labels(n))}
    mnist = {"train": (images(n, 1), labels(n)), "test": (images(n, 1), labels(n))}
    return svhn, mnist


def tiny_setup(args, svhn, mnist):
    """What adapt() and the feature-space measures read, without checkpoints (none are used)."""
    return p3.Setup(args, svhn, mnist, data_source={}, seeds=[args.seed], device=torch.device("cpu"),
                    checkpoints=None, started_at=0.0)


def tiny_arguments(*extra):
    """A wide LeNet-5 of the classic widths, 3 source steps, 6 adaptation iterations read every 3."""
    return p3.parse_arguments(["--conv-widths", "6", "16", "--fc-widths", "120", "84", "--source-steps", "3",
                               "--batch-size", "8", "--adapt-iterations", "6", "--monitor-every", "3",
                               "--monitor-images", "20", *extra])


def recorded_adaptation(method, args, svhn, mnist):
    """adapt() with a step that records, per iteration, the encoder's rate, its weights after the
    step and the source features it was given."""
    source = p3.train_source(svhn, 0, args, torch.device("cpu"))
    step_class = p3.AdversarialStep if method == "adda" else p3.MseStep
    log = []

    def recording(target_encoder, optimiser, lr_factor, args):
        step = step_class(target_encoder, optimiser, lr_factor, args)
        log.append(optimiser)

        def recorded(source_features, target_images):
            losses = step(source_features, target_images)
            log.append((optimiser.param_groups[0]["lr"], copy.deepcopy(target_encoder.state_dict()),
                         source_features.clone()))
            return losses
        return recorded

    adaptation = p3.adapt(method, 0, source, tiny_setup(args, svhn, mnist), recording)
    return source, adaptation, log[0], log[1:]


@pytest.mark.parametrize("method", ["adda", "mse"])
def test_adaptation_reports_the_final_iterate_and_anneals_to_zero(method):
    """Both methods alike: the encoder reported (and scored) is the last iterate, and the encoder's
    rate follows the cosine from its peak to zero."""
    args = tiny_arguments()
    svhn, mnist = tiny_domains()
    source, adaptation, optimiser, steps = recorded_adaptation(method, args, svhn, mnist)
    assert len(steps) == 6 and steps[0][0] == pytest.approx(args.adapt_lr)
    assert optimiser.param_groups[0]["lr"] == pytest.approx(0.0, abs=1e-12)  # its scheduled end
    assert [lr for lr, _, _ in steps] == sorted([lr for lr, _, _ in steps], reverse=True)
    for name, value in adaptation["target_encoder"].items():
        assert torch.equal(value, steps[-1][1][name]), name
    encoder, classifier = p3.load_source(source, args, torch.device("cpu"))
    encoder.load_state_dict(adaptation["target_encoder"])
    assert adaptation["acc"] == pytest.approx(p3.accuracy(encoder, classifier, mnist["test"]))
    assert adaptation["final_monitored"] == adaptation["curves"]["target_acc"][-1] <= adaptation["best_monitored"]


@pytest.mark.parametrize("augment", [True, False])
def test_source_features_are_recomputed_per_batch_from_jittered_crops(augment):
    """Every SVHN training crop the same image: without jitter every source feature the step is
    given is the same vector; with it, no two batches (nor two rows) are alike."""
    args = tiny_arguments(*([] if augment else ["--no-augment"]))
    svhn, mnist = tiny_domains()
    one_image = svhn["train"][0][:1].expand(len(svhn["train"][1]), -1, -1, -1).contiguous()
    svhn["train"] = (one_image, svhn["train"][1])
    _, _, _, steps = recorded_adaptation("mse", args, svhn, mnist)
    first, second = steps[0][2], steps[1][2]
    if augment:
        assert not torch.allclose(first, second) and not torch.allclose(first[0], first[1])
    else:
        assert torch.allclose(first, second) and torch.allclose(first[0], first[1])


def test_balanced_batches_hold_every_class_equally_often_over_an_epoch():
    """SVHN-like label shift (class 1 five times as frequent as the others): an epoch of the sampler
    holds N // 10 of each class, drawn without repeats until a class is used up."""
    labels = torch.cat([torch.full((50,), 1), torch.arange(10).repeat_interleave(10)])
    batches = p3.balanced_batches(labels, 16, torch.Generator().manual_seed(0))
    epoch = torch.cat([next(batches) for _ in range(15)])[:150]  # N // 10 = 15 per class
    assert torch.bincount(labels[epoch], minlength=10).tolist() == [15] * 10
    ones = epoch[labels[epoch] == 1]
    assert len(set(ones.tolist())) == 15  # class 1's 60 images: 15 different ones, no repeat


def test_affine_jitter_moves_a_digit_at_most_a_little():
    """A bright block's centre moves by at most the shift plus what rotation and scale do to a point
    4 px from the image's centre; its mass changes by at most the scale's (0.9-1.1)^2."""
    images = torch.zeros(64, 3, 32, 32)
    images[:, :, 14:18, 18:22] = 1.0  # centred 4 px right of the image's centre
    jittered = p3.affine_jitter(images, torch.Generator().manual_seed(0))
    grid = torch.arange(32.0)
    mass = jittered[:, 0].sum((1, 2))
    centre_x = (jittered[:, 0].sum(1) * grid).sum(1) / mass
    centre_y = (jittered[:, 0].sum(2) * grid).sum(1) / mass
    moved = ((centre_x - 19.5) ** 2 + (centre_y - 15.5) ** 2).sqrt()
    assert moved.max() <= 2 * 2 ** 0.5 + 4 * (1 / 0.9 - math.cos(math.radians(10))) + 4 * math.sin(math.radians(10)) + 0.3
    assert moved.min() < 1.5 and moved.std() > 0.2  # drawn per image, not one move for all
    assert ((mass / 16) - 1).abs().max() <= 1 / 0.9 ** 2 - 1 + 0.05


def test_source_training_keeps_the_best_held_out_reading_and_stops_after_the_patience(monkeypatch):
    """Held-out readings 0.5, 0.7, 0.6, 0.65, 0.6, ...: with patience 2 the second reading's weights are
    kept and training stops at the fourth reading."""
    args = tiny_arguments("--source-steps", "40", "--source-patience", "2")  # a reading every 2 steps
    readings = iter([0.5, 0.7, 0.6, 0.65, 0.6, 0.6, 0.6, 0.6])
    weights_at = {}
    real_accuracy = p3.accuracy

    def scripted(encoder, classifier, split):
        if len(split[1]) == 20:  # the held-out tenth of 200 crops
            weights_at[len(weights_at) + 1] = copy.deepcopy(encoder.state_dict())
            return next(readings)
        return real_accuracy(encoder, classifier, split)
    monkeypatch.setattr(p3, "accuracy", scripted)
    source = p3.train_source(tiny_domains()[0], 0, args, torch.device("cpu"))
    assert source["chosen_step"] == 4 and source["steps_run"] == 8 and source["svhn_held_out_acc"] == 0.7
    assert all(torch.equal(source["encoder"][k], weights_at[2][k]) for k in source["encoder"])


def test_the_held_out_tenth_is_stratified_and_disjoint():
    labels = torch.cat([torch.full((50,), 1), torch.arange(10).repeat_interleave(15)])
    fit, held = p3.held_out_tenth(labels, seed=0)
    assert not set(fit.tolist()) & set(held.tolist()) and len(fit) + len(held) == len(labels)
    counts = torch.bincount(labels[held], minlength=10).tolist()  # 65 of 200 are 1s: 6.5 of 20
    assert len(held) == 20 and counts[1] in (6, 7) and all(counts[k] in (1, 2) for k in range(10) if k != 1)


def test_the_held_out_gap_of_the_discriminator_is_its_output_on_training_minus_held_out_crops():
    torch.manual_seed(0)
    encoder = p3.WideLeNetEncoder((6, 16), (120, 84))
    crops = torch.randint(0, 256, (8, 3, 32, 32), dtype=torch.uint8)
    brighter = crops // 2 + 128
    first_feature = torch.nn.Linear(84, 1)  # "source" grows with the first feature
    with torch.no_grad():
        first_feature.weight.zero_()
        first_feature.weight[0, 0] = 1.0
        first_feature.bias.zero_()
    same = p3.discriminator_held_out_gap(first_feature, encoder, crops, crops.clone(), torch.device("cpu"))
    assert same == 0.0
    features = p3.features(encoder, crops)[:, 0], p3.features(encoder, brighter)[:, 0]
    expected = (torch.sigmoid(features[0]).mean() - torch.sigmoid(features[1]).mean()).item()
    assert p3.discriminator_held_out_gap(first_feature, encoder, crops, brighter, torch.device("cpu")) == pytest.approx(expected, abs=1e-6)


def test_the_step_count_is_chosen_without_mnist(tmp_path):
    """3a's early stopping reads SVHN only: with MNIST replaced by noise, the same step is kept and
    the same weights come out."""
    args = tiny_arguments("--source-steps", "40", "--source-patience", "2", "--seeds", "1", "--out", str(tmp_path))
    svhn, mnist = tiny_domains()
    noise = {split: (torch.randint(0, 256, images.shape, dtype=torch.uint8, generator=torch.Generator().manual_seed(5)),
                     labels) for split, (images, labels) in mnist.items()}
    sources = []
    for target in (mnist, noise):
        setup = tiny_setup(args, svhn, target)
        setup.checkpoints = SimpleNamespace(stage=lambda name, compute: compute())
        sources.append(p3.answer_3a(setup).runs[0])
    assert sources[0]["chosen_step"] == sources[1]["chosen_step"] and sources[0]["history"] == sources[1]["history"]
    assert all(torch.equal(sources[0]["encoder"][k], sources[1]["encoder"][k]) for k in sources[0]["encoder"])
    assert sources[0]["chosen_step"] % 2 == 0 and sources[0]["steps_run"] <= 40  # read every 40 // 20 steps


def test_the_domain_judge_scores_chance_on_one_distribution_and_near_one_on_two():
    generator = torch.Generator().manual_seed(0)
    one = torch.randn(1200, 20, generator=generator)
    same = p3.domain_classifier_accuracy(one[:600], one[600:], seed=0)
    apart = p3.domain_classifier_accuracy(one[:600], one[600:] + 3.0, seed=0)
    assert abs(same - 0.5) < 0.08 and apart > 0.97


def test_the_paired_gain_summary_counts_seeds_and_gives_the_sign_test():
    summary = p3.paired_gain_summary([0.05, 0.08, 0.02, 0.10, 0.04])
    assert summary["seeds_gaining"] == 5 and summary["sign_test_p"] == pytest.approx(2 / 32)
    low, high = summary["gain_bootstrap_95"]
    assert 0.02 <= low < 0.058 < high <= 0.10
    assert p3.paired_gain_summary([0.05, -0.02, 0.01])["seeds_gaining"] == 2
    tied = p3.paired_gain_summary([0.05, 0.0, 0.01])  # a tie counts neither way
    assert tied["seeds_not_tied"] == 2 and tied["sign_test_p"] == pytest.approx(0.5)


def test_the_discriminator_follows_its_schedule():
    """Both players are annealed and at the same rate: the discriminator's rate is the encoder's and
    follows the factor from step to step (here 1, then 0: the first step moves it, the second not)."""
    args = p3.parse_arguments([])
    torch.manual_seed(0)
    target_encoder = p3.WideLeNetEncoder((6, 16), (120, 84))
    step = p3.AdversarialStep(target_encoder, torch.optim.Adam(target_encoder.parameters(), args.adapt_lr),
                              lambda i: 1.0 if i == 0 else 0.0, args)
    assert step.discriminator_optimiser.param_groups[0]["initial_lr"] == args.adapt_lr
    moved = []
    for _ in range(2):
        before = [p.clone() for p in step.discriminator.parameters()]
        step(torch.randn(8, 84), torch.randn(8, 3, 32, 32))
        moved.append(any(not torch.equal(a, b) for a, b in zip(before, step.discriminator.parameters())))
    assert moved == [True, False]


def test_no_choice_of_the_adaptation_reads_an_mnist_label():
    """Shuffled MNIST labels (train and test) change the accuracies read, never the encoder the run
    reports."""
    args, device = tiny_arguments(), torch.device("cpu")
    svhn, mnist = tiny_domains()
    source = p3.train_source(svhn, 0, args, device)
    runs = []
    for labels_seed in (None, 1):
        data = dict(mnist)
        if labels_seed is not None:
            shuffle = lambda split: (split[0], split[1][torch.randperm(len(split[1]),
                                                                       generator=torch.Generator().manual_seed(labels_seed))])
            data = {name: shuffle(split) for name, split in mnist.items()}
        runs.append(p3.adapt("ADDA", 0, source, tiny_setup(args, svhn, data), p3.AdversarialStep))
    assert all(torch.equal(runs[0]["target_encoder"][k], runs[1]["target_encoder"][k]) for k in runs[0]["target_encoder"])
    assert runs[0]["domain_classifier_acc"] == runs[1]["domain_classifier_acc"]


def test_source_training_decays_the_weights_not_the_biases(monkeypatch):
    """ADDA's LeNet regulariser: L2 of 2.5e-5 on conv and fc weights; biases are not penalised."""
    groups = []
    real_adam = torch.optim.Adam

    def recording_adam(params, **kwargs):
        optimiser = real_adam(params, **kwargs)
        groups.extend(optimiser.param_groups)
        return optimiser
    monkeypatch.setattr(torch.optim, "Adam", recording_adam)
    args = tiny_arguments()
    p3.train_source(tiny_domains()[0], 0, args, torch.device("cpu"))
    decayed = [g for g in groups if g["weight_decay"] > 0]
    assert len(decayed) == 1 and decayed[0]["weight_decay"] == pytest.approx(2.5e-5)
    assert all(p.dim() > 1 for p in decayed[0]["params"])
    assert all(p.dim() == 1 for g in groups if g["weight_decay"] == 0 for p in g["params"])


def test_inverted_polarity_is_the_negated_network_input():
    """3b's polarity check: 255 - x, after the per-image contrast normalisation, is exactly the
    negated input, so the source model sees MNIST's digits as dark-on-light strokes."""
    images = torch.randint(0, 256, (4, 1, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(p3.normalise_contrast(255 - images), -p3.normalise_contrast(images), atol=1e-5)
