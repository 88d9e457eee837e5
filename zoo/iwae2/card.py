"""The math card of the two-stochastic-layer IWAE (Burda et al. 2016, Table 1)."""

from zoo.card import Equation, Hyperparameter, MathCard, Paper, Site
from zoo.claims import FULL_LONG, Budget, Claim, Contender, PaperFigure

# The one-layer baselines share the first layer of the two-layer network
# (x - 200 - 200 - z1, tanh), so the comparison isolates the second stochastic layer.
_ONE_LAYER = {"hidden": [200, 200], "activation": "tanh", "z_dim": 50}
_BUDGETS = {
    "quick": Budget(dataset="digits", epochs=30, seeds=2, batch_size=64, eval_k=1000),
    "full": FULL_LONG,  # the paper: L_5000 after 3,280 epochs of MNIST
}

CARD = MathCard(
    name="iwae2",
    title="IWAE with two stochastic layers",
    paper=Paper(
        authors="Yuri Burda, Roger Grosse, Ruslan Salakhutdinov",
        title="Importance Weighted Autoencoders",
        venue="ICLR",
        year=2016,
        url="https://arxiv.org/abs/1509.00519",
    ),
    idea=(
        "A hierarchical latent-variable model z2 -> z1 -> x, each stochastic layer a diagonal "
        "Gaussian computed by an MLP from the layer above, with a bottom-up guide x -> z1 -> z2. "
        "Trained on the k-sample importance-weighted bound, the second layer is used rather than "
        "collapsed onto the prior, and the model reaches a higher log-likelihood than one "
        "stochastic layer: the hierarchical gain of the paper's Table 1."
    ),
    generative=(
        Equation("iwae2.1", r"p(z_2) = \mathcal N(z_2;\,0, I_{d_2})", "The top layer: a standard normal prior."),
        Equation(
            "iwae2.2",
            r"p_\theta(z_1\mid z_2) = \mathcal N\big(z_1;\ \mu_\theta(z_2), \operatorname{diag}\sigma^2_\theta(z_2)\big)",
            "The lower layer given the top one: a diagonal Gaussian from an MLP (the prior1 network).",
        ),
        Equation(
            "iwae2.3",
            r"p_\theta(x\mid z_1) = \prod_i \mathrm{Bernoulli}\big(x_i;\ \sigma(f_\theta(z_1))_i\big)",
            "The pixels given the lower layer.",
        ),
    ),
    guide=(
        Equation(
            "iwae2.4",
            r"q_\phi(z_1, z_2\mid x) = \mathcal N\big(z_1;\ \mu_\phi(x), \operatorname{diag}\sigma^2_\phi(x)\big)\,"
            r"\mathcal N\big(z_2;\ \mu_\phi(z_1), \operatorname{diag}\sigma^2_\phi(z_1)\big)",
            "A bottom-up guide: z1 from x, then z2 from the drawn z1 (networks encoder and encoder2).",
        ),
    ),
    objective=(
        Equation(
            "iwae2.5",
            r"\begin{aligned}\mathcal L_k(x) &= \mathbb E\Big[\log \frac1k \sum_{i=1}^{k} w_i\Big],\\"
            r" w_i &= \frac{p(z_2^{(i)})\,p_\theta(z_1^{(i)}\mid z_2^{(i)})\,p_\theta(x\mid z_1^{(i)})}"
            r"{q_\phi(z_1^{(i)}\mid x)\,q_\phi(z_2^{(i)}\mid z_1^{(i)})}\end{aligned}",
            "The k-sample bound per datapoint with (z1, z2) drawn jointly from the guide, summed over the minibatch.",
        ),
        Equation(
            "iwae2.6",
            r"\mathcal L_1(x) = \mathbb E_{q_\phi}\big[\log p_\theta(x\mid z_1) + \log p_\theta(z_1\mid z_2) + \log p(z_2)"
            r" - \log q_\phi(z_1\mid x) - \log q_\phi(z_2\mid z_1)\big] \le \mathcal L_k \le \log p_\theta(x)",
            "With k = 1 it is the hierarchical ELBO; the bound tightens with k (both tested in tests/test_iwae2.py).",
        ),
    ),
    model_sites=(
        Site("z2", "Normal", description="top latent layer, prior (iwae2.1)"),
        Site("z1", "Normal", description="lower latent layer given z2 (iwae2.2)"),
        Site("x", "Bernoulli", observed=True, description="pixels given z1 (iwae2.3)"),
    ),
    guide_sites=(
        Site("z1", "Normal", description="q(z1|x) (iwae2.4)"),
        Site("z2", "Normal", description="q(z2|z1) (iwae2.4)"),
    ),
    hyperparameters=(
        Hyperparameter("k", 5, "importance samples per datapoint in the training bound", "k"),
        Hyperparameter("z_dim", 100, "dimension of the lower layer z1", "d_1"),
        Hyperparameter("z2_dim", 50, "dimension of the top layer z2", "d_2"),
        Hyperparameter("hidden", (200, 200), "hidden widths between x and z1 (encoder; the decoder mirrors them)"),
        Hyperparameter("hidden2", (100, 100), "hidden widths between z1 and z2, in p(z1|z2) and q(z2|z1)"),
        Hyperparameter("activation", "tanh", "hidden nonlinearity (the paper's tanh)"),
        Hyperparameter("likelihood", "bernoulli", "observation model p(x|z1)"),
    ),
    objective_kind="importance-weighted bound",
    evaluation="test log-likelihood estimated with L_5000; active units per layer (Cov_x E_q[u] > 0.01); PSIS k-hat",
    notes=(
        "Pyro: the zoo's per-datapoint ImportanceWeightedELBO, which scores all sites of the trace; "
        "NumPyro: RenyiELBO(alpha=0, num_particles=k).",
        "Defaults are the paper's two-layer MNIST network (784-200-200-100-100-100-50, tanh); the "
        "benchmark shrinks it for 2 CPU cores.",
        "The paper's training schedule (3^i passes at learning rate 1e-3 * 10^(-i/7), 3280 passes) is "
        "far beyond a CPU budget; the claims use a fixed learning rate and a few dozen epochs.",
    ),
    claims=(
        Claim(
            id="iwae2.beats_one_layer_iwae",
            statement="Two stochastic layers reach a higher test log-likelihood than one, both trained on L_5.",
            metric="test_log_likelihood",
            ours=Contender("IWAE, 2 layers, k=5", "iwae2", settings={"k": 5}),
            baseline=Contender("IWAE, 1 layer, k=5", "iwae", settings={**_ONE_LAYER, "k": 5}),
            direction="higher",
            paper=PaperFigure(
                "-83.89 nats (2 layers, k=5) vs -85.54 (1 layer, k=5)", "Burda et al. 2016, Table 1 (MNIST)", "recalled"
            ),
            budgets=_BUDGETS,
            note="Digits or Fashion-MNIST instead of MNIST, and a far shorter schedule than the paper's 3280 passes.",
        ),
        Claim(
            id="iwae2.beats_vae",
            statement="The two-layer IWAE reaches a higher test log-likelihood than a one-layer VAE of the same first layer.",
            metric="test_log_likelihood",
            ours=Contender("IWAE, 2 layers, k=5", "iwae2", settings={"k": 5}),
            baseline=Contender("VAE, 1 layer", "vae", settings=_ONE_LAYER),
            direction="higher",
            paper=PaperFigure(
                "-83.89 nats (IWAE 2 layers, k=5) vs -86.76 (VAE 1 layer)", "Burda et al. 2016, Table 1 (MNIST)", "recalled"
            ),
            budgets=_BUDGETS,
            note="The VAE is trained on the ELBO (k=1); both are evaluated with the same L_K.",
        ),
    ),
)
