"""VAE (Kingma & Welling 2014): card, config, Pyro and NumPyro model–guide pairs."""
