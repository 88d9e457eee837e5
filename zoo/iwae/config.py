"""IWAE hyperparameters: the VAE's, plus the number of importance samples k."""

from dataclasses import dataclass

from zoo.config import ConfigError, VariantConfig


@dataclass
class Config(VariantConfig):
    k: int = 5  # importance samples per datapoint in the training bound (iwae.3)

    def validate(self) -> None:
        super().validate()
        if self.k < 1:
            raise ConfigError(f"k must be at least 1, got {self.k}")


def get_config() -> Config:
    return Config()
