"""VAE hyperparameters: the shared :class:`~zoo.config.VariantConfig` as is."""

from dataclasses import dataclass

from zoo.config import VariantConfig


@dataclass
class Config(VariantConfig):
    pass


def get_config() -> Config:
    return Config()
