"""Two-layer IWAE in Pyro: model (iwae2.1-iwae2.3), guide (iwae2.4), objective (iwae2.5).

Burda, Grosse & Salakhutdinov, Importance Weighted Autoencoders, ICLR 2016, the
two-stochastic-layer architecture of Table 1. Every stochastic layer is a
diagonal Gaussian whose parameters an MLP computes from the layer above (model)
or below (guide): the shared :class:`~guides.torch_nets.GaussianEncoder` block.
The objective is the zoo's per-datapoint
:class:`~zoo.pyro_backend.objectives.ImportanceWeightedELBO`, which scores every
site of the trace, so the weight is ``p(z2) p(z1|z2) p(x|z1) / q(z1|x) q(z2|z1)``.
"""

import pyro
import pyro.distributions as dist
import torch

from guides.torch_nets import GaussianEncoder
from zoo.iwae2.config import ACTIVITY_SAMPLES, ACTIVITY_THRESHOLD
from zoo.pyro_backend.objectives import ImportanceWeightedELBO
from zoo.pyro_backend.variant import PyroVariant, make_decoder, observation



class Variant(PyroVariant):
    def __init__(self, config, x_dim, num_classes=10):
        super().__init__(config, x_dim, num_classes)
        z1_dim, z2_dim = config.z_dim, config.z2_dim
        # Guide: q(z1|x) and q(z2|z1).
        self.encoder = GaussianEncoder(x_dim, config.hidden, z1_dim, config.activation)
        self.encoder2 = GaussianEncoder(z1_dim, config.hidden2, z2_dim, config.activation)
        # Model: p(z1|z2) (the hidden widths mirrored) and p(x|z1).
        self.prior1 = GaussianEncoder(z2_dim, tuple(reversed(config.hidden2)), z1_dim, config.activation)
        self.decoder = make_decoder(config, z1_dim, x_dim)

    def model(self, x, **batch):
        pyro.module("prior1", self.prior1)
        pyro.module("decoder", self.decoder)
        with pyro.plate("data", x.shape[0], dim=-1):
            z2 = pyro.sample("z2", dist.Normal(x.new_zeros(x.shape[0], self.config.z2_dim), 1.0).to_event(1))
            z1 = pyro.sample("z1", dist.Normal(*self.prior1(z2)).to_event(1))
            pyro.sample("x", observation(self.decoder(z1), self.config.likelihood), obs=x)

    def guide(self, x, **batch):
        pyro.module("encoder", self.encoder)
        pyro.module("encoder2", self.encoder2)
        with pyro.plate("data", x.shape[0], dim=-1):
            z1 = pyro.sample("z1", dist.Normal(*self.encoder(x)).to_event(1))
            pyro.sample("z2", dist.Normal(*self.encoder2(z1)).to_event(1))

    def objective(self):
        return ImportanceWeightedELBO(num_particles=self.config.k)

    # --- pictures: reconstructions go through the mean of q(z1|x); samples through both layers
    @torch.no_grad()
    def sample(self, num_samples: int, device) -> torch.Tensor:
        z2 = torch.randn(num_samples, self.config.z2_dim, device=device)
        loc, scale = self.prior1(z2)
        return self.decode(loc + scale * torch.randn_like(loc))

    def extra_metrics(self, dataset, device) -> dict:
        """Burda et al.'s active units per layer: ``Cov_x(E_q[u])`` above 10^-2.

        ``E_q[z1] `` is the encoder's mean; ``E_q[z2] = E_{q(z1|x)}[mu_2(z1)]`` is
        averaged over ``ACTIVITY_SAMPLES`` draws of z1.
        """
        x = torch.as_tensor(self.test_data(dataset)["x"], device=device)
        loc1, scale1 = self.encoder(x)
        z1 = loc1 + scale1 * torch.randn(ACTIVITY_SAMPLES, *loc1.shape, device=device)
        mean2 = self.encoder2(z1)[0].mean(0)
        return {
            "active_units_z1": int((loc1.var(0) > ACTIVITY_THRESHOLD).sum()),
            "active_units_z2": int((mean2.var(0) > ACTIVITY_THRESHOLD).sum()),
        }
