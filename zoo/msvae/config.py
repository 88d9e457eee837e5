"""MSVAE hyperparameters: a fixed-scale Gaussian VAE (stage 1) and its refiners.

``stages`` counts the stages (1: the plain stage-1 VAE, no refiner); each later
stage is a residual CNN trained on ``refine_weight * refine_loss(x, x_s)``
(msvae.4). With ``joint`` false (the default) the refinement loss does not reach
stage 1, which stays an exact VAE with its own ELBO.
"""

from dataclasses import dataclass

from zoo.config import ConfigError, VariantConfig

REFINE_LOSSES = ("l1", "l2")
METRIC_ROWS = 500  # test images for the per-stage metrics (both backends)
METRIC_SAMPLES = 200  # prior draws for the sample sharpness


@dataclass
class Config(VariantConfig):
    likelihood: str = "gaussian"  # stage 1 is an l2 (fixed-scale Gaussian) VAE
    sigma0: float = 0.1  # the fixed decoder scale sigma_0 (msvae.2); not given in the paper
    stages: int = 2  # S: stage 1 plus S-1 refiners
    refine_weight: float = 1.0  # lambda (msvae.4)
    refine_loss: str = "l1"  # the refiners' loss l
    joint: bool = False  # let the refinement loss train stage 1 too (no stop-gradient)
    refiner_channels: int = 16
    refiner_layers: int = 3  # 3x3 convolutions per refiner

    @property
    def fixed_scale(self) -> float:
        """Read by ``make_decoder``: the stage-1 decoder's scale is the constant sigma0."""
        return self.sigma0

    def validate(self) -> None:
        super().validate()
        if self.likelihood != "gaussian":
            raise ConfigError(f"msvae's stage 1 is a Gaussian (l2) VAE: likelihood must be 'gaussian', got {self.likelihood!r}")
        if self.sigma0 <= 0:
            raise ConfigError(f"sigma0 must be positive, got {self.sigma0}")
        if not isinstance(self.stages, int) or self.stages < 1:
            raise ConfigError(f"stages must be an integer >= 1, got {self.stages}")
        if self.refine_weight < 0:
            raise ConfigError(f"refine_weight must be non-negative, got {self.refine_weight}")
        if self.refine_loss not in REFINE_LOSSES:
            raise ConfigError(f"refine_loss must be one of {', '.join(REFINE_LOSSES)}, got {self.refine_loss!r}")
        if self.refiner_channels < 1 or self.refiner_layers < 2:
            raise ConfigError("refiner_channels must be >= 1 and refiner_layers >= 2")


def get_config() -> Config:
    return Config()
