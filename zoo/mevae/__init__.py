"""MEM-VAE (Li, Zhu & Zhang 2016): card, config, Pyro and NumPyro model–guide pairs."""
