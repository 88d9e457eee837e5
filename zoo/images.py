"""Sample and reconstruction grids as PNG (Pillow)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from PIL import Image


def image_grid(images: np.ndarray, image_shape: tuple[int, int], columns: int, pad: int = 1) -> np.ndarray:
    """Tile flattened images (N, H*W), values in [0, 1], into one uint8 array."""
    height, width = image_shape
    rows = math.ceil(len(images) / columns)
    # Mid-grey borders, so white pixels at a tile edge stay visible.
    grid = np.full((rows * (height + pad) + pad, columns * (width + pad) + pad), 0.5, dtype=np.float32)
    for i, image in enumerate(images):
        r, c = divmod(i, columns)
        top, left = pad + r * (height + pad), pad + c * (width + pad)
        grid[top : top + height, left : left + width] = image.reshape(height, width)
    return (np.clip(grid, 0.0, 1.0) * 255).round().astype(np.uint8)


def save_grid(images: np.ndarray, image_shape, path: Path, columns: int = 10, scale: int | None = None) -> Path:
    """Write a grid PNG; small images (8x8 digits) are enlarged so they can be seen."""
    grid = image_grid(images, tuple(image_shape), columns)
    if scale is None:
        # By the longer side: a table's rows (1 x D strips) stay at scale 1.
        scale = max(1, 112 // max(image_shape))
    picture = Image.fromarray(grid, mode="L")
    if scale > 1:
        picture = picture.resize((grid.shape[1] * scale, grid.shape[0] * scale), Image.NEAREST)
    picture.save(path)
    return path


def save_reconstructions(originals: np.ndarray, reconstructions: np.ndarray, image_shape, path: Path, columns: int = 10):
    """Rows alternate: originals, then their reconstructions beneath them."""
    rows = []
    for start in range(0, len(originals), columns):
        rows.append(originals[start : start + columns])
        rows.append(reconstructions[start : start + columns])
    return save_grid(np.concatenate(rows), image_shape, path, columns)
