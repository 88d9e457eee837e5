"""Objective terms for the Pyro backend, each implemented once, one module a family.

- :mod:`.importance`: importance weights and the IWAE bound;
- :mod:`.mmd`: the MMD between samples (VFAE, InfoVAE);
- :mod:`.svdd`: the Deep SVDD term (VAE-SVDD);
- :mod:`.fisher`: the Fisher-information penalties (FAE);
- :mod:`.refinement`: stage-wise refinement losses with stopped gradients (MSVAE);
- :mod:`.mutual_information`: code-recovery MI regularisers (CRVAE);
- :mod:`.sleep`: the sleep-phase loss of wake-sleep training (WSVAE);
- :mod:`.adversarial`: GAN losses and feature matching (VAE-GAN, CVAE-GAN).

Every name is re-exported here, so ``from zoo.pyro_backend.objectives import X``
works whatever module ``X`` lives in. The twin package for NumPyro is
:mod:`zoo.numpyro_backend.objectives`, module for module.

All losses are sums over the minibatch (Pyro's ``Trace_ELBO`` convention); the
training loop divides by the batch size to report nats per datapoint.
"""

from zoo.pyro_backend.objectives.adversarial import *  # noqa: F401,F403
from zoo.pyro_backend.objectives.fisher import *  # noqa: F401,F403
from zoo.pyro_backend.objectives.free_bits import *  # noqa: F401,F403
from zoo.pyro_backend.objectives.importance import *  # noqa: F401,F403
from zoo.pyro_backend.objectives.local_reconstruction import *  # noqa: F401,F403
from zoo.pyro_backend.objectives.mmd import *  # noqa: F401,F403
from zoo.pyro_backend.objectives.mutual_information import *  # noqa: F401,F403
from zoo.pyro_backend.objectives.proposal import *  # noqa: F401,F403
from zoo.pyro_backend.objectives.refinement import *  # noqa: F401,F403
from zoo.pyro_backend.objectives.sleep import *  # noqa: F401,F403
from zoo.pyro_backend.objectives.svdd import *  # noqa: F401,F403
