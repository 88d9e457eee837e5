"""LSVAE in Pyro: the VAE's model with a fixed-scale Gaussian decoder (lsvae.1,
lsvae.2), trained on squared error + KL + an L2 penalty on the weights (lsvae.4).

Ramachandra, Least Square Variational Bayesian Autoencoder with Regularization,
arXiv:1707.03134 (2017). The model and guide are the VAE's: with
``fixed_scale = sigma0`` the decoder's log-likelihood is the squared error
(lsvae.3). The L2 penalty is part of the objective, so it is a term of the loss
(:class:`L2PenalisedELBO`), not the optimiser's weight decay: under Adam, a decay
applied by the optimiser is rescaled per parameter and is not the gradient of
lambda ||w||^2.
"""

import torch
from pyro.infer import TraceMeanField_ELBO

from zoo.vae.pyro_model import Variant as VAE


def squared_norm(parameters) -> torch.Tensor:
    """``||w||^2`` summed over every parameter tensor (weights and biases)."""
    return sum(p.pow(2).sum() for p in parameters)


class L2PenalisedELBO(TraceMeanField_ELBO):
    """(lsvae.4) ``sum_b -ELBO(x_b) + B * lambda * (||theta||^2 + ||phi||^2)``.

    The parameters are those of the ``param`` sites of the model's and the guide's
    traces (``pyro.module`` registers every network weight there), so theta and
    phi are exactly what SVI optimises. The penalty is per datapoint, hence B
    times it in the minibatch sum (B = the observed site's batch size).
    """

    def __init__(self, weight_decay: float, observed: str = "x", **kwargs):
        super().__init__(**kwargs)
        self.weight_decay = weight_decay
        self.observed = observed

    def penalty(self, model_trace, guide_trace) -> torch.Tensor:
        params = {
            name: site["value"]
            for trace in (model_trace, guide_trace)
            for name, site in trace.nodes.items()
            if site["type"] == "param"
        }
        batch_size = model_trace.nodes[self.observed]["fn"].batch_shape.numel()
        return batch_size * self.weight_decay * squared_norm(params.values())

    def _differentiable_loss_particle(self, model_trace, guide_trace):
        loss, surrogate_loss = super()._differentiable_loss_particle(model_trace, guide_trace)
        penalty = self.penalty(model_trace, guide_trace)
        return loss + penalty.detach().item(), surrogate_loss + penalty


class Variant(VAE):
    def objective(self):
        return L2PenalisedELBO(self.config.weight_decay)

    @torch.no_grad()
    def extra_metrics(self, dataset, device, num_points: int = 1000) -> dict:
        """The paper's criterion: reconstruction error of the decoded posterior mean."""
        x = torch.as_tensor(dataset.x_test[:num_points], device=device)
        return {"reconstruction_mse": float((self.reconstruct(x=x) - x).pow(2).mean())}
