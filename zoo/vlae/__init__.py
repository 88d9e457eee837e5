"""VLAE (Chen et al. 2017): a local PixelCNN decoder, an autoregressive-flow prior, free bits."""
