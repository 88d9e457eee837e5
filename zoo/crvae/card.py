"""The math card of the CRVAE (Shang, Sohn & Tian 2018), after the authors' code."""

import dataclasses

from zoo.card import Equation, Hyperparameter, MathCard, Paper, Site
from zoo.claims import FULL_LONG, Budget, Claim, Contender, PaperFigure

STEPS = 4  # the config default; the card lists one site per step
_BUDGETS = {
    "quick": Budget(dataset="digits", epochs=30, seeds=2, batch_size=64, eval_k=1000),
    "full": dataclasses.replace(FULL_LONG, batch_size=128),
}

CARD = MathCard(
    name="crvae",
    title="CRVAE: Channel-Recurrent VAE",
    paper=Paper(
        authors="Wenling Shang, Kihyuk Sohn, Yuandong Tian",
        title="Channel-Recurrent Autoencoding for Image Modeling",
        venue="WACV",
        year=2018,
        url="https://arxiv.org/abs/1706.03729",
    ),
    idea=(
        "The latent code is split into T blocks along the encoder's channels. An LSTM runs over the "
        "encoder's channel blocks and gives each latent block its scale, and a second LSTM runs over "
        "the latent blocks in the decoder, so the blocks are processed in sequence rather than as one "
        "flat vector. Each block is its own latent site, which lets each step's KL carry its own weight. "
        "The posterior is still one diagonal Gaussian: the recurrence produces only the scales, and "
        "z_t does not condition on z_<t."
    ),
    generative=(
        Equation("crvae.1", r"p(z) = \prod_{t=1}^{T} \mathcal N(z_t;\,0, I),\qquad z = (z_1,\dots,z_T)", "Independent standard normal blocks."),
        Equation(
            "crvae.2",
            r"\hat u_t = \mathrm{LSTM}_{\text{dec}}(z_t, \hat h_{t-1}),\quad \hat z_t = z_t + W\hat u_t + b,\quad "
            r"p_\theta(x\mid z) = \prod_i \mathrm{Bernoulli}\big(x_i;\ \sigma(f_\theta(\hat z))_i\big)",
            "The decoder LSTM over the latent blocks, then an MLP on the transformed latents. The residual "
            "z_t is the zoo's default (decoder_residual); the paper's decoder is the same without it.",
        ),
    ),
    guide=(
        Equation(
            "crvae.3",
            r"\begin{aligned} h &= g_\phi(x) = (u_1,\dots,u_T),\qquad \mu(x) = W_\mu h + b_\mu,\\"
            r" h_t &= \mathrm{LSTM}_{\text{enc}}(u_t, h_{t-1}),\qquad \sigma_t(x) = \mathrm{softplus}(W_\sigma h_t),\\"
            r" q_\phi(z\mid x) &= \prod_{t=1}^T \mathcal N\big(z_t;\ \mu_t(x), \operatorname{diag}\sigma_t^2(x)\big)\end{aligned}",
            "The mean from all features at once; each block's scale from the encoder LSTM over the channel blocks u_t.",
        ),
    ),
    objective=(
        Equation(
            "crvae.4",
            r"\mathcal L(x) = -\mathbb E_{q_\phi}\big[\log p_\theta(x\mid z)\big] + \sum_{t=1}^{T} \alpha_t\,"
            r"\mathrm{KL}\big(q_\phi(z_t\mid x)\,\|\,\mathcal N(0, I)\big)",
            "Minimised, summed over the minibatch; alpha_t = 1 (the default) is the negative ELBO. Each site "
            "sits under poutine.scale(alpha_t) in model and guide.",
        ),
        Equation(
            "crvae.5",
            r"\mathcal L_{\mathrm{MI}} = \kappa\,\mathbb E\Big[\sum_{t=1}^{T} w_t\,\big\|r_\omega(\hat x)_t - \hat u_t(z)\big\|^2\Big],"
            r"\quad z \sim q_\phi(z\mid x)\ \text{or}\ p(z)",
            "The optional MI regulariser: a head r_omega regresses the decoder LSTM's outputs from the decoded image, "
            "on reconstructions and prior samples (an InfoGAN-style lower bound on I(u; x)); off when kappa = 0.",
        ),
    ),
    model_sites=tuple(Site(f"z_{t}", "Normal", description=f"latent block {t}, prior (crvae.1)") for t in range(1, STEPS + 1))
    + (Site("x", "Bernoulli", observed=True, description="pixels (crvae.2)"),),
    guide_sites=tuple(Site(f"z_{t}", "Normal", description=f"q(z_{t}|x), scale from LSTM step {t} (crvae.3)") for t in range(1, STEPS + 1)),
    hyperparameters=(
        Hyperparameter("steps", STEPS, "number of latent blocks / LSTM steps", "T"),
        Hyperparameter("z_dim", 48, "total latent size (T equal blocks)", "d"),
        Hyperparameter("hidden", (400,), "hidden widths of the encoder MLP; the last one is split into T channel blocks"),
        Hyperparameter("lstm_hidden", 64, "width of the encoder and decoder LSTMs"),
        Hyperparameter("recurrent", True, "use the LSTM pathways (false: linear heads, the VAE's networks)"),
        Hyperparameter("decoder_residual", True, "add z_t to the decoder LSTM's projection (false: the paper's decoder)"),
        Hyperparameter("kl_weights", (), "alpha_t per step; empty means all 1", r"\alpha_t"),
        Hyperparameter("mi_weight", 0.0, "weight of the MI regulariser", r"\kappa"),
        Hyperparameter("mi_step_weights", (), "w_t per step of the MI loss; empty means all 1", "w_t"),
        Hyperparameter("mi_hidden", 128, "hidden width of the code-recovery head r_omega"),
        Hyperparameter("likelihood", "bernoulli", "observation model p(x|z)"),
    ),
    objective_kind="ELBO with per-step KL weights (+ optional MI regulariser)",
    evaluation="test ELBO and IS log-likelihood; the per-step KL profile KL(q(z_t|x) || N(0, I)) on test images",
    notes=(
        "The paper's encoder is convolutional and its blocks are channel groups of a 4x4 feature map; on "
        "2 CPU cores the zoo uses an MLP whose last hidden layer is split into T blocks (the same "
        "recurrence over feature blocks, without the convolutions).",
        "The authors use T = 8, a 1024-dimensional latent and two LSTM layers; the zoo defaults to "
        "T = 4, one LSTM layer and a 48-dimensional latent.",
        "In the authors' code the MI head reads the GAN discriminator's features and the per-step MI "
        "weights are (0.1, 1.5, 1.5, 1.25, 0.1, 0.1, 1, 1) for T = 8; without a GAN the zoo's head "
        "reads the decoded image, and the code it regresses is detached (the term trains decoder and head).",
        "The decoder adds z_t to the projected LSTM output by default: with the LSTM path alone "
        "(decoder_residual=false, the paper's form) the zoo's small digits runs collapsed to the prior "
        "(total KL 0.07 nats after 30 epochs, against 3.2 with the residual path); the authors train "
        "their LSTMs at lr/T with gradient clipping, which the zoo's shared loop does not do.",
        "The optional crVAE-GAN term of the paper is not implemented.",
    ),
    claims=(
        Claim(
            id="crvae.elbo_vs_vae",
            statement="A channel-recurrent VAE reaches a test ELBO at least that of a VAE with a latent of equal size.",
            metric="test_elbo",
            ours=Contender("CRVAE, T=4", "crvae"),
            baseline=Contender("VAE, same latent size", "vae", settings={"z_dim": 48}),
            direction="higher",
            paper=PaperFigure(
                "no ELBO table; the paper reports inception scores and user studies on 64x64 birds, "
                "and the authors' code evaluates IS-NLL on MNIST",
                "Shang, Sohn & Tian 2018; WendyShang/crVAE main_mnist.lua",
                "unconfirmed",
            ),
            budgets=_BUDGETS,
            note="The zoo's own check of the architecture; the paper's figures are not comparable.",
        ),
        Claim(
            id="crvae.uses_every_step",
            statement="Every latent block carries information: the smallest per-step KL stays above 0.5 nats.",
            metric="kl_step_min",
            ours=Contender("CRVAE, T=4", "crvae"),
            threshold=0.5,
            direction="higher",
            budgets=_BUDGETS,
            note="The per-step KL profile is what the step-wise weights act on; the threshold is the zoo's.",
        ),
    ),
)
