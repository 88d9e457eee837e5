"""VAE-SVDD in Pyro: the VAE's model (vaesvdd.1, vaesvdd.2) and guide (vaesvdd.3),
trained on -ELBO + SVDD (vaesvdd.4) with a centre fixed after a warm-up (vaesvdd.6).

Zhou, Liang, Zhang, Zhang & Song, VAE-based Deep SVDD for anomaly detection,
Neurocomputing 2021; Ruff et al., Deep One-Class Classification, ICML 2018.
"""

import torch

from zoo.anomaly import anomaly_metrics
from zoo.pyro_backend.objectives import SVDDTraceMeanField_ELBO, svdd_centre, svdd_distance
from zoo.vae.pyro_model import Variant as VAE

BLOCK = 1000  # datapoints per encoder pass when scoring whole datasets


class Variant(VAE):
    def __init__(self, config, x_dim, num_classes=10):
        super().__init__(config, x_dim, num_classes)
        # Buffers, not parameters: in the state dict (so in the checkpoint), never optimised.
        self.register_buffer("centre", torch.zeros(config.z_dim))
        self.register_buffer("centre_ready", torch.zeros(()))

    def objective(self):
        return SVDDTraceMeanField_ELBO(centre=lambda: self.centre, weight=self.svdd_weight)

    def svdd_weight(self) -> torch.Tensor:
        """lambda_t of (vaesvdd.4): 0 until the centre is fixed, lambda after."""
        return self.config.svdd_weight * self.centre_ready

    # --- the centre (vaesvdd.6) ----------------------------------------------------
    @torch.no_grad()
    def encoder_means(self, x: torch.Tensor) -> torch.Tensor:
        """mu_phi(x) for a whole dataset, in blocks."""
        return torch.cat([self.encoder(x[i : i + BLOCK])[0] for i in range(0, len(x), BLOCK)])

    def fit_centre(self, x: torch.Tensor) -> torch.Tensor:
        return svdd_centre(self.encoder_means(x), self.config.centre_eps)

    def on_epoch_end(self, epoch, train_arrays):
        """End of the warm-up: fix c from the training set and switch the SVDD term on."""
        if epoch + 1 >= self.config.warmup_epochs and not self.centre_ready:
            self.centre.copy_(self.fit_centre(train_arrays["x"]))
            self.centre_ready.fill_(1.0)

    # --- anomaly scores and the one-class evaluation -------------------------------
    @torch.no_grad()
    def anomaly_scores(self, x: torch.Tensor, centre: torch.Tensor) -> dict:
        """(vaesvdd.5) and (vaesvdd.8) per datapoint, larger = more anomalous."""
        svdd, elbo = [], []
        for i in range(0, len(x), BLOCK):
            block = x[i : i + BLOCK]
            svdd.append(svdd_distance(self.encoder(block)[0], centre))
            elbo.append(-self.log_weights(self.config.elbo_particles, x=block).mean(0))
        return {"svdd": torch.cat(svdd), "elbo": torch.cat(elbo)}

    def extra_metrics(self, dataset, device) -> dict:
        if dataset.normal_class is None:
            return {}
        # A run stopped inside its warm-up has no centre yet: score with the one it would fix now.
        centre = self.centre if self.centre_ready else self.fit_centre(torch.as_tensor(dataset.x_train, device=device))
        x = torch.as_tensor(self.test_data(dataset)["x"], device=device)
        scores = {name: s.double().cpu().numpy() for name, s in self.anomaly_scores(x, centre).items()}
        metrics = anomaly_metrics(scores, dataset.y_test, dataset.normal_class)
        metrics["centre_fixed_in_training"] = bool(self.centre_ready)
        return metrics
