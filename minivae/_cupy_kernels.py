"""The fast path's fused GPU kernel (CuPy), kept apart like minivae/_numba_kernels.py: importing
minivae.fast does not import CuPy, and a student edition leaves this file out (it holds Adam's
update whole). Off by default: see minivae.fast.CUPY_KERNELS."""

import cupy


def adam():
    """Adam's update of θ, m, v in place as one CuPy elementwise kernel; c = 1 − β and
    k = 1 − βᵗ, the operations of minivae.optim.Adam.update in the same order."""
    kernel = cupy.ElementwiseKernel(
        "T g, T b1, T c1, T b2, T c2, T k1, T k2, T lr, T eps",
        "T theta, T m, T v",
        """
        m = b1 * m + c1 * g;
        v = b2 * v + c2 * g * g;
        theta -= lr * (m / k1) / (sqrt(v / k2) + eps);
        """,
        "minivae_adam",
    )
    return lambda theta, g, m, v, *scalars: kernel(
        g, *(theta.dtype.type(s) for s in scalars), theta, m, v
    )
