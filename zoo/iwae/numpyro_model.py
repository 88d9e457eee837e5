"""IWAE in NumPyro: the VAE's model (iwae.1) and guide (iwae.2), objective (iwae.3).

Burda, Grosse & Salakhutdinov, Importance Weighted Autoencoders, ICLR 2016.
NumPyro's ``RenyiELBO(alpha=0)`` is the per-datapoint k-sample bound for local
latents inside a data plate (NumPyro PR #1608).
"""

from numpyro.infer import RenyiELBO

from zoo.vae.numpyro_model import Variant as VAE


class Variant(VAE):
    def objective(self):
        return RenyiELBO(alpha=0, num_particles=self.config.k)
