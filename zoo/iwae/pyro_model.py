"""IWAE in Pyro: the VAE's model (iwae.1) and guide (iwae.2), objective (iwae.3).

Burda, Grosse & Salakhutdinov, Importance Weighted Autoencoders, ICLR 2016.
Pyro's ``RenyiELBO(alpha=0)`` does not give the per-datapoint bound with a minibatch
data plate (it log-sum-exps the whole minibatch, pyro issue #3289), so the objective is the zoo's
:class:`~zoo.pyro_backend.objectives.ImportanceWeightedELBO`.
"""

from zoo.pyro_backend.objectives import ImportanceWeightedELBO
from zoo.vae.pyro_model import Variant as VAE


class Variant(VAE):
    def objective(self):
        return ImportanceWeightedELBO(num_particles=self.config.k)
