"""Two-stochastic-layer IWAE (Burda, Grosse & Salakhutdinov 2016, Table 1): z2 -> z1 -> x, trained on the k-sample bound."""
