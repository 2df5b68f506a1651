"""Checks on what is handed to minivae, each failing with one sentence that says what to do.

A model's public methods (``loss``, ``encode``, ``decode``, ``reconstruct``, ``sample``) and
``fit`` call :func:`batch` on their data before any arithmetic, so a mistake shows up as::

    VAE.loss: x has shape (128, 28, 28); expected (batch, 784) — flatten images with
    x.reshape(len(x), -1).

instead of a traceback from deep inside a matrix product. What is checked, in order:

1. it is an array (a list or tuple is converted) of real numbers: floats, integers or booleans;
2. it lives on the model's backend — a NumPy array is accepted by every model and copied to its
   device, an array of any other backend (CuPy, array_api_strict) must match the model's;
3. its shape is (batch, width) with batch ≥ 1;
4. it is cast to the model's dtype (a float32 model keeps computing in float32 when given
   float64 data, and integer or boolean images become floats);
5. every value is finite and, for a Bernoulli decoder, in [0, 1].

Step 5 reads two numbers back from the device (the minimum and the maximum: NaN propagates
through both, so they are finite exactly when every value is). ``fit`` runs these checks once on
the whole data set and then trains on the unchecked path, so the training loop pays nothing.
"""

from __future__ import annotations

import math

import numpy as np

from . import backend
from .backend import BackendError

__all__ = ["InputError", "batch", "for_model", "positive_int", "seed"]


class InputError(ValueError):
    """Data that a model cannot use as it is (shape, values); the message says how to fix it."""


def batch(x, *, xp, dtype, width, where, name="x", what="input_dim", unit=False, values=True):
    """``x`` checked and converted: a 2-D array (batch, ``width``) of namespace ``xp``, ``dtype``.

    ``where`` names the caller in messages ("VAE.loss"), ``name`` the argument ("x", "z"),
    ``what`` the setting that fixed ``width`` ("input_dim", "latent_dim"). ``unit=True`` also
    requires values in [0, 1] (the targets of a Bernoulli decoder). ``values=False`` skips the
    check of the values (step 5), which is the only one that reads data back from the device.
    """
    x = _array(x, xp, width, where, name)
    kind = _kind(x, where, name)
    _check_shape(tuple(x.shape), width, where, name, what)
    target = backend.get_dtype(dtype, xp)
    if x.dtype != target:
        x = xp.astype(x, target)
    if values:
        _check_values(x, xp, where, name, kind, unit)
    return x


def for_model(model, x, where, name="x", values=True):
    """:func:`batch` with an autoencoder's own settings: its backend, dtype and ``input_dim``, and
    values in [0, 1] when its decoder is Bernoulli. ``where`` names the caller in messages."""
    return batch(
        x,
        xp=model.xp,
        dtype=model.dtype,
        width=model.config["input_dim"],
        where=where,
        name=name,
        unit=model.likelihood == "bernoulli",
        values=values,
    )


def positive_int(value, where: str, name: str) -> int:
    """``value`` as an int ≥ 1, or a ValueError naming it (bools and 2.5 are refused)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{where}: {name} must be a whole number ≥ 1, got {value!r}.")
    if not (math.isfinite(value) and int(value) == value and value >= 1):
        raise ValueError(f"{where}: {name} must be a whole number ≥ 1, got {value!r}.")
    return int(value)


def seed(value, where: str, name: str = "seed"):
    """A seed: None, or a whole number ≥ 0 (what numpy.random.default_rng accepts)."""
    if value is None:
        return None
    ok = isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value >= 0
    if not ok:
        raise ValueError(f"{where}: {name} must be a whole number ≥ 0 or None, got {value!r}.")
    return int(value)


# -- the steps -----------------------------------------------------------------------------------
def _array(x, xp, width, where, name):
    """Step 1 and 2: an array of the model's namespace (NumPy data is copied over)."""
    if isinstance(x, (list, tuple, int, float, np.generic)):
        try:
            x = np.asarray(x)
        except ValueError:
            raise InputError(
                f"{where}: {name} is a ragged list (rows of different lengths); expected an "
                f"array of shape (batch, {width})."
            ) from None
    if isinstance(x, np.ndarray):
        if x.dtype.kind not in "fiub":
            raise TypeError(
                f"{where}: {name} has dtype {x.dtype}; expected real numbers (float32 or "
                "float64; integer and boolean images are converted)."
            )
        return x if backend.namespace(x) is xp else xp.asarray(x)
    try:
        ns = backend.namespace(x)
    except TypeError:
        kind = type(x).__name__
        raise TypeError(
            f"{where}: {name} must be an array of shape (batch, {width}), got a {kind}."
        ) from None
    if ns is not xp:
        raise BackendError(
            f"{where}: {name} is an array of the {_backend_name(ns)} backend but the model is on "
            f"{_backend_name(xp)}; convert it with model.asarray({name})."
        )
    return x


def _backend_name(ns) -> str:
    name = ns.__name__
    for known in ("numpy", "cupy", "array_api_strict", "torch", "jax"):
        if known in name:
            return known
    return name


def _kind(x, where, name) -> str:
    """'float', 'int' or 'bool'; anything else (complex, strings) is a TypeError."""
    ns = backend.namespace(x)
    for kind, group in (("float", "real floating"), ("int", "integral"), ("bool", "bool")):
        if ns.isdtype(x.dtype, group):
            return kind
    raise TypeError(
        f"{where}: {name} has dtype {x.dtype}; expected real numbers (float32 or float64; "
        "integer and boolean images are converted)."
    )


def _check_shape(shape, width, where, name, what):
    """Step 3: (batch, width) with batch ≥ 1, with a hint for the usual slips."""
    expected = f"expected (batch, {width})"
    if len(shape) == 2 and shape[1] == width:
        if shape[0] == 0:
            raise InputError(f"{where}: {name} is empty (shape {shape}); give at least one row.")
        return
    if len(shape) == 0:
        hint = f"give an array of shape (batch, {width})"
    elif len(shape) == 1 and shape[0] == width:
        hint = f"it looks like one example: add the batch axis with {name}[None, :]"
    elif len(shape) > 2 and math.prod(shape[1:]) == width:
        hint = f"flatten images with {name}.reshape(len({name}), -1)"
    elif len(shape) == 2 and shape[0] == width:
        hint = f"it looks transposed: use {name}.T"
    elif len(shape) == 2:
        hint = f"the model was built with {what}={width}"
    else:
        hint = f"give an array of shape (batch, {width})"
    raise InputError(f"{where}: {name} has shape {shape}; {expected} — {hint}.")


def _check_values(x, xp, where, name, kind, unit):
    """Step 5: every value finite; in [0, 1] too when ``unit``. One read-back when all is well."""
    lo, hi = (float(v) for v in backend.asnumpy(xp.stack([xp.min(x), xp.max(x)])))
    if not (math.isfinite(lo) and math.isfinite(hi)):
        n_nan = int(xp.sum(xp.astype(xp.isnan(x), xp.int64)))
        n_inf = int(xp.sum(xp.astype(xp.isinf(x), xp.int64)))
        row = _first_row(xp, ~xp.isfinite(x))
        raise InputError(
            f"{where}: {name} holds {n_nan} NaN and {n_inf} infinite values (the first in row "
            f"{row}); drop or repair those rows first, e.g. "
            f"{name} = {name}[np.isfinite({name}).all(axis=1)]."
        )
    if unit and (lo < 0.0 or hi > 1.0):
        row = _first_row(xp, (x < 0.0) | (x > 1.0))
        if lo >= 0.0 and hi <= 255.0 and kind == "int":
            hint = f"divide by 255: {name}.astype(np.float32) / 255"
        elif lo >= 0.0 and hi <= 255.0:
            hint = f"if these are 8-bit pixel values, divide by 255: {name} / 255"
        else:
            hint = "rescale them to [0, 1], or use likelihood='gaussian' for real-valued data"
        raise InputError(
            f"{where}: {name} has values from {lo:g} to {hi:g} (the first outside [0, 1] in "
            f"row {row}), but a Bernoulli decoder needs values in [0, 1]; {hint}."
        )


def _first_row(xp, bad) -> int:
    """The index of the first row of the boolean array ``bad`` holding a True."""
    rows = backend.asnumpy(xp.any(bad, axis=1))
    return int(np.flatnonzero(rows)[0])
