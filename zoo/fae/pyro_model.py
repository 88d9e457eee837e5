"""FAE in Pyro: the Gaussian VAE (fae.1, fae.2) trained on the ELBO plus the
Fisher-information penalties (fae.4).

Zheng, Yao, Zhang, Tsang & Wang, Understanding VAEs in Fisher-Shannon Plane,
AAAI 2019 (arXiv:1807.03723). The penalties need sigma_phi(x), which the model
trace does not see, so the objective is a ``TraceMeanField_ELBO`` subclass
(the zoo's custom-loss mechanism):
:class:`~zoo.pyro_backend.objectives.FisherPenalisedELBO` reads both scales from
the traces of the guide's z and the model's x.
"""

import torch
from pyro.distributions import Normal
from torch.distributions import kl_divergence

from zoo.pyro_backend.objectives import FisherPenalisedELBO, gaussian_fisher_information
from zoo.vae.pyro_model import Variant as VAE


class Variant(VAE):
    def objective(self):
        c = self.config
        return FisherPenalisedELBO(c.fisher_z, c.lambda_z, c.fisher_x, c.lambda_x)

    @torch.no_grad()
    def extra_metrics(self, dataset, device, num_points: int = 1000) -> dict:
        """The realised Fisher information (fae.3) on test images, next to its
        targets, with the KL and the reconstruction error it trades against."""
        x = torch.as_tensor(dataset.x_test[:num_points], device=device)
        loc, scale = self.encoder(x)
        z = loc + scale * torch.randn_like(loc)
        _, x_scale = self.decoder(z)
        kl = kl_divergence(Normal(loc, scale), Normal(torch.zeros_like(loc), 1.0)).sum(-1)
        return {
            "fisher_information_z": float(gaussian_fisher_information(scale).mean()),
            "fisher_information_x": float(gaussian_fisher_information(x_scale).mean()),
            "kl": float(kl.mean()),
            "reconstruction_mse": float((self.decode(loc) - x).pow(2).mean()),
        }
