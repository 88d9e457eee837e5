"""Objective terms for the NumPyro backend, the twin of :mod:`zoo.pyro_backend.objectives`
module for module (importance weights, MMD, SVDD, Fisher information, refinement, mutual
information, the sleep loss, adversarial and feature-matching terms).

Every name is re-exported here. Losses are sums over the minibatch, as in the Pyro
twin.
"""

from zoo.numpyro_backend.objectives.adversarial import *  # noqa: F401,F403
from zoo.numpyro_backend.objectives.fisher import *  # noqa: F401,F403
from zoo.numpyro_backend.objectives.free_bits import *  # noqa: F401,F403
from zoo.numpyro_backend.objectives.importance import *  # noqa: F401,F403
from zoo.numpyro_backend.objectives.local_reconstruction import *  # noqa: F401,F403
from zoo.numpyro_backend.objectives.mmd import *  # noqa: F401,F403
from zoo.numpyro_backend.objectives.mutual_information import *  # noqa: F401,F403
from zoo.numpyro_backend.objectives.proposal import *  # noqa: F401,F403
from zoo.numpyro_backend.objectives.refinement import *  # noqa: F401,F403
from zoo.numpyro_backend.objectives.sleep import *  # noqa: F401,F403
from zoo.numpyro_backend.objectives.svdd import *  # noqa: F401,F403
