"""VAE-SVDD (Zhou et al. 2021): a VAE whose encoder means are pulled into a Deep-SVDD hypersphere."""
