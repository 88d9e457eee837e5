"""WSVAE (Shen, Su, Niu et al. 2017): a sentence VAE with an LSTM encoder and decoder, trained by alternating wake (ELBO) and sleep (fit the guide to dreams) steps."""
