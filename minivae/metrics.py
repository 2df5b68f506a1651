"""How close are two sets of samples? A kernel two-sample statistic and a Fréchet distance.

Looking at a grid of samples says little about a whole distribution; these two numbers compare
the distribution of generated images with that of real ones, and say 0 when they are the same:

``mmd2(x, y)``   the squared maximum mean discrepancy (Gretton et al., 2012) with a Gaussian RBF
                 kernel k(a, b) = exp(−‖a − b‖² / (2h²)), unbiased estimator:

                 MMD²_u = 1/(m(m−1)) Σ_{i≠j} k(x_i, x_j) + 1/(n(n−1)) Σ_{i≠j} k(y_i, y_j)
                          − 2/(mn) Σ_{i,j} k(x_i, y_j)

                 Its expectation is 0 exactly when x and y come from the same distribution (so an
                 estimate can be slightly negative), and positive otherwise. The bandwidth h is
                 the median heuristic: the median distance between the points of both sets
                 pooled, unless given. To rank several sets against one reference, give them all
                 the same h (``reference_bandwidths``): a number measured with another kernel is
                 on another scale.

``frechet_distance(f, g)``   the Fréchet (2-Wasserstein) distance between Gaussians fitted to two
                 sets of feature vectors (Heusel et al., 2017, "FID", there with Inception
                 features; here with a small classifier trained by minivae itself):

                 FD = ‖μ_f − μ_g‖² + Tr(C_f + C_g − 2·(C_f C_g)^½)

``FeatureClassifier``  an MLP classifier trained on labelled images; its last hidden layer gives
                 the features: what a network that tells classes apart pays attention to.

Everything runs on the arrays' backend, in float64.
"""

from __future__ import annotations

import numpy as np

from . import backend, validate
from .models import Classifier
from .nn import mlp
from .optim import Adam

__all__ = [
    "FeatureClassifier",
    "compare",
    "frechet_distance",
    "median_bandwidth",
    "mmd2",
    "reference_bandwidths",
    "squared_distances",
]


def _as64(a, xp=None):
    xp = xp or backend.xp
    return backend.asarray(a, dtype="float64", namespace=xp)


def squared_distances(a, b):
    """‖a_i − b_j‖² for all pairs, (m, n), as ‖a_i‖² + ‖b_j‖² − 2·a_i·b_j (clipped at 0)."""
    xp = backend.namespace(a)
    ### BEGIN SOLUTION
    sq_a = xp.sum(a * a, axis=1)
    sq_b = xp.sum(b * b, axis=1)
    d2 = sq_a[:, None] + sq_b[None, :] - 2.0 * (a @ b.T)
    return xp.maximum(d2, 0.0)
    ### END SOLUTION


def median_bandwidth(*sets, at_most: int = 1000) -> float:
    """The median heuristic: the median of ‖a − b‖ over the distinct pairs of points of the given
    sets pooled (the first ``at_most`` points of each, which is plenty to find a median)."""
    xp = backend.namespace(sets[0])
    pooled = xp.concat([s[:at_most] for s in sets], axis=0)
    d2 = backend.asnumpy(squared_distances(pooled, pooled))
    upper = d2[np.triu_indices(d2.shape[0], k=1)]
    return float(np.sqrt(np.median(upper)))


def mmd2(x, y, bandwidth: float | None = None) -> float:
    """The unbiased squared MMD between samples x (m, D) and y (n, D), Gaussian RBF kernel with
    bandwidth h (default: :func:`median_bandwidth`). See the module docstring."""
    xp = backend.xp
    x, y = _as64(x, xp), _as64(y, xp)
    m, n = x.shape[0], y.shape[0]
    if m < 2 or n < 2 or x.shape[1] != y.shape[1]:
        raise validate.InputError(
            f"mmd2 needs two sets of at least 2 points of the same width, got shapes "
            f"{tuple(x.shape)} and {tuple(y.shape)}."
        )
    h = median_bandwidth(x, y) if bandwidth is None else float(bandwidth)
    gamma = 1.0 / (2.0 * h * h)
    k_xx = xp.exp(-gamma * squared_distances(x, x))
    k_yy = xp.exp(-gamma * squared_distances(y, y))
    k_xy = xp.exp(-gamma * squared_distances(x, y))
    # Σ_{i≠j}: the whole sum less the diagonal, where k(a, a) = 1
    within_x = (xp.sum(k_xx) - m) / (m * (m - 1))
    within_y = (xp.sum(k_yy) - n) / (n * (n - 1))
    between = xp.sum(k_xy) / (m * n)
    return float(within_x + within_y - 2.0 * between)


def _sqrtm_psd(c):
    """The symmetric square root of a positive semi-definite matrix: V·diag(√λ)·Vᵀ from its
    eigendecomposition C = V·diag(λ)·Vᵀ (negative rounding errors in λ set to 0)."""
    xp = backend.namespace(c)
    lam, v = xp.linalg.eigh(c)
    return (v * xp.sqrt(xp.maximum(lam, 0.0))) @ v.T


def frechet_distance(f, g) -> float:
    """‖μ_f − μ_g‖² + Tr(C_f + C_g − 2·(C_f C_g)^½) between feature sets f (m, D) and g (n, D).

    Tr((C_f C_g)^½) is computed as Tr((S C_g S)^½) with S = C_f^½: the two matrices have the same
    eigenvalues (S C_g S = S·(C_f C_g)·S⁻¹ when C_f is invertible), and S C_g S is symmetric, so
    a symmetric eigendecomposition does it.
    """
    xp = backend.xp
    f, g = _as64(f, xp), _as64(g, xp)
    mu_f, mu_g = xp.mean(f, axis=0), xp.mean(g, axis=0)
    fc, gc = f - mu_f, g - mu_g
    c_f = fc.T @ fc / (f.shape[0] - 1)
    c_g = gc.T @ gc / (g.shape[0] - 1)
    s = _sqrtm_psd(c_f)
    lam = xp.linalg.eigvalsh(s @ c_g @ s)
    tr_sqrt = xp.sum(xp.sqrt(xp.maximum(lam, 0.0)))
    diff = mu_f - mu_g
    value = xp.sum(diff * diff) + xp.linalg.trace(c_f) + xp.linalg.trace(c_g) - 2.0 * tr_sqrt
    return float(value)


class FeatureClassifier:
    """An MLP classifier (``hidden`` layer sizes, ReLU) trained with minivae on labelled images;
    :meth:`features` is its last hidden layer, the space :func:`frechet_distance` works in."""

    def __init__(self, input_dim=784, hidden=(256, 128), n_classes=10, seed=0):
        gen = backend.rng(seed, host=True)
        hidden = [int(h) for h in hidden]
        encoder = mlp([input_dim, *hidden], "relu", final_activation=True, seed=gen)
        head_seed = None if seed is None else seed + 1
        self.model = Classifier(encoder, hidden[-1], n_classes, seed=head_seed)
        self.seed = seed

    def fit(self, x, labels, epochs: int = 5, batch_size: int = 128, lr: float = 1e-3):
        """Adam on the softmax cross-entropy, seeded minibatches; returns self."""
        xp = self.model.xp
        x = backend.asarray(x, dtype=self.model.dtype, namespace=xp)
        labels = backend.asarray(np.asarray(labels).astype(np.int64), namespace=xp)
        opt = Adam(self.model.parameters(), lr=lr)
        gen = backend.rng(self.seed, host=True)
        n = x.shape[0]
        for _ in range(epochs):
            order = gen.permutation(n)
            for start in range(0, n, batch_size):
                rows = xp.asarray(order[start : start + batch_size])
                self.model.loss(xp.take(x, rows, axis=0), xp.take(labels, rows, axis=0))
                self.model.backward()
                opt.step()
                self.model.zero_grad()
        return self

    def accuracy(self, x, labels) -> float:
        xp = self.model.xp
        labels = backend.asarray(np.asarray(labels).astype(np.int64), namespace=xp)
        return self.model.accuracy(x, labels)

    def features(self, x, batch_size: int = 2000):
        """The last hidden layer's activations for images x, (n, hidden[-1])."""
        xp = self.model.xp
        x = backend.asarray(x, dtype=self.model.dtype, namespace=xp)
        parts = [
            self.model.encoder(x[i : i + batch_size]) for i in range(0, x.shape[0], batch_size)
        ]
        return xp.concat(parts, axis=0)


def compare(samples, reference, classifier: FeatureClassifier, bandwidths=None) -> dict:
    """MMD² on pixels, MMD² on classifier features and the Fréchet distance on classifier
    features, between two sets of images.

    ``bandwidths`` = (h_pixels, h_features) fixes the kernel's bandwidths, so that several sets
    compared with one reference are measured with one kernel (see :func:`reference_bandwidths`);
    by default each comparison takes the median heuristic of its own two sets.
    """
    h_pixels, h_features = bandwidths or (None, None)
    fs, fr = classifier.features(samples), classifier.features(reference)
    return {
        "mmd2_pixels": mmd2(samples, reference, bandwidth=h_pixels),
        "mmd2_features": mmd2(fs, fr, bandwidth=h_features),
        "frechet_features": frechet_distance(fs, fr),
    }


def reference_bandwidths(reference, classifier: FeatureClassifier) -> tuple[float, float]:
    """The median-heuristic bandwidths of a reference set of images alone, on pixels and on
    classifier features: one kernel for every set compared with that reference."""
    xp = backend.xp
    reference = _as64(reference, xp)
    return median_bandwidth(reference), median_bandwidth(classifier.features(reference))
