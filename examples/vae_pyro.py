"""Train the zoo's VAE with a plain Pyro SVI loop, on the embedded digits data.

    python examples/vae_pyro.py --epochs 20

The model and guide are the zoo's (zoo/vae/pyro_model.py); everything else is the
ten lines of Pyro you would write yourself. Swap ``TraceMeanField_ELBO`` for the
zoo's ``ImportanceWeightedELBO(k)`` and you have the IWAE.
"""

import argparse

import pyro
import torch
from pyro.infer import SVI, TraceMeanField_ELBO

from zoo.data import load_dataset
from zoo.vae.config import get_config
from zoo.vae.pyro_model import Variant as VAE


def main(epochs: int = 20, batch_size: int = 128, seed: int = 0) -> float:
    pyro.set_rng_seed(seed)
    pyro.clear_param_store()
    data = load_dataset("digits", binarize="dynamic")
    x_train = torch.as_tensor(data.x_train)
    vae = VAE(get_config(), data.x_dim)
    svi = SVI(vae.model, vae.guide, pyro.optim.Adam({"lr": 1e-3}), loss=TraceMeanField_ELBO())

    for epoch in range(epochs):
        total = 0.0
        for index in torch.randperm(len(x_train)).split(batch_size):
            x = torch.bernoulli(x_train[index])  # dynamic binarization
            total += svi.step(x=x)
        print(f"epoch {epoch + 1:3d}  -ELBO {total / len(x_train):.3f} nats/image")

    x_test = torch.as_tensor(data.x_test)
    test_elbo = TraceMeanField_ELBO().loss(vae.model, vae.guide, x=x_test) / len(x_test)
    print(f"test -ELBO {test_elbo:.3f} nats/image")
    return test_elbo


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    main(args.epochs, args.batch_size, args.seed)
