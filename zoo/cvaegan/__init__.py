"""CVAE-GAN (Bao et al. 2017): a conditional VAE with a discriminator and a classifier, trained asymmetrically by feature matching."""
