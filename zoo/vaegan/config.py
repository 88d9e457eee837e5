"""VAE-GAN hyperparameters: the conv networks (the official code's shapes, narrowed
for two CPU cores), the weighting of reconstruction against the GAN term, the
discriminator's loss weights and the equilibrium margin."""

import math
from dataclasses import dataclass

from zoo.config import ConfigError, VariantConfig

SIMILARITIES = ("learned", "pixel")


@dataclass
class Config(VariantConfig):
    z_dim: int = 32
    # Dense widths after the encoder's and discriminator's convolutions, and before
    # the decoder's first feature map (the official code: 1024 / 512 on CelebA).
    hidden: tuple[int, ...] = (256,)
    channels: tuple[int, ...] = (16, 32, 64)  # conv widths of E and D; Dec mirrors them
    # "learned": Dis_l features (the paper); "pixel": the same E and Dec trained as a
    # plain VAE with the pixel likelihood below and no discriminator (the baseline).
    similarity: str = "learned"
    # The pixel likelihood: the baseline's training likelihood, and the one every
    # mode's test ELBO and importance-sampled log-likelihood are reported in.
    likelihood: str = "bernoulli"
    pixel_scale: float = 1.0  # sigma of the "gaussian" pixel likelihood
    # Scale of the feature Gaussian (vaegan.2): 1 in the paper, whose features have the
    # scale of a batch-normalised network; smaller puts more weight on reconstruction.
    feature_scale: float = 0.02
    gamma: float = 0.3  # decoder: gamma * feature error (per element) + (1 - gamma) * GAN term
    real_weight: float = 0.5  # D loss: real examples; the two fake sets share 1 - real_weight
    margin: float = 0.35  # equilibrium rule around 0.68; negative = always update both
    saturating: bool = True  # decoder's GAN term log(1 - D) (official code) or -log D
    prior_fakes: bool = True  # the third GAN term, on Dec(z_p) with z_p ~ p(z)

    def validate(self) -> None:
        super().validate()
        if self.similarity not in SIMILARITIES:
            raise ConfigError(f"similarity must be one of {', '.join(SIMILARITIES)}, got {self.similarity!r}")
        if not self.channels or min(self.channels) < 1:
            raise ConfigError(f"channels must be a non-empty list of positive widths, got {list(self.channels)}")
        if not self.hidden or min(self.hidden) < 1:
            raise ConfigError(f"hidden must be a non-empty list of positive widths, got {list(self.hidden)}")
        if not 0.0 <= self.gamma <= 1.0:
            raise ConfigError(f"gamma must lie in [0, 1], got {self.gamma}")
        if not 0.0 < self.real_weight < 1.0:
            raise ConfigError(f"real_weight must lie strictly between 0 and 1, got {self.real_weight}")
        if self.feature_scale <= 0:
            raise ConfigError(f"feature_scale must be positive, got {self.feature_scale}")
        if self.pixel_scale <= 0:
            raise ConfigError(f"pixel_scale must be positive, got {self.pixel_scale}")


def discriminator_weights(config) -> tuple[float, ...]:
    """D's loss weights (real, reconstructions[, prior samples]): the fakes share 1 - w."""
    fakes = 2 if config.prior_fakes else 1
    return (config.real_weight, *[(1.0 - config.real_weight) / fakes] * fakes)


def get_config() -> Config:
    return Config()


# Shared by both backends' programs (kept here so the NumPyro module needs no torch).
GROUPS = ("encoder", "decoder", "discriminator")


def image_shape_of(x_dim: int, name: str) -> tuple[int, int]:
    """The square image shape of flat inputs, or a config error naming the variant."""
    side = math.isqrt(x_dim)
    if side * side != x_dim or side < 2:
        raise ConfigError(
            f"{name} has convolutional networks for square images; {x_dim} values per example are "
            "not a square picture (use an image dataset: digits, mnist, fashion-mnist)"
        )
    return side, side
