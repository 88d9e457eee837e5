"""Sharpness of images: how much fine detail a set of pictures has.

A blurry picture has small differences between neighbouring pixels. Two standard
measures, each averaged over the images (numpy in, numbers out, no backend):

- :func:`mean_gradient_magnitude`: the mean of ``|x[i+1, j] - x[i, j]|`` and
  ``|x[i, j+1] - x[i, j]|`` over the image (finite-difference gradient);
- :func:`laplacian_variance`: the variance of the discrete Laplacian over the
  image (the "variance of the Laplacian" focus measure of Pech-Pacheco et al. 2000).

Both are reported for generated images *relative* to the same measure on real
test images, so 1 means "as sharp as the data".
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage


def _as_images(images: np.ndarray, image_shape) -> np.ndarray:
    return np.asarray(images, dtype=np.float64).reshape(-1, *image_shape)


def mean_gradient_magnitude(images: np.ndarray, image_shape) -> float:
    """Mean absolute finite difference between neighbouring pixels, over all images."""
    x = _as_images(images, image_shape)
    vertical = np.abs(np.diff(x, axis=1)).mean(axis=(1, 2))
    horizontal = np.abs(np.diff(x, axis=2)).mean(axis=(1, 2))
    return float(np.mean((vertical + horizontal) / 2))


def laplacian_variance(images: np.ndarray, image_shape) -> float:
    """Mean over images of the variance of the 5-point Laplacian (edges: nearest pixel)."""
    x = _as_images(images, image_shape)
    return float(np.mean([ndimage.laplace(image, mode="nearest").var() for image in x]))


def sharpness(images: np.ndarray, image_shape, reference: np.ndarray | None = None) -> dict:
    """Both measures of ``images``; with ``reference`` (real images) also their ratios to it."""
    result = {
        "gradient": mean_gradient_magnitude(images, image_shape),
        "laplacian_variance": laplacian_variance(images, image_shape),
    }
    if reference is not None:
        result["gradient_ratio"] = result["gradient"] / mean_gradient_magnitude(reference, image_shape)
        result["laplacian_ratio"] = result["laplacian_variance"] / laplacian_variance(reference, image_shape)
    return result


def stage_metrics(x: np.ndarray, reconstructions: list, samples: list, image_shape) -> dict:
    """Per-stage reconstruction errors and sample sharpness of a multi-stage decoder.

    ``reconstructions[s]`` are stage s+1's reconstructions of the test images ``x``,
    ``samples[s]`` its decoding of prior draws. Returns, for every stage s,
    ``recon_l1_stage{s}`` / ``recon_l2_stage{s}`` (per image, summed over pixels),
    ``sample_gradient_ratio_stage{s}`` / ``sample_laplacian_ratio_stage{s}`` (sample
    sharpness relative to the test images) and the same two for the
    reconstructions; 1 means as sharp as the data. The last stage's numbers are
    repeated under ``..._final``, so runs with different numbers of stages compare.
    """
    x = np.asarray(x, dtype=np.float64)
    result = {}
    for s, (recon, sample) in enumerate(zip(reconstructions, samples), start=1):
        recon = np.asarray(recon, dtype=np.float64)
        result[f"recon_l1_stage{s}"] = float(np.abs(x - recon).sum(-1).mean())
        result[f"recon_l2_stage{s}"] = float(np.square(x - recon).sum(-1).mean())
        for kind, images in (("sample", sample), ("recon", recon)):
            measured = sharpness(images, image_shape, reference=x)
            result[f"{kind}_gradient_ratio_stage{s}"] = measured["gradient_ratio"]
            result[f"{kind}_laplacian_ratio_stage{s}"] = measured["laplacian_ratio"]
    last = len(reconstructions)
    result.update({key.replace(f"_stage{last}", "_final"): value for key, value in list(result.items()) if key.endswith(f"_stage{last}")})
    return result
