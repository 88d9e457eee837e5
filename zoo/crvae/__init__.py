"""CRVAE (Shang, Sohn & Tian 2018): the latent split into T blocks, each block's scale from an LSTM over encoder channel blocks."""
