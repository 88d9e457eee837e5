"""InfoVAE in Pyro: the VAE's model (infovae.1) and guide (infovae.2), trained on
the InfoVAE objective (infovae.3) as its minibatch loss (infovae.5).

Zhao, Song & Ermon, InfoVAE: Information Maximizing Variational Autoencoders,
arXiv:1706.02262 (2017). Two of the zoo's mechanisms for extra terms make the objective:

- the KL weight ``1 - alpha`` is a handler around the site z in model *and* guide,
  so ``TraceMeanField_ELBO``'s analytic KL is multiplied by it;
- ``MMD(q(z) || p(z))`` is a model-side ``pyro.factor`` outside the data plate,
  on the minibatch's draws of z (the guide's, replayed) against as many prior
  draws (infovae.4). Pyro's ``Trace_MMD`` is a different thing: it compares the
  particles of one datapoint's posterior with the prior, not the aggregate.

Importance weights for evaluation use the unweighted joint p(x, z) (the VAE's
model and guide): alpha and lambda shape the training objective, not the density.
"""

import pyro
import pyro.distributions as dist
import torch
from pyro import poutine

from zoo.evaluate import latent_knn_accuracy, mmd_metrics
from zoo.pyro_backend.objectives import log_importance_weights, mmd
from zoo.pyro_backend.variant import observation
from zoo.vae.pyro_model import Variant as VAE


def kl_weight(weight: float):
    """(infovae.5) The handler that multiplies the z site's log densities by ``weight``.

    ``poutine.scale`` refuses 0, so weight 0 (alpha = 1, the MMD-VAE) masks the
    site instead: z is still drawn and reparameterised, its KL is exactly 0.
    """
    return poutine.scale(scale=weight) if weight > 0 else poutine.mask(mask=False)


class Variant(VAE):
    def model(self, x, **batch):
        """(infovae.1) with the KL weight on z, then the MMD factor (infovae.5)."""
        pyro.module("decoder", self.decoder)
        batch_size = x.shape[0]
        with pyro.plate("data", batch_size, dim=-1):
            with kl_weight(self.config.kl_weight):
                z = pyro.sample("z", dist.Normal(x.new_zeros(batch_size, self.config.z_dim), 1.0).to_event(1))
            pyro.sample("x", observation(self.decoder(z), self.config.likelihood), obs=x)
        # Outside the plate: one term per minibatch, times B so that the loss per
        # datapoint is (infovae.3) with MMD estimated on this minibatch.
        divergence = mmd(z, self.prior_draws(batch_size, z), self.config.gamma)
        pyro.factor("mmd", -batch_size * self.config.mmd_weight * divergence)

    def guide(self, x, **batch):
        """(infovae.2) with the same KL weight on z as the model."""
        pyro.module("encoder", self.encoder)
        with pyro.plate("data", x.shape[0], dim=-1):
            loc, scale = self.encoder(x)
            with kl_weight(self.config.kl_weight):
                pyro.sample("z", dist.Normal(loc, scale).to_event(1))

    def prior_draws(self, num: int, like: torch.Tensor) -> torch.Tensor:
        """``z' ~ p(z)``, as many as the minibatch (infovae.4)."""
        return torch.randn(num, self.config.z_dim, dtype=like.dtype, device=like.device)

    @torch.no_grad()
    def log_weights(self, num_particles: int, **batch) -> torch.Tensor:
        """Importance weights of the unweighted joint (the VAE's model and guide)."""
        return log_importance_weights(super().model, super().guide, num_particles, **batch)

    def extra_metrics(self, dataset, device) -> dict:
        return latent_evaluation(self, dataset, device, self.config.gamma)


@torch.no_grad()
def aggregate_posterior_draws(variant, x: torch.Tensor):
    """One draw of q(z|x) per image of ``x`` (a sample of the aggregate posterior
    q(z)) and as many prior draws, as numpy arrays."""
    loc, scale = variant.encoder(x)
    z = loc + scale * torch.randn_like(loc)
    return z.double().cpu().numpy(), torch.randn_like(z).double().cpu().numpy()


@torch.no_grad()
def aggregate_posterior_mmd(variant, x: torch.Tensor, gamma: float) -> float:
    """(infovae.4) the biased V-statistic ``MMD(q(z), p(z))``, the training term's estimator."""
    loc, scale = variant.encoder(x)
    z = loc + scale * torch.randn_like(loc)
    return float(mmd(z, torch.randn_like(z), gamma))


@torch.no_grad()
def latent_evaluation(variant, dataset, device, gamma: float, num_points: int = 1000, num_labels: int = 1000) -> dict:
    """The paper's checks of the latent space, for any variant with an ``encoder``:
    the divergence of the aggregate posterior from the prior on ``num_points`` test
    images (:func:`mmd_metrics`), and a kNN classifier on ``mu_phi(x)`` fitted with
    ``num_labels`` labels."""
    x = torch.as_tensor(dataset.x_test[:num_points], device=device)

    def encode(images):
        return variant.encoder(torch.as_tensor(images, device=device))[0].cpu().numpy()

    return {
        **mmd_metrics(*aggregate_posterior_draws(variant, x), gamma),
        f"knn_accuracy_{num_labels}_labels": latent_knn_accuracy(encode, dataset, num_labels),
    }
