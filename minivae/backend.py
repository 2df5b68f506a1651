"""The array backend: one code path for NumPy, CuPy and any Array-API namespace.

minivae's core never imports NumPy or CuPy directly. It asks this module for the *namespace* of
the arrays it is working on and calls functions from it (``xp.exp``, ``xp.sum``, ...). Those names
follow the Python Array API standard (https://data-apis.org/array-api/), which NumPy and CuPy
both speak through the ``array-api-compat`` package, so the same line runs on the CPU and on the
GPU::

    import minivae as mv
    mv.set_backend("cupy")      # every new model and array now lives on the GPU
    mv.xp                       # the active namespace (array_api_compat.cupy)
    mv.asnumpy(x)               # back to a NumPy array, for plots and saving

Three names are understood by :func:`set_backend`:

``"numpy"``             the default, on the CPU;
``"cupy"``              an NVIDIA GPU (``pip install minivae[gpu]``);
``"array_api_strict"``  a deliberately minimal namespace used by the test suite to prove that the
                        core calls nothing outside the standard.

Randomness is explicit: :func:`rng` gives a seeded generator for the active backend, and the
same seed gives the same numbers every time on the NumPy backend.
"""

from __future__ import annotations

import importlib

import numpy as np
from array_api_compat import array_namespace

__all__ = [
    "BackendError",
    "Generator",
    "asarray",
    "asnumpy",
    "available_backends",
    "dtype_name",
    "get_backend",
    "get_dtype",
    "namespace",
    "rng",
    "set_backend",
    "set_dtype",
    "xp",
]


class BackendError(RuntimeError):
    """Raised when a backend is asked for that cannot run here; the message says what to do."""


#: The active namespace. Read it as ``mv.xp`` (or ``backend.xp``): it changes with set_backend.
xp = array_namespace(np.empty(0))
_name = "numpy"
_default_dtype = "float32"
_DTYPES = ("float32", "float64")


def _load_cupy():
    """Import CuPy and make sure a GPU is visible, or say in one sentence what is missing."""
    try:
        cupy = importlib.import_module("cupy")
    except ImportError:
        raise BackendError(
            "The 'cupy' backend needs CuPy, which is not installed: install it with "
            "`pip install minivae[gpu]` (or the cupy-cudaXXx wheel that matches your CUDA), "
            "or stay on the CPU with mv.set_backend('numpy')."
        ) from None
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception:  # CUDA driver missing or broken: CuPy raises its own error types here
        count = 0
    if count < 1:
        raise BackendError(
            "CuPy is installed but no CUDA GPU is visible on this machine: install an NVIDIA "
            "driver (check with `nvidia-smi`) or stay on the CPU with mv.set_backend('numpy')."
        )
    return cupy


def _namespace_for(name: str):
    if name == "numpy":
        return array_namespace(np.empty(0))
    if name == "cupy":
        cupy = _load_cupy()
        return array_namespace(cupy.empty(0))
    if name in ("array_api_strict", "strict"):
        try:
            return importlib.import_module("array_api_strict")
        except ImportError:
            raise BackendError(
                "The 'array_api_strict' backend needs `pip install array-api-strict` "
                "(it comes with `pip install minivae[dev]`)."
            ) from None
    raise BackendError(
        f"Unknown backend {name!r}: choose one of 'numpy', 'cupy' or 'array_api_strict'."
    )


def set_backend(name: str = "numpy", dtype: str | None = None):
    """Make ``name`` the active backend (and optionally set the default float dtype).

    Models and arrays made after this call live on the new backend; existing ones stay where they
    are (move them with ``mv.load`` / ``mv.save`` or :func:`asarray`). Returns the namespace.
    """
    global xp, _name
    xp = _namespace_for(name)
    _name = "array_api_strict" if name == "strict" else name
    if dtype is not None:
        set_dtype(dtype)
    return xp


def get_backend() -> str:
    """The name of the active backend: 'numpy', 'cupy' or 'array_api_strict'."""
    return _name


def available_backends() -> list[str]:
    """The backends that can run on this machine, in the order numpy, array_api_strict, cupy."""
    found = []
    for name in ("numpy", "array_api_strict", "cupy"):
        try:
            _namespace_for(name)
        except BackendError:
            continue
        found.append(name)
    return found


def set_dtype(dtype: str) -> None:
    """Set the default float dtype for new models: 'float32' (training) or 'float64' (checks)."""
    global _default_dtype
    _default_dtype = dtype_name(dtype)


def dtype_name(dtype=None) -> str:
    """'float32' or 'float64' for a dtype given by name or object; None gives the default."""
    if dtype is None:
        return _default_dtype
    name = getattr(dtype, "name", None) or str(dtype)
    name = name.rsplit(".", 1)[-1]
    if name not in _DTYPES:
        raise ValueError(f"dtype must be 'float32' or 'float64', got {dtype!r}.")
    return name


def get_dtype(dtype=None, namespace=None):
    """The dtype object of ``namespace`` (default: the active one) for 'float32' or 'float64'.

    ``None`` means the default set by :func:`set_dtype` (float32 unless changed).
    """
    return getattr(namespace or xp, dtype_name(dtype))


_namespaces: dict[type, object] = {}


def namespace(x):
    """The Array-API namespace of array ``x`` (cached per array type, so it is cheap to call)."""
    try:
        return _namespaces[type(x)]
    except KeyError:
        ns = _namespaces[type(x)] = array_namespace(x)
        return ns


def asarray(a, dtype=None, namespace=None):
    """Put ``a`` (a NumPy array, list or array of another backend) on the active backend."""
    ns = namespace or xp
    if not isinstance(a, (list, tuple, float, int, np.ndarray, np.generic)):
        if array_namespace(a) is not ns:  # an array of another backend: through the host
            a = asnumpy(a)
    return ns.asarray(a, dtype=None if dtype is None else get_dtype(dtype, ns))


def asnumpy(a) -> np.ndarray:
    """A NumPy copy of ``a`` from any backend (a GPU array is copied to the host)."""
    if isinstance(a, np.ndarray):
        return a
    get = getattr(a, "get", None)  # CuPy arrays copy to the host with .get()
    if callable(get) and type(a).__module__.startswith("cupy"):
        return get()
    try:
        return np.from_dlpack(a)
    except (TypeError, RuntimeError, BufferError, AttributeError):
        return np.asarray(a)


class Generator:
    """A seeded random generator that draws arrays on one backend.

    Normal and uniform draws come from ``numpy.random.default_rng(seed)`` and are copied to the
    active namespace; on CuPy they come from ``cupy.random.default_rng(seed)`` so noise is drawn
    on the GPU with no copy. Pass ``host=True`` to draw on the CPU whatever the backend: minivae
    initializes weights this way, so the same seed gives the same model on every backend.
    Permutations (for shuffling) are always drawn on the CPU.
    """

    def __init__(self, seed=None, namespace=None, host: bool = False):
        self.xp = namespace or xp
        self.host = np.random.default_rng(seed)
        self.device = None
        if not host and self.xp.__name__.endswith("cupy"):
            import cupy

            self.device = cupy.random.default_rng(seed)

    def normal(self, shape, dtype=None):
        """Standard normal draws N(0, 1) of the given shape."""
        name = dtype_name(dtype)
        if self.device is not None:
            return self.device.standard_normal(shape, dtype=name)
        return self.xp.asarray(self.host.standard_normal(shape, dtype=name))

    def uniform(self, shape, low=0.0, high=1.0, dtype=None):
        """Uniform draws in [low, high)."""
        name = dtype_name(dtype)
        if self.device is not None:
            return low + (high - low) * self.device.random(shape, dtype=name)
        return self.xp.asarray(self.host.uniform(low, high, shape).astype(name))

    def permutation(self, n: int) -> np.ndarray:
        """A random permutation of range(n), as a NumPy array of indices."""
        return self.host.permutation(n)


def rng(seed=None, host: bool = False) -> Generator:
    """A seeded :class:`Generator` on the active backend (``host=True``: draw on the CPU)."""
    return Generator(seed, host=host)
