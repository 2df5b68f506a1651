"""The library exercises' checks, run by the grader on a student's ``minivae/`` in a process of
its own.

Each check takes the student's minivae module, returns a short detail on success and raises
AssertionError (its first line is what the grader prints) on failure. They use NumPy and their own
finite differences only, so editing ``gradcheck.py`` or ``checks.py`` in the student's copy changes
nothing. They hold reference answers (Adam's update written out), which is why this package is
never copied into a student edition.

:func:`run_check` is the grader's side: it starts ``python`` in the student's folder, hands the
process a random token on its standard input *before* the student's code is imported, and trusts
only the verdict line that starts with that token: a line that student code prints (a forged
``{"ok": true}``) does not count. The verdict is the check's own, not "no error output".
:func:`check_library` is the same for a graded notebook cell (nbgrader): it prints ✓ or raises.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

__all__ = ["LIBRARY_CHECKS", "check_library", "run_check"]

# -- library checks (run inside the student's process) -----------------------------------------
# Each check takes the student's minivae module, returns a short detail on success and raises
# AssertionError (its first line is what the grader prints) on failure. They use NumPy and their
# own finite differences only.


def _numgrad(f, x, h=1e-5):
    import numpy as np

    grad = np.zeros_like(x)
    for idx in np.ndindex(*x.shape):
        old = x[idx]
        x[idx] = old + h
        up = f()
        x[idx] = old - h
        down = f()
        x[idx] = old
        grad[idx] = (up - down) / (2 * h)
    return grad


def _rel(a, b) -> float:
    import numpy as np

    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise AssertionError(f"gradient has shape {a.shape}, expected {b.shape}")
    return float(np.max(np.abs(a - b)) / max(1e-8, np.max(np.abs(a)) + np.max(np.abs(b))))


def _gradient_verdict(what: str, errors: dict, tol: float = 1e-6) -> str:
    worst = max(errors, key=lambda k: errors[k] if errors[k] == errors[k] else float("inf"))
    if not errors[worst] <= tol:
        raise AssertionError(
            f"{what}: gradient check failed, relative error {errors[worst]:.2e} in {worst} "
            f"(should be below {tol:.0e})"
        )
    return f"relative error {errors[worst]:.1e}"


def _host(a):
    import numpy as np

    if a is None:
        raise AssertionError("returned None (a missing `return`?)")
    return np.asarray(a, dtype=np.float64)


def _check_linear_backward(mv) -> str:
    import numpy as np

    rng = np.random.default_rng(0)
    layer = mv.nn.Linear(5, 4, seed=0, dtype="float64")
    x, dout = rng.normal(size=(6, 5)), rng.normal(size=(6, 4))
    W, b = np.array(layer.W.data, dtype=np.float64), np.array(layer.b.data, dtype=np.float64)
    layer.zero_grad()
    grads = {"W": layer.W.grad, "b": layer.b.grad}
    layer(x)
    dx = _host(layer.backward(dout))
    for attr, grad in grads.items():
        if getattr(layer, attr).grad is not grad:
            raise AssertionError(
                f"Linear.backward gives {attr} a new gradient array (self.{attr}.grad = ...); "
                f"add into the one it has in place: self.{attr}.grad += ..."
            )

    def F():
        return float(np.sum((x @ W + b) * dout))

    num = {"dL/dx": _numgrad(F, x), "dL/dW": _numgrad(F, W), "dL/db": _numgrad(F, b)}
    got = {"dL/dx": dx, "dL/dW": _host(layer.W.grad), "dL/db": _host(layer.b.grad)}
    detail = _gradient_verdict("Linear.backward", {k: _rel(got[k], num[k]) for k in num})
    layer(x)
    layer.backward(dout)
    if not _rel(_host(layer.W.grad), 2 * num["dL/dW"]) <= 1e-6:
        raise AssertionError(
            "Linear.backward must add into W.grad (+=), not overwrite it: after two backward "
            "calls without zero_grad the gradient should be twice as large"
        )
    return detail


def _check_kl(mv) -> str:
    import numpy as np

    rng = np.random.default_rng(1)
    mu, logvar = rng.normal(size=(6, 4)), rng.normal(scale=0.8, size=(6, 4))

    def exact():
        return 0.5 * float(np.sum(np.exp(logvar) + mu**2 - logvar - 1.0)) / mu.shape[0]

    result = mv.losses.kl_standard_normal(mu.copy(), logvar.copy())
    if not isinstance(result, tuple) or len(result) != 3:
        raise AssertionError("kl_standard_normal must return (value, dmu, dlogvar)")
    value, dmu, dlogvar = result
    expected = exact()
    if not abs(float(value) - expected) <= 1e-9 * max(1.0, abs(expected)):
        got = float(value)
        hint = ""
        if abs(got - 2 * expected) <= 1e-9 * abs(expected):
            hint = " Likely mistake: twice the KL, the factor ½ is missing."
        elif abs(got - expected * mu.shape[0]) <= 1e-9 * abs(expected * mu.shape[0]):
            hint = " Likely mistake: summed over the batch, not averaged."
        raise AssertionError(
            f"kl_standard_normal: the value is off by {got - expected:+.3g} (the KL of each "
            f"example summed over latent dimensions, averaged over the batch).{hint}"
        )
    errors = {
        "dmu": _rel(_host(dmu), _numgrad(exact, mu)),
        "dlogvar": _rel(_host(dlogvar), _numgrad(exact, logvar)),
    }
    return _gradient_verdict("kl_standard_normal", errors)


def _check_sampler(mv) -> str:
    import numpy as np

    rng = np.random.default_rng(2)
    mu, logvar = rng.normal(size=(5, 3)), rng.normal(scale=0.5, size=(5, 3))
    eps, dz = rng.normal(size=(5, 3)), rng.normal(size=(5, 3))
    sampler = mv.sampling.GaussianSampler(seed=0)
    sampler(mu.copy(), logvar.copy(), eps=eps.copy())
    result = sampler.backward(dz.copy())
    if not isinstance(result, tuple) or len(result) != 2:
        raise AssertionError("GaussianSampler.backward must return (dmu, dlogvar)")

    def F():
        return float(np.sum((mu + np.exp(0.5 * logvar) * eps) * dz))

    errors = {
        "dmu": _rel(_host(result[0]), _numgrad(F, mu)),
        "dlogvar": _rel(_host(result[1]), _numgrad(F, logvar)),
    }
    return _gradient_verdict("GaussianSampler.backward", errors)


def _check_adam_step(mv) -> str:
    import numpy as np

    rng = np.random.default_rng(3)
    shapes, lr, b1, b2, eps = [(3, 2), (4,)], 0.05, 0.8, 0.95, 1e-8
    start = [rng.normal(size=s) for s in shapes]
    params = [mv.nn.Parameter(a.copy(), f"p{i}") for i, a in enumerate(start)]
    opt = mv.Adam(params, lr=lr, betas=(b1, b2), eps=eps)
    # the reference (Kingma & Ba 2015, algorithm 1) and the variants students write by mistake
    variants = {
        "": (0, True),
        "the bias correction uses t − 1: count steps from 1 (t += 1 before the update)": (-1, True),
        "the bias correction uses t + 1: t is incremented twice, or starts at 1": (1, True),
        "no bias correction: divide m by 1 − β₁ᵗ and v by 1 − β₂ᵗ": (None, True),
    }
    state = {
        k: ([a.copy() for a in start], [np.zeros(s) for s in shapes], [np.zeros(s) for s in shapes])
        for k in variants
    }
    for t in range(1, 4):
        grads = [rng.normal(size=s) for s in shapes]
        arrays = [p.data for p in params]
        for p, g in zip(params, grads):
            p.grad[...] = g
        opt.step()
        for key, (offset, _) in variants.items():
            theta, m, v = state[key]
            for i, g in enumerate(grads):
                m[i] = b1 * m[i] + (1 - b1) * g
                v[i] = b2 * v[i] + (1 - b2) * g * g
                with np.errstate(all="ignore"):
                    if offset is None:
                        m_hat, v_hat = m[i], v[i]
                    else:
                        m_hat, v_hat = (
                            m[i] / (1 - b1 ** (t + offset)),
                            v[i] / (1 - b2 ** (t + offset)),
                        )
                    theta[i] = theta[i] - lr * m_hat / (np.sqrt(v_hat) + eps)
        for i, p in enumerate(params):
            got = _host(p.data)
            err = _rel(got - start[i], state[""][0][i] - start[i])
            if not err <= 1e-9:  # NaN too
                hint = ""
                if not np.all(np.isfinite(got)):
                    hint = " The parameters became NaN or inf."
                for key, (theta, _, _) in state.items():
                    if key and np.allclose(got, theta[i], rtol=1e-9, atol=0, equal_nan=True):
                        hint += f" Likely mistake: {key}."
                        break
                raise AssertionError(
                    f"Adam: after step {t} the parameters differ from Adam's update, "
                    f"relative error {err:.2e} in the change of p{i}.{hint}".rstrip()
                )
            if p.data is not arrays[i] and not np.allclose(_host(arrays[i]), got):
                raise AssertionError(
                    "Adam must update the parameters in place (theta -= ...), not rebind them"
                )
    return "3 steps match"


#: name → (points, what it checks, function). The grader runs each in the student's process.
LIBRARY_CHECKS = {
    "linear_backward": (3, "minivae/nn.py Linear.backward", _check_linear_backward),
    "adam_step": (2, "minivae/optim.py Adam (its update rule)", _check_adam_step),
    "sampler_backward": (2, "minivae/sampling.py GaussianSampler.backward", _check_sampler),
    "kl_standard_normal": (3, "minivae/losses.py kl_standard_normal", _check_kl),
}


_RUNNER = """\
import importlib.util, sys
token = sys.stdin.readline().strip()
sys.stdin.close()
folder, name, grader = sys.argv[1:4]
sys.path.insert(0, folder)
spec = importlib.util.spec_from_file_location("_minivae_library_checks", grader)
module = sys.modules[spec.name] = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
module._run_library_check(name, folder, token)
"""


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().split("\n")[0]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _run_library_check(name: str, folder: str, token: str) -> None:
    """Inside the student's process: import their minivae, run one check, print the verdict line
    (the token, then JSON). Called before anything of the student's is imported."""
    write = sys.stdout.write  # the student's code may replace print or sys.stdout.write
    flush = sys.stdout.flush
    try:
        import minivae

        where = Path(minivae.__file__).resolve()
        if Path(folder).resolve() not in where.parents:
            raise ImportError(f"imported minivae from {where}, not from the student's folder")
        result = {"ok": True, "detail": LIBRARY_CHECKS[name][2](minivae)}
    except BaseException as exc:  # the student's code may raise anything
        result = {"ok": False, "detail": _first_line(exc)}
    write("\n" + token + " " + json.dumps(result) + "\n")
    flush()
    os._exit(0)  # no atexit handler of the student's runs after the verdict


def run_check(folder, name: str, timeout: float = 300.0) -> dict:
    """Run the library check ``name`` on ``folder/minivae`` in a fresh process; returns
    ``{"ok": bool, "detail": str}``. Only the line that starts with this run's token counts."""
    folder = Path(folder).resolve()
    if not (folder / "minivae" / "__init__.py").is_file():
        return {"ok": False, "detail": f"no minivae/ package in {folder}"}
    token = secrets.token_hex(16)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    try:
        proc = subprocess.run(
            [sys.executable, "-c", _RUNNER, str(folder), name, str(Path(__file__).resolve())],
            cwd=folder,
            input=token + "\n",
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
        )
    except subprocess.TimeoutExpired:
        return {"ok": False, "detail": f"did not finish within {timeout:g} s"}
    verdicts = [ln for ln in proc.stdout.split("\n") if ln.startswith(token + " ")]
    if len(verdicts) != 1:
        err = (proc.stderr.strip().split("\n") or [""])[-1]
        return {"ok": False, "detail": err or f"exited with code {proc.returncode}, no verdict"}
    try:
        result = json.loads(verdicts[0][len(token) + 1 :])
        return {"ok": result["ok"] is True, "detail": str(result["detail"])}
    except (ValueError, KeyError, TypeError):
        return {"ok": False, "detail": "an unreadable verdict"}


def check_library(name: str, folder=".", timeout: float = 300.0) -> None:
    """For a graded notebook cell: print ``✓ what (detail)`` when the student's library passes
    the check ``name``, else raise AssertionError saying what is wrong."""
    points, what, _ = LIBRARY_CHECKS[name]
    result = run_check(folder, name, timeout=timeout)
    if not result["ok"]:
        raise AssertionError(f"{what}: {result['detail']}")
    print(f"✓ {what} ({result['detail']})")
