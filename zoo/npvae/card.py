"""The math card of the nonparametric (tree-structured) VAE, NpVAE."""

from zoo.card import Equation, Hyperparameter, MathCard, Paper, Site
from zoo.claims import FULL_LONG, Budget, Claim, Contender, PaperFigure

QUICK = Budget(dataset="digits", epochs=30, seeds=3, batch_size=100, eval_k=100)
FULL = FULL_LONG

GLOBAL = ()  # the tree's sites sit outside the data plate

CARD = MathCard(
    name="npvae",
    title="NpVAE: Nonparametric VAE with a tree-structured prior",
    paper=Paper(
        authors="Prasoon Goyal, Zhiting Hu, Xiaodan Liang, Chenyu Wang, Eric P. Xing",
        title="Nonparametric Variational Auto-encoders for Hierarchical Representation Learning",
        venue="ICCV",
        year=2017,
        url="https://arxiv.org/abs/1703.07027",
    ),
    idea=(
        "The codes of a VAE are clustered by a tree: every node has a mean, each child's mean a "
        "Gaussian step from its parent's, and a nested stick-breaking (nCRP-like) prior gives every "
        "leaf, i.e. every root-to-leaf path, a probability. An image's code sits around the mean of "
        "its leaf, so the leaves are clusters and the levels a hierarchy of them. The leaf is a "
        "discrete latent of the model and is summed out exactly; the zoo fits the whole truncated "
        "tree and the networks with one variational objective."
    ),
    generative=(
        Equation(
            "npvae.1",
            r"\alpha_{\text{root}} \sim \mathcal N(0, \sigma_B^2 I),\qquad"
            r" \alpha_v \sim \mathcal N\big(\alpha_{\mathrm{pa}(v)}, \sigma_B^2 I\big)",
            "Node means: a Gaussian random walk down the tree (sites alpha_0, alpha_1, ... one per level).",
        ),
        Equation(
            "npvae.2",
            r"\begin{aligned}V_e &\sim \mathrm{Beta}(1, \gamma)\ \text{for every edge but a node's last},\\"
            r" \pi(\ell) &= \prod_{e \in \mathrm{path}(\ell)} V_e \prod_{e' \prec e} (1 - V_{e'})\end{aligned}",
            "Stick fractions per edge (the last child takes the rest of its parent's stick, so the leaf "
            "probabilities sum to one); e' ranges over the earlier siblings of e.",
        ),
        Equation(
            "npvae.3",
            r"c_n \sim \mathrm{Cat}(\pi),\qquad z_n \sim \mathcal N\big(\alpha_{c_n}, \sigma_Z^2 I\big),\qquad"
            r" x_n \sim p_\theta(x \mid z_n)",
            "Each image picks a leaf, its code sits around that leaf's mean, and the decoder (Bernoulli "
            "logits) produces the image.",
        ),
    ),
    guide=(
        Equation(
            "npvae.4",
            r"q(\alpha_v) = \mathcal N(m_v, \operatorname{diag} s_v^2),\quad q(V_e) = \mathrm{Kumaraswamy}(a_e, b_e),"
            r"\quad q_\phi(z_n \mid x_n) = \mathcal N\big(\mu_\phi(x_n), \operatorname{diag}\sigma^2_\phi(x_n)\big)",
            "Mean-field guides of the tree's globals and the amortized Gaussian encoder; the leaf has no "
            "guide, it is enumerated in the model.",
        ),
    ),
    objective=(
        Equation(
            "npvae.5",
            r"\begin{aligned}\mathcal L ={}& \sum_{n} \mathbb E_{q}\Big[\log p_\theta(x_n \mid z_n)"
            r" + \log \textstyle\sum_{\ell} \pi(\ell)\, \mathcal N(z_n;\ \alpha_\ell, \sigma_Z^2 I) - \log q_\phi(z_n \mid x_n)\Big]\\"
            r" &+ \tfrac{B}{N}\, \mathbb E_q\big[\log p(\alpha) + \log p(V) - \log q(\alpha) - \log q(V)\big]\end{aligned}",
            "The minibatch ELBO of B rows out of N, maximised: the leaf summed out exactly "
            "(TraceEnum_ELBO), the globals' KL weighted B/N so that the minibatch estimates B/N of the full bound.",
        ),
        Equation(
            "npvae.6",
            r"\log p(x) \approx \log \tfrac1K \sum_{k} \frac{p_\theta(x \mid z_k) \sum_\ell \bar\pi(\ell)\,"
            r" \mathcal N(z_k;\ \bar m_\ell, \sigma_Z^2 I)}{q_\phi(z_k \mid x)}",
            "Test log-likelihood by importance sampling, the leaf summed out, the globals at their guide "
            "means (m-bar, and pi-bar from the Kumaraswamy means).",
        ),
    ),
    model_sites=(
        Site("alpha_0", "Normal", event_dim=2, plates=GLOBAL, description="root mean (npvae.1)"),
        Site("alpha_1", "Normal", event_dim=2, plates=GLOBAL, description="level-1 node means (npvae.1)"),
        Site("alpha_2", "Normal", event_dim=2, plates=GLOBAL, description="leaf means (npvae.1)"),
        Site("V", "Beta", plates=GLOBAL, description="stick fractions of the tree's edges (npvae.2)"),
        Site("c", "Categorical", event_dim=0, description="leaf of each image, enumerated (npvae.3)"),
        Site("z", "Normal", description="code around its leaf's mean (npvae.3)"),
        Site("x", "Bernoulli", observed=True, description="pixels (npvae.3)"),
    ),
    guide_sites=(
        Site("alpha_0", "Normal", event_dim=2, plates=GLOBAL, description="mean-field guide of the root mean"),
        Site("alpha_1", "Normal", event_dim=2, plates=GLOBAL, description="mean-field guide of level 1"),
        Site("alpha_2", "Normal", event_dim=2, plates=GLOBAL, description="mean-field guide of the leaf means"),
        Site("V", "Kumaraswamy", plates=GLOBAL, description="guide of the stick fractions (npvae.4)"),
        Site("z", "Normal", description="amortized posterior of the code (npvae.4)"),
    ),
    hyperparameters=(
        Hyperparameter("z_dim", 16, "code dimension d", "d"),
        Hyperparameter("hidden", (400,), "hidden widths of the encoder MLP (the decoder mirrors them)"),
        Hyperparameter("branching", 4, "children per node of the truncated tree"),
        Hyperparameter("depth", 2, "levels below the root (2: 1 + 4 + 16 nodes, 16 leaves)"),
        Hyperparameter("gamma", 10.0, "stick concentration, V ~ Beta(1, gamma)", r"\gamma"),
        Hyperparameter("sigma_b", 1.0, "step of a child's mean from its parent's", r"\sigma_B"),
        Hyperparameter("sigma_z", 1.0, "spread of codes around their leaf's mean", r"\sigma_Z"),
        Hyperparameter("kmeans_init_epochs", 10, "epochs after which the node means restart from a top-down k-means of the codes (0: never)"),
        Hyperparameter("leaf_updates", False, "closed-form update of the leaf means given the codes after every epoch (the paper's coordinate ascent)"),
        Hyperparameter("grow_every", 0, "epochs between rounds of the optional tree growth (0: off)"),
        Hyperparameter("prune_mass", 1e-3, "leaf probability below which the growth hook re-uses a leaf"),
        Hyperparameter("likelihood", "bernoulli", "observation model p(x|z): bernoulli or gaussian"),
    ),
    objective_kind="ELBO, leaf enumerated",
    evaluation=(
        "leaf-majority (cluster) accuracy: each leaf labelled with the majority class of the training codes "
        "nearest its mean, test codes classified by their nearest leaf; the same with k-means (as many "
        "clusters as leaves) on the same codes; importance-sampled test log-likelihood (npvae.6); the "
        "learned tree as Graphviz DOT (tree_dot in the results)"
    ),
    notes=(
        "Deviation from the paper: the paper alternates an epoch of SGD on the networks with closed-form "
        "coordinate ascent on the tree and grows it by splitting wide leaves (weighted k-means into 4 "
        "children) and merging leaves with mean assignment below 1e-3. The zoo fits a fixed truncated "
        "tree and the networks jointly by SVI; the growth is an optional end-of-epoch hook "
        "(grow_every) that, inside the fixed truncation, re-uses a dead leaf to split its widest "
        "sibling by 2-means and restarts that parent's sticks at an equal split.",
        "The paper's data are groups (videos) with per-group sticks; images are i.i.d., so there is one "
        "global group here.",
        "The paper's recognition network reads 4096-d CNN features with an l2 reconstruction; here it reads "
        "pixels with a Bernoulli likelihood.",
        "After kmeans_init_epochs epochs the node means restart from a top-down k-means of the encoder's codes "
        "(root at their mean, each node's members split into its children), the zoo's stand-in for the paper's "
        "coordinate ascent on the codes: from a prior draw alone, the leaf nearest the initial codes takes every "
        "image and the others never receive data. "
        "Node-mean locations start at a draw of the prior, level by level; the "
        "stick guides start at an equal split between children (at the Beta(1, gamma) prior, three quarters of "
        "the mass would sit on one leaf and every code would go there).",
    ),
    claims=(
        Claim(
            id="npvae.clusters",
            statement=(
                "The learned leaves are label-pure clusters: leaf-majority accuracy at least that of k-means "
                "with as many clusters on the same codes."
            ),
            metric="leaf_accuracy",
            ours=Contender("NpVAE", "npvae"),
            baseline_metric="kmeans_accuracy_same_codes",
            direction="higher",
            margin=-0.02,
            paper=PaperFigure(
                value="leaf-majority accuracy on TRECVID MED 2011 frames (15 events); the numbers are not checkable here",
                source="Goyal et al. 2017, event-classification results",
                status="unconfirmed",
            ),
            budgets={"quick": QUICK, "full": FULL},
            note="images (digits, Fashion-MNIST) instead of video frames; 16 fixed leaves.",
        ),
        Claim(
            id="npvae.nll",
            statement="The tree prior costs little likelihood: test NLL within 3 nats of a Gaussian VAE of the same network.",
            metric="test_nll",
            ours=Contender("NpVAE", "npvae"),
            baseline=Contender("Gauss-VAE", "vae", settings={"z_dim": 16}),
            direction="lower",
            margin=-3.0,
            budgets={"quick": QUICK, "full": FULL},
            note="not a claim of the paper, which reports no likelihood; the zoo's check that the tree does not break the VAE.",
        ),
    ),
)
