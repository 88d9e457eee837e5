"""Reference implementations the claims compare the zoo against (not variants).

A claim's contender named ``reference:<name>`` runs one of these instead of a
registered variant: code written the way the library's own example writes it, on
the zoo's data and budget, evaluated by the zoo's evaluator. They share the
config class of the variant they stand beside (:data:`CONFIG_OF`).

- ``pyro-vae-example``: Pyro's ``examples/vae/vae.py`` loop: ``SVI`` with
  ``Trace_ELBO`` (a Monte-Carlo KL) and ``pyro.optim.Adam``, minibatches from a
  shuffled ``DataLoader``; the networks are the zoo VAE's, so the comparison
  isolates the training machinery.
"""

from __future__ import annotations

import numpy as np

CONFIG_OF = {"pyro-vae-example": "vae"}
BACKEND_OF = {"pyro-vae-example": "pyro"}


class _ReferenceTrainer:
    """Enough of a trainer for :func:`zoo.evaluate.importance_sampled_metrics`."""

    backend = "pyro"

    def __init__(self, model, guide, dataset):
        self.model, self.guide, self.dataset = model, guide, dataset

    def log_weights(self, arrays: dict, num_particles: int) -> np.ndarray:
        import torch

        from zoo.pyro_backend.objectives import log_importance_weights

        with torch.no_grad():
            x = torch.as_tensor(arrays["x"])
            return log_importance_weights(self.model, self.guide, num_particles, x).double().numpy()


def pyro_vae_example(config, options, eval_k: int) -> dict:
    """Train Pyro's VAE example on the zoo's data for ``options.epochs``; return the
    zoo's evaluation metrics (``test_log_likelihood`` with k-hat, ``test_elbo``)."""
    import pyro
    import pyro.distributions as dist
    import torch
    from pyro.infer import SVI, Trace_ELBO
    from torch.utils.data import DataLoader, TensorDataset

    from guides.torch_nets import GaussianEncoder
    from zoo.data import load_dataset
    from zoo.evaluate import importance_sampled_metrics
    from zoo.pyro_backend.variant import make_decoder, observation

    dataset = load_dataset(options.dataset, data_dir=options.data_dir, binarize=options.binarize, seed=options.seed,
                           limit_train=options.limit_train, limit_test=options.limit_test)
    pyro.set_rng_seed(options.seed)
    pyro.clear_param_store()
    encoder = GaussianEncoder(dataset.x_dim, config.hidden, config.z_dim, config.activation)
    decoder = make_decoder(config, config.z_dim, dataset.x_dim)

    def model(x):
        pyro.module("decoder", decoder)
        with pyro.plate("data", x.shape[0]):
            z = pyro.sample("latent", dist.Normal(x.new_zeros(x.shape[0], config.z_dim), 1.0).to_event(1))
            pyro.sample("obs", observation(decoder(z), config.likelihood), obs=x)

    def guide(x):
        pyro.module("encoder", encoder)
        with pyro.plate("data", x.shape[0]):
            loc, scale = encoder(x)
            pyro.sample("latent", dist.Normal(loc, scale).to_event(1))

    generator = torch.Generator().manual_seed(options.seed)
    loader = DataLoader(TensorDataset(torch.as_tensor(dataset.x_train)), batch_size=options.batch_size,
                        shuffle=True, generator=generator)
    svi = SVI(model, guide, pyro.optim.Adam({"lr": options.lr}), loss=Trace_ELBO())
    for _ in range(options.epochs):
        for (x,) in loader:
            svi.step(torch.bernoulli(x) if dataset.binarize == "dynamic" else x)
    metrics = importance_sampled_metrics(_ReferenceTrainer(model, guide, dataset), {"x": dataset.x_test}, eval_k)
    pyro.clear_param_store()
    return metrics


REFERENCES = {"pyro-vae-example": pyro_vae_example}
