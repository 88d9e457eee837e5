"""The math card of the MSVAE (Cai, Gao & Ji 2017)."""

import dataclasses

from zoo.card import Equation, Hyperparameter, MathCard, Paper, Site
from zoo.claims import FULL_LONG, Budget, Claim, Contender, PaperFigure

_BUDGETS = {
    "quick": Budget(dataset="digits", epochs=30, seeds=2, batch_size=64, eval_k=100, binarize="none"),
    # 5,000 images and 10 epochs: the stage-2 CNN runs at about 30 s an epoch of
    # them under XLA on the CPU (about 2.5 s in PyTorch).
    "full": dataclasses.replace(FULL_LONG, epochs=10, limit_train=5000, batch_size=128, eval_k=100, binarize="none"),
}
_PAPER = PaperFigure(
    "qualitative only: stage-2 samples look sharper than a VAE's (MNIST, CelebA figures)",
    "Cai, Gao & Ji 2017, abstract and sample figures",
    "confirmed",
)

CARD = MathCard(
    name="msvae",
    title="MSVAE: Multi-Stage Variational Autoencoder",
    paper=Paper(
        authors="Lei Cai, Hongyang Gao, Shuiwang Ji",
        title="Multi-Stage Variational Auto-Encoders for Coarse-to-Fine Image Generation",
        venue="arXiv:1705.07202 (SIAM SDM 2019)",
        year=2017,
        url="https://arxiv.org/abs/1705.07202",
    ),
    idea=(
        "A VAE trained with the l2 (Gaussian) loss produces blurry images. The MSVAE keeps that VAE "
        "as stage 1 and adds a refiner network that maps the coarse stage-1 image to a sharper one. "
        "Being independent of the VAE, the refiner can use another loss (l1 here) and another "
        "architecture (a residual CNN). Its gradient is stopped at the coarse image by default, "
        "so stage 1 stays an exact VAE with its own ELBO and log-likelihood, and the model observes "
        "x only once."
    ),
    generative=(
        Equation("msvae.1", r"p(z) = \mathcal N(z;\,0, I_d)", "A standard normal prior."),
        Equation(
            "msvae.2",
            r"p_{\theta_1}(x\mid z) = \mathcal N\big(x;\ \hat x_1, \sigma_0^2 I\big),\qquad \hat x_1 = f_{\theta_1}(z)",
            "Stage 1: a fixed-scale Gaussian decoder; its mean is recorded as the deterministic site x1.",
        ),
        Equation(
            "msvae.5",
            r"\hat x_s = f_{\theta_s}(\hat x_{s-1}) = \hat x_{s-1} + g_{\theta_s}(\hat x_{s-1}),\quad s = 2,\dots,S;"
            r"\qquad x_{\text{gen}} = f_{\theta_S}\circ\cdots\circ f_{\theta_2}\circ f_{\theta_1}(z)",
            "The refiners are deterministic residual CNNs (the identity at initialisation); generation runs all stages.",
        ),
    ),
    guide=(
        Equation(
            "msvae.3",
            r"q_\phi(z\mid x) = \mathcal N\big(z;\ \mu_\phi(x), \operatorname{diag}\sigma^2_\phi(x)\big)",
            "The VAE's amortized Gaussian encoder.",
        ),
    ),
    objective=(
        Equation(
            "msvae.4",
            r"\begin{aligned}\mathcal L(x) &= \underbrace{\mathbb E_{q_\phi}\Big[\tfrac{1}{2\sigma_0^2}\|x - \hat x_1\|_2^2\Big]"
            r" + \mathrm{KL}\big(q_\phi(z\mid x)\,\|\,p(z)\big) + \text{const}}_{-\mathrm{ELBO}_1(x)}\\"
            r"&\quad + \lambda \sum_{s=2}^{S} \mathbb E_{q_\phi}\,\ell\big(x,\ f_{\theta_s}(\cdots f_{\theta_2}(\mathrm{sg}[\hat x_1]))\big),"
            r"\qquad \ell(x, \hat x) = \|x - \hat x\|_1\end{aligned}",
            "Minimised, summed over the minibatch. sg stops the gradient, so the refinement term trains the "
            "refiners only and stage 1 is an exact VAE; joint=true drops the sg.",
        ),
        Equation(
            "msvae.6",
            r"\mathrm{sharp}(x) = \tfrac12\,\overline{|x_{i+1,j}-x_{i,j}|} + \tfrac12\,\overline{|x_{i,j+1}-x_{i,j}|},"
            r"\qquad \mathrm{LV}(x) = \operatorname{Var}_{ij}\big[(\Delta x)_{ij}\big]",
            "Sharpness: mean finite-difference gradient magnitude and variance of the Laplacian, "
            "reported relative to real test images.",
        ),
    ),
    model_sites=(
        Site("z", "Normal", description="latent code, prior (msvae.1)"),
        Site("x", "Normal", observed=True, description="pixels under stage 1's fixed-scale Gaussian (msvae.2)"),
    ),
    guide_sites=(Site("z", "Normal", description="amortized posterior (msvae.3)"),),
    hyperparameters=(
        Hyperparameter("stages", 2, "number of stages S (1: the plain VAE, no refiner)", "S"),
        Hyperparameter("refine_weight", 1.0, "weight of the refinement loss", r"\lambda"),
        Hyperparameter("refine_loss", "l1", "the refiners' loss: l1 or l2", r"\ell"),
        Hyperparameter("joint", False, "let the refinement loss reach stage 1 (drops the stop-gradient)"),
        Hyperparameter("sigma0", 0.1, "fixed scale of the stage-1 Gaussian decoder", r"\sigma_0"),
        Hyperparameter("refiner_channels", 16, "channels of each refiner's hidden convolutions"),
        Hyperparameter("refiner_layers", 3, "3x3 convolutions per refiner"),
        Hyperparameter("z_dim", 50, "latent dimension d", "d"),
        Hyperparameter("hidden", (400,), "hidden widths of the encoder MLP (the stage-1 decoder mirrors them)"),
        Hyperparameter("likelihood", "gaussian", "stage 1's observation model (fixed-scale Gaussian)"),
    ),
    objective_kind="stage-1 ELBO + stop-gradient refinement loss",
    evaluation=(
        "stage-1 test ELBO and IS log-likelihood; per-stage l1 / l2 reconstruction error; sample and "
        "reconstruction sharpness (gradient magnitude, Laplacian variance) relative to real images"
    ),
    notes=(
        "The model is stage 1 only and x is observed once, so the importance-sampled log-likelihood "
        "and PSIS score the stage-1 VAE; the refiners enter only the training loss.",
        "The paper publishes no code; the refiner (a residual CNN), sigma0, lambda and the "
        "stop-gradient default are the zoo's choices, not the paper's numbers. The paper's "
        "comparisons are qualitative.",
        "Pyro: RefinementELBO, a TraceMeanField_ELBO subclass adding the term in "
        "_differentiable_loss_particle; NumPyro: the same term added to TraceMeanField_ELBO on a "
        "replayed guide trace.",
    ),
    claims=(
        Claim(
            id="msvae.stage2_lower_l1",
            statement="The refined (stage-2) reconstructions have a lower l1 error than stage 1's.",
            metric="recon_l1_stage2",
            ours=Contender("MSVAE", "msvae"),
            baseline_metric="recon_l1_stage1",
            direction="lower",
            paper=_PAPER,
            budgets=_BUDGETS,
            note="The paper shows pictures; the zoo measures the l1 error the refiner is trained on, on test images.",
        ),
        Claim(
            id="msvae.sharper_than_vae",
            statement="MSVAE samples are sharper than those of the plain VAE (stage 1 alone) trained at the same budget.",
            metric="sample_gradient_ratio_final",
            ours=Contender("MSVAE, 2 stages", "msvae"),
            baseline=Contender("VAE (stage 1 alone)", "msvae", settings={"stages": 1}),
            direction="higher",
            paper=_PAPER,
            budgets=_BUDGETS,
            note="Sharpness is the mean gradient magnitude of samples relative to real test images.",
        ),
    ),
)
