"""adVAE hyperparameters: networks of the official code, margins and weight of the three
adversarial losses, and the number of posterior samples of the anomaly score."""

import math
from dataclasses import dataclass

from zoo.config import ConfigError, VariantConfig


@dataclass
class Config(VariantConfig):
    z_dim: int = 20
    # () means the official code's (D/2, D/2): E is D -> D/2 -> D/2 -> (mu, sigma), G mirrors it.
    hidden: tuple[int, ...] = ()
    likelihood: str = "gaussian"  # p_G(x|z) = N(G(z), sigma_0^2 I) (advae.2); the only choice
    fixed_scale: float = math.sqrt(0.5)  # sigma_0: 1/sqrt(2) makes -log p_G(x|z) = ||x - G(z)||^2 + const
    gamma: float = 2.0  # weight of the hinge terms (advae.5-7)
    m_z: float = 40.0  # KL margin, nats (advae.5, advae.7)
    m_x: float = 10.0  # margin on ||G(z) - G(z_T)||^2 (advae.6)
    score_samples: int = 1000  # L posterior samples of the anomaly score (advae.8)

    def validate(self) -> None:
        super().validate()
        if self.likelihood != "gaussian":
            raise ConfigError(
                "adVAE's generator is a fixed-scale Gaussian (squared error, advae.2); "
                f"likelihood must be 'gaussian', got {self.likelihood!r}"
            )
        if self.fixed_scale <= 0:
            raise ConfigError(f"fixed_scale must be positive, got {self.fixed_scale}")
        for name in ("gamma", "m_z", "m_x"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be non-negative, got {getattr(self, name)}")
        if self.score_samples < 1:
            raise ConfigError(f"score_samples must be at least 1, got {self.score_samples}")


def hidden_widths(config, x_dim: int) -> tuple[int, ...]:
    """The encoder's hidden widths: ``config.hidden``, or the official (D/2, D/2)."""
    return tuple(config.hidden) or (x_dim // 2, x_dim // 2)


def get_config() -> Config:
    return Config()
