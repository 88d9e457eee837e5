"""CVAE in Pyro: prior (cvae.1), generation (cvae.2), recognition (cvae.3), objective (cvae.4).

Sohn, Lee & Yan, Learning Structured Output Representation using Deep Conditional
Generative Models, NeurIPS 2015. The task is that of Pyro's ``examples/cvae``: the
batch's ``x`` is a whole image; :meth:`Variant.split` cuts it into the card's input
``x`` (the given quadrants) and output ``y`` (the pixels of the missing ones). The
likelihood covers the missing pixels only, so ``y`` is exactly that set.

The deterministic baseline ``y_hat(x)`` (cvae.5) trains in the same run, on its own
loss, from the same minibatches; its guess enters the prior network detached
(``condition_on_baseline``), as in Pyro's tutorial, so the CVAE's loss never moves
it. One Adam optimizer steps both: their gradients touch disjoint parameters.
"""

from __future__ import annotations

import numpy as np
import pyro
import pyro.distributions as dist
import torch
from pyro.infer import TraceMeanField_ELBO

from guides.torch_nets import BernoulliDecoder, GaussianEncoder
from zoo.config import ConfigError
from zoo.data import DataError, quadrant_mask, square_image_shape
from zoo.pyro_backend.variant import PyroVariant

SHOWN_CONDITIONS = 10  # test images whose completions samples.png shows


def concat(*tensors: torch.Tensor) -> torch.Tensor:
    """Concatenate along the last dim after broadcasting the batch dims (particles)."""
    batch = torch.broadcast_shapes(*(t.shape[:-1] for t in tensors))
    return torch.cat([t.expand(*batch, t.shape[-1]) for t in tensors], dim=-1)


def output_likelihood(logits) -> dist.Distribution:
    """(cvae.2) ``p(y|x,z)``: independent Bernoullis on the missing pixels."""
    return dist.Bernoulli(logits=logits, validate_args=False).to_event(1)


class Variant(PyroVariant):
    """Prior, generation and recognition networks plus the baseline; see the module docstring."""

    def __init__(self, config, x_dim, num_classes=10):
        super().__init__(config, x_dim, num_classes)
        try:
            self.image_shape = square_image_shape(x_dim)
        except DataError as error:
            raise ConfigError(f"cvae: {error}") from None
        given = quadrant_mask(self.image_shape, config.given_quadrants)
        self.register_buffer("given", torch.as_tensor(np.flatnonzero(given)), persistent=False)
        self.register_buffer("missing", torch.as_tensor(np.flatnonzero(~given)), persistent=False)
        x_size, y_size, hidden = int(given.sum()), int((~given).sum()), config.hidden
        prior_inputs = x_size + (y_size if config.condition_on_baseline else 0)
        self.baseline = BernoulliDecoder(x_size, hidden, y_size, config.activation)
        self.prior_net = GaussianEncoder(prior_inputs, hidden, config.z_dim, config.activation)
        self.generation_net = BernoulliDecoder(x_size + config.z_dim, tuple(reversed(hidden)), y_size, config.activation)
        self.recognition_net = GaussianEncoder(x_size + y_size, hidden, config.z_dim, config.activation)
        self.shown_conditions = None  # set by training_data

    def split(self, image):
        """The card's ``(x, y)``: the given quadrants' pixels and the missing ones'."""
        return image[..., self.given], image[..., self.missing]

    def prior_input(self, x):
        """What ``p(z|x)`` reads: ``x``, and the baseline's guess of ``y`` (detached)."""
        pyro.module("baseline", self.baseline)
        if not self.config.condition_on_baseline:
            return x
        return torch.cat([x, torch.sigmoid(self.baseline(x)).detach()], dim=-1)

    def model(self, x, **batch):
        """(cvae.1) ``z ~ p(z|x)``; (cvae.2) ``y ~ p(y|x,z)`` on the missing pixels."""
        x, y = self.split(x)
        pyro.module("prior_net", self.prior_net)
        pyro.module("generation_net", self.generation_net)
        with pyro.plate("data", x.shape[0], dim=-1):
            loc, scale = self.prior_net(self.prior_input(x))
            z = pyro.sample("z", dist.Normal(loc, scale).to_event(1))
            pyro.sample("y", output_likelihood(self.generation_net(concat(x, z))), obs=y)

    def guide(self, x, **batch):
        """(cvae.3) ``z ~ q(z|x,y)``."""
        x, y = self.split(x)
        pyro.module("recognition_net", self.recognition_net)
        with pyro.plate("data", x.shape[0], dim=-1):
            loc, scale = self.recognition_net(torch.cat([x, y], dim=-1))
            pyro.sample("z", dist.Normal(loc, scale).to_event(1))

    def baseline_loss(self, x, **batch) -> torch.Tensor:
        """(cvae.5) ``-sum_b log p_base(y_b | x_b)``: the baseline's cross-entropy."""
        x, y = self.split(x)
        return -output_likelihood(self.baseline(x)).log_prob(y).sum()

    # --- training: the CVAE bound and the baseline, one optimizer ----------------
    def objective(self):
        return TraceMeanField_ELBO()  # the KL of two diagonal Gaussians in closed form

    def training_loss(self, batch: dict) -> torch.Tensor:
        """``-L_CVAE + baseline loss``: the baseline trains beside the CVAE."""
        return super().training_loss(batch) + self.baseline_loss(**batch)

    def train_step(self, batch: dict) -> float:
        """One step on ``-L_CVAE + baseline loss``; returns the CVAE's part (cvae.4)."""
        loss = super().training_loss(batch)
        self.step(loss + self.baseline_loss(**batch))
        return loss.item()

    # --- data -------------------------------------------------------------------
    def training_data(self, dataset) -> dict:
        # ``sample`` takes no data; these test images are the ones it completes.
        self.shown_conditions = dataset.x_test[:SHOWN_CONDITIONS]
        return {"x": dataset.x_train}

    # --- evaluation and pictures --------------------------------------------------
    def complete(self, image, y) -> torch.Tensor:
        """The image with its missing pixels replaced by ``y``."""
        completed = image.clone()
        completed[..., self.missing] = y
        return completed

    @torch.no_grad()
    def predict(self, image, z=None) -> torch.Tensor:
        """``E[y | x, z]`` with ``z`` the prior mean unless given: the CVAE's completion."""
        x, _ = self.split(image)
        if z is None:
            z = self.prior_net(self.prior_input(x))[0]
        return torch.sigmoid(self.generation_net(concat(x, z)))

    @torch.no_grad()
    def reconstruct(self, x, **batch) -> torch.Tensor:
        """Completions of ``x``'s missing quadrants (prior mean of z)."""
        return self.complete(x, self.predict(x))

    @torch.no_grad()
    def sample(self, num_samples: int, device) -> torch.Tensor:
        """Rows of the grid: a test image's given quadrants (missing ones grey), then
        completions with ``z ~ p(z|x)``, row after row for the shown test images."""
        conditions = torch.as_tensor(self.shown_conditions, device=device)
        per_row = max(1, -(-num_samples // len(conditions)))
        rows = []
        for image in conditions:
            x, _ = self.split(image[None])
            loc, scale = self.prior_net(self.prior_input(x))
            z = loc + scale * torch.randn(per_row - 1, self.config.z_dim, device=device)
            completions = self.complete(image.expand(per_row - 1, -1), self.predict(image[None], z))
            rows += [self.complete(image[None], 0.5), completions]
        return torch.cat(rows)[:num_samples]

    def extra_metrics(self, dataset, device) -> dict:
        """The baseline's ``-log p(y|x)`` on the test set, per datapoint (nats)."""
        x = torch.as_tensor(dataset.x_test, device=device)
        return {
            "given_quadrants": self.config.given_quadrants,
            "missing_pixels": int(len(self.missing)),
            "baseline_test_nll": float(self.baseline_loss(x)) / len(x),
        }
