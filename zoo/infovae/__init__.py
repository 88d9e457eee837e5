"""InfoVAE (Zhao, Song & Ermon 2017), the review's IMVAE: the VAE with a scaled KL and an MMD between the aggregate posterior and the prior."""
