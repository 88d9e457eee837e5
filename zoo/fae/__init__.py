"""FAE, the Fisher autoencoder (Zheng, Yao, Zhang, Tsang & Wang 2019): a Gaussian VAE whose loss controls the Fisher information of encoder and decoder."""
