"""Small drawing helpers shared by the synthetic data-set generators (random generators, polar points, polygons)."""

from __future__ import annotations

import numpy as np

__all__ = ["as_rng", "polar_points", "rasterise_polygon"]


def as_rng(rng: np.random.Generator | int | None) -> np.random.Generator:
    """``rng`` itself if it is a numpy Generator (advanced in place by the caller), else ``default_rng(rng)``."""
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)


def polar_points(centre: np.ndarray, angles: np.ndarray, dists: np.ndarray) -> np.ndarray:
    """Points ``(N, 2)`` as (x, y) in image coordinates; angle 0 points to +x, positive angles go up (-y).

    Args:
        centre: ``(2,)`` centre as (x, y).
        angles: ``(N,)`` angles in radians.
        dists: ``(N,)`` distances from the centre in pixels.
    """
    return np.stack([centre[0] + dists * np.cos(angles), centre[1] - dists * np.sin(angles)], axis=1)


def rasterise_polygon(polygon_xy: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Fill a closed polygon ``(M, 2)`` given as (x=column, y=row) by pixel centres; returns a bool ``(H, W)`` mask."""
    from skimage.draw import polygon

    mask = np.zeros(shape, dtype=bool)
    rr, cc = polygon(polygon_xy[:, 1], polygon_xy[:, 0], shape=shape)
    mask[rr, cc] = True
    return mask
