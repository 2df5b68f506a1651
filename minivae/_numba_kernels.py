"""The fast path's compiled loops (numba), kept apart so that importing minivae.fast does not
import numba until a kernel is first needed. See minivae.fast."""

import numba
import numpy as np


@numba.njit(parallel=True, cache=True)
def adam(theta, g, m, v, b1, c1, b2, c2, k1, k2, lr, eps):  # pragma: no cover - compiled
    """Adam's update of θ, m, v in place, in one pass; c = 1 − β and k = 1 − βᵗ. Each number
    goes through the operations of minivae.optim.Adam.update in the same order, so the results
    are the same to the last bit."""
    for i in numba.prange(theta.shape[0]):
        gi = g[i]
        mi = b1 * m[i] + c1 * gi  # m ← β₁·m + (1 − β₁)·g
        vi = b2 * v[i] + c2 * gi * gi  # v ← β₂·v + (1 − β₂)·g²
        m[i] = mi
        v[i] = vi
        theta[i] -= lr * (mi / k1) / (np.sqrt(vi / k2) + eps)  # θ ← θ − lr·m̂/(√v̂ + ε)
