"""FAE hyperparameters: the VAE's with a Gaussian decoder, plus the Fisher-information
targets and weights of (fae.4). The paper's values are unconfirmed; the defaults are
the zoo's choice (see the card)."""

from dataclasses import dataclass

from zoo.config import ConfigError, VariantConfig


@dataclass
class Config(VariantConfig):
    # J(x') needs a learned decoder scale, so the likelihood is Gaussian.
    likelihood: str = "gaussian"
    # F_z: target of J(z) = sum_j sigma_phi_j^-2, here 10 d for the default d = 50
    # (the middle of the sweep {d, 10 d, 100 d} of benchmarks/fisher.py).
    fisher_z: float = 500.0
    lambda_z: float = 1.0
    # F_x': target of J(x') = sum_i sigma_theta_i^-2, here a per-pixel precision of
    # 100 (sigma = 0.1) on 28 x 28 images; lambda_x small because J(x') is large.
    fisher_x: float = 78400.0
    lambda_x: float = 0.01

    def validate(self) -> None:
        super().validate()
        if self.likelihood != "gaussian":
            raise ConfigError(
                f"fae needs likelihood 'gaussian' (J(x') is the precision of a Gaussian decoder), got {self.likelihood!r}"
            )
        for name in ("fisher_z", "lambda_z", "fisher_x", "lambda_x"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be non-negative, got {getattr(self, name)}")


def get_config() -> Config:
    return Config()
