"""Figures: every plot the lessons and the command line draw.

Each function returns a :class:`matplotlib.figure.Figure`. They are built without ``pyplot``, on
matplotlib's Agg canvas, so nothing needs a screen: save one with :func:`save`, or leave it as the
last expression of a notebook cell to see it::

    fig = mv.plots.samples(model, n=64)
    mv.plots.save(fig, "figures/samples.png")

In a notebook, show a figure with :func:`show`, which puts a one-line caption under it (what
the figure shows, in words, for every reader), and call :func:`lesson_style` once first: it
draws figures on a transparent background with grey text, legible in JupyterLab's light and dark
themes alike, while the plotting area stays white.

Models can live on any backend: images and codes are copied to NumPy (``backend.asnumpy``) only
here, at the edge, just before matplotlib sees them. Images are 28×28 unless ``image_shape``
says otherwise; pixel values are drawn on a grey scale from 0 (black) to 1 (white), so a
Gaussian decoder's means outside [0, 1] show as black or white.
"""

from __future__ import annotations

import io
import math
import sys
from pathlib import Path
from statistics import NormalDist

import matplotlib
import numpy as np
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator

from . import backend, evaluate

__all__ = [
    "diffusion_loss",
    "image_grid",
    "interpolation",
    "kl_per_dimension",
    "latent_manifold",
    "latent_priors",
    "latent_scatter",
    "lesson_style",
    "loss_curves",
    "prior_samples",
    "reconstructions",
    "samples",
    "save",
    "show",
    "traversals",
]

IMAGE_SHAPE = (28, 28)
GRID_FILL = 0.35  # the grey of the lines between images in a grid

# The lessons' figures: a transparent background, so that a figure takes the colour of
# JupyterLab's theme, and text in a grey that reads on white and on the dark theme's near-black
# (contrast about 4.5:1 and 4.2:1); the plotting area stays white so colours mean the same.
TEXT_GREY = "#767676"
LESSON_STYLE = {
    "figure.facecolor": "none",
    "savefig.facecolor": "auto",
    "axes.facecolor": "white",
    "axes.edgecolor": TEXT_GREY,
    "axes.labelcolor": TEXT_GREY,
    "axes.titlecolor": TEXT_GREY,
    "text.color": TEXT_GREY,
    "xtick.color": TEXT_GREY,
    "ytick.color": TEXT_GREY,
    "legend.facecolor": "white",
}


# -- helpers ------------------------------------------------------------------------------------
class _Figure(Figure):
    """A matplotlib Figure that shows itself as a PNG in a notebook (Jupyter asks an object for
    ``_repr_png_`` when it is the last expression of a cell), with or without pyplot."""

    def _repr_png_(self) -> bytes:
        return _png(self)


def _png(fig: Figure) -> bytes:
    """The figure as PNG bytes at 100 dpi, on its own background (transparent in the lessons)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, facecolor=fig.get_facecolor())
    return buffer.getvalue()


def lesson_style() -> None:
    """Set matplotlib's defaults to the lessons' style (:data:`LESSON_STYLE`) for every figure
    made afterwards, pyplot's included: legible in JupyterLab's light and dark themes."""
    matplotlib.rcParams.update(LESSON_STYLE)


def show(fig: Figure, caption: str) -> None:
    """Show ``fig`` in a notebook with ``caption`` under it, one sentence of what it shows.

    The caption is the figure's words for every reader (a picture alone says nothing to a screen
    reader); it is also the text a notebook shows where it cannot draw images. Outside a
    notebook the caption is printed. A pyplot figure is closed afterwards, so it is not drawn
    a second time at the end of the cell.
    """
    caption = " ".join(str(caption).split())
    if not caption:
        raise ValueError("show needs a caption: one sentence saying what the figure shows.")
    try:
        from IPython import get_ipython
        from IPython.display import display
    except ImportError:  # no IPython: plain Python
        get_ipython = None
    shell = get_ipython() if get_ipython is not None else None
    if shell is not None and hasattr(shell, "kernel"):  # a notebook's kernel, not a terminal
        text = f"Figure: {caption}"
        display({"image/png": _png(fig), "text/plain": text}, raw=True)
        display({"text/markdown": f"*{text}*", "text/plain": text}, raw=True)
    else:
        print(f"Figure: {caption}")
    pyplot = sys.modules.get("matplotlib.pyplot")
    if pyplot is not None:
        pyplot.close(fig)


def _figure(width: float, height: float) -> Figure:
    """A new figure (size in inches) on the Agg canvas, with constrained layout."""
    fig = _Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _flat_numpy(a) -> np.ndarray:
    """Any array (NumPy, CuPy, array_api_strict) or list as a 2-D NumPy array, one row each."""
    a = np.asarray(backend.asnumpy(a) if not isinstance(a, (list, tuple)) else a)
    return a.reshape(a.shape[0], -1) if a.ndim > 1 else a.reshape(1, -1)


def _check_image_shape(model, image_shape):
    image_shape = tuple(int(s) for s in image_shape)
    input_dim = model.config["input_dim"]
    if math.prod(image_shape) != input_dim:
        raise ValueError(
            f"image_shape {image_shape} has {math.prod(image_shape)} pixels but the model's "
            f"inputs have {input_dim} features: pass the shape of your images, e.g. "
            f"image_shape=(height, width) with height·width = {input_dim}."
        )
    return image_shape


def _on_model(model, a: np.ndarray):
    """A NumPy array copied to the model's backend and dtype."""
    return model.asarray(np.asarray(a, dtype=model.dtype))


def _decode(model, z: np.ndarray) -> np.ndarray:
    """Decoder means for codes ``z`` (NumPy, (n, latent_dim)), back as NumPy."""
    return backend.asnumpy(model.decode(_on_model(model, z)))


def _means(model, x, batch_size: int = 1000) -> np.ndarray:
    """The latent means μ(x) (the codes z for an Autoencoder) as a NumPy array."""
    x = _on_model(model, _flat_numpy(x))
    return backend.asnumpy(evaluate.latent_means(model, x, batch_size))


def _mosaic(images, per_row: int, image_shape, pad: int = 1, fill: float = GRID_FILL):
    """Tile images (n, H·W) into one 2-D array, ``per_row`` images per row, ``pad`` pixels of
    the grey ``fill`` between them (and around)."""
    images = _flat_numpy(images).reshape(-1, *image_shape)
    n, h, w = images.shape
    rows = math.ceil(n / per_row)
    grid = np.full((rows * (h + pad) + pad, per_row * (w + pad) + pad), fill, dtype=np.float64)
    for i, image in enumerate(images):
        r, c = divmod(i, per_row)
        top, left = pad + r * (h + pad), pad + c * (w + pad)
        grid[top : top + h, left : left + w] = image
    return grid


def _centres(count: int, size: int, pad: int) -> np.ndarray:
    """Pixel positions of the centres of ``count`` tiles of ``size`` pixels in a mosaic."""
    return pad + np.arange(count) * (size + pad) + (size - 1) / 2


def _show(ax, mosaic, title=None):
    """Draw a mosaic on ``ax`` in grey levels 0 (black) … 1 (white), with no frame or ticks."""
    ax.imshow(mosaic, cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)
    if title:
        ax.set_title(title)


def _every(count: int, at_most: int) -> np.ndarray:
    """About ``at_most`` evenly spread indices out of ``count`` (for readable tick labels)."""
    return np.unique(np.round(np.linspace(0, count - 1, min(count, at_most))).astype(int))


# -- building blocks ----------------------------------------------------------------------------
def image_grid(images, nrow=None, image_shape=IMAGE_SHAPE, title=None, ax=None, pad=1):
    """Draw images (n, H·W) or (n, H, W), from any backend, as one grid; returns the Figure.

    ``nrow`` is the number of images in each row (the name torchvision's ``make_grid`` uses);
    by default the grid is about square. ``ax``: draw into these axes instead of a new figure.
    """
    images = _flat_numpy(images)
    per_row = int(nrow) if nrow else math.ceil(math.sqrt(images.shape[0]))
    mosaic = _mosaic(images, per_row, tuple(image_shape), pad)
    if ax is None:  # about 30 pixels of the mosaic per inch, at most 10 inches wide
        h, w = mosaic.shape
        inches = min(1 / 30, 10 / w)
        ax = _figure(max(2.0, w * inches), max(1.2, h * inches + (0.4 if title else 0))).subplots()
    _show(ax, mosaic, title)
    return ax.figure


def save(fig: Figure, path, dpi: int = 150) -> Path:
    """Write ``fig`` to ``path`` (the format follows the extension: .png, .pdf, .svg), making
    the folder if needed. Returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi, facecolor="white")
    return path


# -- what a trained model does ------------------------------------------------------------------
def reconstructions(model, x, n: int = 10, image_shape=IMAGE_SHAPE) -> Figure:
    """The first ``n`` inputs (top row) above their reconstructions (bottom row).

    A VAE reconstructs through its posterior mean, decode(μ(x)), with no noise; an Autoencoder
    through its code, decode(encode(x)).
    """
    image_shape = _check_image_shape(model, image_shape)
    x = _flat_numpy(x)[: int(n)]
    n = x.shape[0]
    x_hat = backend.asnumpy(model.reconstruct(_on_model(model, x)))
    how = "decode(μ(x))" if model.kind == "vae" else "decode(encode(x))"
    fig = _figure(max(4.0, 0.8 * n), 2.4)
    top, bottom = fig.subplots(2, 1)
    image_grid(x, nrow=n, image_shape=image_shape, ax=top, title="inputs x")
    image_grid(x_hat, nrow=n, image_shape=image_shape, ax=bottom, title=f"reconstructions {how}")
    return fig


def samples(model, n: int = 64, seed=0, image_shape=IMAGE_SHAPE, nrow=None, images=None) -> Figure:
    """A grid of ``n`` new images: codes z ~ N(0, I) (the prior), decoded to pixel means.
    ``images``: those ``model.sample(n, seed)`` already gave (so nothing is decoded twice)."""
    image_shape = _check_image_shape(model, image_shape)
    images = model.sample(int(n), seed=seed) if images is None else images
    title = f"{int(n)} samples: decoder means at z ~ N(0, I)  (seed {seed})"
    return image_grid(images, nrow=nrow, image_shape=image_shape, title=title)


def latent_manifold(model, n: int = 20, extent: float = 0.95, image_shape=IMAGE_SHAPE) -> Figure:
    """The decoder's images over an n × n grid of the 2-D latent space (Kingma & Welling 2014,
    Fig. 4).

    The grid is evenly spaced in *probability*, p = 1 − extent, …, extent on each axis, and
    mapped to z through the inverse CDF of N(0, 1), z = Φ⁻¹(p): the codes then cover the prior
    evenly by mass (denser near 0, where most codes are). ``extent=0.95`` gives z from −1.64 to
    1.64. Needs a model with ``latent_dim == 2``; z₁ runs left to right, z₂ bottom to top.
    """
    if model.latent_dim != 2:
        raise ValueError(
            f"latent_manifold draws a 2-D latent space, but this model has latent_dim="
            f"{model.latent_dim}: train a model with latent_dim=2, or look at a larger one "
            f"with traversals() (one dimension at a time) or latent_scatter() (a projection)."
        )
    if not 0.5 < extent < 1.0:
        raise ValueError(f"extent must be between 0.5 and 1 (a probability), got {extent}.")
    image_shape = _check_image_shape(model, image_shape)
    n = int(n)
    values = np.array([NormalDist().inv_cdf(p) for p in np.linspace(1 - extent, extent, n)])
    z1, z2 = np.meshgrid(values, values[::-1])  # top row: the largest z₂
    images = _decode(model, np.stack([z1.ravel(), z2.ravel()], axis=1))
    mosaic = _mosaic(images, n, image_shape, pad=0)
    fig = _figure(7.0, 7.4)
    ax = fig.subplots()
    _show(ax, mosaic, f"The learned 2-D manifold: decoder means on a {n}×{n} grid of z")
    h, w = image_shape
    cols = _every(n, 7)
    ax.set_xticks(_centres(n, w, 0)[cols], [f"{v:.2f}" for v in values[cols]])
    ax.set_yticks(_centres(n, h, 0)[cols], [f"{v:.2f}" for v in values[::-1][cols]])
    ax.set_xlabel(f"z₁ = Φ⁻¹(p),  p = {1 - extent:.2f} … {extent:.2f}")
    ax.set_ylabel("z₂")
    return fig


def latent_scatter(model, x, y=None, batch_size: int = 1000) -> Figure:
    """The latent means μ(x) of the examples ``x`` as points, coloured by their labels ``y``.

    With ``latent_dim == 2`` the axes are μ₁ and μ₂. With more dimensions the means are
    projected onto their first two principal components (PCA), and the title says so. Labels
    that are a few whole numbers (classes) get one colour each and a legend; other labels a
    colour scale. For an Autoencoder the points are its codes z(x).
    """
    mu = _means(model, x, batch_size).astype(np.float64)
    n, L = mu.shape
    if L < 2:
        raise ValueError("latent_scatter needs latent_dim ≥ 2; this model has latent_dim=1.")
    is_vae = model.kind == "vae"
    what = "latent means μ(x)" if is_vae else "codes z(x)"
    if L == 2:
        points = mu
        labels = ("μ₁", "μ₂") if is_vae else ("z₁", "z₂")
        title = f"The {what} of {n} examples"
    else:
        centred = mu - mu.mean(axis=0)
        _, s, vt = np.linalg.svd(centred, full_matrices=False)
        points = centred @ vt[:2].T
        share = s**2 / max(float(np.sum(s**2)), 1e-300)
        labels = (
            f"principal component 1 ({share[0]:.0%})",
            f"principal component 2 ({share[1]:.0%})",
        )
        title = (
            f"The {what} of {n} examples, {L} dimensions projected by PCA\n"
            f"onto their first 2 principal components ({share[:2].sum():.0%} of the variance)"
        )
    fig = _figure(6.8, 5.6)
    ax = fig.subplots()
    if y is None:
        ax.scatter(points[:, 0], points[:, 1], s=6, alpha=0.6)
    else:
        y = _flat_numpy(y).ravel()
        if y.shape[0] != n:
            raise ValueError(f"y has {y.shape[0]} labels but x has {n} examples.")
        classes = np.unique(y)
        if len(classes) <= 20 and np.all(classes == np.round(classes)):
            for colour, c in zip(_palette(len(classes)), classes):
                sel = y == c
                ax.scatter(*points[sel].T, s=6, alpha=0.6, color=colour, label=f"{int(c)}")
            ax.legend(title="label", markerscale=3, loc="upper left", bbox_to_anchor=(1.01, 1.0))
        else:
            dots = ax.scatter(points[:, 0], points[:, 1], s=6, alpha=0.6, c=y, cmap="viridis")
            fig.colorbar(dots, ax=ax, label="label")
    ax.set_title(title)
    ax.set_xlabel(labels[0])
    ax.set_ylabel(labels[1])
    ax.grid(alpha=0.3)
    return fig


def _palette(count: int):
    """``count`` distinct colours: matplotlib's tab10, or tab20 for up to 20 classes."""
    name = "tab10" if count <= 10 else "tab20"
    return [colormaps[name](i) for i in range(count)]


def traversals(
    model, x0=None, n_steps: int = 9, span: float = 3.0, dims=None, image_shape=IMAGE_SHAPE
) -> Figure:
    """Latent traversals: one row per latent dimension, that dimension set to n_steps values
    from −span to +span while the others stay fixed.

    The others stay at 0 (the prior mean) when ``x0`` is None, or at μ(x0), the latent mean of
    the input ``x0``. ``dims`` picks the dimensions (default: all). A dimension whose row does
    not change is one the decoder ignores (compare :func:`kl_per_dimension`).
    """
    image_shape = _check_image_shape(model, image_shape)
    L = model.latent_dim
    dims = list(range(L)) if dims is None else [int(d) for d in dims]
    if not dims or any(not 0 <= d < L for d in dims):
        raise ValueError(f"dims must be latent dimensions between 0 and {L - 1}, got {dims}.")
    if x0 is None:
        base, where = np.zeros(L), "0 (the prior mean)"
    else:
        base, where = _means(model, _flat_numpy(x0)[:1])[0], "μ(x0)"
    n_steps = int(n_steps)
    values = np.linspace(-span, span, n_steps)
    z = np.repeat(base[None, :], len(dims) * n_steps, axis=0)
    for row, d in enumerate(dims):
        z[row * n_steps : (row + 1) * n_steps, d] = values
    images = _decode(model, z)
    mosaic = _mosaic(images, n_steps, image_shape, pad=1)
    fig = _figure(max(4.5, 0.6 * n_steps + 1.2), 0.6 * len(dims) + 1.2)
    ax = fig.subplots()
    _show(ax, mosaic, f"Latent traversals: one dimension per row,\nthe others held at {where}")
    h, w = image_shape
    cols = _every(n_steps, 9)
    ax.set_xticks(_centres(n_steps, w, 1)[cols], [f"{round(v, 2):g}" for v in values[cols]])
    ax.set_yticks(_centres(len(dims), h, 1), [f"z{d}" for d in dims])
    ax.set_xlabel("value given to the row's dimension")
    ax.set_ylabel("latent dimension")
    return fig


def interpolation(model, x_a, x_b, n_steps: int = 10, image_shape=IMAGE_SHAPE) -> Figure:
    """A walk from input ``x_a`` to input ``x_b`` through the latent space.

    Both are encoded to their latent means μ_a, μ_b; the images between them are the decoder
    means at z = (1 − t)·μ_a + t·μ_b for n_steps values of t from 0 to 1. The inputs themselves
    are shown at both ends.
    """
    image_shape = _check_image_shape(model, image_shape)
    x_a, x_b = _flat_numpy(x_a)[:1], _flat_numpy(x_b)[:1]
    mu = _means(model, np.concatenate([x_a, x_b]))
    ### BEGIN SOLUTION
    t = np.linspace(0.0, 1.0, int(n_steps))
    images = _decode(model, (1 - t)[:, None] * mu[0] + t[:, None] * mu[1])
    ### END SOLUTION
    row = np.concatenate([x_a, images, x_b])
    count = row.shape[0]
    fig = _figure(max(4.5, 0.75 * count), 2.0)
    ax = fig.subplots()
    _show(ax, _mosaic(row, count, image_shape, pad=1))
    ax.set_title("Interpolation between two inputs: decoder means at z = (1 − t)·μ_a + t·μ_b")
    ticks = ["x_a"] + [f"{v:.2f}" for v in t] + ["x_b"]
    ax.set_xticks(_centres(count, image_shape[1], 1), ticks, fontsize=8)
    ax.set_xlabel("t")
    return fig


# -- training and the latent code ---------------------------------------------------------------
def loss_curves(history: dict) -> Figure:
    """The panels of a training history, train and validation: total, reconstruction and KL.

    ``history`` is what :func:`minivae.fit` returns: lists under "epoch", "train_total",
    "train_recon", "train_kl" and, when there was validation data, "val_total", "val_recon",
    "val_kl". Values are nats per example. A model without a KL term (an Autoencoder: every KL
    value is 0) gets one panel, its reconstruction loss, which is then its whole loss.
    """
    terms = ("total", "recon", "kl")
    missing = [f"train_{t}" for t in terms if f"train_{t}" not in history]
    if missing:
        raise ValueError(
            f"history is missing {missing}: pass the dict returned by mv.fit (it has "
            f"{sorted(history)})."
        )
    count = len(history["train_total"])
    epochs = history.get("epoch")
    epochs = list(range(1, count + 1)) if epochs is None or len(epochs) == 0 else list(epochs)
    val_kl = history.get("val_kl")
    kl_values = list(history["train_kl"]) + (list(val_kl) if val_kl is not None else [])
    has_kl = any(float(v) != 0.0 for v in kl_values)
    titles = {
        "total": "total loss = recon + β·KL",
        "recon": "reconstruction  −log p(x|z)",
        "kl": "KL( q(z|x) ‖ p(z) )",
    }
    if not has_kl:
        terms = ("recon",)
        titles["recon"] = "reconstruction  −log p(x|z)  (the whole loss: no KL term)"
    fig = _figure(12.0 if has_kl else 6.0, 3.6)
    axes = fig.subplots(1, len(terms), squeeze=False)[0]
    for ax, term in zip(axes, terms):
        for split, style in (("train", "o-"), ("val", "s--")):
            values = history.get(f"{split}_{term}")
            if values is not None and len(values) > 0:
                label = "train" if split == "train" else "validation"
                ax.plot(epochs[: len(values)], values, style, markersize=3, label=label)
        ax.set_title(titles[term])
        ax.set_xlabel("epoch")
        ax.set_ylabel("nats per example")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle("Training curves")
    return fig


def kl_per_dimension(
    model, x, threshold: float = 0.01, sort: bool = True, batch_size: int = 1000
) -> Figure:
    """How much each latent dimension is used, in two bar charts over the same dimensions.

    Left: the average KL of each dimension, in nats (see :func:`evaluate.kl_per_dimension`).
    Right: its activity Var_x(μ_j(x)) on a log scale, with the active-unit threshold (Burda et
    al. 2016) as a dashed line; the bars of active dimensions are blue, inactive ones grey. With
    ``sort=True`` (the default) dimensions are ordered by KL, largest first; the tick labels
    keep their original numbers.
    """
    kl = evaluate.kl_per_dimension(model, x, batch_size)
    activity = evaluate.latent_activity(model, x, batch_size)
    L = kl.shape[0]
    order = np.argsort(-kl, kind="stable") if sort else np.arange(L)
    active = activity > threshold
    colours = ["tab:blue" if a else "tab:gray" for a in active[order]]
    pos = np.arange(L)
    fig = _figure(max(9.0, 0.45 * L + 3.0), 4.2)
    ax_kl, ax_act = fig.subplots(1, 2)
    ax_kl.bar(pos, kl[order], color=colours)
    ax_kl.set_title("KL of each latent dimension")
    ax_kl.set_ylabel("KL (nats per example)")
    floor = min(threshold / 100.0, float(np.min(activity[activity > 0], initial=threshold)))
    ax_act.bar(pos, np.maximum(activity[order], floor), color=colours)
    ax_act.set_yscale("log")
    ax_act.set_ylim(bottom=floor)
    ax_act.axhline(threshold, color="tab:red", linestyle="--")
    for p in pos[activity[order] <= 0]:  # a bar of height 0 has no place on a log scale
        ax_act.text(p, floor, "0", ha="center", va="bottom", color="tab:gray")
    ax_act.set_title(r"activity $A_j = \mathrm{Var}_x\,\mu_j(x)$")
    ax_act.set_ylabel(r"$\mathrm{Var}_x\,\mu_j(x)$  (log scale)")
    order_name = "sorted by KL, largest first" if sort else "in index order"
    for ax in (ax_kl, ax_act):
        ax.set_xticks(pos, [str(j) for j in order], fontsize=8 if L > 20 else 10)
        ax.set_xlabel(f"latent dimension ({order_name})")
        ax.grid(alpha=0.3, axis="y")
    handles = [
        Patch(color="tab:blue", label="active"),
        Patch(color="tab:gray", label="inactive"),
        Line2D([], [], color="tab:red", linestyle="--", label=f"threshold {threshold:g}"),
    ]
    fig.legend(handles=handles, loc="outside lower center", ncols=3, frameon=False)
    fig.suptitle(
        f"{int(active.sum())} of {L} latent dimensions active "
        rf"($A_j$ > {threshold:g}); total KL {kl.sum():.2f} nats per example"
    )
    return fig


# -- latent diffusion (minivae.diffusion) ------------------------------------------------------
def diffusion_loss(history, log_every: int = 100) -> Figure:
    """The denoiser's loss L_simple during training: one point per ``log_every`` steps (the
    list :func:`minivae.diffusion.train` returns)."""
    values = [float(v) for v in history]
    fig = _figure(6.0, 3.6)
    ax = fig.subplots()
    ax.plot([log_every * (i + 1) for i in range(len(values))], values, "o-", markersize=3)
    ax.set(xlabel="training step", ylabel="‖ε − ε̂‖² per code", title="denoiser loss L_simple")
    ax.grid(alpha=0.3)
    return fig


def latent_priors(codes: dict, dims=(0, 1), at_most: int = 2000) -> Figure:
    """Scatter plots of sets of codes side by side, on the same axes limits: e.g.
    ``{"posterior means μ(x)": mu, "N(0, I)": z_prior, "diffusion prior": z_diffusion}``.
    Only the two latent dimensions ``dims`` are drawn."""
    i, j = dims
    sets = {name: _flat_numpy(z)[:at_most] for name, z in codes.items()}
    every = np.concatenate([z[:, [i, j]] for z in sets.values()])
    lo, hi = np.percentile(every, 0.5, axis=0), np.percentile(every, 99.5, axis=0)
    margin = 0.05 * (hi - lo)
    fig = _figure(3.6 * len(sets), 3.8)
    axes = np.atleast_1d(fig.subplots(1, len(sets)))
    for ax, (name, z) in zip(axes, sets.items()):
        ax.scatter(z[:, i], z[:, j], s=2, alpha=0.4)
        ax.set(title=name, xlabel=f"z{i}", ylabel=f"z{j}", aspect="equal")
        ax.set_xlim(lo[0] - margin[0], hi[0] + margin[0])
        ax.set_ylim(lo[1] - margin[1], hi[1] + margin[1])
    return fig


def prior_samples(model, z_diffusion, seed=0, image_shape=IMAGE_SHAPE) -> Figure:
    """Images from the VAE's prior N(0, I) (left) beside images decoded from codes of a latent
    diffusion prior (right), through the same decoder: as many of each as rows of
    ``z_diffusion``."""
    image_shape = _check_image_shape(model, image_shape)
    z = _flat_numpy(z_diffusion)
    n = z.shape[0]
    left = model.sample(n, seed=seed)
    right = model.decode(_on_model(model, z))
    fig = _figure(10.0, 5.4)
    ax_l, ax_r = fig.subplots(1, 2)
    image_grid(left, image_shape=image_shape, ax=ax_l, title="decoded z ~ N(0, I)")
    image_grid(right, image_shape=image_shape, ax=ax_r, title="decoded z ~ diffusion prior")
    return fig
