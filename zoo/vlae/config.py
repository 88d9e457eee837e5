"""VLAE hyperparameters: the decoder's window, the flow prior, the free-bits floor."""

from dataclasses import dataclass

from zoo.config import ConfigError, VariantConfig


@dataclass
class Config(VariantConfig):
    z_dim: int = 32  # latent dimension d (the paper: 64 for binary images)
    layers: int = 6  # masked 3x3 convolutions of the decoder: its window reaches this far (vlae.2); 0: factorized
    filters: int = 12  # channels of each masked convolution
    z_channels: int = 4  # channels of the feature map of z fed to every layer; 0: an unconditional PixelCNN
    flow_steps: int = 4  # autoregressive steps of the prior (vlae.1); 0: the N(0, I) prior
    flow_hidden: tuple[int, ...] = (256, 256)  # hidden widths of each step's MADE (the paper: 640)
    free_bits: float = 0.01  # lambda: the KL floor in nats per data dimension (vlae.6)

    def validate(self) -> None:
        super().validate()
        if self.likelihood != "bernoulli":
            raise ConfigError("vlae models binary pixels with an autoregressive Bernoulli decoder; use --likelihood bernoulli")
        if self.layers < 0 or self.filters < 1:
            raise ConfigError(f"layers must be >= 0 and filters positive, got {self.layers} and {self.filters}")
        if self.layers == 0 and self.z_channels == 0:
            raise ConfigError("layers=0 and z_channels=0 leave the decoder nothing to read")
        if self.z_channels < 0 or self.flow_steps < 0:
            raise ConfigError(f"z_channels and flow_steps must be >= 0, got {self.z_channels} and {self.flow_steps}")
        if self.flow_steps and (not self.flow_hidden or min(self.flow_hidden) < self.z_dim):
            raise ConfigError(
                f"every flow_hidden width must be at least z_dim={self.z_dim} (a MADE needs one unit per "
                f"input degree), got {self.flow_hidden}"
            )
        if self.free_bits < 0:
            raise ConfigError(f"free_bits must be >= 0, got {self.free_bits}")


def get_config() -> Config:
    return Config()
