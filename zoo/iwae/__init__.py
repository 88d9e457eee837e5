"""IWAE (Burda, Grosse & Salakhutdinov 2016): the VAE's model and guide, trained on the k-sample bound."""
