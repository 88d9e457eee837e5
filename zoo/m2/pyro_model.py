"""M2 in Pyro: model (m2.1, m2.2), guide (m2.3), semi-supervised objective (m2.4–m2.6).

Kingma, Rezende, Mohamed & Welling, Semi-Supervised Learning with Deep Generative
Models, NeurIPS 2014. The structure is that of Pyro's ``examples/vae/ss_vae_M2.py``:
one model and one guide in which ``y`` is observed when a label is given (the bound
is then ``Trace_ELBO``'s) and is otherwise a latent variable, summed out exactly by
``TraceEnum_ELBO`` with parallel enumeration of the guide's ``y``; the
classification term is added to the loss.

A training batch mixes labelled and unlabelled rows (``labelled`` is a mask), so the
loss runs the program twice on the whole batch with complementary masks (m2.6):
shapes stay fixed, and a masked row contributes exactly nothing. Running the two
parts as one program would not be exact: an enumerated ``y`` whose log-density is
masked on labelled rows gives every enumerated value weight 1 there.

This module also holds the pieces VFAE (``zoo/vfae``) shares: :class:`LogitsNet`,
:class:`SemiSupervisedELBO`, the supervised-only baseline and the per-class
importance weights.
"""

from __future__ import annotations

from typing import Sequence

import pyro
import pyro.distributions as dist
import torch
from pyro import poutine
from pyro.infer import ELBO, Trace_ELBO, TraceEnum_ELBO
from torch import nn
from torch.nn import functional as F

from guides.torch_nets import MLP, GaussianEncoder
from zoo.data import check_likelihood, oversampled_rows
from zoo.pyro_backend.objectives import log_importance_weights
from zoo.pyro_backend.variant import PyroVariant, make_decoder, mean_of, observation

# --- network blocks ------------------------------------------------------------


class LogitsNet(nn.Module):
    """inputs -> logits of a Categorical (the classifier ``q(y|.)``).

    Its linear layers sit in ``net``, the layout of :mod:`guides.torch_nets`, so
    ``guides.flax_nets.params_from_torch`` copies it into the Flax twin.
    """

    def __init__(self, in_dim: int, hidden: Sequence[int], num_classes: int, activation: str = "relu"):
        super().__init__()
        self.net = MLP([in_dim, *hidden, num_classes], activation)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.net(inputs)


def one_hot(y: torch.Tensor, num_classes: int, like: torch.Tensor) -> torch.Tensor:
    return F.one_hot(y.long(), num_classes).to(like.dtype)


def concat(*tensors: torch.Tensor) -> torch.Tensor:
    """Concatenate along the last dim after broadcasting the batch dims: an
    enumerated ``y`` has shape (C, 1) while ``x`` has (B, D)."""
    batch = torch.broadcast_shapes(*(t.shape[:-1] for t in tensors))
    return torch.cat([t.expand(*batch, t.shape[-1]) for t in tensors], dim=-1)


def row_mask(mask):
    """``poutine.mask`` of the data plate's rows, or no mask at all."""
    return poutine.mask(mask=True if mask is None else mask)


# --- the objective -------------------------------------------------------------


class SemiSupervisedELBO(ELBO):
    """(m2.6) ``sum_lab -L(x,y) + sum_unlab -U(x) + w sum_lab -log q(y|.)``.

    The model and guide take ``y`` (observed when given) and ``mask`` (the rows
    that count). With ``y = label`` and ``mask = labelled``, ``Trace_ELBO`` gives
    the labelled bound (m2.4): there is nothing to enumerate. With ``y`` absent and
    ``mask = ~labelled``, the guide's ``y`` is enumerated in parallel and
    ``TraceEnum_ELBO`` gives the unlabelled bound (m2.5) exactly. The unlabelled
    run is told ``batch_terms=False``: a batch-level factor outside the data plate
    (VFAE's MMD) belongs to the minibatch once, and the labelled run, which always
    happens, carries it.

    ``log_classifier(x, label, **batch)`` gives ``log q(y=label|.)`` per row;
    ``weight()`` is the classification weight per labelled example, ``alpha/N_l``
    (read at every step: it is fixed once the labelled set is known).
    """

    def __init__(self, log_classifier, weight):
        super().__init__()
        self.labelled_elbo = Trace_ELBO()
        self.unlabelled_elbo = TraceEnum_ELBO(max_plate_nesting=1)
        self.log_classifier = log_classifier
        self.weight = weight

    def _get_trace(self, model, guide, args, kwargs):  # pragma: no cover - unused
        raise NotImplementedError("the two runs trace themselves")

    def differentiable_loss(self, model, guide, x, label, labelled, **batch):
        observed = labelled.bool()
        loss = self.labelled_elbo.differentiable_loss(model, guide, x, y=label, mask=observed, **batch)
        if not observed.all():  # a fully masked run adds exactly 0; skip it
            loss = loss + self.unlabelled_elbo.differentiable_loss(
                model, guide, x, mask=~observed, batch_terms=False, **batch
            )
        log_q = self.log_classifier(x, label, **batch)
        return loss - self.weight() * (log_q * observed.to(log_q.dtype)).sum()

    def loss(self, model, guide, *args, **kwargs) -> float:
        with torch.enable_grad():  # Pyro's TraceEnum differentiable_loss insists on a graph
            return self.differentiable_loss(model, guide, *args, **kwargs).item()

    def loss_and_grads(self, model, guide, *args, **kwargs) -> float:
        loss = self.differentiable_loss(model, guide, *args, **kwargs)
        loss.backward()
        return loss.item()


def classification_weight(alpha_scale: float, labelled) -> float:
    """(m2.6) ``alpha / N_l`` with ``alpha = alpha_scale * N``: the weight of one
    labelled example's ``-log q(y|x)`` in a minibatch loss that sums over rows."""
    num_labelled = int(labelled.sum())
    return alpha_scale * len(labelled) / num_labelled if num_labelled else 0.0


def labelled_arrays(dataset) -> dict:
    """The training arrays of a semi-supervised variant: images, labels and the mask.

    Without a labelled subset (``dataset.labelled is None``) every label is
    observed. The labels of unlabelled rows are blanked to 0, so no code path can
    read them; the loss masks those rows anyway.
    """
    import numpy as np

    labelled = dataset.labelled if dataset.labelled is not None else np.ones(len(dataset.y_train), dtype=bool)
    return {"x": dataset.x_train, "label": np.where(labelled, dataset.y_train, 0), "labelled": labelled}


@torch.no_grad()
def class_marginal_log_weights(model, guide, num_classes: int, num_particles: int, x, **batch) -> torch.Tensor:
    """``log w_k = log sum_y p(x, y, z_k^y) / q(z_k^y | x, y)``, shape (k, B).

    The label is summed out exactly inside each weight: for every class the guide
    proposes its own ``z`` given that label, so ``w_k`` is an unbiased estimate of
    ``p(x)`` and ``log mean_k w_k`` the importance-sampled log-likelihood.
    """
    per_class = []
    for c in range(num_classes):
        y = torch.full((x.shape[0],), c, dtype=torch.long, device=x.device)
        per_class.append(log_importance_weights(model, guide, num_particles, x=x, y=y, batch_terms=False, **batch))
    return torch.logsumexp(torch.stack(per_class), dim=0)


@torch.no_grad()
def supervised_baseline_accuracy(make_net, inputs, labels, test_inputs, test_labels, steps: int,
                                 binarize: bool, seed: int = 0) -> float:
    """Test accuracy of a classifier trained on ``(inputs, labels)`` alone.

    ``make_net()`` builds the network (the architecture of ``q(y|x)``); Adam
    (lr 1e-3), minibatches of up to 100, ``steps`` steps, inputs re-binarized per
    step when the training images are (as the variational model sees them). Seeded
    on a forked RNG, so training the baseline leaves the run's randomness alone.
    """
    with torch.random.fork_rng(devices=[]), torch.enable_grad():
        torch.manual_seed(seed)
        net = make_net().to(inputs.device)
        optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
        size = min(100, len(inputs))
        for _ in range(steps):
            index = torch.randint(len(inputs), (size,), device=inputs.device)
            x = torch.bernoulli(inputs[index]) if binarize else inputs[index]
            loss = F.cross_entropy(net(x), labels[index])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return accuracy(net(test_inputs), test_labels)


def accuracy(logits: torch.Tensor, labels: torch.Tensor) -> float:
    return float((logits.argmax(-1) == labels).double().mean())


# --- the variant ---------------------------------------------------------------


class Variant(PyroVariant):
    """p(y) p(z) p(x|y,z) with q(y|x) q(z|x,y); see the module docstring."""

    def __init__(self, config, x_dim, num_classes=10):
        super().__init__(config, x_dim, num_classes)
        self.classifier = LogitsNet(x_dim, config.hidden, num_classes, config.activation)
        self.encoder = GaussianEncoder(x_dim + num_classes, config.hidden, config.z_dim, config.activation)
        self.decoder = make_decoder(config, config.z_dim + num_classes, x_dim)
        # alpha / N_l; training_data sets it from the labelled set (all labelled until then).
        self.alpha_per_label = config.alpha_scale

    def model(self, x, y=None, mask=None, **batch):
        """(m2.1) ``y ~ Cat(1/C)``, ``z ~ N(0, I)``; (m2.2) ``x ~ p(x | y, z)``."""
        pyro.module("decoder", self.decoder)
        size = x.shape[0]
        with pyro.plate("data", size, dim=-1), row_mask(mask):
            y = pyro.sample("y", dist.Categorical(logits=x.new_zeros(size, self.num_classes)), obs=y)
            z = pyro.sample("z", dist.Normal(x.new_zeros(size, self.config.z_dim), 1.0).to_event(1))
            logits = self.decoder(concat(z, one_hot(y, self.num_classes, z)))
            pyro.sample("x", observation(logits, self.config.likelihood), obs=x)

    def guide(self, x, y=None, mask=None, **batch):
        """(m2.3) ``q(y|x)`` (enumerated when ``y`` is not given), then ``q(z|x,y)``."""
        pyro.module("classifier", self.classifier)
        pyro.module("encoder", self.encoder)
        with pyro.plate("data", x.shape[0], dim=-1), row_mask(mask):
            if y is None:
                y = pyro.sample("y", dist.Categorical(logits=self.classifier(x)), infer={"enumerate": "parallel"})
            loc, scale = self.encoder(concat(x, one_hot(y, self.num_classes, x)))
            pyro.sample("z", dist.Normal(loc, scale).to_event(1))

    def log_classifier(self, x, label, **batch) -> torch.Tensor:
        """``log q(y=label | x)`` per row, for the classification term of (m2.6)."""
        return dist.Categorical(logits=self.classifier(x)).log_prob(label)

    def objective(self):
        return SemiSupervisedELBO(self.log_classifier, lambda: self.alpha_per_label)

    # --- data ---------------------------------------------------------------
    def training_data(self, dataset) -> dict:
        """Images, labels and mask, labelled rows repeated to ``labelled_fraction``
        (zoo.data.oversampled_rows); alpha / N_l counts the distinct labels."""
        check_likelihood(dataset, self.config.likelihood)
        arrays = labelled_arrays(dataset)
        self.alpha_per_label = classification_weight(self.config.alpha_scale, arrays["labelled"])
        rows = oversampled_rows(arrays["labelled"], self.config.labelled_fraction)
        return {key: value[rows] for key, value in arrays.items()}

    def test_data(self, dataset) -> dict:
        return {"x": dataset.x_test, "label": dataset.y_test}

    # --- evaluation and pictures ----------------------------------------------
    @torch.no_grad()
    def log_weights(self, num_particles: int, x, **batch) -> torch.Tensor:
        """(k, B) weights with ``y`` summed out (see :func:`class_marginal_log_weights`)."""
        return class_marginal_log_weights(self.model, self.guide, self.num_classes, num_particles, x)

    def predict(self, x) -> torch.Tensor:
        """The most probable label under ``q(y|x)``."""
        return self.classifier(x).argmax(-1)

    def encode(self, x, label=None, **batch) -> torch.Tensor:
        """The mean of ``q(z|x,y)``, with ``y`` the label if given, else ``q``'s guess."""
        y = self.predict(x) if label is None else label
        return self.encoder(concat(x, one_hot(y, self.num_classes, x)))[0]

    def decode(self, z, y=None) -> torch.Tensor:
        return mean_of(self.decoder(concat(z, one_hot(y, self.num_classes, z))), self.config.likelihood)

    @torch.no_grad()
    def reconstruct(self, x, **batch) -> torch.Tensor:
        """Through the classifier: ``y = argmax q(y|x)``, ``z`` = mean of ``q(z|x,y)``."""
        y = self.predict(x)
        return self.decode(self.encode(x, y), y)

    @torch.no_grad()
    def sample(self, num_samples: int, device) -> torch.Tensor:
        """Class-conditional samples: rows of the grid run through the classes
        (``num_samples / C`` prior draws of z per class, in order)."""
        per_class = -(-num_samples // self.num_classes)
        y = torch.arange(self.num_classes, device=device).repeat_interleave(per_class)[:num_samples]
        z = torch.randn(num_samples, self.config.z_dim, device=device)
        return self.decode(z, y)

    @torch.no_grad()
    def style_transfer(self, x, label) -> torch.Tensor:
        """Each image followed by its style decoded with every label: ``z`` is the
        mean of ``q(z|x, y=label)``, decoded with ``y = 0..C-1``. Shape
        (n * (C + 1), D), one grid row per image."""
        z = self.encode(x, label)
        rows = [x]
        for c in range(self.num_classes):
            rows.append(self.decode(z, torch.full_like(label, c)))
        return torch.stack(rows, dim=1).reshape(-1, x.shape[-1])

    def supervised_steps(self) -> int:
        """The baseline's Adam steps: ``config.supervised_steps``, or as many as M2
        has taken (read from its optimizer, so a restored run knows them too)."""
        if self.config.supervised_steps is not None:
            return int(self.config.supervised_steps)
        steps = [int(state["step"]) for optimizer in self.optimizers.values() for state in optimizer.state.values()]
        return max(steps, default=0)

    def extra_metrics(self, dataset, device) -> dict:
        """Test accuracy of ``q(y|x)`` against a supervised-only classifier of the
        same architecture trained on the labelled examples alone."""
        arrays = labelled_arrays(dataset)
        keep = torch.as_tensor(arrays["labelled"], device=device)
        x_train = torch.as_tensor(dataset.x_train, device=device)[keep]
        y_train = torch.as_tensor(dataset.y_train, device=device)[keep]
        x_test = torch.as_tensor(dataset.x_test, device=device)
        y_test = torch.as_tensor(dataset.y_test, device=device)
        steps = self.supervised_steps()
        supervised = supervised_baseline_accuracy(
            lambda: LogitsNet(self.x_dim, self.config.hidden, self.num_classes, self.config.activation),
            x_train, y_train, x_test, y_test, steps, dataset.binarize == "dynamic",
        )
        return {
            "labels": int(keep.sum()),
            "supervised_steps": steps,
            "test_accuracy": accuracy(self.classifier(x_test), y_test),
            "supervised_test_accuracy": supervised,
        }
