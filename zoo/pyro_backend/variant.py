"""The base class of every Pyro variant: a model–guide pair and how to train it.

A variant subclasses :class:`PyroVariant`, builds its networks in ``__init__`` and
writes ``model`` and ``guide`` (the math of its card). Everything else has a default
that fits the VAE family and is overridden only where the paper needs it:

- ``objective()``: the Pyro loss (default ``TraceMeanField_ELBO``: analytic KL);
- ``train_step(batch)``: one optimisation step (default ``SVI.step``); adversarial
  variants override it with their own optimizers;
- ``log_weights(x, k)``: importance weights for evaluation;
- ``encode``, ``decode``, ``sample``: used for pictures;
- ``extra_metrics(dataset)``: the paper's own evaluation (AUROC, accuracy...).

Batches are dicts of tensors; the model and guide take them as keyword arguments
(``x`` always, ``y`` when the dataset has labels).
"""

from __future__ import annotations

import functools

import pyro
import pyro.distributions as dist
import torch
from pyro.infer import SVI, TraceMeanField_ELBO
from torch import nn

from guides.torch_nets import BernoulliDecoder, GaussianDecoder
from zoo.pyro_backend.objectives import log_importance_weights


@functools.lru_cache(maxsize=None)
def fused_adam_available(device_type: str) -> bool:
    """Whether this torch has the fused Adam kernel for ``device_type`` (CPU: torch >= 2.4)."""
    probe = torch.zeros(1, device=device_type, requires_grad=True)
    try:
        optimizer = torch.optim.Adam([probe], fused=True)
        probe.grad = torch.zeros_like(probe)
        optimizer.step()
    except (RuntimeError, TypeError, ValueError):
        return False
    return True


def adam_arguments(lr: float, module: nn.Module) -> dict:
    """Adam's settings for ``module``'s parameters: the fused kernel where torch has one.

    The fused update is Adam itself, done in one pass over each tensor instead of a
    dozen elementwise operations (Pyro makes one torch optimizer per parameter
    tensor): about 1 ms of a 15 ms step of the 784-400-50 VAE on one CPU core
    (benchmarks/README.md).
    """
    parameter = next(module.parameters(), None)
    if parameter is not None and fused_adam_available(parameter.device.type):
        return {"lr": lr, "fused": True}
    return {"lr": lr}


def make_decoder(config, z_dim: int, x_dim: int) -> nn.Module:
    hidden = tuple(reversed(config.hidden))
    if config.likelihood == "bernoulli":
        return BernoulliDecoder(z_dim, hidden, x_dim, config.activation)
    return GaussianDecoder(z_dim, hidden, x_dim, config.activation, getattr(config, "fixed_scale", None))


def observation(decoder_output, likelihood: str) -> dist.Distribution:
    """``p(x|z)`` from the decoder's output, one event of ``x_dim`` pixels.

    ``validate_args=False`` for the Bernoulli: grey-level pixels in [0, 1] are a
    valid (continuous-Bernoulli-like) target for the cross-entropy.
    """
    if likelihood == "bernoulli":
        return dist.Bernoulli(logits=decoder_output, validate_args=False).to_event(1)
    loc, scale = decoder_output
    return dist.Normal(loc, scale).to_event(1)


def mean_of(decoder_output, likelihood: str) -> torch.Tensor:
    if likelihood == "bernoulli":
        return torch.sigmoid(decoder_output)
    return decoder_output[0]


class PyroVariant(nn.Module):
    """Networks plus ``model``/``guide``; see the module docstring."""

    def __init__(self, config, x_dim: int, num_classes: int = 10):
        super().__init__()
        self.config = config
        self.x_dim = x_dim
        self.num_classes = num_classes
        self.svi: SVI | None = None
        self.optim = None

    # --- the math -----------------------------------------------------------
    def model(self, x, **batch):  # pragma: no cover - abstract
        raise NotImplementedError

    def guide(self, x, **batch):  # pragma: no cover - abstract
        raise NotImplementedError

    def objective(self):
        return TraceMeanField_ELBO()

    # --- data -----------------------------------------------------------------
    def training_data(self, dataset) -> dict:
        """The arrays a training batch slices; variants with labels add ``y``."""
        return {"x": dataset.x_train}

    def test_data(self, dataset) -> dict:
        return {"x": dataset.x_test}

    # --- training -----------------------------------------------------------
    def configure_optimizers(self, lr: float) -> None:
        self.optim = pyro.optim.Adam(adam_arguments(lr, self))
        self.svi = SVI(self.model, self.guide, self.optim, loss=self.objective())

    def train_step(self, batch: dict) -> float:
        """One gradient step; returns the loss summed over the batch."""
        return self.svi.step(**batch)

    def on_epoch_end(self, epoch: int, train_arrays: dict) -> None:
        """Called after every finished epoch, before the checkpoint is written, with
        the training tensors (e.g. VAE-SVDD fixes its centre after the warm-up)."""

    def optimizer_state(self) -> dict:
        return {"svi": self.optim.get_state()}

    def load_optimizer_state(self, state: dict) -> None:
        self.optim.set_state(state["svi"])

    # --- evaluation ---------------------------------------------------------
    @torch.no_grad()
    def log_weights(self, num_particles: int, **batch) -> torch.Tensor:
        """(k, B) log importance weights of the guide as proposal."""
        return log_importance_weights(self.model, self.guide, num_particles, **batch)

    @torch.no_grad()
    def elbo(self, **batch) -> torch.Tensor:
        """Per-datapoint single-sample ELBO, shape (B,)."""
        return self.log_weights(1, **batch)[0]

    def encode(self, x, **batch) -> torch.Tensor:
        return self.encoder(x)[0]

    def decode(self, z) -> torch.Tensor:
        return mean_of(self.decoder(z), self.config.likelihood)

    @torch.no_grad()
    def reconstruct(self, **batch) -> torch.Tensor:
        return self.decode(self.encode(**batch))

    @torch.no_grad()
    def sample(self, num_samples: int, device) -> torch.Tensor:
        z = torch.randn(num_samples, self.config.z_dim, device=device)
        return self.decode(z)

    def extra_metrics(self, dataset, device) -> dict:
        return {}
