"""Problem 1: numerical checks of every derivation in the report.

Where each answer is (main() calls them in this order; the checks on the right):
  1a answer_1a  He initialisation (He et al. 2015, sec. 2.2): Var(w) = 2/n   check_he_forward_backward,
                keeps the forward and backward variances constant through     check_he_steps
                a deep ReLU network; the derivation's two steps on their own
  1b answer_1b  Xavier (Glorot & Bengio 2010, eq. 12) against He; with tanh,  check_xavier_vs_he
                the variance against the recursion q <- s E[tanh^2(sqrt(q) z)]
  1c answer_1c  KL divergence between two Bernoulli distributions; VAE form   check_bernoulli_kl
  1d answer_1d  The GAN optimum (Goodfellow et al. 2014, Prop. 1, Thm. 1):    check_gan_optimum
                D* = p_data/(p_data + p_g); D* = 1/2, V = -log 4 at p_g = p_data
  Check bookkeeping, plots and the results file: the appendix at the bottom.

Each check prints PASS/FAIL with the measured and the predicted value; the script exits 1 if any
check fails, and writes figures p1_*.pdf/.png and results/problem1.json.
"""
import math
import sys
import time

import numpy as np
import torch
from scipy import integrate, optimize, stats
from torch.nn import functional as F

from utils import common_parser, figure_style, run_main, save_figure, seed_everything, write_results

plt = figure_style()


# --------------------------------------------------------------------------------------------------
# 1a  He initialisation
# --------------------------------------------------------------------------------------------------
def network_variances(weight_scale, depth, width, batch, generator, activation=torch.relu, conv=False):
    """Forward variance of the pre-activations y_l and backward variance of dL/dx_l, per layer, in one
    network with weights i.i.d. N(0, weight_scale / n), n = fan-in (k*k*c for a conv layer), biases 0,
    as in He et al. (2015) sec. 2.2. The 3x3 conv layers pad circularly so that every output pixel
    sees n inputs, as the derivation assumes (zero padding would shrink the border's variance)."""
    shape = (batch, width, 16, 16) if conv else (batch, width)
    h = x = torch.randn(shape, generator=generator, requires_grad=True)
    std = math.sqrt(weight_scale / (9 * width if conv else width))
    inputs, forward = [x], []
    for _ in range(depth):
        weight = torch.randn((width, width, 3, 3) if conv else (width, width), generator=generator) * std
        y = F.conv2d(F.pad(h, (1, 1, 1, 1), "circular"), weight) if conv else h @ weight.T
        forward.append(y.var().item())
        h = activation(y)
        inputs.append(h)
    # A random zero-mean gradient at the output stands in for dL/dx_L (He et al. 2015, eq. 13).
    gradients = torch.autograd.grad(h, inputs[:-1], torch.randn(h.shape, generator=generator))
    return np.array(forward), np.array([gradient.var().item() for gradient in gradients])


def draw_networks(repeats, *network, **options):
    """network_variances of `repeats` independently drawn networks: (forward, backward), a row each."""
    runs = [network_variances(*network, **options) for _ in range(repeats)]
    return np.array([forward for forward, _ in runs]), np.array([backward for _, backward in runs])


def check_he_forward_backward(generator, weight_scale=2.0, depth=40, conv=False):
    """With Var(w) = weight_scale/n the per-layer variance ratio is weight_scale/2: He (2) keeps it 1.
    Each Var(y_l)/Var(y_l-1), Var(dx_l)/Var(dx_l+1) draws the factor the derivation predicts in
    expectation; their arithmetic mean estimates it (a geometric mean would be biased low: Jensen)."""
    width, batch, repeats, kind = (64, 8, 24, "conv") if conv else (512, 1000, 6, "fully connected")
    forward, backward = draw_networks(repeats, weight_scale, depth, width, batch, generator, conv=conv)
    return [check_draws(f"1a He, {depth}-layer {kind} ReLU net, {direction} variance ratio per layer",
                        ratios.ravel(), 1.0, 0.05)
            for direction, ratios in [("forward", forward[:, 1:] / forward[:, :-1]),
                                      ("backward gradient", backward[:, :-1] / backward[:, 1:])]]


def check_he_steps(generator):
    """The derivation's two steps: Var(y) = n Var(w) E[x^2], and E[relu(y)^2] = Var(y)/2."""
    n = 256
    # Step 1 holds for any input distribution, also a non-zero-mean one such as ReLU outputs. Each
    # of 24 independent draws of inputs and weights gives Var(y) / (n Var(w) E[x^2]), predicted 1.
    weight_variance = 0.37 / n
    step1_ratios = []
    for _ in range(24):
        x = torch.relu(torch.randn(5000, n, generator=generator)) * 1.7
        y = x @ (torch.randn(n, 512, generator=generator) * math.sqrt(weight_variance))
        step1_ratios.append(y.var().item() / (n * weight_variance * (x ** 2).mean().item()))
    checks = [check_draws("1a step 1: variance of a pre-activation / (fan-in x weight variance x "
                          "second moment of the input)", step1_ratios, 1.0, 0.02)]
    # Step 2 needs y zero-mean and symmetric; Gaussian and Laplace both are. Per sample,
    # relu(y)^2 - y^2/2 has mean 0 exactly then; its spread gives the standard error.
    rng = np.random.default_rng(0)
    for name, y_prev in [("Gaussian", rng.normal(0, 1.3, 2_000_000)),
                         ("Laplace", rng.laplace(0, 0.8, 2_000_000))]:
        differences = (np.maximum(y_prev, 0) ** 2 - y_prev ** 2 / 2) / (y_prev.var() / 2)
        checks.append(check_draws(f"1a step 2: second moment after a ReLU / (half the variance "
                                  f"before it), {name} input", 1 + differences, 1.0, 0.01))
    return checks


def he_depth_curves(generator):
    """Variance against depth for three weight scales (1/n, He's 2/n, 3/n): fully connected forward
    and backward, and 3x3 convolutions forward (mean of 4 nets); with each curve's end over its start."""
    curves, summary = {}, {}
    for label, scale in {"Var(w)=1/n (LeCun)": 1.0, "Var(w)=2/n (He)": 2.0, "Var(w)=3/n": 3.0}.items():
        forward, backward = network_variances(scale, 40, 512, 1000, generator)
        conv_forward = draw_networks(4, scale, 40, 64, 8, generator, conv=True)[0].mean(axis=0)
        curves[label] = (forward, backward, conv_forward)
        summary[label] = {"forward_last_over_first": forward[-1] / forward[0],
                          "backward_first_over_last": backward[0] / backward[-1],
                          "conv_forward_last_over_first": conv_forward[-1] / conv_forward[0]}
    return curves, summary


def answer_1a(generator, out):
    checks = check_he_forward_backward(generator) + check_he_forward_backward(generator, depth=30, conv=True)
    checks += check_he_steps(generator)
    curves, summary = he_depth_curves(generator)
    plot_he(curves, out)
    return checks, summary


# --------------------------------------------------------------------------------------------------
# 1b  Xavier against He
# --------------------------------------------------------------------------------------------------
SCALES = {"Xavier": 1.0, "He": 2.0}  # s in Var(w) = s/n; for square layers Xavier's 2/(n_in+n_out) = 1/n
NETWORKS = {"linear": lambda y: y, "tanh": torch.tanh, "ReLU": torch.relu}


def check_xavier_vs_he(generator):
    """Xavier's 1/n keeps a linear network's variance and halves it per layer under ReLU, which He's
    2/n repairs (means over 8 networks, as the report and the figure print them). With tanh the decay
    is not geometric: the variance after 30 layers is checked against tanh_variance_recursion."""
    ratios, tanh_after_depth, checks = {}, {}, []
    for init, name, predicted in [("Xavier", "linear", 1.0), ("Xavier", "ReLU", 0.5), ("He", "ReLU", 1.0)]:
        forward, _ = draw_networks(8, SCALES[init], 30, 512, 500, generator, NETWORKS[name])
        draws = (forward[:, 1:] / forward[:, :-1]).ravel()
        ratios[f"{init} {name}"] = float(draws.mean())
        checks.append(check_draws(f"1b {init}, {name} net, variance ratio per layer", draws, predicted, 0.03))
    for init, scale in SCALES.items():
        forward, _ = draw_networks(8, scale, 30, 512, 500, generator, torch.tanh)
        totals = forward[:, -1] / forward[:, 0]
        predicted = tanh_variance_recursion(scale, 30)
        tanh_after_depth[f"{init} tanh"] = {"measured": float(np.mean(totals)), "predicted": predicted}
        checks.append(check_draws(f"1b {init}, tanh net, variance after 30 layers / after 1, "
                                  f"vs the variance recursion of 1b", totals, predicted, 0.1, relative=True))
    return checks, ratios, tanh_after_depth


def tanh_variance_recursion(weight_scale, depth):
    """tanh is not linear, so a layer maps the pre-activation variance q to s E[tanh^2(sqrt(q) z)],
    z ~ N(0, 1), with Var(w) = s/n (the mean-field recursion of Poole et al. 2016). For Xavier
    (s = 1) tanh^2(x) ~ x^2 - 2x^4/3 gives q - 2q^2: the variance shrinks at every layer, ever
    more slowly (q_l ~ 1/(2l)), not geometrically; He's s = 2 has a non-zero fixed point instead.
    Returns q_depth / q_1 for q_1 = s (unit-variance input), by Gauss-Hermite quadrature."""
    nodes, weights = np.polynomial.hermite_e.hermegauss(101)
    weights = weights / weights.sum()
    q = weight_scale
    for _ in range(depth - 1):
        q = weight_scale * float(np.sum(weights * np.tanh(np.sqrt(q) * nodes) ** 2))
    return q / weight_scale


def xavier_he_depth_curves(generator, measured_ratios):
    """Variance against depth for Xavier's and He's scales with a linear, tanh and ReLU network, and
    each one's per-layer ratio: the checks' mean where they measured one, else over the 29 steps."""
    curves, ratios = {}, {}
    for init, scale in SCALES.items():
        for name, activation in NETWORKS.items():
            key = f"{init} {name}"
            curves[key], _ = network_variances(scale, 30, 512, 1000, generator, activation)
            ratios[key] = measured_ratios.get(key, (curves[key][-1] / curves[key][0]) ** (1 / 29))
    return curves, ratios


def answer_1b(generator, out):
    checks, measured_ratios, tanh_after_depth = check_xavier_vs_he(generator)
    curves, ratios = xavier_he_depth_curves(generator, measured_ratios)  # one number per quantity
    plot_xavier_vs_he(curves, ratios, out)
    return checks, ratios, tanh_after_depth


# --------------------------------------------------------------------------------------------------
# 1c  KL divergence between Bernoulli distributions
# --------------------------------------------------------------------------------------------------
def bernoulli_kl(p, q):
    """KL(Bern(p) || Bern(q)) = p log(p/q) + (1-p) log((1-p)/(1-q)), with 0 log 0 = 0."""
    p, q = np.asarray(p, float), np.asarray(q, float)
    with np.errstate(divide="ignore", invalid="ignore"):
        ones = np.where(p > 0, p * np.log(p / q), 0.0)
        zeros = np.where(p < 1, (1 - p) * np.log((1 - p) / (1 - q)), 0.0)
    return ones + zeros


def check_bernoulli_kl():
    """The closed form against the definition, torch and sampling; then its properties and limits."""
    grid = np.linspace(0.02, 0.98, 49)
    p, q = np.meshgrid(grid, grid, indexing="ij")
    closed = bernoulli_kl(p, q)
    pmf = stats.bernoulli.pmf  # the definition: the sum over x in {0, 1} of P(x) log P(x)/Q(x)
    direct_sum = sum(pmf(x, p) * np.log(pmf(x, p) / pmf(x, q)) for x in (0, 1))
    torch_kl = torch.distributions.kl_divergence(
        torch.distributions.Bernoulli(probs=torch.tensor(p)),
        torch.distributions.Bernoulli(probs=torch.tensor(q))).numpy()
    checks = [check("1c Bernoulli KL, closed form vs direct sum (max abs error on grid)",
                    np.max(np.abs(closed - direct_sum)), 0.0, 1e-12),
              check("1c Bernoulli KL, closed form vs torch.distributions (max abs error)",
                    np.max(np.abs(closed - torch_kl)), 0.0, 1e-9)]
    # Monte Carlo: KL = E_{x~p}[log p(x)/q(x)]; 10^6 samples give a standard error of ~1e-3.
    rng = np.random.default_rng(1)
    for p_i, q_i in [(0.3, 0.6), (0.9, 0.2), (0.05, 0.5)]:
        log_ratio = np.where(rng.random(1_000_000) < p_i, np.log(p_i / q_i), np.log((1 - p_i) / (1 - q_i)))
        checks.append(check(f"1c Bernoulli KL({p_i} || {q_i}), Monte Carlo vs closed form", log_ratio.mean(),
                            float(bernoulli_kl(p_i, q_i)), 5 * (log_ratio.std() / math.sqrt(len(log_ratio)))))
    by_hand = (0.5 * math.log(0.5 / 0.1) + 0.5 * math.log(0.5 / 0.9)) - (0.1 * math.log(0.1 / 0.5)
                                                                        + 0.9 * math.log(0.9 / 0.5))
    # As q -> 0 with p > 0 the KL grows like -p log q: the slope in -log q tends to p.
    q_small = np.array([1e-6, 1e-9])
    slope = np.diff(bernoulli_kl(0.3, q_small)) / np.diff(-np.log(q_small))
    # VAE with Bernoulli latents and a uniform prior: the KL term is log 2 minus the entropy.
    entropy = -(grid * np.log(grid) + (1 - grid) * np.log(1 - grid))
    return checks + [
        check("1c KL >= 0 on the grid, 0 on the diagonal (min; |diag| max)",
              min(closed.min(), 0.0) - np.abs(np.diag(closed)).max(), 0.0, 1e-12),
        check("1c asymmetry: KL(0.5||0.1) - KL(0.1||0.5), written out by hand (0.143, not 0)",
              float(bernoulli_kl(0.5, 0.1)) - float(bernoulli_kl(0.1, 0.5)), by_hand, 1e-12),
        check("1c limit q->0: d KL(0.3||q) / d(-log q) -> p", slope[0], 0.3, 1e-6),
        check("1c limit p=0: KL(0||q) = -log(1-q) at q=0.4", float(bernoulli_kl(0.0, 0.4)),
              -math.log(0.6), 1e-12),
        check("1c VAE form: KL(Bern(p)||Bern(1/2)) = log 2 - H(p) (max abs error)",
              np.max(np.abs(bernoulli_kl(grid, 0.5) - (math.log(2) - entropy))), 0.0, 1e-12)]


def answer_1c(out):
    checks = check_bernoulli_kl()
    plot_bernoulli_kl(out)
    return checks


# --------------------------------------------------------------------------------------------------
# 1d  The GAN optimum
# --------------------------------------------------------------------------------------------------
X_GRID = np.linspace(-10, 10, 4001)
P_DATA = stats.norm(0.0, 1.0)
P_G_APART = stats.norm(1.5, 0.7)


def pointwise_optimal_discriminator(p_data, p_g):
    """Maximise a log D + b log(1-D) over D in (0, 1) numerically at every x (bounded Brent)."""
    d_star = np.full_like(p_data, 0.5)  # outside both supports D does not matter; any value is optimal
    for i in np.flatnonzero(p_data + p_g >= 1e-300):
        d_star[i] = optimize.minimize_scalar(lambda d: -(p_data[i] * np.log(d) + p_g[i] * np.log1p(-d)),
                                             bounds=(1e-12, 1 - 1e-12), method="bounded",
                                             options={"xatol": 1e-12}).x
    return d_star


def expectation_of_log(density, values):
    """int density(x) log(values(x)) dx on X_GRID. Where the density is below 1e-12 the term is
    dropped: its contribution is negligible, and there D rounds to 0 or 1 and the log to -inf."""
    with np.errstate(divide="ignore", invalid="ignore"):
        integrand = np.where(density > 1e-12, density * np.log(values), 0.0)
    return integrate.simpson(integrand, x=X_GRID)


def value_function(p_data, p_g, discriminator):
    """V(G, D) = int p_data log D + int p_g log(1 - D), the z-integral rewritten over x = G(z)."""
    return expectation_of_log(p_data, discriminator) + expectation_of_log(p_g, 1 - discriminator)


def jensen_shannon(p, q):
    m = (p + q) / 2
    return 0.5 * expectation_of_log(p, p / m) + 0.5 * expectation_of_log(q, q / m)


def optimal_discriminator(p_data, p_g):
    """D*(x) = p_data(x) / (p_data(x) + p_g(x)) (Goodfellow et al. 2014, Prop. 1)."""
    return p_data / (p_data + p_g)


def check_gan_optimum():
    p_data, p_g = P_DATA.pdf(X_GRID), P_G_APART.pdf(X_GRID)
    # Converged generator: p_g = p_data.
    value_at_optimum = value_function(p_data, p_data, optimal_discriminator(p_data, p_data))
    checks = [check("1d p_g = p_data: max |numerical argmax D - 1/2|",
                    np.max(np.abs(pointwise_optimal_discriminator(p_data, p_data) - 0.5)), 0.0, 1e-6),
              check("1d p_g = p_data: V(G, D*) = -log 4", value_at_optimum, -math.log(4), 1e-6)]
    # A generator that has not converged: the formula still matches the pointwise maximiser,
    # and V(G, D*) = -log 4 + 2 JSD(p_data || p_g) (Goodfellow et al. 2014, Thm. 1).
    formula_apart = optimal_discriminator(p_data, p_g)
    numeric_apart = pointwise_optimal_discriminator(p_data, p_g)
    value_apart, jsd = value_function(p_data, p_g, formula_apart), jensen_shannon(p_data, p_g)
    checks += [check("1d p_g != p_data: max |numerical argmax D - D* formula|",
                     np.max(np.abs(numeric_apart - formula_apart)[p_data + p_g > 1e-12]), 0.0, 1e-6),
               check("1d p_g != p_data: V(G, D*) = -log 4 + 2 JSD", value_apart,
                     -math.log(4) + 2 * jsd, 1e-6)]
    # The z-integral itself, by sampling z ~ N(0,1) and pushing it through G(z) = 1.5 + 0.7 z.
    generated = 1.5 + 0.7 * np.random.default_rng(2).standard_normal(1_000_000)
    log_fake = np.log1p(-optimal_discriminator(P_DATA.pdf(generated), P_G_APART.pdf(generated)))
    checks.append(check("1d E_z[log(1 - D(G(z)))] by sampling = int p_g log(1 - D) dx",
                        log_fake.mean(), expectation_of_log(p_g, 1 - formula_apart),
                        5 * log_fake.std() / math.sqrt(len(log_fake))))
    return checks, {"v_at_optimum": value_at_optimum, "minus_log4": -math.log(4), "v_apart": value_apart,
                    "jsd_apart": jsd, "p_g_apart": {"mean": 1.5, "std": 0.7}}


def answer_1d(out):
    checks, summary = check_gan_optimum()
    plot_gan_optimum(out)
    return checks, summary


def main(argv=None):
    args = common_parser(__doc__.split("\n")[0]).parse_args(argv)
    started_at = time.time()
    seed_everything(args.seed)
    generator = torch.Generator().manual_seed(args.seed)  # every draw of 1a and 1b, in this order
    checks_1a, he_summary = answer_1a(generator, args.out)
    checks_1b, xavier_ratios, tanh_after_depth = answer_1b(generator, args.out)
    checks_1c = answer_1c(args.out)
    checks_1d, gan_summary = answer_1d(args.out)
    failed = write_problem1_results(args, started_at, checks_1a + checks_1b + checks_1c + checks_1d,
                                    he=he_summary, xavier_vs_he_ratio_per_layer=xavier_ratios,
                                    tanh_variance_after_30_layers=tanh_after_depth, gan=gan_summary)
    if failed:
        sys.exit(1)


# ==================================================================================================
# Appendix: check bookkeeping, plots, the results file
# ==================================================================================================
def check(name, measured, predicted, tolerance, relative=False, standard_error=None):
    """One PASS/FAIL line: |measured - predicted| <= tolerance (times |predicted| if relative).
    A statistical estimate also needs a tolerance of at least 4 standard errors, so that a pass or a
    fail says something about the claim, not about the luck of one random draw."""
    bound = tolerance * abs(predicted) if relative else tolerance
    passed = bool(np.isfinite(measured) and abs(measured - predicted) <= bound)
    note = ("" if standard_error is None
            else f" = {bound / standard_error:.1f} standard errors of {standard_error:.2g}")
    if standard_error is not None and bound < 4 * standard_error:
        passed, note = False, note + ": SAMPLE TOO SMALL for this tolerance"
    print(f"{'PASS' if passed else 'FAIL'}  {name}: measured {measured:.6g}, "
          f"predicted {predicted:.6g} (tolerance {bound:.2g}{note})")
    return {"name": name, "passed": passed, "measured": float(measured),
            "predicted": float(predicted), "tolerance": float(bound),
            "standard_error": None if standard_error is None else float(standard_error)}


def check_draws(name, draws, predicted, tolerance, relative=False):
    """A check on the mean of independent draws, with the standard error they give."""
    draws = np.asarray(draws, float)
    return check(name, draws.mean(), predicted, tolerance, relative,
                 standard_error=draws.std(ddof=1) / math.sqrt(len(draws)))


def below(ax, columns=1):
    """The legend under the panel, off the curves."""
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=columns, fontsize=9.5, frameon=False)


def plot_he(curves, out):
    """Variance against depth for several weight scales: only He's 2/n is flat."""
    # Drawn near the size it prints at (the text width), so 9 pt stays about 8 pt there.
    fig, axes = plt.subplots(1, 3, figsize=(7.4, 3.2))
    for i, (ax, title) in enumerate(zip(axes, ["forward: Var(y_l)\nfully connected",
                                               "backward: Var(dL/dx_l)\nfully connected",
                                               "forward: Var(y_l)\n3x3 convolutions"])):
        for label, variances in curves.items():
            ax.semilogy(np.arange(1, len(variances[i]) + 1), variances[i], label=label)
        ax.set(title=title, xlabel="layer l")
    axes[0].set_ylabel("variance (log scale)")
    below(axes[1], columns=3)
    save_figure(fig, out, "p1_he_variance_vs_depth")


def plot_xavier_vs_he(curves, ratios, out):
    fig, axes = plt.subplots(1, 2, figsize=(7, 3.6), sharey=True)
    titles = {"Xavier": "Xavier, Var(w)=2/(n_in+n_out)", "He": "He, Var(w)=2/n_in"}
    for ax, (init, title) in zip(axes, titles.items()):
        for name in NETWORKS:
            forward = curves[f"{init} {name}"]
            ax.semilogy(np.arange(1, len(forward) + 1), forward,
                        label=f"{name} (x{ratios[f'{init} {name}']:.2f}/layer)")
        ax.set(title=title, xlabel="layer l")
        below(ax)
    axes[0].set_ylabel("Var(y_l)")
    save_figure(fig, out, "p1_xavier_vs_he")


def plot_bernoulli_kl(out):
    grid = np.linspace(0.005, 0.995, 199)
    p, q = np.meshgrid(grid, grid, indexing="ij")
    fig, axes = plt.subplots(1, 2, figsize=(7, 3.1))
    image = axes[0].imshow(np.log10(bernoulli_kl(p, q).T + 1e-4), origin="lower",
                           extent=[0, 1, 0, 1], cmap="magma")
    axes[0].set(xlabel="p", ylabel="q", title="log10 KL(Bern(p) || Bern(q))")
    axes[0].grid(False)
    fig.colorbar(image, ax=axes[0])
    for q_fixed in (0.1, 0.5, 0.9):
        axes[1].plot(grid, bernoulli_kl(grid, q_fixed), label=f"KL(p || {q_fixed})")
    # q down to 1e-8 from either end: towards 0 the divergence grows only like 0.1 log(1/q), so
    # only points this close to the edge show that it does grow without bound there.
    edge = np.logspace(-8, -2.5, 40)
    q_grid = np.concatenate([edge, grid, 1 - edge[::-1]])
    axes[1].plot(q_grid, bernoulli_kl(0.1, q_grid), "--", label="KL(0.1 || q), as a function of q")
    axes[1].set(ylim=(0, 3), xlabel="p (solid) or q (dashed)",
                title="asymmetric, and unbounded as q $\\to$ 0 or 1")
    axes[1].legend(fontsize=10.5, loc="upper center", bbox_to_anchor=(0.5, -0.22), ncol=2, frameon=False)
    save_figure(fig, out, "p1_bernoulli_kl")


def plot_gan_optimum(out):
    p_data, p_g = P_DATA.pdf(X_GRID), P_G_APART.pdf(X_GRID)
    fig, axes = plt.subplots(1, 3, figsize=(8.2, 3.4), gridspec_kw={"wspace": 0.45})
    axes[0].plot(X_GRID, p_data, label="p_data = N(0, 1)")
    axes[0].plot(X_GRID, p_g, label="p_g = N(1.5, 0.7^2)")
    axes[0].plot(X_GRID, optimal_discriminator(p_data, p_g), "k", label="D*(x)")
    axes[0].plot(X_GRID[::80], pointwise_optimal_discriminator(p_data[::80], p_g[::80]), "o",
                 ms=3, color="tab:red", label="numerical argmax")
    axes[0].set(xlim=(-4, 5), title="generator not converged")
    axes[1].plot(X_GRID, p_data, label="p_data = p_g")
    axes[1].plot(X_GRID, optimal_discriminator(p_data, p_data), "k", label="D*(x) = 1/2")
    axes[1].set(xlim=(-4, 4), ylim=(0, 1), title="converged: p_g = p_data")
    constant_d = np.linspace(0.01, 0.99, 197)
    axes[2].plot(constant_d, [value_function(p_data, p_data, np.full_like(p_data, d)) for d in constant_d])
    axes[2].axhline(-math.log(4), color="k", ls="--", lw=0.8)
    axes[2].plot([0.5], [-math.log(4)], "o", color="tab:red", label="max: D=1/2, V=-log 4")
    axes[2].set(xlabel="constant D", ylabel="V(G, D)", ylim=(-5, 0), title="V against D when p_g = p_data")
    for ax in axes:
        below(ax)
    save_figure(fig, out, "p1_gan_optimum")


def write_problem1_results(args, started_at, checks, **summaries):
    """results/problem1.json: the checks, then the numbers the report quotes. Returns the failed checks."""
    failed = [c["name"] for c in checks if not c["passed"]]
    print(f"{len(checks) - len(failed)} passed, {len(failed)} failed")
    tally = {"checks": checks, "n_checks": len(checks), "n_failed": len(failed), "all_passed": not failed}
    path = write_results(args, "problem1", {**tally, **summaries}, data_source="none (analytic checks)",
                         started_at=started_at)
    print(f"wrote {path} and {args.out / 'figures'}/p1_*.pdf")
    return failed


if __name__ == "__main__":
    run_main(main)
