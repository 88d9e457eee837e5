"""adVAE (Wang et al. 2020): a self-adversarial VAE with a Gaussian transformer of normal latents into anomalous ones."""
