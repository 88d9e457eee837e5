"""The math card of the VAE."""

import dataclasses

from zoo.claims import FULL, QUICK, Claim, Contender, PaperFigure
from zoo.card import Equation, Hyperparameter, MathCard, Paper, Site

CARD = MathCard(
    name="vae",
    title="VAE: Variational Autoencoder",
    paper=Paper(
        authors="Diederik P. Kingma, Max Welling",
        title="Auto-Encoding Variational Bayes",
        venue="ICLR",
        year=2014,
        url="https://arxiv.org/abs/1312.6114",
    ),
    idea=(
        "A latent-variable model p(x, z) = p(z) p(x|z) whose decoder is a neural network, "
        "fitted together with an amortized Gaussian encoder q(z|x) by maximising the "
        "evidence lower bound. The reparameterisation z = mu + sigma * eps makes the "
        "bound differentiable in the encoder's parameters, so both networks train with "
        "stochastic gradients."
    ),
    generative=(
        Equation("vae.1", r"p(z) = \mathcal N(z;\, 0, I_d)", "A standard normal prior over the latent code."),
        Equation(
            "vae.2",
            r"p_\theta(x \mid z) = \prod_{i=1}^{D} \mathrm{Bernoulli}\big(x_i;\ \sigma(f_\theta(z))_i\big)"
            r"\quad\text{or}\quad \mathcal N\big(x;\ \mu_\theta(z), \operatorname{diag}\sigma_\theta^2(z)\big)",
            "The decoder gives Bernoulli logits (binary or grey-level pixels) or a Gaussian mean and scale.",
        ),
    ),
    guide=(
        Equation(
            "vae.3",
            r"q_\phi(z \mid x) = \mathcal N\big(z;\ \mu_\phi(x), \operatorname{diag}\sigma_\phi^2(x)\big),"
            r"\qquad z = \mu_\phi(x) + \sigma_\phi(x) \odot \epsilon,\ \epsilon \sim \mathcal N(0, I)",
            "The amortized diagonal-Gaussian encoder, sampled by reparameterisation.",
        ),
    ),
    objective=(
        Equation(
            "vae.4",
            r"\mathcal L(x) = \mathbb E_{q_\phi(z \mid x)}\big[\log p_\theta(x \mid z)\big]"
            r" - \mathrm{KL}\big(q_\phi(z \mid x)\,\|\,p(z)\big)",
            "The evidence lower bound, per datapoint, maximised; the loss is its negative summed over the minibatch.",
        ),
        Equation(
            "vae.5",
            r"\mathrm{KL}\big(q_\phi(z \mid x)\,\|\,p(z)\big) = -\tfrac12 \sum_{j=1}^{d}"
            r"\big(1 + \log\sigma_j^2 - \mu_j^2 - \sigma_j^2\big)",
            "The KL term in closed form (TraceMeanField_ELBO uses it instead of a sample).",
        ),
    ),
    model_sites=(
        Site("z", "Normal", description="latent code, prior (vae.1)"),
        Site("x", "Bernoulli", observed=True, description="pixels, likelihood (vae.2)"),
    ),
    guide_sites=(Site("z", "Normal", description="amortized posterior (vae.3)"),),
    hyperparameters=(
        Hyperparameter("z_dim", 50, "latent dimension d", "d"),
        Hyperparameter("hidden", (400,), "hidden widths of the encoder MLP (the decoder mirrors them)"),
        Hyperparameter("likelihood", "bernoulli", "observation model p(x|z): bernoulli or gaussian"),
    ),
    objective_kind="ELBO",
    evaluation="importance-sampled test log-likelihood (K=5000), test ELBO, PSIS k-hat of the guide",
    notes=(
        "Trained with TraceMeanField_ELBO (analytic KL: lower-variance gradients than the sampled KL of Trace_ELBO).",
        "Default network 784-400-50 as in Pyro's and NumPyro's VAE examples; the paper used 500 hidden units and Adagrad.",
    ),
    claims=(
        Claim(
            id="vae.pyro_example",
            statement="the zoo's VAE reaches the test log-likelihood of Pyro's own VAE example on the same data, network and epochs (no worse than by 0.5 nats)",
            metric="test_log_likelihood",
            ours=Contender("zoo VAE", "vae"),
            baseline=Contender("Pyro examples/vae", "reference:pyro-vae-example"),
            direction="higher",
            margin=-0.5,
            paper=PaperFigure("86.76 nats test NLL (MNIST, k=1 VAE)", "Burda et al. 2016, Table 1", "secondary"),
            budgets={"quick": QUICK, "full": FULL},
            note="The reference is Pyro's examples/vae loop (SVI, Trace_ELBO, pyro.optim.Adam, DataLoader) with the zoo's networks (zoo/references.py); Pyro backend only.",
        ),
    ),
)
