"""VFAE in Pyro: model (vfae.1, vfae.2), guide (vfae.3), objective (vfae.4–vfae.7).

Louizos, Swersky, Li, Welling & Zemel, The Variational Fair Autoencoder, ICLR 2016.
The semi-supervised model of the paper: the sensitive ``s`` is observed and enters
the decoder only, the label ``y`` is observed on labelled rows and summed out by
enumeration elsewhere (the machinery of M2, :class:`zoo.m2.pyro_model.SemiSupervisedELBO`),
and ``beta * MMD(z1 | s=0, z1 | s=1)`` is a model-side ``pyro.factor`` outside the
data plate on the guide's (replayed) draws of ``z1``: one term per minibatch, with
reparameterised gradients.
"""

from __future__ import annotations


import pyro
import pyro.distributions as dist
import torch

from guides.torch_nets import GaussianEncoder
from zoo.data import check_likelihood, with_sensitive
from zoo.evaluate import fairness_metrics
from zoo.m2.pyro_model import (
    LogitsNet,
    SemiSupervisedELBO,
    class_marginal_log_weights,
    concat,
    labelled_arrays,
    one_hot,
    row_mask,
)
from zoo.pyro_backend.objectives import mmd_between_groups, random_fourier_features
from zoo.pyro_backend.variant import PyroVariant, make_decoder, mean_of, observation

MMD_EVALUATION_POINTS = 2000  # test codes the reported MMD uses (the kernel matrix is n^2)


def group_mmd(z1, s, gamma: float, num_features: int = 0) -> torch.Tensor:
    """(vfae.7) ``MMD(z1 | s=0, z1 | s=1)`` on a batch; zero when a group is absent.

    ``num_features = 0``: the Gaussian-kernel estimator of the shared objectives;
    otherwise ``|| mean psi(z1 | s=0) - mean psi(z1 | s=1) ||^2`` with ``num_features``
    random Fourier features (linear in the batch size; fresh features per call).
    Groups are masks, so the shapes do not depend on the batch's composition.
    """
    if not num_features:
        return mmd_between_groups(z1, s, gamma)
    in_first, in_second = (s == 0).to(z1.dtype), (s == 1).to(z1.dtype)
    if in_first.sum() == 0 or in_second.sum() == 0:
        return z1.new_zeros(())
    features = random_fourier_features(z1, gamma, num_features)
    difference = in_first @ features / in_first.sum() - in_second @ features / in_second.sum()
    return difference.pow(2).sum()


def column(s, like: torch.Tensor) -> torch.Tensor:
    """``s`` as one input column of a network."""
    return s.to(like.dtype).unsqueeze(-1)


class Variant(PyroVariant):
    """p(z2) p(y) p(z1|z2,y) p(x|z1,s) with q(z1|x,s) q(y|z1) q(z2|z1,y)."""

    def __init__(self, config, x_dim, num_classes=10):
        super().__init__(config, x_dim, num_classes)
        c, hidden, act = num_classes, config.hidden, config.activation
        self.encoder_z1 = GaussianEncoder(x_dim + 1, hidden, config.z_dim, act)
        self.classifier = LogitsNet(config.z_dim, hidden, c, act)
        self.encoder_z2 = GaussianEncoder(config.z_dim + c, hidden, config.z2_dim, act)
        self.prior_z1 = GaussianEncoder(config.z2_dim + c, hidden, config.z_dim, act)
        self.decoder = make_decoder(config, config.z_dim + 1, x_dim)

    def model(self, x, s, y=None, mask=None, batch_terms=True, **batch):
        """(vfae.1) ``y``, ``z2``, ``z1 | z2, y``; (vfae.2) ``x | z1, s``; then the
        MMD factor (vfae.7) on the minibatch unless ``batch_terms`` is False."""
        pyro.module("prior_z1", self.prior_z1)
        pyro.module("decoder", self.decoder)
        size = x.shape[0]
        with pyro.plate("data", size, dim=-1), row_mask(mask):
            y = pyro.sample("y", dist.Categorical(logits=x.new_zeros(size, self.num_classes)), obs=y)
            z2 = pyro.sample("z2", dist.Normal(x.new_zeros(size, self.config.z2_dim), 1.0).to_event(1))
            loc, scale = self.prior_z1(concat(z2, one_hot(y, self.num_classes, z2)))
            z1 = pyro.sample("z1", dist.Normal(loc, scale).to_event(1))
            logits = self.decoder(concat(z1, column(s, z1)))
            pyro.sample("x", observation(logits, self.config.likelihood), obs=x)
        if batch_terms and self.config.beta > 0:
            # Outside the plate: not rescaled by subsampling, once per minibatch;
            # times B so that beta weighs the MMD per datapoint like the ELBO terms.
            divergence = group_mmd(z1, s, self.config.gamma, self.config.mmd_features)
            pyro.factor("mmd", -self.config.beta * size * divergence)

    def guide(self, x, s, y=None, mask=None, **batch):
        """(vfae.3) ``z1 ~ q(z1|x,s)``, ``y ~ q(y|z1)`` (enumerated when not given), ``z2 ~ q(z2|z1,y)``."""
        pyro.module("encoder_z1", self.encoder_z1)
        pyro.module("classifier", self.classifier)
        pyro.module("encoder_z2", self.encoder_z2)
        with pyro.plate("data", x.shape[0], dim=-1), row_mask(mask):
            loc, scale = self.encoder_z1(concat(x, column(s, x)))
            z1 = pyro.sample("z1", dist.Normal(loc, scale).to_event(1))
            if y is None:
                y = pyro.sample("y", dist.Categorical(logits=self.classifier(z1)), infer={"enumerate": "parallel"})
            loc, scale = self.encoder_z2(concat(z1, one_hot(y, self.num_classes, z1)))
            pyro.sample("z2", dist.Normal(loc, scale).to_event(1))

    def log_classifier(self, x, label, s, **batch) -> torch.Tensor:
        """``log q(y=label | z1)`` per row with ``z1 ~ q(z1|x,s)`` reparameterised (vfae.6)."""
        loc, scale = self.encoder_z1(concat(x, column(s, x)))
        z1 = loc + scale * torch.randn_like(loc)
        return dist.Categorical(logits=self.classifier(z1)).log_prob(label)

    def objective(self):
        return SemiSupervisedELBO(self.log_classifier, lambda: self.config.alpha)

    # --- data ---------------------------------------------------------------
    def fair_dataset(self, dataset):
        """The dataset with its sensitive attribute (zoo.data.with_sensitive)."""
        dataset = with_sensitive(dataset, self.config.sensitive)
        check_likelihood(dataset, self.config.likelihood)
        return dataset

    def training_data(self, dataset) -> dict:
        dataset = self.fair_dataset(dataset)
        return {**labelled_arrays(dataset), "s": dataset.s_train}

    def test_data(self, dataset) -> dict:
        dataset = self.fair_dataset(dataset)
        return {"x": dataset.x_test, "s": dataset.s_test, "label": dataset.y_test}

    # --- evaluation and pictures ----------------------------------------------
    @torch.no_grad()
    def log_weights(self, num_particles: int, x, s, **batch) -> torch.Tensor:
        """(k, B) weights of ``p(x | s)`` with ``y`` summed out (zoo.m2's class_marginal_log_weights)."""
        return class_marginal_log_weights(self.model, self.guide, self.num_classes, num_particles, x, s=s)

    def encode(self, x, s, **batch) -> torch.Tensor:
        """The fair representation: the mean of ``q(z1|x,s)``."""
        return self.encoder_z1(concat(x, column(s, x)))[0]

    def decode(self, z1, s) -> torch.Tensor:
        return mean_of(self.decoder(concat(z1, column(s, z1))), self.config.likelihood)

    @torch.no_grad()
    def reconstruct(self, x, s, **batch) -> torch.Tensor:
        return self.decode(self.encode(x, s), s)

    @torch.no_grad()
    def sample(self, num_samples: int, device) -> torch.Tensor:
        """Rows of ten: one class per row (cycling), ``s = 0`` in the left half of a
        row and ``s = 1`` in the right; ``z2 ~ p(z2)``, ``z1`` the mean of ``p(z1|z2,y)``."""
        index = torch.arange(num_samples, device=device)
        y, s = (index // 10) % self.num_classes, (index % 10 >= 5).long()
        z2 = torch.randn(num_samples, self.config.z2_dim, device=device)
        z1 = self.prior_z1(concat(z2, one_hot(y, self.num_classes, z2)))[0]
        return self.decode(z1, s)

    def extra_metrics(self, dataset, device) -> dict:
        """The paper's evaluation on ``z1`` (zoo.evaluate.fairness_metrics) and the
        MMD between the test groups' codes."""
        dataset = self.fair_dataset(dataset)
        as_tensor = lambda a: torch.as_tensor(a, device=device)  # noqa: E731
        z_train = self.encode(as_tensor(dataset.x_train), as_tensor(dataset.s_train))
        z_test = self.encode(as_tensor(dataset.x_test), as_tensor(dataset.s_test))
        y_pred = self.classifier(z_test).argmax(-1)
        metrics = fairness_metrics(
            z_train.cpu().numpy(), dataset.s_train, dataset.y_train,
            z_test.cpu().numpy(), dataset.s_test, dataset.y_test, y_pred.cpu().numpy(),
        )
        shown = slice(0, MMD_EVALUATION_POINTS)
        metrics["z1_mmd"] = float(mmd_between_groups(z_test[shown], as_tensor(dataset.s_test)[shown], self.config.gamma))
        return metrics
