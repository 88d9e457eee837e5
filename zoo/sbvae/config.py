"""SB-VAE hyperparameters: the truncation K (``z_dim``), the prior's alpha0, the paper's network."""

from dataclasses import dataclass

from zoo.config import ConfigError, VariantConfig


@dataclass
class Config(VariantConfig):
    # K, the number of stick-breaking weights pi (K - 1 fractions v); the paper's 50.
    z_dim: int = 50
    hidden: tuple[int, ...] = (500,)  # one hidden layer of 500 ReLU units, as in the paper
    alpha0: float = 5.0  # concentration of the Beta(1, alpha0) prior on each fraction

    def validate(self) -> None:
        super().validate()
        if self.z_dim < 2:
            raise ConfigError(f"z_dim (the truncation K) must be at least 2 (K - 1 sticks), got {self.z_dim}")
        if self.alpha0 <= 0:
            raise ConfigError(f"alpha0 must be positive, got {self.alpha0}")


def get_config() -> Config:
    return Config()
