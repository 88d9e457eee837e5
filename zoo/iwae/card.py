"""The math card of the IWAE."""

from zoo.claims import FULL, QUICK, Claim, Contender, PaperFigure
from zoo.card import Equation, Hyperparameter, MathCard, Paper, Site

TABLE_1 = "Burda et al. 2016, Table 1, MNIST, 1 stochastic layer"


def above_vae_claim(k: int, paper: PaperFigure) -> Claim:
    """IWAE trained on L_k against the VAE of the same network, at equal epochs."""
    return Claim(
        id=f"iwae.k{k}_above_vae",
        statement=f"IWAE (k={k}) reaches a higher test log-likelihood L_K than the VAE at equal epochs",
        metric="test_log_likelihood",
        ours=Contender(f"IWAE k={k}", "iwae", settings={"k": k}),
        baseline=Contender("VAE", "vae"),
        direction="higher",
        paper=paper,
        budgets={"quick": QUICK, "full": FULL},
        note=(f"Equal epochs, not equal compute: each IWAE step decodes {k} samples per image. L_K with "
              f"K = eval_k ({QUICK.eval_k} quick, {FULL.eval_k} full) on the test subset, not L_5000 on all of MNIST."),
    )


CARD = MathCard(
    name="iwae",
    title="IWAE: Importance Weighted Autoencoder",
    paper=Paper(
        authors="Yuri Burda, Roger Grosse, Ruslan Salakhutdinov",
        title="Importance Weighted Autoencoders",
        venue="ICLR",
        year=2016,
        url="https://arxiv.org/abs/1509.00519",
    ),
    idea=(
        "The VAE's model and guide, trained on a tighter bound: the log of an average of "
        "k importance weights p(x, z_i) / q(z_i|x). With k = 1 it is the ELBO; it grows with "
        "k towards log p(x). Its gradient weights each sample by its normalised importance "
        "weight, so the encoder is no longer punished for covering posterior mass that a "
        "single sample would miss, and the model learns more active latent units."
    ),
    generative=(
        Equation("iwae.1", r"p(z) = \mathcal N(z;\,0, I_d),\qquad p_\theta(x\mid z) = \prod_i \mathrm{Bernoulli}\big(x_i;\ \sigma(f_\theta(z))_i\big)",
                 "The VAE's generative model (one stochastic layer)."),
    ),
    guide=(
        Equation("iwae.2", r"q_\phi(z\mid x) = \mathcal N\big(z;\ \mu_\phi(x), \operatorname{diag}\sigma^2_\phi(x)\big)",
                 "The VAE's amortized Gaussian encoder, used as the importance proposal."),
    ),
    objective=(
        Equation(
            "iwae.3",
            r"\mathcal L_k(x) = \mathbb E_{z_1,\dots,z_k \overset{iid}{\sim} q_\phi(z\mid x)}"
            r"\Big[\log \frac1k \sum_{i=1}^{k} w_i\Big],\qquad w_i = \frac{p_\theta(x, z_i)}{q_\phi(z_i\mid x)}",
            "The k-sample bound per datapoint: log-sum-exp over the k particles of each datapoint, then summed over the minibatch.",
        ),
        Equation(
            "iwae.4",
            r"\mathcal L_1 = \mathrm{ELBO} \le \mathcal L_k \le \mathcal L_{k+1} \le \log p_\theta(x)",
            "The bound tightens with k (tested in tests/test_objectives.py).",
        ),
        Equation(
            "iwae.5",
            r"\nabla \mathcal L_k = \mathbb E\Big[\sum_{i=1}^k \tilde w_i\, \nabla \log w_i\Big],\qquad \tilde w_i = \frac{w_i}{\sum_j w_j}",
            "Each particle's gradient is weighted by its normalised importance weight.",
        ),
    ),
    model_sites=(
        Site("z", "Normal", description="latent code, prior"),
        Site("x", "Bernoulli", observed=True, description="pixels, likelihood"),
    ),
    guide_sites=(Site("z", "Normal", description="importance proposal q(z|x)"),),
    hyperparameters=(
        Hyperparameter("k", 5, "importance samples per datapoint in the training bound", "k"),
        Hyperparameter("z_dim", 50, "latent dimension d", "d"),
        Hyperparameter("hidden", (400,), "hidden widths of the encoder MLP (the decoder mirrors them)"),
        Hyperparameter("likelihood", "bernoulli", "observation model p(x|z)"),
    ),
    objective_kind="importance-weighted bound",
    evaluation="test negative log-likelihood estimated with L_5000; PSIS k-hat of the guide",
    notes=(
        "Pyro: a custom ELBO (log-sum-exp over particles per datapoint); RenyiELBO(alpha=0) would log-sum-exp whole minibatches (pyro issue #3289).",
        "NumPyro: RenyiELBO(alpha=0, num_particles=k), per datapoint since NumPyro PR #1608.",
        "The paper's network is 784-200-200-50 with tanh; the zoo default is the VAE's 784-400-50 so that VAE and IWAE differ only in the objective.",
    ),
    claims=(
        above_vae_claim(5, PaperFigure("-85.54 nats (IWAE k=5) vs -86.47 (VAE k=5), L_5000", TABLE_1, "recalled")),
        above_vae_claim(50, PaperFigure("-84.78 nats (IWAE k=50) vs -86.35 (VAE k=50), L_5000", TABLE_1, "secondary")),
    ),
)
