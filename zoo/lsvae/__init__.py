"""LSVAE (Ramachandra 2017): the VAE with a least-squares reconstruction term and an L2 penalty on the weights."""
