"""VAE-SVDD hyperparameters: the VAE's, plus the SVDD weight, warm-up and centre push."""

from dataclasses import dataclass

from zoo.config import ConfigError, VariantConfig


@dataclass
class Config(VariantConfig):
    svdd_weight: float = 10.0  # lambda of (vaesvdd.4)
    warmup_epochs: int = 1  # plain-VAE epochs before c is fixed (vaesvdd.6); the SVDD term is off until then
    centre_eps: float = 0.1  # coordinates of c closer to 0 than this are pushed to +-eps (vaesvdd.6)
    elbo_particles: int = 10  # guide draws per test datapoint for the -ELBO score (vaesvdd.8)

    def validate(self) -> None:
        super().validate()
        if self.svdd_weight < 0:
            raise ConfigError(f"svdd_weight must be non-negative, got {self.svdd_weight}")
        if self.warmup_epochs < 1:
            raise ConfigError(
                f"warmup_epochs must be at least 1 (c is the mean encoding after the warm-up), got {self.warmup_epochs}"
            )
        if self.centre_eps < 0:
            raise ConfigError(f"centre_eps must be non-negative, got {self.centre_eps}")
        if self.elbo_particles < 1:
            raise ConfigError(f"elbo_particles must be at least 1, got {self.elbo_particles}")


def get_config() -> Config:
    return Config()
