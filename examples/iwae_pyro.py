"""Train the IWAE (k importance samples) with Pyro SVI and compare L_1, L_k, L_1000.

    python examples/iwae_pyro.py --k 5 --epochs 20

Same model and guide as the VAE; only the loss changes, to the zoo's per-datapoint
importance-weighted bound (Pyro's ``RenyiELBO(alpha=0)`` would log-sum-exp whole
minibatches).
"""

import argparse

import pyro
import torch
from pyro.infer import SVI

from zoo.data import load_dataset
from zoo.iwae.config import get_config
from zoo.iwae.pyro_model import Variant as IWAE
from zoo.pyro_backend.objectives import ImportanceWeightedELBO, iwae_bound


def main(k: int = 5, epochs: int = 20, batch_size: int = 128, seed: int = 0) -> dict:
    pyro.set_rng_seed(seed)
    pyro.clear_param_store()
    data = load_dataset("digits", binarize="dynamic")
    x_train = torch.as_tensor(data.x_train)
    iwae = IWAE(get_config(), data.x_dim)
    svi = SVI(iwae.model, iwae.guide, pyro.optim.Adam({"lr": 1e-3}), loss=ImportanceWeightedELBO(k))

    for epoch in range(epochs):
        total = sum(svi.step(x=torch.bernoulli(x_train[i])) for i in torch.randperm(len(x_train)).split(batch_size))
        print(f"epoch {epoch + 1:3d}  -L_{k} {total / len(x_train):.3f} nats/image")

    x_test = torch.as_tensor(data.x_test)
    bounds = {f"L_{n}": iwae_bound(iwae.log_weights(n, x=x_test)).mean().item() for n in (1, k, 1000)}
    for name, value in bounds.items():
        print(f"test {name:7s} {value:.3f} nats/image")
    return bounds


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    main(args.k, args.epochs, args.batch_size, args.seed)
