"""CVAE (Sohn, Lee & Yan 2015): conditional generation of the missing quadrants of an image from the given ones."""
