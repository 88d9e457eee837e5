"""CVAE-GAN hyperparameters: the four conv networks, the paper's loss weights
lambda_1..4, whether reconstructions count as fakes, and the momentum of the running
feature means of the matching terms."""

from dataclasses import dataclass

from zoo.config import ConfigError, VariantConfig


@dataclass
class Config(VariantConfig):
    z_dim: int = 32
    hidden: tuple[int, ...] = (256,)  # dense widths after the convolutions (E, D, C) and before them (G)
    channels: tuple[int, ...] = (16, 32, 64)  # conv widths of E, D and C; G mirrors them
    likelihood: str = "gaussian"  # the pixel term 1/2 ||x - x'||^2 is a Gaussian of scale pixel_scale
    pixel_scale: float = 1.0
    lambda_kl: float = 3.0  # lambda_1 (the paper as recalled; Liu 2023 lists 1)
    lambda_g: float = 1.0  # lambda_2, on the pixel and pairwise feature terms L_G
    lambda_gd: float = 1e-3  # lambda_3, on the mean discriminator-feature matching L_GD
    lambda_gc: float = 1e-3  # lambda_4, on the per-class classifier-feature matching L_GC
    recon_as_fake: bool = True  # reconstructions G(z, c), z ~ q(z|x,c), are fakes for D
    feature_momentum: float = 0.9  # running means of the real features; 0 = this batch's means
    # False: the same E and G trained as a plain CVAE (lambda_1 L_KL + lambda_2 pixel term),
    # no discriminator or classifier: the baseline of the comparison.
    adversarial: bool = True

    def validate(self) -> None:
        super().validate()
        if self.likelihood != "gaussian":
            raise ConfigError(
                "CVAE-GAN's pixel term is 1/2 ||x - x'||^2, a Gaussian; likelihood must be 'gaussian', "
                f"got {self.likelihood!r}"
            )
        if not self.channels or min(self.channels) < 1:
            raise ConfigError(f"channels must be a non-empty list of positive widths, got {list(self.channels)}")
        if not self.hidden or min(self.hidden) < 1:
            raise ConfigError(f"hidden must be a non-empty list of positive widths, got {list(self.hidden)}")
        for name in ("lambda_kl", "lambda_g", "lambda_gd", "lambda_gc"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be non-negative, got {getattr(self, name)}")
        if not 0.0 <= self.feature_momentum < 1.0:
            raise ConfigError(f"feature_momentum must lie in [0, 1), got {self.feature_momentum}")
        if self.pixel_scale <= 0:
            raise ConfigError(f"pixel_scale must be positive, got {self.pixel_scale}")


def get_config() -> Config:
    return Config()


# Shared by both backends' programs (kept here so the NumPyro module needs no torch).
GROUPS = ("encoder", "generator", "discriminator", "classifier")


SAMPLES_PER_CLASS = 200  # prior samples per class for the FD and class fidelity
