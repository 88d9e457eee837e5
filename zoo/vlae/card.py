"""The math card of the VLAE (Chen et al. 2017)."""

from zoo.card import Equation, Hyperparameter, MathCard, Paper, Site
from zoo.claims import Budget, Claim, Contender, PaperFigure

# Equal budgets for every contender of a claim: seconds on 8x8 digits, minutes on
# a 10k-image Fashion-MNIST subset (dynamically binarized, as the paper's MNIST).
# Six layers see almost all of an 8x8 image, so the quick budget's window is two
# layers: local on digits as six are on 28x28 images.
BUDGETS = {
    "quick": Budget(dataset="digits", epochs=30, seeds=2, batch_size=100, lr=2e-3, eval_k=64, settings={"layers": 2}),
    "full": Budget(
        dataset="fashion-mnist", epochs=10, seeds=1, batch_size=100, lr=2e-3, limit_train=10000, limit_test=1000,
        eval_k=1000,
    ),
}
VLAE = Contender("VLAE", "vlae")
VAE = Contender("VAE (factorized decoder)", "vae")
UNCONDITIONAL = Contender("local PixelCNN without z", "vlae", settings={"z_channels": 0, "free_bits": 0.0})
FACTORIZED = Contender(
    "factorized decoder, same networks", "vlae", settings={"layers": 0, "flow_steps": 0, "free_bits": 0.0}
)
GAUSSIAN_PRIOR = Contender("local PixelCNN, N(0, I) prior", "vlae", settings={"flow_steps": 0})

CLAIMS = (
    Claim(
        id="vlae.nll_vs_vae",
        statement="A VAE with a local autoregressive decoder has a lower test NLL than a factorized-decoder VAE.",
        metric="test_nll",
        direction="lower",
        ours=VLAE,
        baseline=VAE,
        paper=PaperFigure("79.03 nats (VLAE) vs 79.30 (AF VAE), 79.88 (IAF VAE)", "Chen et al. 2017, Table 1 (static MNIST)", "secondary"),
        budgets=BUDGETS,
        note="The zoo's VAE is the 784-400-50 MLP VAE, the paper's baselines are deeper ResNet VAEs with flows.",
    ),
    Claim(
        id="vlae.nll_vs_unconditional",
        statement="The latent code is worth its cost: the local decoder with z beats the same decoder without z.",
        metric="test_nll",
        direction="lower",
        ours=VLAE,
        baseline=UNCONDITIONAL,
        paper=PaperFigure("78.94 nats (VLAE, AF prior) vs 87.55 (unconditional PixelCNN)", "Chen et al. 2017, ablation (dynamic MNIST)", "secondary"),
        budgets=BUDGETS,
    ),
    Claim(
        id="vlae.lossy_kl",
        statement="A lossy code: z keeps fewer nats per image than the code of a factorized decoder.",
        metric="kl_per_image",
        direction="lower",
        ours=VLAE,
        baseline=FACTORIZED,
        paper=PaperFigure("KL 13.3 nats (19.2 bits) vs 37.3 bits for a factorized-decoder VAE", "Chen et al. 2017, §5.1 (static MNIST)", "secondary"),
        budgets=BUDGETS,
        note="The factorized baseline is the VLAE's own encoder and z network without masked layers, so KL and its share are measured the same way.",
    ),
    Claim(
        id="vlae.lossy_fraction",
        statement="The share of the code length carried by z (KL over -ELBO) is smaller than with a factorized decoder.",
        metric="kl_fraction",
        direction="lower",
        ours=VLAE,
        baseline=FACTORIZED,
        paper=PaperFigure("about 13.3 of 79 nats (0.17)", "Chen et al. 2017, §5.1 (static MNIST), derived", "secondary"),
        budgets=BUDGETS,
    ),
    Claim(
        id="vlae.af_prior",
        statement="The autoregressive-flow prior lowers the NLL of the local-decoder model against a N(0, I) prior.",
        metric="test_nll",
        direction="lower",
        ours=VLAE,
        baseline=GAUSSIAN_PRIOR,
        paper=PaperFigure("78.94 nats (AF prior, KL 11.73) vs 79.48 (Gaussian prior, KL 10.60)", "Chen et al. 2017, ablation (dynamic MNIST)", "secondary"),
        budgets=BUDGETS,
        note="A half-nat effect in the paper; at the zoo's budgets it is of the order of the spread between seeds.",
    ),
)

CARD = MathCard(
    name="vlae",
    title="VLAE: Variational Lossy Autoencoder",
    paper=Paper(
        authors="Xi Chen, Diederik P. Kingma, Tim Salimans, Yan Duan, Prafulla Dhariwal, John Schulman, Ilya Sutskever, Pieter Abbeel",
        title="Variational Lossy Autoencoder",
        venue="ICLR",
        year=2017,
        url="https://arxiv.org/abs/1611.02731",
    ),
    idea=(
        "Read as a code length, the negative ELBO is the bits-back cost of x: information the decoder "
        "can model by itself is not worth sending through z. A PixelCNN decoder whose receptive field is "
        "a small causal window can model local texture but not global shape, so z is left to carry "
        "exactly the global structure: a lossy code. An autoregressive-flow prior over z makes the "
        "prior as expressive as an inverse-autoregressive-flow posterior at the cost of one parallel pass."
    ),
    generative=(
        Equation(
            "vlae.1",
            r"\begin{aligned}\epsilon &= T_K \circ \dots \circ T_1(z),\quad "
            r"T_k(u)_i = \mu_{k,i}(u_{<i}) + \sigma_{k,i}(u_{<i})\, u_i,\\"
            r"\log p(z) &= \log \mathcal N(\epsilon;\, 0, I_d) + \textstyle\sum_{k=1}^{K}\sum_{i=1}^{d} \log \sigma_{k,i}\end{aligned}",
            "The autoregressive-flow prior: K affine MADE steps (alternating the variable order), parallel "
            "from z to epsilon, so log p(z) of a guide sample is K network passes; sampling z inverts each "
            "step one dimension at a time.",
        ),
        Equation(
            "vlae.2",
            r"p_\theta(x \mid z) = \prod_{i=1}^{D} \mathrm{Bernoulli}\big(x_i;\ \sigma(f_\theta(z, x_{\mathrm W(i)}))\big)",
            "The local decoder: L masked 3x3 convolutions (the first of type A, which hides pixel i itself) "
            "conditioned on a feature map of z, so logit i sees z and the causal window W(i) of pixels "
            "before i within L rows and columns. Training scores every pixel in one pass (teacher forcing); "
            "generation draws the pixels one at a time in raster order.",
        ),
    ),
    guide=(
        Equation(
            "vlae.3",
            r"q_\phi(z \mid x) = \mathcal N\big(z;\ \mu_\phi(x), \operatorname{diag}\sigma_\phi^2(x)\big)",
            "The amortized diagonal-Gaussian encoder.",
        ),
    ),
    objective=(
        Equation(
            "vlae.4",
            r"\mathcal L(x) = \mathbb E_{q_\phi(z \mid x)}\big[\log p_\theta(x \mid z) + \log p(z) - \log q_\phi(z \mid x)\big]",
            "The ELBO, with the KL term by Monte Carlo (the flow prior has no closed form).",
        ),
        Equation(
            "vlae.5",
            r"-\mathcal L(x) = -\log p(x) + \mathrm{KL}\big(q_\phi(z \mid x)\,\|\,p(z \mid x)\big)",
            "The bits-back code length: the decoder's own modelling is free, only what it cannot model "
            "locally is worth routing through z.",
        ),
        Equation(
            "vlae.6",
            r"\begin{aligned}\tilde{\mathcal L}_\lambda &= \sum_{n=1}^{B} \log p_\theta(x_n \mid z_n)"
            r" - B \max\Big(\lambda D,\ \tfrac1B \sum_{n=1}^{B} \widehat{\mathrm{KL}}_n\Big),\\"
            r"\widehat{\mathrm{KL}}_n &= \log q_\phi(z_n \mid x_n) - \log p(z_n),\quad z_n \sim q_\phi(z \mid x_n)\end{aligned}",
            "Free bits, the training objective: the minibatch-mean KL is not pushed below lambda nats per "
            "data dimension; above the floor it is the ELBO (vlae.4) summed over the minibatch.",
        ),
    ),
    model_sites=(
        Site("z", "TransformedDistribution", description="latent code, autoregressive-flow prior (vlae.1)"),
        Site("x", "Bernoulli", observed=True, description="pixels, local autoregressive likelihood (vlae.2)"),
    ),
    guide_sites=(Site("z", "Normal", description="amortized posterior (vlae.3)"),),
    hyperparameters=(
        Hyperparameter("z_dim", 32, "latent dimension d", "d"),
        Hyperparameter("hidden", (400,), "hidden widths of the encoder MLP (the z feature-map MLP mirrors them)"),
        Hyperparameter("likelihood", "bernoulli", "observation model: binary pixels only"),
        Hyperparameter("layers", 6, "masked 3x3 convolutions of the decoder: the window's reach (0: factorized)", "L"),
        Hyperparameter("filters", 12, "channels of every masked convolution"),
        Hyperparameter("z_channels", 4, "channels of the z feature map fed to every layer (0: no z)"),
        Hyperparameter("flow_steps", 4, "autoregressive steps of the prior (0: N(0, I))", "K"),
        Hyperparameter("flow_hidden", (256, 256), "hidden widths of each step's MADE"),
        Hyperparameter("free_bits", 0.01, "KL floor in nats per data dimension", r"\lambda"),
    ),
    objective_kind="ELBO",
    evaluation=(
        "importance-sampled test log-likelihood, test ELBO, PSIS k-hat; KL per image, the reconstruction "
        "term and the share of -ELBO carried by z (kl_fraction)"
    ),
    notes=(
        "Decoder: the paper's six masked 3x3 layers of 12 filters with ELU, but z enters every layer through "
        "a 1x1 convolution of a 4-channel feature map of z (an MLP of z here, a ResNet in the paper), and "
        "the paper's 1x1 ResNet blocks between the masked layers are left out.",
        "Prior: Pyro's AffineAutoregressive and NumPyro's InverseAutoregressiveTransform, affine steps on "
        "MADEs of 256-256 units; the paper used mean-only (volume-preserving) steps of 640 units.",
        "Encoder: an MLP instead of the paper's ResNet; latent size 32 instead of 64; Adam instead of "
        "Adamax with Polyak averaging and weight normalisation.",
        "Free bits: one group, the whole KL of z, since the KL of a flow prior does not split over latent "
        "dimensions; the floor is lambda D nats per datapoint on the minibatch-mean KL.",
        "decode(z) and reconstructions are ancestral samples of p(x|z) (the paper's decompressions): an "
        "autoregressive decoder has no one-shot mean. Sampling is one decoder pass per pixel, vectorized "
        "over the batch.",
    ),
    claims=CLAIMS,
)
