"""The math card of M2, the semi-supervised CVAE."""

import dataclasses

from zoo.claims import FULL, QUICK, Claim, Contender, PaperFigure
from zoo.card import Equation, Hyperparameter, MathCard, Paper, Site

M2_TUNE = {"alpha_scale": (0.1, 1.0), "lr": (1e-3, 3e-3)}
# Labels must fit the digits training set less its validation rows.
# quick: a smoke protocol (digits, 15 epochs; VARIANTS.md §3b asks >= 100 there).
M2_QUICK = dataclasses.replace(QUICK, epochs=15, validation=300, settings={"hidden": (64,)}, tune={"lr": (1e-3,)})
# full, reduced to fit a shared 2-core CPU: 5,000 Fashion-MNIST images (500 held
# out for tuning), 20 epochs, 3 seeds. The alpha grid is {1, 3}: in a validation
# sweep (100 labels, 9,000 images, 20 epochs, NumPyro) the paper's alpha = 0.1 N
# reached 0.694 against 0.707 for alpha = 1 N, and half the batch labelled (0.5
# instead of 0.1) changed nothing (0.694 both at alpha = 0.1 N).
M2_FULL = dataclasses.replace(FULL, epochs=20, seeds=3, validation=500, tune={"alpha_scale": (1.0, 3.0), "lr": (1e-3,)})

CARD = MathCard(
    name="m2",
    title="M2: semi-supervised VAE with the label as a latent variable",
    paper=Paper(
        authors="Diederik P. Kingma, Danilo J. Rezende, Shakir Mohamed, Max Welling",
        title="Semi-Supervised Learning with Deep Generative Models",
        venue="NeurIPS",
        year=2014,
        url="https://arxiv.org/abs/1406.5298",
    ),
    idea=(
        "The class label y becomes a latent variable of the generative model, next to a "
        "continuous style z. Where the label is known it is observed; where it is not, the "
        "guide's classifier q(y|x) proposes it and the bound sums over every class exactly. "
        "The unlabelled images thereby train the classifier through the generative model, "
        "and an explicit classification term on the few labelled images makes q(y|x) learn "
        "from them directly. The model separates content (y) from style (z): decoding one z "
        "with every label transfers a writing style across digits."
    ),
    generative=(
        Equation(
            "m2.1",
            r"p(y) = \mathrm{Cat}(y;\ \tfrac1C \mathbf 1),\qquad p(z) = \mathcal N(z;\ 0, I_d)",
            "A uniform prior over the C classes and a standard normal prior over the style, independent.",
        ),
        Equation(
            "m2.2",
            r"p_\theta(x \mid y, z) = \prod_{i=1}^{D} \mathrm{Bernoulli}\big(x_i;\ \sigma(f_\theta(z, y))_i\big)",
            "The decoder reads the style and the one-hot label (a Gaussian likelihood is the other option).",
        ),
    ),
    guide=(
        Equation(
            "m2.3",
            r"q_\phi(y \mid x) = \mathrm{Cat}\big(y;\ \pi_\phi(x)\big),\qquad "
            r"q_\phi(z \mid x, y) = \mathcal N\big(z;\ \mu_\phi(x, y), \operatorname{diag}\sigma^2_\phi(x, y)\big)",
            "A classifier and a Gaussian encoder conditioned on the image and the one-hot label.",
        ),
    ),
    objective=(
        Equation(
            "m2.4",
            r"\log p_\theta(x, y) \ \ge\ -\mathcal L(x, y) = \mathbb E_{q_\phi(z \mid x, y)}\big[\log p_\theta(x \mid y, z)"
            r" + \log p(y) + \log p(z) - \log q_\phi(z \mid x, y)\big]",
            "The bound of a labelled image, as the paper writes it: y observed in model and guide, and "
            "L(x, y), the negative bound, is the labelled loss.",
        ),
        Equation(
            "m2.5",
            r"\log p_\theta(x) \ \ge\ -\mathcal U(x) = \sum_{y=1}^{C} q_\phi(y \mid x)\big(-\mathcal L(x, y)\big)"
            r" + \mathcal H\big(q_\phi(y \mid x)\big)",
            "The bound of an unlabelled image: y summed out exactly (TraceEnum_ELBO, parallel enumeration of "
            "the guide's y), with the entropy of the classifier added; U(x) is the unlabelled loss.",
        ),
        Equation(
            "m2.6",
            r"\begin{aligned}\mathcal J^\alpha &= \sum_{(x, y) \in \mathcal D_l} \mathcal L(x, y) + \sum_{x \in \mathcal D_u} \mathcal U(x)"
            r" + \alpha\, \mathbb E_{\mathcal D_l}\big[-\log q_\phi(y \mid x)\big], \\ \alpha &= \texttt{alpha\_scale}\cdot N\end{aligned}",
            "The loss, minimised: both negative bounds plus the classification loss of the labelled images. In a "
            "minibatch each labelled row's -log q(y|x) is weighted alpha / N_l "
            "(N training images, N_l of them labelled), so the minibatch sum estimates (B/N) J.",
        ),
    ),
    model_sites=(
        Site("y", "Categorical", event_dim=0, description="label, prior (m2.1); observed on labelled rows"),
        Site("z", "Normal", description="style, prior (m2.1)"),
        Site("x", "Bernoulli", observed=True, description="pixels, likelihood (m2.2)"),
    ),
    guide_sites=(
        Site("y", "Categorical", event_dim=0, description="classifier q(y|x), enumerated (m2.3); absent on labelled rows"),
        Site("z", "Normal", description="style posterior q(z|x,y) (m2.3)"),
    ),
    hyperparameters=(
        Hyperparameter("z_dim", 50, "style dimension d", "d"),
        Hyperparameter("hidden", (500,), "hidden widths of classifier, encoder and decoder MLPs"),
        Hyperparameter("likelihood", "bernoulli", "observation model p(x|y,z): bernoulli or gaussian"),
        Hyperparameter("labels", 100, "labelled training examples, balanced over classes (--labels N; null: all)", "N_l"),
        Hyperparameter("alpha_scale", 0.1, "classification weight alpha as a multiple of N (m2.6)", r"\alpha / N"),
        Hyperparameter("labelled_fraction", 0.1, "share of labelled rows in the training arrays (labelled rows repeated; 0: off)"),
        Hyperparameter("supervised_steps", None, "Adam steps of the supervised-only baseline (null: as many as M2 took)"),
    ),
    objective_kind="semi-supervised ELBO + CE",
    evaluation=(
        "test accuracy of q(y|x) against a classifier of the same architecture trained on the "
        "labelled examples alone; importance-sampled test log-likelihood with y summed out; "
        "class-conditional samples and style transfer"
    ),
    notes=(
        "Shown above is the program of an unlabelled image (y latent). On a labelled image the same model and "
        "guide run with y = label: the model's y is observed and the guide has no y site.",
        "A minibatch mixes labelled and unlabelled rows; the loss runs the program twice over the whole batch with "
        "complementary masks (poutine.mask / handlers.mask), so shapes stay fixed and masked rows add exactly 0.",
        "alpha = 0.1 N is the value in Kingma's code (the paper does not print it); Pyro's ss_vae example uses a fixed "
        "multiplier of 46 per labelled example instead. alpha_scale exposes the choice.",
        "The paper's q(z|x,y) has a scale that depends on x only, as we read the paper (not re-checked); here, as in Pyro's ss_vae, the encoder "
        "reads (x, y) for both location and scale.",
        "Importance weights for evaluation sum y out inside each weight, w_k = sum_y p(x,y,z_k^y)/q(z_k^y|x,y), one z "
        "per class: an unbiased estimate of p(x). The evaluator's test_elbo is then E log w_k, which lies between "
        "the enumerated ELBO (m2.5) and log p(x).",
        "Without --labels the config's labels (100) are drawn, balanced over the classes, with the run's --seed.",
        "Labelled rows are repeated in the training arrays until they are labelled_fraction (0.1) of them, so every "
        "minibatch of the random permutation holds about 0.1 B labelled rows; each visit keeps its weight, so the "
        "labelled terms count r times per epoch (r copies). The supervised-only baseline takes as many Adam steps "
        "as M2 did (minibatches of up to 100 labelled rows).",
        "The paper's M1+M2 stack (M2 on the latents of a separately trained VAE) is not included.",
    ),
    claims=(
        Claim(
            id="m2.labels_100",
            statement="with 100 labels, M2's classifier q(y|x) beats a supervised-only classifier of the same size given the same gradient steps",
            metric="test_accuracy",
            ours=Contender("M2", "m2", options={"labels": 100}, tune=M2_TUNE, tune_metric="test_accuracy"),
            baseline_metric="supervised_test_accuracy",
            direction="higher",
            margin=0.05,
            paper=PaperFigure('11.97% (+-1.71) test error, M2 alone', "Kingma et al. 2014, Table 1, MNIST", "recalled"),
            budgets={"quick": M2_QUICK, "full": M2_FULL},
            note="alpha (and at full lr) chosen on a validation split carved from the training set; labelled rows in every batch.",
        ),

        Claim(
            id="m2.labels_600",
            statement="with 600 labels, M2's classifier q(y|x) beats a supervised-only classifier of the same size given the same gradient steps",
            metric="test_accuracy",
            ours=Contender("M2", "m2", options={"labels": 600}, tune=M2_TUNE, tune_metric="test_accuracy"),
            baseline_metric="supervised_test_accuracy",
            direction="higher",
            margin=0.0,
            paper=PaperFigure('4.94% (+-0.13) test error, M2 alone', "Kingma et al. 2014, Table 1, MNIST", "recalled"),
            budgets={"full": M2_FULL},
            note="alpha (and at full lr) chosen on a validation split carved from the training set; labelled rows in every batch.",
        ),

        Claim(
            id="m2.labels_1000",
            statement="with 1000 labels, M2's classifier q(y|x) beats a supervised-only classifier of the same size given the same gradient steps",
            metric="test_accuracy",
            ours=Contender("M2", "m2", options={"labels": 1000}, tune=M2_TUNE, tune_metric="test_accuracy"),
            baseline_metric="supervised_test_accuracy",
            direction="higher",
            margin=0.0,
            paper=PaperFigure('3.60% (+-0.56) test error, M2 alone', "Kingma et al. 2014, Table 1, MNIST", "recalled"),
            budgets={"full": M2_FULL},
            note="alpha (and at full lr) chosen on a validation split carved from the training set; labelled rows in every batch.",
        ),

        Claim(
            id="m2.labels_3000",
            statement="with 3000 labels, M2's classifier q(y|x) beats a supervised-only classifier of the same size given the same gradient steps",
            metric="test_accuracy",
            ours=Contender("M2", "m2", options={"labels": 3000}, tune=M2_TUNE, tune_metric="test_accuracy"),
            baseline_metric="supervised_test_accuracy",
            direction="higher",
            margin=0.0,
            paper=PaperFigure('3.92% (+-0.63) test error, M2 alone', "Kingma et al. 2014, Table 1, MNIST", "recalled"),
            budgets={"full": M2_FULL},
            note="alpha (and at full lr) chosen on a validation split carved from the training set; labelled rows in every batch.",
        ),
    ),
)
