"""VFAE hyperparameters: the two latent layers, the sensitive attribute and the MMD penalty."""

from dataclasses import dataclass

from zoo.config import ConfigError, VariantConfig

SENSITIVE_ATTRIBUTES = ("frame", "sex")  # frame: synthetic image nuisance; sex: UCI Adult


@dataclass
class Config(VariantConfig):
    # Defaults from a short grid on the digits frame task (see the card's notes).
    z_dim: int = 10  # dimension of z1, the fair representation
    z2_dim: int = 10
    hidden: tuple[int, ...] = (100,)
    sensitive: str = "frame"
    # Labelled training examples (--labels N); None observes every label.
    labels: int | None = None
    alpha: float = 10.0  # weight of -log q(y|z1) per labelled example (vfae.6)
    beta: float = 100.0  # MMD weight per datapoint (vfae.7)
    mmd_gamma: float | None = None  # Gaussian kernel exp(-gamma ||a-b||^2); None: 1/z_dim
    mmd_features: int = 0  # 0: exact kernel MMD; D > 0: D random Fourier features

    def validate(self) -> None:
        super().validate()
        if self.sensitive not in SENSITIVE_ATTRIBUTES:
            raise ConfigError(
                f"unknown sensitive attribute {self.sensitive!r}; choose one of {', '.join(SENSITIVE_ATTRIBUTES)}"
            )
        if self.z2_dim < 1:
            raise ConfigError(f"z2_dim must be positive, got {self.z2_dim}")
        if self.labels is not None and self.labels < 1:
            raise ConfigError(f"labels must be a positive number of examples or null, got {self.labels}")
        for name in ("alpha", "beta"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be non-negative, got {getattr(self, name)}")
        if self.mmd_gamma is not None and self.mmd_gamma <= 0:
            raise ConfigError(f"mmd_gamma must be positive or null, got {self.mmd_gamma}")
        if self.mmd_features < 0:
            raise ConfigError(f"mmd_features must be 0 (exact) or a positive number, got {self.mmd_features}")

    @property
    def gamma(self) -> float:
        """The kernel's ``gamma``: ``mmd_gamma``, or ``1/z_dim`` (so ``gamma ||a-b||^2``
        is of order 1 for codes of unit scale)."""
        return self.mmd_gamma if self.mmd_gamma is not None else 1.0 / self.z_dim


def get_config() -> Config:
    return Config()
