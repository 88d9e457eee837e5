"""Two-layer IWAE hyperparameters: the IWAE's, plus the second stochastic layer.

``z_dim`` and ``hidden`` are the first layer (x <-> z1), ``z2_dim`` and
``hidden2`` the second (z1 <-> z2). The defaults are the paper's two-layer MNIST
network, 784-200-200-z1(100)-100-100-z2(50) with tanh units.
"""

from dataclasses import dataclass

from zoo.config import ConfigError
from zoo.iwae.config import Config as IWAEConfig

# The active-unit statistic (both backends): guide draws of z1 per datapoint for E_q[z2],
# and Burda et al.'s threshold Cov_x(E_q[u]) > 10^-2.
ACTIVITY_SAMPLES = 20
ACTIVITY_THRESHOLD = 1e-2


@dataclass
class Config(IWAEConfig):
    z_dim: int = 100  # z1, the lower stochastic layer (iwae2.2)
    hidden: tuple[int, ...] = (200, 200)  # x <-> z1 (the decoder mirrors it)
    activation: str = "tanh"
    z2_dim: int = 50  # z2, the top stochastic layer (iwae2.1)
    hidden2: tuple[int, ...] = (100, 100)  # z1 <-> z2, in both p(z1|z2) and q(z2|z1)

    def validate(self) -> None:
        super().validate()
        if self.z2_dim < 1:
            raise ConfigError(f"z2_dim must be positive, got {self.z2_dim}")
        if not isinstance(self.hidden2, (tuple, list)) or not self.hidden2 or any(
            not isinstance(w, int) or w < 1 for w in self.hidden2
        ):
            raise ConfigError(f"hidden2 must be a non-empty list of positive widths, got {self.hidden2}")


def get_config() -> Config:
    return Config()
