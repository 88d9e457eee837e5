"""CRVAE hyperparameters: the VAE's, the number of latent blocks T, the LSTMs, the
per-step KL weights and the mutual-information regulariser.

``z_dim`` is the *total* latent size, split into ``steps`` equal blocks, so a
CRVAE and a VAE with the same ``z_dim`` have latents of equal size. The last
hidden width must also split into ``steps`` blocks (the channel blocks u_t).
"""

from dataclasses import dataclass

from zoo.config import ConfigError, VariantConfig

METRIC_ROWS = 1000  # test images for the per-step KL profile (both backends)


def site_names(steps: int) -> list[str]:
    """The latent sites z_1..z_T of model and guide."""
    return [f"z_{t}" for t in range(1, steps + 1)]


@dataclass
class Config(VariantConfig):
    z_dim: int = 48  # total latent size, T blocks of z_dim / T (50 does not split into 4)
    steps: int = 4  # T latent blocks (the authors use 8 with a 1024-d latent)
    lstm_hidden: int = 64  # width of both LSTMs
    recurrent: bool = True  # False: plain linear heads (with steps=1, exactly the VAE)
    decoder_residual: bool = True  # z^_t = z_t + W u^_t; False: the paper's z^_t = W u^_t
    kl_weights: tuple[float, ...] = ()  # alpha_t per step (crvae.4); empty: all 1, a proper ELBO
    mi_weight: float = 0.0  # kappa of the MI regulariser (crvae.5); 0 switches it off
    mi_step_weights: tuple[float, ...] = ()  # w_t per step in the MI loss; empty: all 1
    mi_hidden: int = 128  # hidden width of the code-recovery head r_omega

    def step_kl_weights(self) -> tuple[float, ...]:
        return tuple(self.kl_weights) or (1.0,) * self.steps

    def step_mi_weights(self) -> tuple[float, ...]:
        return tuple(self.mi_step_weights) or (1.0,) * self.steps

    def validate(self) -> None:
        super().validate()
        if self.likelihood != "bernoulli":
            raise ConfigError(f"crvae's decoder gives Bernoulli logits: likelihood must be 'bernoulli', got {self.likelihood!r}")
        if not isinstance(self.steps, int) or self.steps < 1:
            raise ConfigError(f"steps must be a positive integer, got {self.steps}")
        if self.z_dim % self.steps:
            raise ConfigError(f"z_dim ({self.z_dim}) must split into steps={self.steps} equal blocks")
        if not self.hidden or self.hidden[-1] % self.steps:
            raise ConfigError(f"the last hidden width ({self.hidden[-1] if self.hidden else None}) must split into steps={self.steps} blocks")
        for name in ("kl_weights", "mi_step_weights"):
            weights = tuple(getattr(self, name))
            if weights and (len(weights) != self.steps or any(w < 0 for w in weights)):
                raise ConfigError(f"{name} must be empty or {self.steps} non-negative numbers, got {list(weights)}")
        if self.mi_weight < 0:
            raise ConfigError(f"mi_weight must be non-negative, got {self.mi_weight}")
        if self.mi_weight > 0 and not self.recurrent:
            raise ConfigError("the MI regulariser recovers the decoder LSTM's outputs: it needs recurrent=true")


def get_config() -> Config:
    return Config()
