"""VAE-GAN (Larsen et al. 2016): a VAE whose reconstruction error is measured in the features of a GAN discriminator."""
