"""LSVAE hyperparameters: the VAE's with a fixed-scale Gaussian decoder (sigma0) and
the weight of the L2 penalty on all network parameters (lsvae.4)."""

import math
from dataclasses import dataclass

from zoo.config import ConfigError, VariantConfig


@dataclass
class Config(VariantConfig):
    # Least squares = a Gaussian decoder with a fixed scale sigma0.
    likelihood: str = "gaussian"
    # sigma0^2 = 1/2 makes the squared error's weight exactly 1 (lsvae.3).
    sigma0: float = math.sqrt(0.5)
    # lambda of the L2 penalty, per datapoint (lsvae.4); the paper's value is unconfirmed.
    weight_decay: float = 1e-4

    @property
    def fixed_scale(self) -> float:
        """Read by ``make_decoder``: the decoder's scale is the constant sigma0."""
        return self.sigma0

    def validate(self) -> None:
        super().validate()
        if self.likelihood != "gaussian":
            raise ConfigError(f"lsvae is least squares: likelihood must be 'gaussian', got {self.likelihood!r}")
        if self.sigma0 <= 0:
            raise ConfigError(f"sigma0 must be positive, got {self.sigma0}")
        if self.weight_decay < 0:
            raise ConfigError(f"weight_decay must be non-negative, got {self.weight_decay}")


def get_config() -> Config:
    return Config()
