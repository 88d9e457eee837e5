"""M2 (Kingma, Rezende, Mohamed & Welling 2014): the semi-supervised VAE with the label as a latent variable."""
