"""MEM-VAE hyperparameters: the authors' MNIST network, memory sizes, combinator, LRE weight."""

from dataclasses import dataclass

from zoo.config import ConfigError, VariantConfig


@dataclass
class Config(VariantConfig):
    z_dim: int = 100  # the authors' MNIST recipe: 500-500 MLPs, 100 latent units
    hidden: tuple[int, ...] = (500, 500)
    # Slots of the memory on each decoder hidden layer, in decoder order (the layer
    # next to z first); 0 leaves a layer without memory.
    slots: tuple[int, ...] = (30, 70)
    combinator: str = "ladder"  # "ladder" (gated, the default of the code) or "plus"
    lre_weight: float = 0.1  # lambda of the local reconstruction error at the memory layers
    k: int = 1  # importance samples of the bound: 1 is MEM-VAE, k > 1 MEM-IWAE
    # At k = 1, the KL of z in closed form (as the zoo's VAE baseline trains). With
    # the Monte-Carlo KL of the code, the 500-500, z = 100 VAE collapses on digits
    # (15 epochs: NLL 27.26 against 25.85, encoder means nearly constant).
    analytic_kl: bool = True

    def validate(self) -> None:
        super().validate()
        if len(self.slots) != len(self.hidden):
            raise ConfigError(f"slots needs one entry per hidden layer ({len(self.hidden)}), got {list(self.slots)}")
        if any(s < 0 for s in self.slots):
            raise ConfigError(f"slots must be non-negative, got {list(self.slots)}")
        if self.combinator not in ("ladder", "plus"):
            raise ConfigError(f"combinator must be 'ladder' or 'plus', got {self.combinator!r}")
        if self.lre_weight < 0:
            raise ConfigError(f"lre_weight must be non-negative, got {self.lre_weight}")
        if self.k < 1:
            raise ConfigError(f"k must be at least 1, got {self.k}")

    def lre_pairs(self) -> tuple[tuple[str, str], ...]:
        """(encoder site, decoder site) of the activations the LRE ties: encoder layer l
        and its mirror, decoder layer L-1-l, at the decoder layers with memory."""
        depth = len(self.hidden)
        return tuple((f"h_enc_{depth - 1 - i}", f"h_dec_{i}") for i in range(depth) if self.slots[i])


def get_config() -> Config:
    return Config()
