"""Every check on what is handed to minivae, each failing with one sentence that says what to do.

One rule, one wording, one exception type:

* settings (sizes, rates, seeds, counts): :func:`whole`, :func:`number`, :func:`seed`,
  :func:`fraction`, :func:`choice` and :func:`model_config` raise :class:`SettingError`, or
  :class:`SettingTypeError` (also a ``TypeError``) when the value is not a number at all — True
  and False included, everywhere; :func:`is_whole` and :func:`is_finite` are the same rules as
  tests (the checkpoint reader applies them to what a file says);
* data handed to a model: :func:`batch` (and :func:`data`, :func:`codes`, :func:`noise`,
  :func:`labels`, the one-line forms the models call) raise :class:`InputError`;
* an optimizer's parameters: :func:`parameters`, and :func:`same_arrays` which raises
  :class:`ReplacedArrayError`; inside the core, :func:`layer_input` and :func:`same_shape`;
* :class:`DatasetError` is the error of :mod:`minivae.datasets` (a bad name, a damaged file).

A model's public methods (``loss``, ``encode``, ``decode``, ``reconstruct``, ``log_px``) and
``fit`` check their data with :func:`batch` before any arithmetic, so a mistake shows up as::

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
through both, so they are finite exactly when every value is). ``fit`` and ``evaluate`` run these
checks once on the whole data set and then call the models with ``check=False``, so their loops
pay nothing.
"""

from __future__ import annotations

import math

import numpy as np

from . import backend
from .backend import BackendError

__all__ = [
    "DatasetError",
    "InputError",
    "ReplacedArrayError",
    "SettingError",
    "SettingTypeError",
    "batch",
    "betas",
    "choice",
    "classifier_input",
    "codes",
    "data",
    "for_model",
    "fraction",
    "is_finite",
    "is_number",
    "is_whole",
    "labels",
    "layer_input",
    "model_config",
    "noise",
    "number",
    "parameters",
    "same_arrays",
    "same_shape",
    "seed",
    "whole",
]

LIKELIHOODS = ("bernoulli", "gaussian")


class InputError(ValueError):
    """Data that a model cannot use as it is (shape, values); the message says how to fix it."""


class DatasetError(ValueError):
    """A dataset could not be read or fetched: bad name, damaged file, failed download."""


class SettingError(ValueError):
    """A setting (a size, a rate, a seed, a count) that breaks its rule; one sentence names it."""


class SettingTypeError(SettingError, TypeError):
    """A setting of the wrong type (True, '20', None where a number goes): a
    :class:`SettingError` like every refused setting, and a ``TypeError`` too."""


# -- numbers: one rule, one wording, one exception type each --------------------------------------
#
#   whole(v, where, name, minimum)  "{where}: {name} must be a whole number ≥ 1, got 2.5."
#   number(v, where, name, zero_ok) "{where}: {name} must be a positive finite number, got nan."
#                                   "{where}: {name} must be a finite number ≥ 0, got inf."
#   seed(v, where)                  "{where}: seed must be a whole number ≥ 0 or None, got -1."
#
# A value that is not a number at all (True and False included, '20', None) raises
# SettingTypeError; a number outside the rule raises SettingError. Both are ValueErrors. Data
# (arrays handed to a model) that breaks a rule raises InputError instead.


def is_number(value) -> bool:
    """A real number, Python's or NumPy's; True and False are not numbers here."""
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(
        value, (bool, np.bool_)
    )


def is_finite(value) -> bool:
    """A real number that is neither infinite nor NaN (an integer always is, however large)."""
    return is_number(value) and (isinstance(value, (int, np.integer)) or math.isfinite(value))


def is_whole(value, minimum: int = 1, exact_int: bool = False) -> bool:
    """A whole number ≥ ``minimum``; 20.0 counts unless ``exact_int`` (a JSON integer)."""
    if exact_int:
        return type(value) is int and value >= minimum
    return is_finite(value) and int(value) == value and value >= minimum


def _refuse(value, message):
    return (SettingError if is_number(value) else SettingTypeError)(message)


def whole(value, where: str, name: str, minimum: int = 1) -> int:
    """``value`` as an int ≥ ``minimum`` (1 unless given), or one sentence naming it."""
    if not is_whole(value, minimum):
        raise _refuse(value, f"{where}: {name} must be a whole number ≥ {minimum}, got {value!r}.")
    return int(value)


def number(value, where: str, name: str, zero_ok: bool = False) -> float:
    """``value`` as a finite float > 0 (≥ 0 when ``zero_ok``), or one sentence naming it."""
    if not (is_finite(value) and (value >= 0 if zero_ok else value > 0)):
        rule = "a finite number ≥ 0" if zero_ok else "a positive finite number"
        raise _refuse(value, f"{where}: {name} must be {rule}, got {value!r}.")
    return float(value)


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


def seed(value, where: str, name: str = "seed"):
    """A seed: None, or a whole number ≥ 0 (what numpy.random.default_rng accepts)."""
    if value is None:
        return None
    if not (isinstance(value, (int, np.integer)) and is_whole(value, 0)):
        raise _refuse(value, f"{where}: {name} must be a whole number ≥ 0 or None, got {value!r}.")
    return int(value)


def fraction(value, where: str, name: str) -> float:
    """A number in [0, 1) (momentum, Adam's β₁ and β₂), as a float."""
    if not (is_finite(value) and 0 <= value < 1):
        raise _refuse(value, f"{where}: {name} must be in [0, 1), got {value!r}.")
    return float(value)


def betas(value, where: str = "Adam"):
    """Adam's (β₁, β₂): two numbers, each in [0, 1)."""
    if not (hasattr(value, "__len__") and len(value) == 2):
        raise _refuse(value, f"{where}'s betas must be two numbers (β₁, β₂), got {value!r}.")
    return tuple(fraction(b, where, name) for b, name in zip(value, ("β₁", "β₂")))


def choice(value, choices, what: str):
    """``value`` if it is one of ``choices``, else one sentence listing them."""
    if value not in choices:
        listed = ", ".join(repr(k) for k in choices)
        raise SettingError(f"Unknown {what} {value!r}: choose one of {listed}.")
    return value


# -- inside the core: what one layer hands the next ----------------------------------------------
def layer_input(layer, x):
    """The input of a ``Linear`` layer: (batch, in_dim), or one sentence naming the layer."""
    if x.ndim != 2 or x.shape[1] != layer.in_dim:
        raise ValueError(
            f"{layer.name or 'Linear'} (Linear {layer.in_dim}→{layer.out_dim}) expects input of "
            f"shape (batch, {layer.in_dim}), got {tuple(x.shape)}."
        )


def same_shape(eps, mu, where: str):
    """The sampler's noise ε must have the shape of μ."""
    if tuple(eps.shape) != tuple(mu.shape):
        raise ValueError(
            f"{where}: eps must have the shape of mu {tuple(mu.shape)}, got {tuple(eps.shape)}."
        )


# -- an optimizer's parameters ------------------------------------------------------------------
class ReplacedArrayError(RuntimeError):
    """A parameter's ``data`` or ``grad`` was replaced by a new array after the optimizer was
    made; the message names the parameter and says what to write instead."""


# The one other way a parameter gets new arrays: the fast path moving it into a flat buffer.
_MOVED = " (If a mv.fast.Adam made after this optimizer moved it, train with that one.)"


def parameters(value, where: str) -> list:
    """The parameters an optimizer updates, as a list: objects with ``data``, ``grad`` and
    ``name``, as ``model.parameters()`` gives them (not the model itself), at least one."""
    if hasattr(value, "parameters") or not hasattr(value, "__iter__"):
        raise TypeError(
            f"{where} takes the parameters to update, e.g. {where}(model.parameters()), not "
            f"{type(value).__name__}."
        )
    params = list(value)
    if not all(hasattr(p, "data") and hasattr(p, "grad") and hasattr(p, "name") for p in params):
        raise TypeError(f"{where} takes Parameter objects, e.g. model.parameters().")
    if not params:
        raise SettingError("The optimizer was given no parameters to update.")
    return params


def same_arrays(params, arrays):
    """Refuse a parameter whose ``data`` or ``grad`` is no longer the array in ``arrays``.

    A new ``grad`` means some backward pass wrote ``p.grad = ...`` where it must add in place
    (``p.grad += ...``): gradients from two uses of a layer would no longer add up, and code
    that holds the old array (a fast optimizer's flat buffer, a gradient clipper) would never
    see them. A new ``data`` cuts the parameter off from everything that holds its values.
    """
    for p, (data, grad) in zip(params, arrays):
        if p.grad is not grad:
            raise ReplacedArrayError(
                f"Parameter {p.name or '?'} was given a new gradient array (p.grad = ...) "
                "after the optimizer was made, so the gradient must be added in place: "
                "write `self.W.grad += x.T @ dout`, not `self.W.grad = ...`, in backward." + _MOVED
            )
        if p.data is not data:
            raise ReplacedArrayError(
                f"Parameter {p.name or '?'} was given a new data array (p.data = ...) after "
                "the optimizer was made, so the optimizer no longer updates the array the "
                "model uses: change values in place (p.data[...] = new), or make the "
                "optimizer after the change." + _MOVED
            )


# -- a model's settings and inputs ----------------------------------------------------------------
def model_config(
    kind, input_dim, hidden, latent_dim, likelihood, lam, activation, dtype, beta=None
):
    """The checked settings of an autoencoder (``kind`` "ae") or a VAE ("vae", with its checked
    ``beta``), as checkpoints save them. The activation's name is checked by ``nn.activation``."""
    where = {"ae": "Autoencoder", "vae": "VAE"}[kind]
    extra = {} if beta is None else {"beta": beta}
    if isinstance(hidden, (int, float)) or not hasattr(hidden, "__iter__"):
        raise _refuse(
            hidden,
            f"{where}: hidden must be a list of layer sizes, e.g. hidden=[400], got {hidden!r}.",
        )
    hidden = [whole(h, where, "hidden size") for h in hidden]
    input_dim = whole(input_dim, where, "input_dim")
    latent_dim = whole(latent_dim, where, "latent_dim")
    if likelihood not in LIKELIHOODS:
        raise SettingError(
            f"{where}: likelihood must be 'bernoulli' or 'gaussian', got {likelihood!r}."
        )
    lam = number(lam, where, "lam (λ = 1/(2σ²) of the Gaussian decoder)")
    return dict(
        kind=kind,
        input_dim=input_dim,
        hidden=hidden,
        latent_dim=latent_dim,
        likelihood=likelihood,
        **extra,
        lam=lam,
        activation=activation,
        dtype=backend.dtype_name(dtype),
    )


def data(model, x, method: str, check: bool = True, values: bool = True):
    """An autoencoder's input ``x`` checked by :func:`for_model` (``check=False``: as it is)."""
    if not check:
        return x
    return for_model(model, x, f"{type(model).__name__}.{method}", values=values)


def codes(model, z, method: str, check: bool = True, name: str = "z"):
    """Codes (or noise) of shape (batch, latent_dim), checked like the data but any real."""
    if not check:
        return z
    where = f"{type(model).__name__}.{method}"
    xp, dtype, width = model.xp, model.dtype, model.latent_dim
    return batch(z, xp=xp, dtype=dtype, width=width, where=where, name=name, what="latent_dim")


def noise(model, eps, x, method: str, check: bool = True):
    """The VAE's noise ε: None, or one row of shape (latent_dim,) per row of ``x``."""
    if eps is None or not check:
        return eps
    eps = codes(model, eps, method, name="eps")
    if eps.shape[0] != x.shape[0]:
        raise InputError(
            f"{type(model).__name__}.{method}: eps has shape {tuple(eps.shape)}; expected "
            f"({x.shape[0]}, {model.latent_dim}), one row of noise per row of x."
        )
    return eps


def classifier_input(model, x, y, where: str):
    """A classifier's input ``x`` (its first layer's width), and its labels ``y`` unless None."""
    width = next(m for _, m in model.named_modules() if hasattr(m, "in_dim")).in_dim
    x = batch(x, xp=model.xp, dtype=model.dtype, width=width, where=where)
    return x if y is None else (x, labels(y, x.shape[0], model.n_classes, model.xp, where))


def labels(y, n: int, n_classes: int, xp, where: str):
    """Integer class labels, shape (n,), each in 0 … n_classes − 1, on the namespace ``xp``."""
    if not hasattr(y, "shape"):
        y = xp.asarray(y)
    ns = backend.namespace(y)
    if not ns.isdtype(y.dtype, "integral"):
        raise TypeError(f"{where}: labels have dtype {y.dtype}; expected integers.")
    if tuple(y.shape) != (n,):
        raise InputError(
            f"{where}: labels have shape {tuple(y.shape)}; expected ({n},), one class "
            "number per row of x."
        )
    y = y if ns is xp else backend.asarray(y, namespace=xp)
    lo, hi = int(xp.min(y)), int(xp.max(y))
    if lo < 0 or hi >= n_classes:
        raise InputError(
            f"{where}: labels run from {lo} to {hi}; expected class numbers 0 to "
            f"{n_classes - 1} (the classifier has n_classes={n_classes})."
        )
    return y


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
