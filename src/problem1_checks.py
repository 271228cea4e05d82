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

from utils import common_parser, figure_style, run_main, save_figure, seed_everything, write_results

plt = figure_style()


# --------------------------------------------------------------------------------------------------
# 1a  He initialisation
# --------------------------------------------------------------------------------------------------
def layer_variances(weight_scale, depth, width, batch, activation=torch.relu, conv=False,
                    repeats=1, generator=None):
    """Per-layer variances, averaged over `repeats` independently drawn networks: the derivation
    is about expectations over the weights, and one narrow conv net fluctuates around them."""
    runs = [one_network_variances(weight_scale, depth, width, batch, activation, conv, generator)
            for _ in range(repeats)]
    return tuple(np.mean([run[i] for run in runs], axis=0) for i in (0, 1))


def one_network_variances(weight_scale, depth, width, batch, activation, conv, generator):
    """Forward variance of the pre-activations y_l and backward variance of dL/dx_l, per layer.

    Weights are i.i.d. N(0, weight_scale / n) with n = fan-in (k*k*c for a conv layer), biases 0,
    as in He et al. (2015) sec. 2.2. The conv layers use circular padding so that every output
    pixel sees n inputs, as the derivation assumes (zero padding would shrink the border's variance).
    """
    if conv:
        x = torch.randn(batch, width, 16, 16, generator=generator)
        fan_in = 9 * width
    else:
        x = torch.randn(batch, width, generator=generator)
        fan_in = width
    std = math.sqrt(weight_scale / fan_in)
    x.requires_grad_(True)
    inputs, pre_activations = [x], []
    h = x
    for _ in range(depth):
        if conv:
            weight = torch.randn(width, width, 3, 3, generator=generator) * std
            y = torch.nn.functional.conv2d(torch.nn.functional.pad(h, (1, 1, 1, 1), "circular"),
                                           weight)
        else:
            weight = torch.randn(width, width, generator=generator) * std
            y = h @ weight.T
        y.retain_grad()
        pre_activations.append(y)
        h = activation(y)
        h.retain_grad()
        inputs.append(h)
    # A random zero-mean gradient at the output stands in for dL/dx_L (He et al. 2015, eq. 13).
    h.backward(torch.randn(h.shape, generator=generator))
    forward = np.array([y.var().item() for y in pre_activations])
    backward = np.array([layer_input.grad.var().item() for layer_input in inputs[:-1]])
    return forward, backward


def per_layer_ratios(weight_scale, depth, width, batch, repeats, activation=torch.relu, conv=False,
                     generator=None):
    """Every layer's variance ratio Var(y_l)/Var(y_l-1) (forward) and Var(dx_l)/Var(dx_l+1)
    (backward), in `repeats` independently drawn networks. The derivation predicts the expectation
    of each such factor over the fresh weights of its layer, so their arithmetic mean estimates it,
    and their spread gives its standard error. (A geometric mean over a whole network would be
    biased below the expectation in narrow nets, by Jensen's inequality.)"""
    forward, backward = [], []
    for _ in range(repeats):
        f, b = one_network_variances(weight_scale, depth, width, batch, activation, conv, generator)
        forward.extend(f[1:] / f[:-1])
        backward.extend(b[:-1] / b[1:])
    return np.array(forward), np.array(backward)


def check_he_forward_backward(weight_scale=2.0, depth=40, conv=False, generator=None):
    """With Var(w) = weight_scale/n the per-layer variance ratio is weight_scale/2: He (2) keeps it 1.

    Returns the checks on the arithmetic mean of the per-layer ratios, forward and backward, over
    independently drawn networks (6 fully connected of width 512, 24 narrow conv nets).
    """
    kind = "conv" if conv else "fully connected"
    forward, backward = per_layer_ratios(weight_scale, depth, 64 if conv else 512, 8 if conv else 1000,
                                         repeats=24 if conv else 6, conv=conv, generator=generator)
    return [check_draws(f"1a He, {depth}-layer {kind} ReLU net, forward variance ratio per layer",
                        forward, 1.0, 0.05),
            check_draws(f"1a He, {depth}-layer {kind} ReLU net, backward gradient variance ratio per "
                        f"layer", backward, 1.0, 0.05)]


def check_he_steps(generator=None):
    """The derivation's two steps: Var(y) = n Var(w) E[x^2], and E[relu(y)^2] = Var(y)/2."""
    n, batch = 256, 5000
    # Step 1 holds for any input distribution, also a non-zero-mean one such as ReLU outputs. Each
    # of 24 independent draws of inputs and weights gives Var(y) / (n Var(w) E[x^2]), predicted 1.
    weight_variance = 0.37 / n
    step1_ratios = []
    for _ in range(24):
        x = torch.relu(torch.randn(batch, n, generator=generator)) * 1.7
        weight = torch.randn(n, 512, generator=generator) * math.sqrt(weight_variance)
        y = x @ weight
        step1_ratios.append(y.var().item() / (n * weight_variance * (x ** 2).mean().item()))
    checks = [check_draws("1a step 1: variance of a pre-activation / (fan-in x weight variance x "
                          "second moment of the input)", step1_ratios, 1.0, 0.02)]
    # Step 2 needs y zero-mean and symmetric; Gaussian and Laplace both are. Per sample,
    # relu(y)^2 - y^2/2 has mean 0 exactly then; its spread gives the standard error.
    rng = np.random.default_rng(0)
    for name, y_prev in [("Gaussian", rng.normal(0, 1.3, 2_000_000)),
                         ("Laplace", rng.laplace(0, 0.8, 2_000_000))]:
        half_variance = y_prev.var() / 2
        differences = (np.maximum(y_prev, 0) ** 2 - y_prev ** 2 / 2) / half_variance
        checks.append(check_draws(f"1a step 2: second moment after a ReLU / (half the variance "
                                  f"before it), {name} input", 1 + differences, 1.0, 0.01))
    return checks


def he_depth_curves(generator):
    """Variance against depth for three weight scales (1/n, He's 2/n, 3/n): fully connected forward
    and backward, and 3x3 convolutions forward; with each curve's end over its start."""
    scales = {"Var(w)=1/n (LeCun)": 1.0, "Var(w)=2/n (He)": 2.0, "Var(w)=3/n": 3.0}
    curves, summary = {}, {}
    for label, scale in scales.items():
        forward, backward = layer_variances(scale, 40, 512, 1000, generator=generator)
        conv_forward, _ = layer_variances(scale, 40, 64, 8, conv=True, repeats=4,
                                          generator=generator)
        curves[label] = (forward, backward, conv_forward)
        summary[label] = {"forward_last_over_first": forward[-1] / forward[0],
                          "backward_first_over_last": backward[0] / backward[-1],
                          "conv_forward_last_over_first": conv_forward[-1] / conv_forward[0]}
    return curves, summary


def answer_1a(generator, out):
    checks = check_he_forward_backward(conv=False, generator=generator)
    checks += check_he_forward_backward(depth=30, conv=True, generator=generator)
    checks += check_he_steps(generator=generator)
    curves, summary = he_depth_curves(generator)
    plot_he(curves, out)
    return checks, summary


# --------------------------------------------------------------------------------------------------
# 1b  Xavier against He
# --------------------------------------------------------------------------------------------------
def variance_ratio_per_layer(weight_scale, activation, depth=30, generator=None):
    forward, _ = layer_variances(weight_scale, depth, 512, 1000, activation=activation,
                                 generator=generator)
    return (forward[-1] / forward[0]) ** (1 / (depth - 1)), forward


def check_xavier_vs_he(generator=None):
    """For square layers Xavier's 2/(n_in+n_out) is 1/n: it keeps a linear network's variance and
    halves it per layer under ReLU, which He's 2/n repairs. Means over 8 independent networks each;
    the report's text and the figure's legend print these same means. With tanh the decay is not
    geometric, so it is checked over the whole depth against tanh_variance_recursion.
    Returns (checks, per-layer ratios, tanh variance after 30 layers: measured and predicted)."""
    identity = lambda y: y  # noqa: E731
    ratios, checks = {}, []
    for label, scale, activation, predicted in [("Xavier linear", 1.0, identity, 1.0),
                                                ("Xavier ReLU", 1.0, torch.relu, 0.5),
                                                ("He ReLU", 2.0, torch.relu, 1.0)]:
        draws, _ = per_layer_ratios(scale, 30, 512, 500, repeats=8, activation=activation,
                                    generator=generator)
        ratios[label] = float(draws.mean())
        checks.append(check_draws(f"1b {label.replace(' ', ', ')} net, variance ratio per layer",
                                  draws, predicted, 0.03))
    tanh_after_depth = {}
    for label, scale in [("Xavier tanh", 1.0), ("He tanh", 2.0)]:
        totals = []  # Var(y_30) / Var(y_1) in each of 8 independent networks
        for _ in range(8):
            forward, _ = one_network_variances(scale, 30, 512, 500, torch.tanh, False, generator)
            totals.append(forward[-1] / forward[0])
        predicted = tanh_variance_recursion(scale, 30)
        tanh_after_depth[label] = {"measured": float(np.mean(totals)), "predicted": predicted}
        checks.append(check_draws(f"1b {label.replace(' ', ', ')} net, variance after 30 layers / after 1, "
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
    """Variance against depth for Xavier's and He's scales with a linear, tanh and ReLU network;
    each curve labelled with its per-layer ratio (the checks' mean where they measured one)."""
    networks = [("linear", lambda y: y), ("tanh", torch.tanh), ("ReLU", torch.relu)]
    curves, ratios = {}, {}
    for init, scale in [("Xavier, Var(w)=2/(n_in+n_out)", 1.0), ("He, Var(w)=2/n_in", 2.0)]:
        curves[init] = {}
        for name, activation in networks:
            ratio, forward = variance_ratio_per_layer(scale, activation, generator=generator)
            ratio = measured_ratios.get(f"{init.split(',')[0]} {name}", ratio)  # the checks' mean
            curves[init][name] = (ratio, forward)
            ratios[f"{init.split(',')[0]} {name}"] = ratio
    return curves, ratios


def answer_1b(generator, out):
    checks, measured_ratios, tanh_after_depth = check_xavier_vs_he(generator=generator)
    curves, ratios = xavier_he_depth_curves(generator, measured_ratios)  # one number per quantity
    plot_xavier_vs_he(curves, out)
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


def kl_direct_sum(p, q):
    """The definition, sum over x in {0, 1} of P(x) log P(x)/Q(x), through scipy's pmf."""
    return sum(stats.bernoulli.pmf(x, p) * np.log(stats.bernoulli.pmf(x, p) / stats.bernoulli.pmf(x, q))
               for x in (0, 1))


def check_bernoulli_kl():
    grid = np.linspace(0.02, 0.98, 49)
    p, q = np.meshgrid(grid, grid, indexing="ij")
    closed = bernoulli_kl(p, q)
    checks = [check("1c Bernoulli KL, closed form vs direct sum (max abs error on grid)",
                    np.max(np.abs(closed - kl_direct_sum(p, q))), 0.0, 1e-12)]
    torch_kl = torch.distributions.kl_divergence(
        torch.distributions.Bernoulli(probs=torch.tensor(p)),
        torch.distributions.Bernoulli(probs=torch.tensor(q))).numpy()
    checks.append(check("1c Bernoulli KL, closed form vs torch.distributions (max abs error)",
                        np.max(np.abs(closed - torch_kl)), 0.0, 1e-9))
    # Monte Carlo: KL = E_{x~p}[log p(x)/q(x)]; 10^6 samples give a standard error of ~1e-3.
    rng = np.random.default_rng(1)
    for p_i, q_i in [(0.3, 0.6), (0.9, 0.2), (0.05, 0.5)]:
        x = rng.random(1_000_000) < p_i
        log_ratio = np.where(x, np.log(p_i / q_i), np.log((1 - p_i) / (1 - q_i)))
        stderr = log_ratio.std() / math.sqrt(len(x))
        checks.append(check(f"1c Bernoulli KL({p_i} || {q_i}), Monte Carlo vs closed form",
                            log_ratio.mean(), float(bernoulli_kl(p_i, q_i)), 5 * stderr))
    checks.append(check("1c KL >= 0 on the grid, 0 on the diagonal (min; |diag| max)",
                        min(closed.min(), 0.0) - np.abs(np.diag(closed)).max(), 0.0, 1e-12))
    forward, reverse = float(bernoulli_kl(0.1, 0.5)), float(bernoulli_kl(0.5, 0.1))
    by_hand = (0.5 * math.log(0.5 / 0.1) + 0.5 * math.log(0.5 / 0.9)) - (0.1 * math.log(0.1 / 0.5)
                                                                        + 0.9 * math.log(0.9 / 0.5))
    checks.append(check("1c asymmetry: KL(0.5||0.1) - KL(0.1||0.5), written out by hand (0.143, not 0)",
                        reverse - forward, by_hand, 1e-12))
    # As q -> 0 with p > 0 the KL grows like -p log q: the slope in -log q tends to p.
    q_small = np.array([1e-6, 1e-9])
    slope = np.diff(bernoulli_kl(0.3, q_small)) / np.diff(-np.log(q_small))
    checks.append(check("1c limit q->0: d KL(0.3||q) / d(-log q) -> p", slope[0], 0.3, 1e-6))
    checks.append(check("1c limit p=0: KL(0||q) = -log(1-q) at q=0.4", float(bernoulli_kl(0.0, 0.4)),
                        -math.log(0.6), 1e-12))
    # VAE with Bernoulli latents and a uniform prior: the KL term is log 2 minus the entropy.
    entropy = -(grid * np.log(grid) + (1 - grid) * np.log(1 - grid))
    checks.append(check("1c VAE form: KL(Bern(p)||Bern(1/2)) = log 2 - H(p) (max abs error)",
                        np.max(np.abs(bernoulli_kl(grid, 0.5) - (math.log(2) - entropy))), 0.0,
                        1e-12))
    return checks


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
    d_star = np.empty_like(p_data)
    for i, (a, b) in enumerate(zip(p_data, p_g)):
        if a + b < 1e-300:  # outside both supports D does not matter; any value is optimal
            d_star[i] = 0.5
            continue
        result = optimize.minimize_scalar(lambda d: -(a * np.log(d) + b * np.log1p(-d)),
                                          bounds=(1e-12, 1 - 1e-12), method="bounded",
                                          options={"xatol": 1e-12})
        d_star[i] = result.x
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
    p_data = P_DATA.pdf(X_GRID)
    checks, summary = [], {}
    # Converged generator: p_g = p_data.
    numeric_equal = pointwise_optimal_discriminator(p_data, p_data)
    checks.append(check("1d p_g = p_data: max |numerical argmax D - 1/2|",
                        np.max(np.abs(numeric_equal - 0.5)), 0.0, 1e-6))
    value_at_optimum = value_function(p_data, p_data, optimal_discriminator(p_data, p_data))
    checks.append(check("1d p_g = p_data: V(G, D*) = -log 4", value_at_optimum, -math.log(4), 1e-6))
    # A generator that has not converged: the formula still matches the pointwise maximiser,
    # and V(G, D*) = -log 4 + 2 JSD(p_data || p_g) (Goodfellow et al. 2014, Thm. 1).
    p_g = P_G_APART.pdf(X_GRID)
    numeric_apart = pointwise_optimal_discriminator(p_data, p_g)
    formula_apart = optimal_discriminator(p_data, p_g)
    support = (p_data + p_g) > 1e-12
    checks.append(check("1d p_g != p_data: max |numerical argmax D - D* formula|",
                        np.max(np.abs(numeric_apart - formula_apart)[support]), 0.0, 1e-6))
    value_apart = value_function(p_data, p_g, formula_apart)
    jsd = jensen_shannon(p_data, p_g)
    checks.append(check("1d p_g != p_data: V(G, D*) = -log 4 + 2 JSD", value_apart,
                        -math.log(4) + 2 * jsd, 1e-6))
    # The z-integral itself, by sampling z ~ N(0,1) and pushing it through G(z) = 1.5 + 0.7 z.
    z = np.random.default_rng(2).standard_normal(1_000_000)
    generated = 1.5 + 0.7 * z
    d_generated = optimal_discriminator(P_DATA.pdf(generated), P_G_APART.pdf(generated))
    log_fake = np.log1p(-d_generated)
    checks.append(check("1d E_z[log(1 - D(G(z)))] by sampling = int p_g log(1 - D) dx",
                        log_fake.mean(), expectation_of_log(p_g, 1 - formula_apart),
                        5 * log_fake.std() / math.sqrt(len(z))))
    summary.update(v_at_optimum=value_at_optimum, minus_log4=-math.log(4), v_apart=value_apart,
                   jsd_apart=jsd, p_g_apart={"mean": 1.5, "std": 0.7})
    return checks, summary


def answer_1d(out):
    checks, summary = check_gan_optimum()
    plot_gan_optimum(out)
    return checks, summary


def main(argv=None):
    args = common_parser(__doc__.split("\n")[0]).parse_args(argv)
    started_at = time.time()
    seed_everything(args.seed)
    generator = torch.Generator().manual_seed(args.seed)  # every draw of 1a and 1b, in this order
    he_checks, he_summary = answer_1a(generator, args.out)
    xavier_checks, xavier_ratios, tanh_after_depth = answer_1b(generator, args.out)
    kl_checks = answer_1c(args.out)
    gan_checks, gan_summary = answer_1d(args.out)
    checks = he_checks + xavier_checks + kl_checks + gan_checks
    failed = write_problem1_results(args, checks, he_summary, xavier_ratios, tanh_after_depth, gan_summary,
                                    started_at)
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
    note = ""
    if standard_error is not None:
        note = f" = {bound / standard_error:.1f} standard errors of {standard_error:.2g}"
        if bound < 4 * standard_error:
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


def below(ax, columns=2):
    """The legend under the panel, off the curves."""
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=columns, fontsize=9.5, frameon=False)


def plot_he(curves, out):
    """Variance against depth for several weight scales: only He's 2/n is flat."""
    # Drawn near the size it prints at (the text width), so 9 pt stays about 8 pt there.
    fig, axes = plt.subplots(1, 3, figsize=(7.4, 3.2))
    for label, (forward, backward, conv_forward) in curves.items():
        layers = np.arange(1, len(forward) + 1)
        axes[0].semilogy(layers, forward, label=label)
        axes[1].semilogy(layers, backward, label=label)
        axes[2].semilogy(layers, conv_forward, label=label)
    axes[0].set_title("forward: Var(y_l)\nfully connected")
    axes[1].set_title("backward: Var(dL/dx_l)\nfully connected")
    axes[2].set_title("forward: Var(y_l)\n3x3 convolutions")
    for ax in axes:
        ax.set_xlabel("layer l")
    axes[0].set_ylabel("variance (log scale)")
    below(axes[1], columns=3)
    save_figure(fig, out, "p1_he_variance_vs_depth")


def plot_xavier_vs_he(curves, out):
    fig, axes = plt.subplots(1, 2, figsize=(7, 3.6), sharey=True)
    for ax, (init, networks) in zip(axes, curves.items()):
        for name, (ratio, forward) in networks.items():
            ax.semilogy(np.arange(1, len(forward) + 1), forward, label=f"{name} (x{ratio:.2f}/layer)")
        ax.set_title(init)
        ax.set_xlabel("layer l")
        below(ax, columns=1)
    axes[0].set_ylabel("Var(y_l)")
    save_figure(fig, out, "p1_xavier_vs_he")


def plot_bernoulli_kl(out):
    grid = np.linspace(0.005, 0.995, 199)
    p, q = np.meshgrid(grid, grid, indexing="ij")
    fig, axes = plt.subplots(1, 2, figsize=(7, 3.1))
    image = axes[0].imshow(np.log10(bernoulli_kl(p, q).T + 1e-4), origin="lower",
                           extent=[0, 1, 0, 1], cmap="magma")
    axes[0].set_xlabel("p")
    axes[0].set_ylabel("q")
    axes[0].set_title("log10 KL(Bern(p) || Bern(q))")
    axes[0].grid(False)
    fig.colorbar(image, ax=axes[0])
    for q_fixed in (0.1, 0.5, 0.9):
        axes[1].plot(grid, bernoulli_kl(grid, q_fixed), label=f"KL(p || {q_fixed})")
    # q down to 1e-8 from either end: towards 0 the divergence grows only like 0.1 log(1/q), so
    # only points this close to the edge show that it does grow without bound there.
    edge = np.logspace(-8, -2.5, 40)
    q_grid = np.concatenate([edge, grid, 1 - edge[::-1]])
    axes[1].plot(q_grid, bernoulli_kl(0.1, q_grid), "--", label="KL(0.1 || q), as a function of q")
    axes[1].set_ylim(0, 3)
    axes[1].set_xlabel("p (solid) or q (dashed)")
    axes[1].set_title("asymmetric, and unbounded as q $\\to$ 0 or 1")
    axes[1].legend(fontsize=10.5, loc="upper center", bbox_to_anchor=(0.5, -0.22), ncol=2, frameon=False)
    save_figure(fig, out, "p1_bernoulli_kl")


def plot_gan_optimum(out):
    p_data = P_DATA.pdf(X_GRID)
    p_g = P_G_APART.pdf(X_GRID)
    fig, axes = plt.subplots(1, 3, figsize=(8.2, 3.4), gridspec_kw={"wspace": 0.45})
    axes[0].plot(X_GRID, p_data, label="p_data = N(0, 1)")
    axes[0].plot(X_GRID, p_g, label="p_g = N(1.5, 0.7^2)")
    axes[0].plot(X_GRID, optimal_discriminator(p_data, p_g), "k", label="D*(x)")
    axes[0].plot(X_GRID[::80], pointwise_optimal_discriminator(p_data[::80], p_g[::80]), "o",
                 ms=3, color="tab:red", label="numerical argmax")
    axes[0].set_xlim(-4, 5)
    axes[0].set_title("generator not converged")
    below(axes[0], columns=1)
    axes[1].plot(X_GRID, p_data, label="p_data = p_g")
    axes[1].plot(X_GRID, optimal_discriminator(p_data, p_data), "k", label="D*(x) = 1/2")
    axes[1].set_xlim(-4, 4)
    axes[1].set_ylim(0, 1)
    axes[1].set_title("converged: p_g = p_data")
    below(axes[1], columns=1)
    constant_d = np.linspace(0.01, 0.99, 197)
    values = [value_function(p_data, p_data, np.full_like(p_data, d)) for d in constant_d]
    axes[2].plot(constant_d, values)
    axes[2].axhline(-math.log(4), color="k", ls="--", lw=0.8)
    axes[2].plot([0.5], [-math.log(4)], "o", color="tab:red", label="max: D=1/2, V=-log 4")
    axes[2].set_xlabel("constant D")
    axes[2].set_ylabel("V(G, D)")
    axes[2].set_ylim(-5, 0)
    axes[2].set_title("V against D when p_g = p_data")
    below(axes[2], columns=1)
    save_figure(fig, out, "p1_gan_optimum")


def write_problem1_results(args, checks, he_summary, xavier_ratios, tanh_after_depth, gan_summary, started_at):
    failed = [c["name"] for c in checks if not c["passed"]]
    print(f"{len(checks) - len(failed)} passed, {len(failed)} failed")
    path = write_results(args, "problem1", {
        "checks": checks, "n_checks": len(checks), "n_failed": len(failed),
        "all_passed": not failed, "he": he_summary, "xavier_vs_he_ratio_per_layer": xavier_ratios,
        "tanh_variance_after_30_layers": tanh_after_depth,
        "gan": gan_summary}, data_source="none (analytic checks)", started_at=started_at)
    print(f"wrote {path} and {args.out / 'figures'}/p1_*.pdf")
    return failed


if __name__ == "__main__":
    run_main(main)
