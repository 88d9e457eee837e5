"""Train the zoo's VAE with NumPyro SVI, one jit-compiled epoch at a time.

    python examples/vae_numpyro.py --epochs 20

The model and guide are the zoo's (zoo/vae/numpyro_model.py). The epoch is a
``lax.fori_loop`` over ``svi.update`` inside ``jax.jit``, as in NumPyro's own VAE
example: Python never touches a minibatch.
"""

import argparse

import jax
import jax.numpy as jnp
import optax
from numpyro.infer import SVI, TraceMeanField_ELBO

from zoo.data import load_dataset
from zoo.vae.config import get_config
from zoo.vae.numpyro_model import Variant as VAE


def main(epochs: int = 20, batch_size: int = 128, seed: int = 0) -> float:
    data = load_dataset("digits", binarize="dynamic")
    x_train, x_test = jnp.asarray(data.x_train), jnp.asarray(data.x_test)
    vae = VAE(get_config(), data.x_dim)
    svi = SVI(vae.model, vae.guide, optax.adam(1e-3), loss=TraceMeanField_ELBO())
    key, init_key = jax.random.split(jax.random.PRNGKey(seed))
    state = svi.init(init_key, x=x_train[:batch_size])
    num_batches = len(x_train) // batch_size

    @jax.jit
    def epoch_step(state, key):
        order = jax.random.permutation(key, len(x_train))

        def body(i, carry):
            state, total = carry
            index = jax.lax.dynamic_slice_in_dim(order, i * batch_size, batch_size)
            x = jax.random.bernoulli(jax.random.fold_in(key, i), x_train[index]).astype(jnp.float32)
            state, loss = svi.update(state, x=x)
            return state, total + loss

        return jax.lax.fori_loop(0, num_batches, body, (state, 0.0))

    for epoch in range(epochs):
        key, epoch_key = jax.random.split(key)
        state, total = epoch_step(state, epoch_key)
        print(f"epoch {epoch + 1:3d}  -ELBO {float(total) / (num_batches * batch_size):.3f} nats/image")

    params = svi.get_params(state)
    test_elbo = float(svi.evaluate(state, x=x_test)) / len(x_test)
    print(f"test -ELBO {test_elbo:.3f} nats/image  ({len(params)} parameter groups)")
    return test_elbo


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    main(args.epochs, args.batch_size, args.seed)
