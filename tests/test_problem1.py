import json
import math

import numpy as np
import pytest

import torch

import problem1_checks as p1


def seeded(seed=0):
    """Every test that draws random numbers draws from its own generator, whatever ran before."""
    return torch.Generator().manual_seed(seed)


def test_script_passes_every_check_and_writes_figures_and_json(run, tmp_path):
    result = run("problem1_checks.py", "--out", tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "FAIL" not in result.stdout
    results = json.loads((tmp_path / "results" / "problem1.json").read_text())
    assert results["all_passed"] and results["n_failed"] == 0 and results["n_checks"] >= 20
    assert abs(results["gan"]["v_at_optimum"] + math.log(4)) < 1e-6
    assert results["data_source"] and results["versions"]["torch"]
    for name in ["p1_he_variance_vs_depth", "p1_xavier_vs_he", "p1_bernoulli_kl", "p1_gan_optimum"]:
        assert (tmp_path / "figures" / f"{name}.pdf").stat().st_size > 1000


@pytest.mark.parametrize("wrong_scale", [1.0, 3.0])
def test_he_check_fails_with_a_wrong_variance_scale(wrong_scale):
    checks = p1.check_he_forward_backward(weight_scale=wrong_scale, depth=20, generator=seeded())
    assert not any(c["passed"] for c in checks)


def test_he_check_passes_with_the_right_scale():
    checks = p1.check_he_forward_backward(weight_scale=2.0, depth=20, generator=seeded())
    assert all(c["passed"] for c in checks)
    # The tolerance is at least 4 standard errors of the estimate, stated beside it.
    assert all(c["tolerance"] >= 4 * c["standard_error"] for c in checks)


def test_the_tanh_recursion_decays_slowly_under_xavier_and_settles_under_he():
    # Small-variance limit q <- q - 2q^2: q_l ~ 1/(2l), far from a geometric decay.
    assert p1.tanh_variance_recursion(1.0, 400) == pytest.approx(1 / (2 * 400), rel=0.1)
    assert p1.tanh_variance_recursion(1.0, 30) > 0.01  # ReLU's halving would give 0.5 ** 29 ~ 2e-9
    # He's s = 2 has a non-zero fixed point: deeper changes nothing.
    assert p1.tanh_variance_recursion(2.0, 200) == pytest.approx(p1.tanh_variance_recursion(2.0, 100))
    assert p1.tanh_variance_recursion(2.0, 200) > 0.2


def test_a_check_whose_sample_is_too_small_for_its_tolerance_fails():
    assert not p1.check_draws("noisy", [0.9, 1.1, 0.95, 1.05], 1.0, 0.05)["passed"]
    assert p1.check_draws("precise", [0.999, 1.001, 1.0, 1.0], 1.0, 0.05)["passed"]


def test_kl_check_fails_with_a_wrong_formula(monkeypatch):
    def kl_missing_second_term(p, q):
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.asarray(p) * np.log(np.asarray(p) / np.asarray(q))

    monkeypatch.setattr(p1, "bernoulli_kl", kl_missing_second_term)
    checks = p1.check_bernoulli_kl()
    assert sum(not c["passed"] for c in checks) >= 3


def test_gan_check_fails_with_a_wrong_discriminator(monkeypatch):
    monkeypatch.setattr(p1, "optimal_discriminator", lambda pd, pg: pd / (pd + 2 * pg))
    checks, _ = p1.check_gan_optimum()
    assert not all(c["passed"] for c in checks)


def test_script_exits_1_when_a_check_fails(monkeypatch, tmp_path, capsys):
    original = p1.bernoulli_kl
    monkeypatch.setattr(p1, "bernoulli_kl", lambda p, q: original(q, p))  # the arguments swapped
    with pytest.raises(SystemExit) as exit_info:
        p1.main(["--out", str(tmp_path)])
    assert exit_info.value.code == 1
    assert "FAIL" in capsys.readouterr().out
