"""M2 hyperparameters: the network of the paper and the semi-supervised settings."""

from dataclasses import dataclass

from zoo.config import ConfigError, VariantConfig


@dataclass
class Config(VariantConfig):
    z_dim: int = 50  # the paper's MNIST model: 784-500-50
    hidden: tuple[int, ...] = (500,)
    # Labelled training examples (balanced, seeded with --seed); --labels N
    # overrides it, None observes every label.
    labels: int | None = 100
    # alpha = alpha_scale * N (m2.6); Kingma et al. use 0.1 N.
    alpha_scale: float = 0.1
    # Labelled rows are repeated in the training arrays until they make up this
    # share of them, so that every minibatch holds some (about 13 of 128): without
    # them the unlabelled term pulls q(y|x) toward uniform early on (VARIANTS.md
    # §3b Corrections). 0 turns the oversampling off.
    labelled_fraction: float = 0.1
    # Adam steps of the supervised-only classifier that extra_metrics compares with;
    # None: as many as M2 took (an equal budget of gradient steps).
    supervised_steps: int | None = None

    def validate(self) -> None:
        super().validate()
        if self.labels is not None and self.labels < 1:
            raise ConfigError(f"labels must be a positive number of examples or null, got {self.labels}")
        if self.alpha_scale < 0:
            raise ConfigError(f"alpha_scale must be non-negative, got {self.alpha_scale}")
        if not 0.0 <= self.labelled_fraction < 1.0:
            raise ConfigError(f"labelled_fraction must lie in [0, 1), got {self.labelled_fraction}")
        if self.supervised_steps is not None and self.supervised_steps < 0:
            raise ConfigError(f"supervised_steps must be non-negative, got {self.supervised_steps}")


def get_config() -> Config:
    return Config()
