"""NpVAE hyperparameters: the truncated tree, its prior scales and the network."""

from dataclasses import dataclass

from zoo.config import ConfigError, VariantConfig


@dataclass
class Config(VariantConfig):
    z_dim: int = 16
    # The truncated tree: 4 children per node, 2 levels below the root (1 + 4 + 16
    # nodes, 16 leaves), the paper's initial tree of depth 3 counting the root.
    branching: int = 4
    depth: int = 2
    gamma: float = 10.0  # V_e ~ Beta(1, gamma), the nCRP's concentration (the paper's 10)
    sigma_b: float = 1.0  # a child's mean around its parent's, N(alpha_pa, sigma_B^2 I)
    sigma_z: float = 1.0  # a code around its leaf's mean, N(alpha_c, sigma_Z^2 I) (the paper's 1)
    # After this many epochs the node means restart from a top-down k-means of the
    # codes (0: never). Started from a prior draw alone, the nearest leaf to the
    # initial codes takes every image and the others never receive data; restarted
    # after 10 epochs rather than 1, the codes have structure to split (digits, 30
    # epochs: leaf accuracy 0.57 against 0.39).
    kmeans_init_epochs: int = 10
    # Every epoch end, the paper's closed-form update of the leaf means given the
    # codes (coordinate ascent between SGD epochs); False leaves them to SVI alone.
    leaf_updates: bool = False
    # The optional tree-growth hook (on_epoch_end): every grow_every epochs a leaf
    # whose mass is below prune_mass is moved to split the widest sibling leaf
    # (2-means). 0 turns it off.
    grow_every: int = 0
    prune_mass: float = 1e-3

    def validate(self) -> None:
        super().validate()
        if self.branching < 2:
            raise ConfigError(f"branching must be at least 2, got {self.branching}")
        if self.depth < 1:
            raise ConfigError(f"depth must be at least 1 (levels below the root), got {self.depth}")
        for name in ("gamma", "sigma_b", "sigma_z"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name} must be positive, got {getattr(self, name)}")
        if self.kmeans_init_epochs < 0:
            raise ConfigError(f"kmeans_init_epochs must be non-negative (0: never), got {self.kmeans_init_epochs}")
        if self.grow_every < 0:
            raise ConfigError(f"grow_every must be non-negative (0: no growth), got {self.grow_every}")

    @property
    def tree(self):
        from guides.tree import TreeShape

        return TreeShape(self.branching, self.depth)


def get_config() -> Config:
    return Config()
