"""The base class of every Pyro variant: a model–guide pair and how to train it.

A variant subclasses :class:`PyroVariant`, builds its networks in ``__init__`` and
writes ``model`` and ``guide`` (the math of its card). Everything else has a default
that fits the VAE family and is overridden only where the paper needs it:

- ``objective()``: the Pyro loss (default ``TraceMeanField_ELBO``: analytic KL);
- ``parameter_groups()``: named groups of networks, one optimizer each (default:
  one group of everything);
- ``training_loss(batch)`` / ``train_step(batch)``: one optimisation step (default:
  the objective's ``differentiable_loss`` and one Adam step, what ``SVI.step``
  does without the param store); adversarial and wake-sleep variants override
  ``train_step`` and call ``step(loss, *groups)`` once per group;
- ``log_weights(x, k)``: importance weights for evaluation;
- ``encode``, ``decode``, ``sample``: used for pictures;
- ``extra_metrics(dataset)``: the paper's own evaluation (AUROC, accuracy...).

Batches are dicts of tensors; the model and guide take them as keyword arguments
(``x`` always, ``y`` when the dataset has labels).
"""

from __future__ import annotations

import functools

import pyro.distributions as dist
import torch
from pyro import poutine
from pyro.infer import TraceMeanField_ELBO
from pyro.infer.util import is_validation_enabled
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

    For ``torch.optim.Adam`` and ``pyro.optim.Adam`` alike. The fused update is Adam
    itself, done in one pass over each tensor instead of a dozen elementwise
    operations: about 1 ms of a 15 ms step of the 784-400-50 VAE on one CPU core
    (benchmarks/README.md).
    """
    parameter = next(module.parameters(), None)
    if parameter is not None and fused_adam_available(parameter.device.type):
        return {"lr": lr, "fused": True}
    return {"lr": lr}


def check_module_parameters(trace) -> None:
    """Raise if a traced model or guide uses a parameter outside its networks.

    ``pyro.module`` names its parameters ``<module>$$$<name>``; a bare ``pyro.param``
    site would be invisible to an optimizer over the variant's ``nn.Module``
    parameters and silently never trained.
    """
    bare = [name for name, site in trace.nodes.items() if site["type"] == "param" and "$$$" not in name]
    if bare:
        raise ValueError(
            f"pyro.param sites {bare} are not parameters of the variant's networks, so the default "
            "optimizer would never update them: make them nn.Parameter attributes of the variant "
            "(registered with pyro.module) in one of its parameter_groups"
        )


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
        self.optimizers: dict[str, torch.optim.Optimizer] = {}

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
    def parameter_groups(self) -> dict[str, nn.Module]:
        """Named groups of networks, each stepped by an optimizer of its own.

        The default is one group, ``"all"``, of every parameter. Adversarial and
        wake-sleep variants name one group per network (``{"encoder": ...,
        "decoder": ..., "discriminator": ...}``) and step them with their own
        losses; groups must not share a parameter.
        """
        return {"all": self}

    def configure_optimizers(self, lr: float) -> None:
        """The objective, and one Adam per parameter group (fused where torch has it).

        Plain torch optimizers over the networks' parameters: ``SVI`` with
        ``pyro.optim`` would make one optimizer per parameter tensor and go through
        the param store every step. The networks are ``nn.Module`` attributes that
        ``model`` and ``guide`` register with ``pyro.module``; the trainer's first
        (validated) step checks that no bare ``pyro.param`` escapes the optimizers.
        """
        self.training_objective = self.objective()
        groups = self.parameter_groups()
        owner: dict[int, str] = {}
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        for name, module in groups.items():
            parameters = [p for p in module.parameters() if p.requires_grad]
            for parameter in parameters:
                if id(parameter) in owner:
                    raise ValueError(f"parameter groups {owner[id(parameter)]!r} and {name!r} share a parameter")
                owner[id(parameter)] = name
            self.optimizers[name] = torch.optim.Adam(parameters, **adam_arguments(lr, module))
        missing = [n for n, p in self.named_parameters() if p.requires_grad and id(p) not in owner]
        if missing:
            raise ValueError(f"parameters {missing[:3]} are in no parameter group, so nothing would train them")

    def training_loss(self, batch: dict) -> torch.Tensor:
        """The differentiable loss of one batch, summed over its rows: the
        objective's ``differentiable_loss`` on ``model`` and ``guide``."""
        if is_validation_enabled():
            with poutine.trace(param_only=True) as params:
                loss = self.training_objective.differentiable_loss(self.model, self.guide, **batch)
            check_module_parameters(params.trace)
            return loss
        return self.training_objective.differentiable_loss(self.model, self.guide, **batch)

    def train_step(self, batch: dict) -> float:
        """One gradient step; returns the loss summed over the batch.

        What ``SVI.step`` does, without the param store: the objective's
        differentiable loss, its gradient, one Adam step. Variants with several
        parameter groups override this and call :meth:`step` once per group.
        """
        return self.step(self.training_loss(batch))

    def step(self, loss: torch.Tensor, *groups: str, retain_graph: bool = False) -> float:
        """Step the optimizers of ``groups`` (default: every group) on ``loss``.

        Gradients go into exactly those groups' parameters (``backward(inputs=...)``),
        so a loss can never move a network it is not meant to train; the others'
        ``.grad`` stay untouched. ``reduce_gradients`` runs between the backward
        pass and the update: a no-op on one device, the all-reduce of the groups'
        gradients under data-parallel training. Returns ``loss`` as a float.
        """
        names = groups or tuple(self.optimizers)
        parameters = [p for name in names for group in self.optimizers[name].param_groups for p in group["params"]]
        for parameter in parameters:
            parameter.grad = None
        loss.backward(inputs=parameters, retain_graph=retain_graph)
        # A parameter this loss does not reach keeps grad None, and torch's
        # optimizers skip it, as after ``zero_grad(set_to_none=True)``.
        self.reduce_gradients(parameters)
        for name in names:
            self.optimizers[name].step()
        return loss.item()

    def reduce_gradients(self, parameters: list[torch.Tensor]) -> None:
        """Hook between backward pass and update; data-parallel training replaces it."""

    def on_epoch_end(self, epoch: int, train_arrays: dict) -> None:
        """Called after every finished epoch, before the checkpoint is written, with
        the training tensors (e.g. VAE-SVDD fixes its centre after the warm-up)."""

    def optimizer_state(self) -> dict:
        return {name: optimizer.state_dict() for name, optimizer in self.optimizers.items()}

    def load_optimizer_state(self, state: dict) -> None:
        for name, optimizer in self.optimizers.items():
            optimizer.load_state_dict(state[name])

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
