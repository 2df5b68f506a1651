"""Synthetic shapes with known generating factors, for the lesson on interpretable latents.

    from minivae import synthetic            # also mv.datasets.shapes and load("shapes")
    x, y, factors = synthetic.shapes(1000, seed=0)   # squares, circles and triangles

Each 28 × 28 image holds one white shape on black; ``factors`` gives what made it (shape,
position, size, rotation), which real data never tells.
"""

from __future__ import annotations

import numpy as np

from . import validate

__all__ = ["SHAPE_NAMES", "shapes"]

SHAPE_NAMES = ("square", "circle", "triangle")

# Symmetry period of each shape: rotating by this angle gives the same picture. Rotations are
# drawn in [0, period) so that different angles give different images. A circle has no visible
# rotation; its rotation factor is 0.
_PERIOD = {"square": np.pi / 2, "circle": 0.0, "triangle": 2 * np.pi / 3}

# Outward normals of an upright equilateral triangle's edges, in (column, row) coordinates with
# rows growing downwards: bottom edge first, then the two slanted ones.
_TRIANGLE_NORMALS = np.array([[np.cos(a), np.sin(a)] for a in np.radians([90, 210, 330])])


def shapes(n, seed=0, shapes=SHAPE_NAMES, size=28):
    """Generate ``n`` images of one white shape each on black, with known generating factors.

    Each shape fits exactly in a circle of radius ``scale`` pixels centred at pixel
    (column ``x``, row ``y``), and is turned by ``rotation`` radians. The factors are drawn
    independently and uniformly: the shape from ``shapes``; ``scale`` in [0.15, 0.25]·size;
    ``x`` and ``y`` in [0.25·size + 1, 0.75·size − 2], so every shape stays inside the frame;
    ``rotation`` in [0, 2π/k) for a shape with k-fold symmetry (square k=4, triangle k=3; a
    circle's is 0). Edges are anti-aliased over about one pixel.

    Returns ``(x, y, factors)``: ``x`` float32 ``(n, size*size)`` in [0, 1], ``y`` int64 index
    into ``shapes``, and ``factors``, a dict of arrays ``"shape"`` (= y), ``"x"``, ``"y"``,
    ``"scale"``, ``"rotation"``. The same ``seed`` gives the same images.
    """
    names = tuple(shapes)
    unknown = [s for s in names if s not in SHAPE_NAMES]
    if not names or unknown:
        raise validate.DatasetError(
            f"unknown shape(s) {unknown or names!r}; choose from: "
            + ", ".join(repr(s) for s in SHAPE_NAMES)
            + "."
        )
    n = validate.whole(n, "shapes", "n")
    size = validate.whole(size, "shapes", "size (in pixels)", minimum=8)
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    kind = rng.integers(len(names), size=n)
    scale = rng.uniform(0.15 * size, 0.25 * size, size=n)
    lo, hi = 0.25 * size + 1, 0.75 * size - 2
    cx = rng.uniform(lo, hi, size=n)
    cy = rng.uniform(lo, hi, size=n)
    period = np.array([_PERIOD[s] for s in names])
    rotation = rng.uniform(0.0, 1.0, size=n) * period[kind]

    images = np.empty((n, size * size), dtype=np.float32)
    for start in range(0, n, 2048):  # in blocks, to bound the memory of the temporaries
        block = slice(start, start + 2048)
        images[block] = _render(
            [names[k] for k in kind[block]],
            cx[block],
            cy[block],
            scale[block],
            rotation[block],
            size,
        )
    factors = {"shape": kind.copy(), "x": cx, "y": cy, "scale": scale, "rotation": rotation}
    return images, kind, factors


def _render(names, cx, cy, scale, rotation, size):
    """Draw one shape per image; returns float32 (len(names), size*size)."""
    grid = np.arange(size, dtype=np.float32)
    # Pixel offsets from each shape's centre, turned into the shape's own frame and measured in
    # units of its radius: (u, v) = R(-rotation) · (column - x, row - y) / scale.
    dx = grid[None, None, :] - cx[:, None, None].astype(np.float32)
    dy = grid[None, :, None] - cy[:, None, None].astype(np.float32)
    cos = np.cos(rotation).astype(np.float32)[:, None, None]
    sin = np.sin(rotation).astype(np.float32)[:, None, None]
    r = scale.astype(np.float32)[:, None, None]
    u = (cos * dx + sin * dy) / r
    v = (-sin * dx + cos * dy) / r

    # Signed distance to the outline (negative inside), in units of the radius.
    dist = np.empty_like(u)
    names = np.asarray(names)
    for shape in SHAPE_NAMES:
        m = names == shape
        if not m.any():
            continue
        if shape == "circle":
            dist[m] = np.sqrt(u[m] ** 2 + v[m] ** 2) - 1.0
        elif shape == "square":  # half-side 1/√2, so the corners touch the unit circle
            dist[m] = np.maximum(np.abs(u[m]), np.abs(v[m])) - np.float32(1 / np.sqrt(2))
        else:  # equilateral triangle in the unit circle: three edges at distance 1/2
            nx, ny = _TRIANGLE_NORMALS[:, 0], _TRIANGLE_NORMALS[:, 1]
            edge = u[m][..., None] * nx.astype(np.float32) + v[m][..., None] * ny.astype(np.float32)
            dist[m] = edge.max(axis=-1) - 0.5
    # Coverage of each pixel: 1 well inside, 0 well outside, a linear ramp one pixel wide.
    ink = np.clip(0.5 - dist * r, 0.0, 1.0)
    return ink.reshape(len(names), size * size)
