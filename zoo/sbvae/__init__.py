"""SB-VAE (Nalisnick & Smyth 2017): card, config, Pyro and NumPyro model–guide pairs."""
