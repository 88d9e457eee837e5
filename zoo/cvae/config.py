"""CVAE hyperparameters: the networks of Pyro's CVAE tutorial and the quadrant task."""

from dataclasses import dataclass

from zoo.config import ConfigError, VariantConfig


@dataclass
class Config(VariantConfig):
    z_dim: int = 200  # Pyro's examples/cvae: z 200, hidden 500-500
    hidden: tuple[int, ...] = (500, 500)
    # Quadrants given as input x (1, 2 or 3: bottom-left, then top-left, then
    # top-right, as in Pyro's tutorial); the others are the output y.
    given_quadrants: int = 1
    # The prior network p(z|x) also reads the deterministic baseline's guess of y
    # (detached), as in Pyro's tutorial and the paper's training trick.
    condition_on_baseline: bool = True

    def validate(self) -> None:
        super().validate()
        if self.given_quadrants not in (1, 2, 3):
            raise ConfigError(f"given_quadrants must be 1, 2 or 3, got {self.given_quadrants}")
        if self.likelihood != "bernoulli":
            raise ConfigError("the CVAE's output y is a set of pixels with a Bernoulli likelihood; use likelihood=bernoulli")


def get_config() -> Config:
    return Config()
