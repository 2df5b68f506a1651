"""Gradient checks: compare a hand-written backward pass with centred finite differences.

The recipe (used by the tests, the lessons and the graders):

* work in float64, so rounding does not hide a wrong gradient;
* perturb one entry at a time by ±h (h = 1e-5) and take  (f(x + h) − f(x − h)) / 2h,  whose error
  shrinks like h² (a one-sided difference only like h);
* compare with  rel_error(a, b) = max|a − b| / max(1e-8, max|a| + max|b|),  the largest error
  relative to the size of the whole gradient array;
* expect below 1e-7 where the function is smooth and below 1e-5 near a kink (ReLU at 0).

Why not divide entry by entry? Every finite difference carries a rounding error of about
ε_machine·|F| / h (≈ 1e-11·|F| in float64), however small the true entry is. An entry that is
nearly 0 (a weight deep in the network, or a pixel the model already fits) then shows a large
*relative* error although the backward pass is right. Measured against the scale of the array,
a wrong entry still shows up at once (a forgotten term gives an error near 1) and rounding does not.

Everything here runs on the arrays' own backend (NumPy, CuPy or array_api_strict).
"""

from __future__ import annotations

import itertools

from . import backend

__all__ = [
    "check_function",
    "check_model",
    "check_module",
    "model_errors",
    "module_errors",
    "numerical_gradient",
    "rel_error",
]


def rel_error(a, b) -> float:
    """max|a − b| / max(1e-8, max|a| + max|b|): 0 when equal, 1 when a = −b or one of them is 0."""
    xp = backend.namespace(a)
    scale = float(xp.max(xp.abs(a))) + float(xp.max(xp.abs(b)))
    return float(xp.max(xp.abs(a - b))) / max(1e-8, scale)


def numerical_gradient(f, x, h: float = 1e-5):
    """dF/dx by centred differences, where ``f()`` reads ``x`` (perturbed in place) and returns F.

    F must be a scalar (a float or a 0-d array). ``x`` is restored entry by entry, so on return
    it holds exactly its original values.
    """
    xp = backend.namespace(x)
    grad = xp.zeros_like(x)
    for idx in itertools.product(*(range(n) for n in x.shape)):
        old = float(x[idx])
        x[idx] = old + h
        f_plus = float(f())
        x[idx] = old - h
        f_minus = float(f())
        x[idx] = old
        grad[idx] = (f_plus - f_minus) / (2.0 * h)
    return grad


def check_function(f, inputs, grads, h: float = 1e-5) -> float:
    """Max relative error between ``grads`` and the numerical gradients of ``f(*inputs)``.

    ``f`` takes the arrays in ``inputs`` and returns a scalar; ``grads[i]`` is your dF/d inputs[i]
    (``None`` to skip one, e.g. integer labels). Example, the KL and its gradient::

        kl = mv.losses.kl_standard_normal
        value, dmu, dlv = kl(mu, lv)
        err = check_function(lambda m, v: kl(m, v)[0], [mu, lv], [dmu, dlv])
    """
    errors = [0.0]
    for x, g in zip(inputs, grads):
        if g is None:
            continue
        num = numerical_gradient(lambda: f(*inputs), x, h)
        errors.append(rel_error(g, num))
    return max(errors)


def module_errors(module, x, dout=None, h: float = 1e-5, seed: int = 0) -> dict[str, float]:
    """Relative error of ``module.backward`` for the input and every parameter, by name.

    The scalar checked is F = Σ (module(x) · dout) with a fixed random ``dout``, so that
    dF/d(output) = dout is exactly what backward receives.
    """
    xp = backend.namespace(x)
    out = module(x)
    if dout is None:
        dout = backend.Generator(seed, namespace=xp).normal(tuple(out.shape), dtype=x.dtype)

    def F():
        return xp.sum(module(x) * dout)

    for p in module.parameters():
        p.zero_grad()
    module(x)
    dx = module.backward(dout)
    errors = {"x": rel_error(dx, numerical_gradient(F, x, h))}
    for name, p in module.named_parameters():
        errors[p.name or name] = rel_error(p.grad, numerical_gradient(F, p.data, h))
    return errors


def check_module(module, x, dout=None, h: float = 1e-5, seed: int = 0) -> float:
    """Max relative error of a layer's backward (input and parameters) vs finite differences."""
    return max(module_errors(module, x, dout, h, seed).values())


def model_errors(model, *args, h: float = 1e-5, **kwargs) -> dict[str, float]:
    """Relative error of ``model.backward`` for every parameter of ``model.loss(*args, **kwargs)``.

    Pass fixed noise (``eps=...``) for a VAE: the loss must be a deterministic function of the
    parameters for finite differences to mean anything.
    """

    def F():
        return model.loss(*args, **kwargs).total

    model.zero_grad()
    model.loss(*args, **kwargs)
    model.backward()
    return {
        p.name or name: rel_error(p.grad, numerical_gradient(F, p.data, h))
        for name, p in model.named_parameters()
    }


def check_model(model, *args, h: float = 1e-5, **kwargs) -> float:
    """Max relative error over every parameter of a whole model's loss (see model_errors)."""
    return max(model_errors(model, *args, h=h, **kwargs).values())
