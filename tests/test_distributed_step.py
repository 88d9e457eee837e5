"""The zoo's Pyro step against Pyro's own ``SVI.step``, for every registered variant.

The zoo steps torch optimizers on the objective's ``differentiable_loss`` instead of
calling ``SVI.step`` (which goes through the param store, one ``pyro.optim``
optimizer per tensor, and cannot run under DDP). That must change no number. For
every Pyro variant in the registry (whatever other helpers add), on one tiny batch
and the same noise (same torch seed):

- the objective's ``differentiable_loss`` and its gradients equal the objective's
  ``loss_and_grads``, the path ``SVI.step`` takes (for the zoo's own ELBO classes
  these are separate code paths, so this checks each objective's two halves agree);
- for variants that keep the default step (one group, the objective's loss), the
  loss ``train_step`` returns and the gradients it hands to ``reduce_gradients``
  equal ``loss_and_grads``, and the parameters after the step equal those after
  one ``SVI.step`` with ``pyro.optim.Adam`` (the zoo's Adam is the fused kernel,
  which rounds differently in the last bits);
- no variant's ``train_step`` calls ``SVI.step``.
"""

from __future__ import annotations

import copy

import pyro
import pytest
import torch
from conftest import tiny_config, tiny_options
from pyro.infer import SVI

from zoo import registry
from zoo.config import ConfigError
from zoo.pyro_backend.variant import PyroVariant
from zoo.run import make_trainer

VARIANTS = registry.names()
BATCH = 24
SEED = 7


def uses_default_step(variant) -> bool:
    cls = type(variant)
    return cls.train_step is PyroVariant.train_step and cls.training_loss is PyroVariant.training_loss


@pytest.fixture(scope="module")
def trainers():
    """One tiny trainer per variant, built once for the module."""
    cache: dict = {}

    def get(name: str):
        if name not in cache:
            pyro.clear_param_store()
            # Text variants (wsvae) name the dataset they run on; the rest take digits.
            dataset = getattr(registry.variant_class(name, "pyro"), "example_dataset", None)
            options = (
                tiny_options(backend="pyro", binarize="fixed")
                if dataset is None
                else tiny_options(backend="pyro", dataset=dataset, binarize="none")
            )
            cache[name] = make_trainer(name, small_config(name), options)
        return cache[name]

    return get


def small_config(name: str):
    """The tiny config, or the variant's default where its fields must agree with
    the hidden widths (mevae's memory slots per layer): one batch of either is cheap."""
    try:
        return tiny_config(name)
    except ConfigError:
        return registry.default_config(name)


def batch_of(trainer) -> dict:
    return {k: v[:BATCH] for k, v in trainer.train_arrays.items()}


def fresh_copy(trainer):
    """A copy of the trainer's variant with its own optimizers, and an empty param store
    (``pyro.module`` would otherwise load another copy's tensors into it)."""
    pyro.clear_param_store()
    variant = copy.deepcopy(trainer.variant)
    variant.configure_optimizers(trainer.options.lr)
    return variant


def gradients(variant) -> dict[str, torch.Tensor]:
    return {n: p.grad.clone() for n, p in variant.named_parameters() if p.grad is not None}


def assert_close_gradients(ours: dict, reference: dict, name: str) -> None:
    nonzero = {n for n, g in reference.items() if g.abs().max() > 0}
    assert nonzero, f"{name}: the reference gradient is zero everywhere; the check would be vacuous"
    assert nonzero <= set(ours), f"{name}: no gradient for {sorted(nonzero - set(ours))[:3]}"
    for n in nonzero:
        torch.testing.assert_close(ours[n], reference[n], rtol=1e-5, atol=1e-6, msg=f"{name}: gradient of {n}")


@pytest.mark.parametrize("name", VARIANTS)
def test_differentiable_loss_and_its_gradients_equal_loss_and_grads(name, trainers):
    trainer = trainers(name)
    batch = batch_of(trainer)

    ours = fresh_copy(trainer)
    objective = ours.objective()
    pyro.set_rng_seed(SEED)
    loss = objective.differentiable_loss(ours.model, ours.guide, **batch)
    loss.backward()

    reference = fresh_copy(trainer)
    pyro.set_rng_seed(SEED)
    reference_loss = reference.objective().loss_and_grads(reference.model, reference.guide, **batch)

    assert loss.item() == pytest.approx(reference_loss, rel=1e-5)
    assert_close_gradients(gradients(ours), gradients(reference), name)


@pytest.mark.parametrize("name", VARIANTS)
def test_the_zoo_step_is_svi_step(name, trainers):
    trainer = trainers(name)
    if not uses_default_step(trainer.variant):
        pytest.skip(f"{name} has its own train_step (several groups or extra terms); its tests cover it")
    batch = batch_of(trainer)

    ours = fresh_copy(trainer)
    ours.training_objective = ours.objective()
    handed_over: dict = {}

    def capture(parameters):
        handed_over.update(gradients(ours))

    ours.reduce_gradients = capture
    pyro.set_rng_seed(SEED)
    with pyro.validation_enabled(True):
        loss = ours.train_step(batch)

    reference = fresh_copy(trainer)
    pyro.set_rng_seed(SEED)
    reference_loss = reference.objective().loss_and_grads(reference.model, reference.guide, **batch)
    assert loss == pytest.approx(reference_loss, rel=1e-5)
    assert_close_gradients(handed_over, gradients(reference), name)

    stepped = fresh_copy(trainer)
    svi = SVI(stepped.model, stepped.guide, pyro.optim.Adam({"lr": trainer.options.lr}), loss=stepped.objective())
    pyro.set_rng_seed(SEED)
    assert svi.step(**batch) == pytest.approx(loss, rel=1e-5)
    before = dict(trainer.variant.named_parameters())
    moved = 0
    for n, p in stepped.named_parameters():
        mine = dict(ours.named_parameters())[n]
        torch.testing.assert_close(mine, p, rtol=1e-5, atol=1e-6, msg=f"{name}: {n} after one step")
        moved += int(not torch.equal(p, before[n]))
    assert moved > 0, f"{name}: SVI.step moved no parameter; the comparison would be vacuous"


@pytest.mark.parametrize("name", VARIANTS)
def test_no_variant_steps_through_svi(name, trainers, monkeypatch):
    trainer = trainers(name)
    variant = fresh_copy(trainer)

    def refuse(*args, **kwargs):
        raise AssertionError(f"{name}: train_step called SVI.step, which cannot run under DDP")

    monkeypatch.setattr(SVI, "step", refuse)
    pyro.set_rng_seed(SEED)
    before = {n: p.detach().clone() for n, p in variant.named_parameters()}
    loss = variant.train_step(batch_of(trainer))
    assert torch.isfinite(torch.tensor(loss))
    assert any(not torch.equal(p, before[n]) for n, p in variant.named_parameters())
