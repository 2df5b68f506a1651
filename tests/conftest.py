"""Shared fixtures: run a test on every array backend that can run here.

``backend`` is parametrized over NumPy, array_api_strict (the Array API standard and nothing
more, so a NumPy-only call in the core fails there) and CuPy, which is skipped cleanly when CuPy
or a GPU is missing. Each test gets float64 arrays from ``to_backend``.
"""

import os

# One BLAS thread for the tests (set before NumPy loads its BLAS): the models here are small, and
# on a machine whose cores are busy with other work, BLAS threads waiting for each other can make
# a test many times slower. Speed is measured in benchmarks/, never in tests.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from hypothesis import settings  # noqa: E402

# Property-based tests draw the same examples on every run (seeded), like every other test.
settings.register_profile("minivae", derandomize=True, database=None)
settings.load_profile("minivae")

import minivae as mv  # noqa: E402

BACKENDS = ["numpy", "array_api_strict", "cupy"]


def _can_run(name):
    try:
        mv.set_backend(name)
    except mv.BackendError as err:
        return str(err)
    finally:
        mv.set_backend("numpy")
    return None


@pytest.fixture(params=BACKENDS)
def backend(request):
    """The name of the active backend for this test; NumPy is restored afterwards."""
    if _can_run(request.param):
        pytest.skip(f"the {request.param} backend cannot run here (not installed or no GPU)")
    mv.set_backend(request.param)
    yield request.param
    mv.set_backend("numpy")
    mv.set_dtype("float32")


@pytest.fixture
def to_backend(backend):
    """Turn a NumPy array into a float64 array on the active backend."""

    def convert(a, dtype="float64"):
        return mv.asarray(np.asarray(a), dtype=dtype)

    return convert


@pytest.fixture(autouse=True)
def _restore_numpy():
    yield
    mv.set_backend("numpy")
    mv.set_dtype("float32")


def assert_on_backend(array):
    """The array lives in the active namespace (no silent fall back to NumPy)."""
    assert mv.backend.namespace(array) is mv.xp, f"{type(array)} is not an array of {mv.xp}"
