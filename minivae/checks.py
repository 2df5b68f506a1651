"""Checks for the lessons' exercises: each prints "✓ name" or says what is wrong.

A check cell in a lesson calls these functions. When the answer is right they print one line
starting with ✓ (gradient checks add the relative error they measured); when it is wrong they
raise :class:`ExerciseFailed`, an ``AssertionError`` whose message says what was expected, so the
student knows where to look. ``python -m minivae grade`` counts a check cell as passed when it
runs to its end: every check in it reached its verdict.

Gradient checks follow :mod:`minivae.gradcheck`: centred finite differences in float64, compared
with ``rel_error(a, b) = max|a − b| / (max|a| + max|b|)``. A right backward pass gives about 1e-9;
a missing term or transpose gives something near 1.

In a notebook a failed check shows as one red line, ``✗`` and what is wrong, not as a
traceback through this module: IPython prints an exception that has a ``_render_traceback_``
method as the lines that method returns.

The lessons also read their sizes from here: ``pick(full=..., smoke=...)`` returns the smoke
value when the environment variable ``MINIVAE_LESSON_MODE=smoke`` is set (the test suite runs
every lesson that way, in a few seconds) and the full value otherwise. ``show_progress()`` says
whether training cells draw tqdm's progress bars, and ``library_written(...)``, called by a
lesson's first cell, says which library functions the lesson needs that are not written yet.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from . import backend, gradcheck

#: The library functions a course can ask students to write: name → (file, lesson, exercise).
#: The lesson's exercise of that number explains the function and checks it. Every library
#: function whose code answers a notebook exercise is one of them, so that a student edition
#: holds no answer (``minivae.course.answers`` lists which function answers which exercise).
LIBRARY_EXERCISES = {
    "Linear.backward": ("minivae/nn.py", 1, 3),
    "Adam.update": ("minivae/optim.py", 1, 3),
    "bernoulli_log_prob": ("minivae/losses.py", 2, 5),
    "bernoulli_nll": ("minivae/losses.py", 2, 5),
    "gaussian_log_prob": ("minivae/losses.py", 2, 5),
    "gaussian_nll": ("minivae/losses.py", 2, 5),
    "softmax_cross_entropy": ("minivae/losses.py", 4, 5),
    "Classifier.accuracy": ("minivae/models.py", 4, 5),
    "GaussianSampler.backward": ("minivae/sampling.py", 5, 3),
    "kl_standard_normal": ("minivae/losses.py", 6, 4),
    "kl_per_element": ("minivae/losses.py", 6, 4),
    "VAE.loss": ("minivae/models.py", 7, 5),
    "VAE.backward": ("minivae/models.py", 7, 5),
    "log_weights": ("minivae/evaluate.py", 7, 5),
    "kl_per_dimension": ("minivae/evaluate.py", 8, 5),
    "latent_activity": ("minivae/evaluate.py", 8, 5),
    "interpolation": ("minivae/plots.py", 8, 5),
    "squared_distances": ("minivae/metrics.py", 9, 4),
    "Schedule.q_mean_var": ("minivae/diffusion.py", 10, 4),
    "Schedule.q_sample": ("minivae/diffusion.py", 10, 4),
    "LatentDiffusion.backward": ("minivae/diffusion.py", 10, 4),
    "LatentDiffusion.ddpm_step": ("minivae/diffusion.py", 10, 4),
}

LIBRARY_NAMES = ", ".join(LIBRARY_EXERCISES)

__all__ = [
    "LIBRARY_EXERCISES",
    "ExerciseFailed",
    "check_close",
    "check_gradient",
    "check_module",
    "check_shape",
    "check_true",
    "library_written",
    "own_copy",
    "pick",
    "show_progress",
    "smoke_mode",
]


class ExerciseFailed(AssertionError):
    """An exercise's answer is wrong; the message says what was expected.

    In IPython (a notebook) it shows as one red line, ``✗`` and the message, with no traceback:
    the lines through this module would only hide the one that matters.
    """

    def _render_traceback_(self) -> list[str]:
        return [f"\x1b[1;31m✗ {self}\x1b[0m"]


def smoke_mode() -> bool:
    """True when ``MINIVAE_LESSON_MODE=smoke``: lessons then use tiny sizes and few epochs."""
    return os.environ.get("MINIVAE_LESSON_MODE", "").strip().lower() == "smoke"


def pick(full, smoke):
    """``smoke`` in smoke mode, ``full`` otherwise (e.g. ``epochs = pick(full=10, smoke=1)``)."""
    return smoke if smoke_mode() else full


def show_progress() -> bool:
    """Whether the lessons' training cells draw tqdm's progress bars (``fit(progress=...)``).

    Yes, except in smoke mode, where the test suite runs the lessons and a bar would only add
    output; ``MINIVAE_LESSON_PROGRESS=on`` (or ``off``) decides either way.
    """
    forced = os.environ.get("MINIVAE_LESSON_PROGRESS", "").strip().lower()
    if forced in ("on", "1", "yes", "true"):
        return True
    if forced in ("off", "0", "no", "false"):
        return False
    return not smoke_mode()


def _probe(name: str) -> None:
    """Call the library function ``name`` once on tiny float64 inputs (NumPy)."""
    from . import diffusion, evaluate, losses, metrics, models, nn, optim, plots, sampling

    if name not in LIBRARY_EXERCISES:
        raise ValueError(f"no library exercise is called {name!r}: use one of {LIBRARY_NAMES}")
    ones, half = np.ones((1, 2)), np.full((1, 2), 0.5)
    vae = models.VAE(2, hidden=[], latent_dim=1, seed=0, dtype="float64")
    if name == "Linear.backward":
        layer = nn.Linear(2, 2, seed=0, dtype="float64")
        layer(ones)
        layer.backward(ones)
    elif name == "Adam.update":
        p = nn.Parameter(np.ones(2))
        p.grad[...] = 1.0
        optim.Adam([p]).step()
    elif name == "GaussianSampler.backward":
        sampler = sampling.GaussianSampler(seed=0)
        sampler(ones, ones, eps=ones)
        sampler.backward(ones)
    elif name == "Classifier.accuracy":
        clf = models.Classifier(nn.Linear(2, 2, seed=0, dtype="float64"), 2, 2)
        clf.accuracy(ones, np.zeros(1, dtype=np.int64))
    elif name in ("VAE.loss", "VAE.backward"):
        vae.loss(half, eps=np.zeros((1, 1)))
        vae.backward()
    elif name == "log_weights":
        evaluate.log_weights(vae, half, np.zeros((1, 1)), np.zeros((1, 1)), np.zeros((1, 1, 1)))
    elif name == "interpolation":
        plots.interpolation(vae, half, half, n_steps=2, image_shape=(1, 2))
    elif name in ("kl_per_dimension", "latent_activity"):
        getattr(evaluate, name)(vae, half)
    elif name == "squared_distances":
        metrics.squared_distances(ones, ones)
    elif name.startswith("Schedule."):
        schedule, t = diffusion.Schedule("linear", 10), np.ones(1, dtype=np.int64)
        if name == "Schedule.q_sample":
            schedule.q_sample(ones, t, ones)
        else:
            schedule.q_mean_var(ones, t)
    elif name.startswith("LatentDiffusion."):
        prior = diffusion.LatentDiffusion(2, hidden=[2], steps=10, time_dim=2, dtype="float64")
        if name == "LatentDiffusion.backward":
            prior.loss(ones, t=np.ones(1, dtype=np.int64), eps=ones)
            prior.backward()
        else:
            prior.ddpm_step(ones, 2, ones, ones)
    else:  # the losses: each takes two arrays
        getattr(losses, name)(ones, np.zeros(1, dtype=np.int64) if "softmax" in name else ones)


def own_copy(folder=None) -> bool:
    """True unless a ``minivae/`` folder sits in ``folder`` (default: the working directory, where
    a notebook's kernel runs) or the one above it and this kernel imports another minivae; then
    prints one sentence saying so. In a student edition that means the code the student writes
    is not the code that runs (an installed minivae answers in its place)."""
    here = Path(folder or os.getcwd()).resolve()
    mine = Path(__file__).resolve().parent
    for place in (here, here.parent):
        copy = place / "minivae"
        if (copy / "__init__.py").is_file():
            if copy.resolve() == mine:
                return True
            print(
                f"This kernel imports minivae from {mine}, not the copy in {copy}: what you write "
                f"there will not run. Start JupyterLab in {place} with "
                '`PYTHONPATH="$PWD" jupyter lab` (README.md) and do not pip-install minivae.'
            )
            return False
    return True


def library_written(*names: str) -> bool:
    """True when the library functions ``names`` (default: all four a course can ask students
    to write) are written; otherwise prints one sentence per missing one and returns False.

    A lesson's first cell calls it with the functions the lesson trains with, so that a student
    edition says at the top which exercise to do first, rather than stopping halfway through
    inside the library. It first checks (:func:`own_copy`) that the kernel imports the edition's
    own minivae, not an installed one.
    """
    written = own_copy()
    for name in names or tuple(LIBRARY_EXERCISES):
        if name not in LIBRARY_EXERCISES:
            raise ValueError(f"no library exercise is called {name!r}: use one of {LIBRARY_NAMES}")
        file, lesson, exercise = LIBRARY_EXERCISES[name]
        try:
            _probe(name)
        except NotImplementedError:
            print(
                f"{name} in {file} is not written yet (lesson {lesson}, exercise {exercise}): "
                "the cells of this lesson that use it will stop until it is."
            )
            written = False
        except Exception as exc:  # a student's version that fails in another way
            print(
                f"{name} in {file} raises {type(exc).__name__} ({exc}): see lesson {lesson}, "
                f"exercise {exercise}; the cells of this lesson that use it will stop there too."
            )
            written = False
    if os.environ.get("MINIVAE_TRACE_LIBRARY"):
        _trace_library(os.environ["MINIVAE_TRACE_LIBRARY"], names)
    return written


def _trace_library(path: str, declared) -> None:
    """Write to ``path`` the names a lesson's first cell declares (``declared …``) and, from then
    on, each library exercise this kernel calls (``called …``, once each): the test suite runs
    every lesson so and compares the two."""
    import importlib
    import sys

    codes = {}
    for name, (file, _, _) in LIBRARY_EXERCISES.items():
        obj = importlib.import_module(f"minivae.{Path(file).stem}")
        for part in name.split("."):
            obj = getattr(obj, part)
        codes[obj.__code__] = name
    with open(path, "a", encoding="utf-8") as out:
        out.write(f"declared {' '.join(declared)}\n")
    seen = set()

    def profile(frame, event, arg):
        name = codes.get(frame.f_code) if event == "call" else None
        if name is not None and name not in seen:
            seen.add(name)
            with open(path, "a", encoding="utf-8") as out:
                out.write(f"called {name}\n")

    sys.setprofile(profile)


def _ok(name: str, detail: str = "") -> None:
    print(f"✓ {name}" + (f" ({detail})" if detail else ""))


def _host(name: str, value, what: str) -> np.ndarray:
    """``value`` as a NumPy array, or ExerciseFailed if there is nothing to compare."""
    if value is None:
        raise ExerciseFailed(f"{name}: {what} is None — did you forget a `return`?")
    try:
        return np.asarray(backend.asnumpy(value))
    except Exception:
        return np.asarray(value)


def check_true(name: str, condition, message: str) -> None:
    """Pass when ``condition`` is true; otherwise fail with ``message`` (what is wrong)."""
    if isinstance(condition, (float, np.floating)) and condition != condition:
        raise ExerciseFailed(f"{name}: {message} (the condition is NaN)")
    if not bool(condition):
        raise ExerciseFailed(f"{name}: {message}")
    _ok(name)


def check_shape(name: str, array, shape) -> None:
    """Pass when ``array.shape == shape``."""
    got = tuple(_host(name, array, "the array").shape)
    if got != tuple(shape):
        raise ExerciseFailed(f"{name}: expected shape {tuple(shape)}, got {got}.")
    _ok(name)


def _likely_mistake(got: np.ndarray, expected: np.ndarray) -> str:
    """A hint naming the mistake that turns ``expected`` into ``got``, when one is recognizable
    (a missing or extra ½, a flipped sign, all zeros); "" otherwise. It never states the answer."""
    if not np.all(np.isfinite(expected)) or not np.any(expected != 0):
        return ""
    for factor, hint in [
        (2.0, "twice the right value: is a factor ½ missing, or a term counted twice?"),
        (0.5, "half the right value: is there a factor ½ too many?"),
        (-1.0, "the right size but the wrong sign: check the sign of each term"),
    ]:
        if np.allclose(got, factor * expected, rtol=1e-6, atol=1e-12):
            return hint
    if not np.any(got != 0):
        return "all zeros: did the code return before computing anything?"
    return ""


def _number(value: float, other: float) -> str:
    """``value`` with enough significant digits to look different from ``other``."""
    for digits in (6, 9, 12, 17):
        text = f"{value:.{digits}g}"
        if text != f"{other:.{digits}g}":
            return text
    return text


def check_close(name: str, got, expected, rtol: float = 1e-5, atol: float = 1e-8) -> None:
    """Pass when ``got`` has the shape of ``expected`` and |got − expected| ≤ atol + rtol·|exp|.

    Works for numbers and arrays (NumPy or CuPy); NaN or inf anywhere fails. The failure message
    says how far off the answer is and where (with enough digits that the numbers it prints never
    look equal), and names the likely mistake when it is a recognizable one (a missing ½, a
    sign, a transpose); it does not print the expected value to copy.
    """
    g = _host(name, got, "your answer").astype(np.float64)
    e = _host(name, expected, "the expected value").astype(np.float64)
    if g.shape != e.shape:
        hint = ""
        if g.ndim == 2 and g.shape == e.shape[::-1]:
            hint = " It is the expected shape reversed: a transpose (x.T, or W.T) is wrong."
        raise ExerciseFailed(f"{name}: expected shape {e.shape}, got {g.shape}.{hint}")
    if not np.all(np.isfinite(g)):
        where = "" if g.ndim == 0 else f" ({int(np.sum(~np.isfinite(g)))} of {g.size} entries)"
        raise ExerciseFailed(f"{name}: your answer contains NaN or inf{where}.")
    diff = np.abs(g - e)
    bad = ~(diff <= atol + rtol * np.abs(e))  # NaN in the expected value fails too
    if not np.any(bad):
        _ok(name)
        return
    hint = _likely_mistake(g, e)
    hint = f" Likely mistake: {hint}." if hint else ""
    tolerance = f"allowed: {atol:.0e} + {rtol:.0e}·|expected|"
    if g.ndim == 0:
        raise ExerciseFailed(
            f"{name}: your answer {_number(float(g), float(e))} is off by "
            f"{float(g - e):+.3g} ({tolerance}).{hint}"
        )
    idx = tuple(
        int(i)
        for i in np.unravel_index(
            int(np.argmax(np.where(bad, np.nan_to_num(diff, nan=np.inf), -1.0))), g.shape
        )
    )
    raise ExerciseFailed(
        f"{name}: {int(bad.sum())} of {g.size} entries are off; the largest difference is "
        f"{float(g[idx] - e[idx]):+.3g}, at index {idx}, where you have "
        f"{_number(float(g[idx]), float(e[idx]))} ({tolerance}).{hint}"
    )


def _grad_failure(name: str, what: str, err: float, tol: float) -> ExerciseFailed:
    hint = (
        "a term, a transpose or a factor is probably wrong"
        if err > 1e-2
        else "close but not right: check signs of small terms and the dtype (use float64)"
    )
    return ExerciseFailed(
        f"{name}: gradient of {what} does not match finite differences: "
        f"relative error {err:.2e} > {tol:.0e} ({hint})."
    )


def check_gradient(name: str, f, x, grad, tol: float = 1e-6) -> None:
    """Pass when ``grad`` matches the finite-difference gradient of the scalar ``f(x)`` at ``x``.

    ``f`` takes an array shaped like ``x`` and returns a scalar; ``grad`` is your dF/dx at ``x``.
    ``x`` is copied to float64 before it is perturbed, so use float64 inside ``f`` as well.
    Prints the relative error (see the module docstring) on success, and in the failure message.
    """
    g = _host(name, grad, "your gradient")
    if tuple(g.shape) != tuple(x.shape):
        raise ExerciseFailed(
            f"{name}: your gradient has shape {tuple(g.shape)}, but the input has shape "
            f"{tuple(x.shape)}; dF/dx always has the shape of x."
        )
    xp = backend.namespace(x)
    x64 = xp.asarray(x, dtype=xp.float64, copy=True)
    num = gradcheck.numerical_gradient(lambda: f(x64), x64)
    err = gradcheck.rel_error(xp.asarray(grad, dtype=xp.float64), num)
    if not err <= tol:  # also catches NaN
        exc = _grad_failure(name, "F with respect to its input", err, tol)
        hint = _likely_mistake(g.astype(np.float64), np.asarray(backend.asnumpy(num)))
        raise ExerciseFailed(f"{exc} Likely mistake: {hint}." if hint else str(exc))
    _ok(name, f"relative error {err:.1e}")


def _kept_and_added(name: str, module, x) -> None:
    """Fail unless backward adds into each parameter's own gradient array: the same array after
    backward (not a new one, ``self.W.grad = ...``), twice as large after two calls."""
    xp = backend.namespace(x)
    params = list(module.named_parameters())
    arrays = [(p.data, p.grad) for _, p in params]
    module.zero_grad()
    out = module(x)
    dout = xp.ones_like(out)
    if module.backward(dout) is None:
        raise ExerciseFailed(f"{name}: backward returned None — it must return dL/dx.")
    for (key, p), (data, grad) in zip(params, arrays):
        attr = key.rsplit(".", 1)[-1]
        if p.grad is not grad:
            raise ExerciseFailed(
                f"{name}: backward gave {attr} a new gradient array (`self.{attr}.grad = ...`). "
                f"The optimizer keeps the array it was given, so add into that one in place: "
                f"`self.{attr}.grad += ...`."
            )
        if p.data is not data:
            raise ExerciseFailed(
                f"{name}: backward replaced the values of {attr} (`self.{attr}.data = ...`); "
                "backward only computes gradients, the optimizer changes the values."
            )
    once = [np.array(_host(name, p.grad, "a gradient"), copy=True) for _, p in params]
    module.backward(dout)
    for (key, p), first in zip(params, once):
        attr = key.rsplit(".", 1)[-1]
        twice = _host(name, p.grad, "a gradient")
        if np.any(first != 0) and np.allclose(twice, first, rtol=1e-9, atol=0.0):
            raise ExerciseFailed(
                f"{name}: after two backward calls without zero_grad, {attr}.grad is what one "
                f"call gives: backward overwrites it. Gradients from every use of a layer must "
                f"add up: write `self.{attr}.grad += ...`, not `self.{attr}.grad[...] = ...`."
            )
    module.zero_grad()


def check_module(name: str, module, x, tol: float = 1e-6) -> None:
    """Pass when ``module.backward`` is right for the input and every parameter, and adds its
    gradients in place into each parameter's own ``grad`` array.

    The scalar checked is F = Σ module(x)·dout for a fixed random dout (see
    :func:`minivae.gradcheck.module_errors`). Build the module and ``x`` in float64.
    """
    _kept_and_added(name, module, x)
    errors = gradcheck.module_errors(module, x)
    worst = max(errors, key=lambda k: errors[k] if errors[k] == errors[k] else float("inf"))
    err = errors[worst]
    if not err <= tol:
        detail = ", ".join(f"{k}: {v:.1e}" for k, v in errors.items())
        exc = _grad_failure(name, f"{worst!r}", err, tol)
        raise ExerciseFailed(f"{exc} All relative errors: {detail}.")
    _ok(name, f"relative error {err:.1e}")
