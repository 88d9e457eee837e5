"""VFAE (Louizos, Swersky, Li, Welling & Zemel 2016): fair representations from a semi-supervised VAE with an MMD penalty."""
