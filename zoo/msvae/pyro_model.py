"""MSVAE in Pyro: model (msvae.1, msvae.2), guide (msvae.3), objective (msvae.4).

Cai, Gao & Ji, Multi-Stage Variational Auto-Encoders for Coarse-to-Fine Image
Generation, arXiv:1705.07202 (2017). The model is stage 1 only: x is observed
once, under the fixed-scale Gaussian of the stage-1 decoder, whose mean is
recorded as the deterministic site ``x1``. The refiners are trained by the
objective term :class:`~zoo.pyro_backend.objectives.RefinementELBO`, fed from
``x1`` with its gradient stopped, so likelihood utilities (IS log-likelihood,
PSIS) score the stage-1 VAE and nothing else. Generation is ``f_S(...f_2(f_1(z)))``.
"""

import pyro
import pyro.distributions as dist
import torch
from pyro.infer import TraceMeanField_ELBO
from torch import nn

from guides.torch_nets import GaussianEncoder
from guides.torch_refiner import ResidualRefiner
from zoo.msvae.config import METRIC_ROWS, METRIC_SAMPLES
from zoo.pyro_backend.objectives import RefinementELBO
from zoo.pyro_backend.variant import PyroVariant, make_decoder
from zoo.sharpness import stage_metrics



class Variant(PyroVariant):
    def __init__(self, config, x_dim, num_classes=10):
        super().__init__(config, x_dim, num_classes)
        self.encoder = GaussianEncoder(x_dim, config.hidden, config.z_dim, config.activation)
        self.decoder = make_decoder(config, config.z_dim, x_dim)  # f_theta1, fixed scale sigma0
        self.refiners = nn.ModuleList(
            ResidualRefiner(x_dim, config.refiner_channels, config.refiner_layers) for _ in range(config.stages - 1)
        )

    def model(self, x, **batch):
        pyro.module("decoder", self.decoder)
        if len(self.refiners):
            # Registered here so that every parameter is in the model's trace (SVI,
            # param-store tools); the model itself never applies them.
            pyro.module("refiners", self.refiners)
        with pyro.plate("data", x.shape[0], dim=-1):
            z = pyro.sample("z", dist.Normal(x.new_zeros(x.shape[0], self.config.z_dim), 1.0).to_event(1))
            loc, scale = self.decoder(z)
            pyro.deterministic("x1", loc, event_dim=1)  # stage 1's coarse image, read by the refinement term
            pyro.sample("x", dist.Normal(loc, scale).to_event(1), obs=x)

    def guide(self, x, **batch):
        pyro.module("encoder", self.encoder)
        with pyro.plate("data", x.shape[0], dim=-1):
            loc, scale = self.encoder(x)
            pyro.sample("z", dist.Normal(loc, scale).to_event(1))

    def objective(self):
        if not len(self.refiners):
            return TraceMeanField_ELBO()
        return RefinementELBO(
            self.refiners, self.config.refine_weight, self.config.refine_loss, stop_gradient=not self.config.joint
        )

    def parameter_groups(self) -> dict[str, nn.Module]:
        """Stage 1 (encoder, decoder) and the refiners, one Adam each; one loss steps both."""
        if not len(self.refiners):
            return {"all": self}
        return {"stage1": nn.ModuleDict({"encoder": self.encoder, "decoder": self.decoder}), "refiner": self.refiners}

    # --- decoding: every stage, and the last one for pictures ---------------------
    def stage_means(self, z) -> list[torch.Tensor]:
        """``[x_1, x_2, ..., x_S]`` for latent codes ``z``."""
        stages = [self.decoder(z)[0]]
        for refine in self.refiners:
            stages.append(refine(stages[-1]))
        return stages

    def decode(self, z) -> torch.Tensor:
        return self.stage_means(z)[-1]

    def extra_metrics(self, dataset, device) -> dict:
        x = torch.as_tensor(self.test_data(dataset)["x"][:METRIC_ROWS], device=device)
        reconstructions = self.stage_means(self.encode(x))
        samples = self.stage_means(torch.randn(METRIC_SAMPLES, self.config.z_dim, device=device))
        to_numpy = lambda stages: [s.double().cpu().numpy() for s in stages]  # noqa: E731
        return stage_metrics(x.cpu().numpy(), to_numpy(reconstructions), to_numpy(samples), dataset.image_shape)
