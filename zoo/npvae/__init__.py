"""NpVAE (Goyal et al. 2017): card, config, Pyro and NumPyro model–guide pairs."""
