"""The fast path: the teaching core's models, trained with fused element-wise work.

The teaching core (``nn``, ``losses``, ``sampling``, ``models``, ``optim``) writes every
computation in its clearest form: each parameter owns its arrays and an optimizer loops over
them, applying the paper's update with a dozen NumPy operations per parameter, each a pass over
memory. This module trains the *same* model objects faster, and nothing in the core depends on it
(the pattern of CS231n's ``layers.py`` beside ``fast_layers.py``)::

    model = mv.VAE(input_dim=784, hidden=[400], latent_dim=20)
    opt = mv.fast.Adam(model.parameters(), lr=1e-3)    # instead of mv.Adam
    mv.fit(model, opt, x_train, epochs=10)

What it changes, and only there:

- :class:`Adam` moves every parameter into one flat buffer (each ``p.data`` and ``p.grad``
  becomes a view into it) and updates the whole buffer in one loop compiled by numba: one read of
  θ, g, m, v and one write of θ, m, v per number, instead of a dozen NumPy passes per parameter.
  Each number goes through the teaching rule's operations in the same order, so on NumPy the fast
  path trains to the same bits as the teaching one. Without numba, or on arrays that are not
  NumPy's, it runs the teaching rule once on the flat buffers. On CuPy a fused GPU kernel is
  written (:data:`CUPY_KERNELS`) but off by default: it has not yet run on a device.
- :func:`threads` runs a block of code with a number of BLAS threads, and puts the setting back
  after it (threadpoolctl). The command line trains with one thread per core that other programs
  leave free: on a machine whose cores are busy, threads waiting for each other at every matrix
  product made the teaching path's step ten times slower.

The profile of a training step of the 784-400-20 VAE (batch 128) on the fast path is now the
matrix products (about 75 %) and the Bernoulli loss. The loss stays the teaching one: fused by
numba or numexpr, it ran 5 to 15 times slower here than NumPy's vectorized exp and log1p.

``tests/test_fast.py`` trains the 784-400-20 VAE for hundreds of steps on both paths and checks
that they agree.
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
import weakref

from . import backend, optim, validate

__all__ = ["CUPY_KERNELS", "Adam", "busy_cores", "flatten_parameters", "threads"]

#: Use a fused CuPy kernel for Adam on the GPU. Off: that code has not yet run on a device (the
#: GPU check, scripts/gpu_check.sh, turns it on and compares it with the teaching path).
CUPY_KERNELS = False

# Which fast optimizer holds each parameter's flat buffer (a parameter can live in one only).
_owners: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def flatten_parameters(parameters):
    """Move the parameters into two flat 1-D arrays, one for the values and one for the gradients.

    Each ``Parameter``'s ``data`` and ``grad`` become reshaped *views* into them, so layers use
    them exactly as before while an optimizer updates every parameter at once. Values and
    gradients are kept. Returns ``(data, grad)``: the two flat arrays.
    """
    params = list(parameters)
    xp = backend.namespace(params[0].data)
    dtypes = {p.data.dtype for p in params}
    if len(dtypes) > 1:
        raise validate.SettingError(
            f"All parameters must have one dtype to share a buffer, got {dtypes}."
        )
    sizes = [math.prod(p.shape) for p in params]
    data = xp.zeros((sum(sizes),), dtype=params[0].data.dtype)
    grad = xp.zeros_like(data)
    for p, view_data, view_grad in zip(params, _views(data, params), _views(grad, params)):
        view_data[...] = p.data
        view_grad[...] = p.grad
        p.data, p.grad = view_data, view_grad
    return data, grad


def _views(flat, params):
    """Views into the flat array ``flat``, one shaped like each parameter, in order."""
    xp = backend.namespace(flat)
    views, start = [], 0
    for p in params:
        size = math.prod(p.shape)
        views.append(xp.reshape(flat[start : start + size], p.shape))
        start += size
    return views


class Adam(optim.Adam):
    """Adam, the same rule as :class:`minivae.optim.Adam`, over one flat buffer in one fused pass.

    Made from ``model.parameters()`` like the teaching Adam. One model's parameters can live in
    one flat buffer only, so a second fast optimizer on them is refused; the teaching optimizers
    (``mv.Adam``, ``mv.SGD``) can be made beside it and update the same arrays.
    """

    def __init__(self, parameters, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8):
        super().__init__(parameters, lr, betas, eps)
        for p in self.params:
            owner = _owners.get(p)
            if owner is not None and owner() is not None:
                raise validate.SettingError(
                    f"Parameter {p.name or '?'} already lives in the flat buffer of another "
                    "mv.fast.Adam, and a parameter can live in one only: keep using that "
                    "optimizer (or make this one with mv.Adam, the teaching optimizer)."
                )
        self.flat_data, self.flat_grad = flatten_parameters(self.params)
        self.xp = backend.namespace(self.flat_data)
        self.flat_m = self.xp.zeros_like(self.flat_data)
        self.flat_v = self.xp.zeros_like(self.flat_data)
        self.m, self.v = _views(self.flat_m, self.params), _views(self.flat_v, self.params)
        self.remember_arrays()
        for p in self.params:
            _owners[p] = weakref.ref(self)
        self._kernel = _adam_kernel(self.flat_data)

    @property
    def engine(self) -> str:
        """What runs the update here: 'numba', 'cupy kernel' or 'teaching rule' (on the flat
        buffers, when neither kernel can run)."""
        if self._kernel is None:
            return "teaching rule"
        return "numba" if isinstance(self._kernel, functools.partial) else "cupy kernel"

    @classmethod
    def like(cls, optimizer: optim.Adam) -> Adam:
        """A fast Adam that carries on from a teaching ``mv.Adam`` (for instance one that
        ``mv.resume`` rebuilt): the same parameters, settings, step count and running means.
        Train on with the new one only: the old one refuses to step once the parameters moved."""
        if not isinstance(optimizer, optim.Adam):
            raise TypeError(f"Adam.like takes an Adam optimizer, got {type(optimizer).__name__}.")
        new = cls(optimizer.params, **optimizer.hyperparameters())
        new.t = optimizer.t
        for name, arrays in optimizer.buffers().items():
            for mine, theirs in zip(new.buffers()[name], arrays):
                mine[...] = theirs
        return new

    def zero_grad(self):
        """Set every gradient to zero: one fill of the flat gradient buffer."""
        self.flat_grad[...] = 0

    def step(self):
        self.check_arrays()
        self.t += 1
        b1, b2 = self.beta1, self.beta2
        scalars = (b1, 1.0 - b1, b2, 1.0 - b2, 1.0 - b1**self.t, 1.0 - b2**self.t)
        flat = (self.flat_data, self.flat_grad, self.flat_m, self.flat_v)
        if self._kernel is None:  # the teaching rule, on every parameter at once
            self.update(*flat)
        else:
            self._kernel(*flat, *scalars, self.lr, self.eps)


def _adam_kernel(flat):
    """The fastest Adam update that can run on ``flat``'s arrays here."""
    xp = backend.namespace(flat)
    name = xp.__name__
    if name.endswith("numpy"):
        kernel = _numba_adam()
        if kernel is not None:
            return functools.partial(_run_numba, kernel, flat.dtype.type)
    if name.endswith("cupy") and CUPY_KERNELS:
        return _cupy_adam()
    return None  # no kernel: the teaching rule, run on the flat buffers


@functools.cache
def _numba_adam():
    """Adam's update compiled by numba into one loop over the flat buffers (None without numba).

    ``parallel=True`` lets numba vectorize the loop (it may then assume the arrays do not
    overlap); compiled on first use, then cached on disk.
    """
    try:
        from . import _numba_kernels
    except ImportError:  # numba is not installed
        return None
    return _numba_kernels.adam


def _run_numba(kernel, dtype, theta, g, m, v, *scalars):
    """Run a numba kernel on this thread alone. numba's threads would wait for work by spinning
    on the cores that BLAS's threads need for the next matrix product (a step then took 8 ms
    instead of 0.1 ms here); one thread running the vectorized loop is fast enough."""
    import numba

    before = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        kernel(theta, g, m, v, *(dtype(s) for s in scalars))
    finally:
        numba.set_num_threads(before)


@functools.cache
def _cupy_adam():
    """Adam's update as one fused CuPy kernel (see :data:`CUPY_KERNELS`: not yet run on a GPU);
    None where the kernel's file is left out (a student edition)."""
    try:
        from . import _cupy_kernels
    except ImportError:
        return None
    return _cupy_kernels.adam()


# -- threads ------------------------------------------------------------------------------------
def busy_cores() -> float:
    """How many of this machine's cores other programs keep busy: the 1-minute load average
    (Linux and macOS; 0 where there is none)."""
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return 0.0


@contextlib.contextmanager
def threads(n: int | None = None):
    """Run the block with ``n`` BLAS threads (and numba threads), then put back what was set.

    ``n=None`` picks: one thread per core that other programs leave free, at least one. On a
    machine whose cores are all busy, BLAS threads that wait for each other at every matrix
    product make training several times slower than one thread would. Without threadpoolctl
    installed the block runs as it is.
    """
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    cores = cores or 1
    if n is None:
        n = max(1, min(cores, round(cores - busy_cores())))
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        yield n
        return
    with threadpool_limits(limits=int(n), user_api="blas"):
        yield n
