"""VAE-SVDD in NumPyro: the VAE's model (vaesvdd.1, vaesvdd.2) and guide (vaesvdd.3),
trained on -ELBO + SVDD (vaesvdd.4) with a centre fixed after a warm-up (vaesvdd.6).

Zhou, Liang, Zhang, Zhang & Song, VAE-based Deep SVDD for anomaly detection,
Neurocomputing 2021; Ruff et al., Deep One-Class Classification, ICML 2018.

The training state carries the centre next to the SVI state, so the jit-compiled
epoch sees it and the checkpoint keeps it; the SVDD loss receives it as a keyword.
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from numpyro.infer.svi import SVIState

from zoo.anomaly import anomaly_metrics
from zoo.numpyro_backend.objectives import SVDDTraceMeanField_ELBO, svdd_centre, svdd_distance
from zoo.vae.numpyro_model import Variant as VAE

BLOCK = 1000  # datapoints per encoder pass when scoring whole datasets
# Keys of the fixed (not optimised) quantities in the parameter dict ``params(state)``.
CENTRE, CENTRE_READY = "svdd$centre", "svdd$centre_ready"


class SVDDState(NamedTuple):
    svi: SVIState
    centre: jax.Array  # c of (vaesvdd.6), zeros until fixed
    centre_ready: jax.Array  # 0.0 during the warm-up, 1.0 once c is fixed


class Variant(VAE):
    def __init__(self, config, x_dim, num_classes=10):
        super().__init__(config, x_dim, num_classes)
        self._encoder_means = jax.jit(lambda params, x: self.encode(params, x))
        self._log_weights = jax.jit(self.log_weights, static_argnums=2)

    def objective(self):
        return SVDDTraceMeanField_ELBO()

    # --- training -----------------------------------------------------------
    def init_state(self, rng_key, batch):
        return SVDDState(self.svi.init(rng_key, **batch), jnp.zeros(self.config.z_dim), jnp.zeros(()))

    def update(self, state, batch):
        # lambda_t of (vaesvdd.4): 0 until the centre is fixed.
        weight = self.config.svdd_weight * state.centre_ready
        svi_state, loss = self.svi.update(state.svi, **batch, svdd_centre=state.centre, svdd_weight=weight)
        return state._replace(svi=svi_state), loss

    def params(self, state) -> dict:
        """The fitted parameters, with the fixed centre under ``svdd$...`` keys (no site has those names)."""
        return {**self.svi.get_params(state.svi), CENTRE: state.centre, CENTRE_READY: state.centre_ready}

    # --- the centre (vaesvdd.6) ----------------------------------------------
    def encoder_means(self, params, x):
        """mu_phi(x) for a whole dataset, in blocks."""
        blocks = [self._encoder_means(params, jnp.asarray(x[i : i + BLOCK])) for i in range(0, len(x), BLOCK)]
        return jnp.concatenate(blocks)

    def fit_centre(self, params, x):
        return svdd_centre(self.encoder_means(params, x), self.config.centre_eps)

    def on_epoch_end(self, state, epoch, train_arrays):
        """End of the warm-up: fix c from the training set and switch the SVDD term on."""
        if epoch + 1 >= self.config.warmup_epochs and not bool(state.centre_ready):
            centre = self.fit_centre(self.svi.get_params(state.svi), train_arrays["x"])
            return state._replace(centre=centre, centre_ready=jnp.ones(()))
        return state

    # --- anomaly scores and the one-class evaluation -------------------------
    def anomaly_scores(self, params, rng_key, x, centre) -> dict:
        """(vaesvdd.5) and (vaesvdd.8) per datapoint, larger = more anomalous."""
        svdd, elbo = [], []
        for i in range(0, len(x), BLOCK):
            block = jnp.asarray(x[i : i + BLOCK])
            rng_key, key = jax.random.split(rng_key)
            svdd.append(svdd_distance(self._encoder_means(params, block), centre))
            elbo.append(-self._log_weights(params, key, self.config.elbo_particles, x=block).mean(0))
        return {"svdd": jnp.concatenate(svdd), "elbo": jnp.concatenate(elbo)}

    def extra_metrics(self, params, dataset, rng_key) -> dict:
        if dataset.normal_class is None:
            return {}
        ready = bool(params[CENTRE_READY])
        # A run stopped inside its warm-up has no centre yet: score with the one it would fix now.
        centre = params[CENTRE] if ready else self.fit_centre(params, dataset.x_train)
        scores = self.anomaly_scores(params, rng_key, self.test_data(dataset)["x"], centre)
        scores = {name: np.asarray(s, dtype=np.float64) for name, s in scores.items()}
        metrics = anomaly_metrics(scores, dataset.y_test, dataset.normal_class)
        metrics["centre_fixed_in_training"] = ready
        return metrics
