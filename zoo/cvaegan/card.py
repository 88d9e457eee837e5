"""The math card of CVAE-GAN (Bao et al. 2017)."""

from zoo.card import Equation, Hyperparameter, MathCard, Paper, Site
from zoo.claims import Budget, Claim, Contender, PaperFigure

QUICK = Budget(dataset="digits", epochs=3, seeds=1, batch_size=64, lr=1e-3, binarize="none", eval_k=10,
               settings={"channels": (8, 16), "hidden": (64,), "z_dim": 8})
FULL = Budget(dataset="fashion-mnist", epochs=10, seeds=2, batch_size=64, lr=1e-3, limit_train=6000,
              limit_test=2000, binarize="none", eval_k=50)
CVAE_BASELINE = Contender("CVAE (same E and G, no D or C)", "cvaegan", settings={"adversarial": False})
CVAEGAN = Contender("CVAE-GAN", "cvaegan")

CARD = MathCard(
    name="cvaegan",
    title="CVAE-GAN: Fine-grained image generation through asymmetric training",
    paper=Paper(
        authors="Jianmin Bao, Dong Chen, Fang Wen, Houqiang Li, Gang Hua",
        title="CVAE-GAN: Fine-Grained Image Generation through Asymmetric Training",
        venue="ICCV",
        year=2017,
        url="https://arxiv.org/abs/1703.10155",
    ),
    idea=(
        "A conditional VAE generates an image of a requested class c, but its pixel loss blurs the "
        "fine details that tell similar classes apart. CVAE-GAN adds a discriminator D (real or fake) "
        "and a classifier C (which class), and trains them asymmetrically: D and C learn by "
        "cross-entropy, while the generator only matches their features, pairwise to the image it "
        "reconstructs and on average to real images (per class for C). Matching means instead of "
        "fooling D keeps the generator's gradient alive when D wins, which stabilises training."
    ),
    generative=(
        Equation("cvaegan.1", r"p(z) = \mathcal N(z;\, 0, I_d)", "A standard normal prior, independent of the class."),
        Equation(
            "cvaegan.2",
            r"p_G(x \mid z, c) = \mathcal N\big(x;\ G(z, c),\ s^2 I\big),\qquad -\log p_G = \tfrac1{2s^2}\|x - x'\|_2^2 + \text{const},\quad x' = G(z, c)",
            "The generator G reads the code and the one-hot class c; with s = 1 the pixel term is the paper's squared error.",
        ),
    ),
    guide=(
        Equation(
            "cvaegan.3",
            r"q_E(z \mid x, c) = \mathcal N\big(z;\ \mu_E(x, c), \operatorname{diag}\sigma_E^2(x, c)\big)",
            "The encoder E reads the image and its class (the class joins after the convolutions).",
        ),
    ),
    objective=(
        Equation(
            "cvaegan.4",
            r"\begin{aligned}\mathcal L_{KL} &= \mathrm{KL}\big(q_E(z\mid x,c)\,\|\,p(z)\big),\\"
            r"\mathcal L_G &= \tfrac12\Big(\|x - x'\|_2^2 + \big\|f_{\bar D}(x) - f_{\bar D}(x')\big\|_2^2 + \big\|f_{\bar C}(x) - f_{\bar C}(x')\big\|_2^2\Big)\end{aligned}",
            "The KL and the reconstruction in pixels and, pairwise, in the features of D (its last "
            "convolution) and C (its penultimate layer); the bars mark detached weights.",
        ),
        Equation(
            "cvaegan.5",
            r"\mathcal L_{GD} = \tfrac12\big\|\bar f_D^{\,\mathrm{real}} - \mathbb E_{z_p}\, f_{\bar D}(G(z_p, c))\big\|_2^2",
            "Mean feature matching of prior samples against a running mean of the real images' D features.",
        ),
        Equation(
            "cvaegan.6",
            r"\mathcal L_{GC} = \tfrac12 \sum_{c\ \text{in batch}} \big\|\bar f_C^{\,c} - \mathbb E_{z_p}\, f_{\bar C}(G(z_p, c))\big\|_2^2",
            "The same per class, against running means of each class's real C features; the prior "
            "samples take the classes of the real batch.",
        ),
        Equation(
            "cvaegan.7",
            r"\mathcal L_D = -\log D(x) - \log\big(1 - D(\bar x')\big) - \log\big(1 - D(\bar x_p)\big),\qquad x_p = G(z_p, c)",
            "The discriminator's cross-entropy; reconstructions count as fakes. Fakes are detached.",
        ),
        Equation(
            "cvaegan.8",
            r"\begin{aligned}\mathcal L_C &= -\log P_C(c \mid x),\\ \mathcal L_{E,G} &= \lambda_1 \mathcal L_{KL} + \lambda_2 \mathcal L_G + \lambda_3 \mathcal L_{GD} + \lambda_4 \mathcal L_{GC}\end{aligned}",
            "The classifier learns on real images only; E and G share one loss (L_KL does not depend on "
            "G, L_GD and L_GC not on E), each with its own optimizer, as do D and C.",
        ),
    ),
    model_sites=(
        Site("z", "Normal", description="latent code, prior, weighted lambda_1 (cvaegan.1)"),
        Site("x", "Normal", observed=True, description="image given code and class, weighted lambda_2 (cvaegan.2)"),
    ),
    guide_sites=(Site("z", "Normal", description="conditional encoder q(z|x,c), weighted lambda_1 (cvaegan.3)"),),
    hyperparameters=(
        Hyperparameter("z_dim", 32, "latent dimension", "d"),
        Hyperparameter("channels", (16, 32, 64), "conv widths of E, D and C, mirrored by G"),
        Hyperparameter("hidden", (256,), "dense widths after the convolutions (E, D, C) and before them (G)"),
        Hyperparameter("likelihood", "gaussian", "pixel term as a Gaussian (the only choice)"),
        Hyperparameter("pixel_scale", 1.0, "scale s of the pixel Gaussian", "s"),
        Hyperparameter("lambda_kl", 3.0, "weight of L_KL", r"\lambda_1"),
        Hyperparameter("lambda_g", 1.0, "weight of L_G", r"\lambda_2"),
        Hyperparameter("lambda_gd", 1e-3, "weight of L_GD", r"\lambda_3"),
        Hyperparameter("lambda_gc", 1e-3, "weight of L_GC", r"\lambda_4"),
        Hyperparameter("recon_as_fake", True, "reconstructions are fakes in L_D"),
        Hyperparameter("feature_momentum", 0.9, "momentum of the running real-feature means (0: batch means)"),
        Hyperparameter("adversarial", True, "false: the same E and G as a plain CVAE (the baseline)"),
    ),
    objective_kind="asymmetric adversarial (4 networks, 4 optimizers)",
    evaluation=(
        "class fidelity (accuracy of a fixed classifier on G(z_p, c) w.r.t. c, overall and on "
        "Fashion-MNIST's confusable tops), classifier-feature FD of samples and reconstructions, "
        "and the conditional ELBO, against a CVAE with the same E and G at the same budget"
    ),
    notes=(
        "No official code is known. The loss weights lambda_1 = 3, lambda_2 = 1, lambda_3 = lambda_4 = 1e-3 "
        "are the paper's as recalled, not re-checked; Liu (2023) lists lambda_1 = 1. Reconstructions as "
        "fakes follow the paper's algorithm as recalled and tatsy/keras-generative.",
        "The paper's mean features are moving averages; here the real images' means are running averages "
        "with momentum 0.9 (per class for C), updated once per batch from the current D and C before the "
        "losses; a class seen for the first time starts from its batch mean.",
        "The losses are sums over the batch; the batch statistics L_GD and L_GC are multiplied by the batch "
        "size so that lambda_3 and lambda_4 keep their weight against the per-datapoint terms. The order "
        "within a batch: running means, then E+G, C and D, all from the parameters the batch started with.",
        "Networks: 5x5 stride-2 convolutions (16-32-64) without batch normalisation, narrowed for two CPU "
        "cores; the class joins E after its convolutions and G at its input; f_D is D's last convolution, "
        "f_C is C's penultimate layer. Images in [0, 1] with a sigmoid output; train on grey levels "
        "(--binarize none).",
        "The reported ELBO is that of the conditional VAE part (cvaegan.1-3) without the weights: a bound on "
        "log p(x | c) under the pixel Gaussian of scale s.",
        "Class fidelity and FD use a small classifier trained once per dataset (zoo/fd.py), not the "
        "generator's own C; the samples.png grid shows class r in row r.",
        "Not implemented: attribute (multi-label) conditioning, the paper's inpainting and data-augmentation "
        "experiments, the inception score.",
        "Measured (benchmarks/adversarial.py, Pyro, 6000 Fashion-MNIST images, 3 epochs, 8-16-32 channels, "
        "2 seeds): FD of class-conditional samples 117 +- 12 against 155 +- 3 for the CVAE with the same E "
        "and G, of reconstructions 100 +- 4 against 190 +- 16; class fidelity 0.63 +- 0.05 against 0.73 +- 0.02 "
        "(tops 0.50 against 0.64), so the fidelity claim does not hold at this budget. With lambda_1 = 3 the "
        "codes carry little, and samples vary little within a class.",
    ),
    claims=(
        Claim(
            id="cvaegan.class_fidelity",
            statement="CVAE-GAN's samples of a requested class are recognised as that class more often than a CVAE's",
            metric="class_fidelity",
            ours=CVAEGAN,
            baseline=CVAE_BASELINE,
            direction="higher",
            paper=PaperFigure(
                "discriminability of generated faces and flowers higher for CVAE-GAN than for CVAE and CGAN",
                "Bao et al. 2017, comparison table (FaceScrub, CUB, Oxford-102)",
                "unconfirmed",
            ),
            budgets={"quick": QUICK, "full": FULL},
            note="The paper scores identities with a pretrained face recogniser; the zoo uses its cached Fashion-MNIST / digits classifier.",
        ),
        Claim(
            id="cvaegan.class_fidelity_tops",
            statement="... also among Fashion-MNIST's confusable tops (T-shirt, pullover, coat, shirt)",
            metric="class_fidelity_tops",
            ours=CVAEGAN,
            baseline=CVAE_BASELINE,
            direction="higher",
            budgets={"full": FULL},
            note="The fine-grained part of the claim; Fashion-MNIST only.",
        ),
        Claim(
            id="cvaegan.fd_samples",
            statement="CVAE-GAN's class-conditional samples have a lower classifier-feature FD than the CVAE's",
            metric="fd_samples",
            ours=CVAEGAN,
            baseline=CVAE_BASELINE,
            direction="lower",
            budgets={"quick": QUICK, "full": FULL},
            note="The paper reports an inception score; the FD is the zoo's offline stand-in.",
        ),
    ),
)
