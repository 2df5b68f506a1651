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
    detail = _gradient_verdict("kl_standard_normal", errors)
    per_element = 0.5 * (np.exp(logvar) + mu**2 - logvar - 1.0)
    _agree("kl_per_element", mv.losses.kl_per_element(mu.copy(), logvar.copy()), per_element)
    return detail


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


def _hint(got, expected, batch: int | None = None) -> str:
    """A hint, "Likely mistake: …", when ``got`` is ``expected`` spoiled in a way students write
    (a factor 2 or ½, a flipped sign, the batch's sum for its mean or the reverse); else ""."""
    import numpy as np

    got, expected = np.asarray(got, dtype=np.float64), np.asarray(expected, dtype=np.float64)
    if got.shape != expected.shape or not np.all(np.isfinite(got)) or not np.any(expected):
        return ""
    mistakes = [
        (2.0, "twice the right value: a factor ½ missing, or a term counted twice"),
        (0.5, "half the right value: a factor ½ too many"),
        (-1.0, "the sign is flipped"),
    ]
    if batch and batch > 1:
        mistakes += [
            (float(batch), "summed over the batch where it should be averaged (or a 1/B missing)"),
            (1.0 / batch, "divided by the batch size once too often"),
        ]
    for factor, text in mistakes:
        if np.allclose(got, factor * expected, rtol=1e-7, atol=1e-12):
            return f" Likely mistake: {text}."
    return ""


def _agree(what: str, got, expected, rtol: float = 1e-7, batch: int | None = None) -> None:
    """AssertionError naming ``what`` unless ``got`` matches ``expected`` (NaN never matches); the
    message gives the size of the error and a likely mistake, never the expected numbers."""
    import numpy as np

    got = _host(got)
    expected = np.asarray(expected, dtype=np.float64)
    if got.shape != expected.shape:
        raise AssertionError(f"{what}: shape {got.shape}, expected {expected.shape}")
    if not np.all(np.isfinite(got)):
        raise AssertionError(f"{what}: NaN or inf where the values are finite")
    scale = max(float(np.max(np.abs(expected))) if expected.size else 0.0, 1e-12)
    error = float(np.max(np.abs(got - expected))) / scale if expected.size else 0.0
    if not error <= rtol:
        raise AssertionError(
            f"{what}: off by {error:.2e} relative to its size.{_hint(got, expected, batch)}"
        )


def _softplus(a):
    import numpy as np

    return np.logaddexp(0.0, a)  # log(1 + eᵃ), stably


def _check_reconstruction(mv) -> str:
    import numpy as np

    rng = np.random.default_rng(4)
    B, D = 5, 7
    logits, x = rng.normal(scale=4.0, size=(B, D)), rng.uniform(size=(B, D))
    log_p = np.sum(x * logits - _softplus(logits), axis=1)
    _agree("bernoulli_log_prob", mv.losses.bernoulli_log_prob(logits.copy(), x), log_p)
    big, target = np.array([[1e4, -1e4, 30.0]]), np.array([[0.0, 1.0, 1.0]])
    _agree(
        "bernoulli_log_prob at logits ±1e4 (log(1 + eˡ) must not overflow)",
        mv.losses.bernoulli_log_prob(big, target),
        [-2e4 - np.log1p(np.exp(-30.0))],
    )
    result = mv.losses.bernoulli_nll(logits.copy(), x)
    if not isinstance(result, tuple) or len(result) != 2:
        raise AssertionError("bernoulli_nll must return (value, dlogits)")

    def nll():
        return -float(np.sum(x * logits - _softplus(logits))) / B

    _agree("bernoulli_nll, value", result[0], -log_p.mean(), batch=B)
    _agree("bernoulli_nll, dlogits", result[1], _numgrad(nll, logits), rtol=1e-6, batch=B)

    mean = rng.uniform(size=(B, D))
    for lam in (0.5, 3.0):
        var = 1.0 / (2.0 * lam)
        log_n = -((x - mean) ** 2) / (2 * var) - 0.5 * np.log(2 * np.pi * var)  # per feature
        _agree(
            f"gaussian_log_prob, λ = {lam}",
            mv.losses.gaussian_log_prob(mean.copy(), x, lam),
            np.sum(log_n, axis=1),
        )
        result = mv.losses.gaussian_nll(mean.copy(), x, lam)
        if not isinstance(result, tuple) or len(result) != 2:
            raise AssertionError("gaussian_nll must return (value, dx_mean)")

        def g_nll(lam=lam, var=var):
            return float(np.sum((x - mean) ** 2 / (2 * var) + 0.5 * np.log(2 * np.pi * var))) / B

        _agree(f"gaussian_nll, value, λ = {lam}", result[0], g_nll(), batch=B)
        _agree(f"gaussian_nll, dx_mean, λ = {lam}", result[1], _numgrad(g_nll, mean), 1e-6, batch=B)
    return "values and gradients match"


def _check_classifier(mv) -> str:
    import numpy as np

    rng = np.random.default_rng(5)
    B, K = 6, 4
    logits, labels = rng.normal(scale=2.0, size=(B, K)), rng.integers(0, K, size=B)

    def ce():
        top = logits.max(axis=1, keepdims=True)
        lse = top[:, 0] + np.log(np.sum(np.exp(logits - top), axis=1))
        return float(np.mean(lse - logits[np.arange(B), labels]))

    result = mv.losses.softmax_cross_entropy(logits.copy(), labels)
    if not isinstance(result, tuple) or len(result) != 2:
        raise AssertionError("softmax_cross_entropy must return (value, dlogits)")
    _agree("softmax_cross_entropy, value", result[0], ce(), batch=B)
    _agree("softmax_cross_entropy, dlogits", result[1], _numgrad(ce, logits), 1e-6, batch=B)
    huge = mv.losses.softmax_cross_entropy(np.array([[1000.0, 0.0]]), np.array([1]))
    _agree("softmax_cross_entropy at logits (1000, 0): no overflow", huge[0], 1000.0)

    features = np.array([[2.0, 1.0, 0.0], [0.0, 3.0, 1.0], [0.5, 0.2, 0.9], [1.0, 0.0, 0.0]])
    encoder = mv.nn.Linear(3, 3, seed=0, dtype="float64")
    clf = mv.Classifier(encoder, feature_dim=3, n_classes=3, seed=0)
    for layer in (encoder, clf.head):  # both layers the identity: the logits are the features
        layer.W.data[...] = np.eye(3)
        layer.b.data[...] = 0.0
    for labels_, expected in (([0, 1, 2, 2], 0.75), ([2, 2, 0, 1], 0.0), ([0, 1, 2, 0], 1.0)):
        got = clf.accuracy(features, np.array(labels_))
        if not isinstance(got, float) or not got == expected:
            raise AssertionError(
                f"Classifier.accuracy: {got!r} on a batch where the right fraction is "
                f"{expected} (a Python float)"
            )
    return "cross-entropy and accuracy match"


def _tiny_vae(mv, beta: float = 1.0):
    import numpy as np

    model = mv.VAE(6, hidden=[5], latent_dim=3, beta=beta, seed=0, dtype="float64")
    rng = np.random.default_rng(7)
    return model, rng.uniform(size=(4, 6)), rng.standard_normal((4, 3))


def _check_vae(mv) -> str:
    import numpy as np

    model, x, eps = _tiny_vae(mv, beta=2.0)
    params = model.parameters()

    def reference():  # −ELBO with β, from the model's own forward pieces
        mu, logvar = (np.asarray(a, dtype=np.float64) for a in model.encode(x))
        logits = np.asarray(model.decoder(mu + np.exp(0.5 * logvar) * eps), dtype=np.float64)
        recon = -float(np.sum(x * logits - _softplus(logits))) / x.shape[0]
        kl = 0.5 * float(np.sum(np.exp(logvar) + mu**2 - logvar - 1.0)) / x.shape[0]
        return recon, kl

    recon, kl = reference()
    model.zero_grad()
    terms = model.loss(x, eps=eps)
    _agree("VAE.loss, recon", terms.recon, recon, batch=x.shape[0])
    _agree("VAE.loss, kl", terms.kl, kl, batch=x.shape[0])
    _agree("VAE.loss, total = recon + β·KL (here β = 2)", terms.total, recon + 2.0 * kl)
    model.backward()

    def total():
        recon, kl = reference()
        return recon + 2.0 * kl

    errors = {p.name: _rel(_host(p.grad).copy(), _numgrad(total, p.data)) for p in params}
    _gradient_verdict("VAE.backward (every parameter, β = 2)", errors)

    m, s, L = 2, 3, 3
    rng = np.random.default_rng(8)
    xb = x[:m]
    mu, logvar = (np.asarray(a, dtype=np.float64) for a in model.encode(xb))
    e = rng.standard_normal((m, s, L))
    z = mu[:, None, :] + np.exp(0.5 * logvar)[:, None, :] * e
    expected = np.zeros((m, s))
    for i in range(m):
        for j in range(s):
            logits = np.asarray(model.decoder(z[i, j][None, :]), dtype=np.float64)[0]
            log_px = np.sum(xb[i] * logits - _softplus(logits))
            log_pz = -0.5 * np.sum(z[i, j] ** 2 + np.log(2 * np.pi))
            log_qz = -0.5 * np.sum((z[i, j] - mu[i]) ** 2 / np.exp(logvar[i]))
            log_qz -= 0.5 * np.sum(logvar[i] + np.log(2 * np.pi))
            expected[i, j] = log_px + log_pz - log_qz
    _agree("log_weights", mv.evaluate.log_weights(model, xb, mu, logvar, e), expected)
    return "loss, every gradient and the log-weights match"


def _check_latents(mv) -> str:
    import numpy as np

    model, _, _ = _tiny_vae(mv)
    x = np.random.default_rng(9).uniform(size=(7, 6))  # more examples than the batch of 3
    mu, logvar = (np.asarray(a, dtype=np.float64) for a in model.encode(x))
    kl = np.mean(0.5 * (np.exp(logvar) + mu**2 - logvar - 1.0), axis=0)
    _agree("kl_per_dimension", mv.evaluate.kl_per_dimension(model, x, batch_size=3), kl)
    _agree("latent_activity", mv.evaluate.latent_activity(model, x, batch_size=3), mu.var(axis=0))

    seen = []
    decode = mv.plots._decode

    def spy(model_, z):
        seen.append(np.array(z, dtype=np.float64))
        return decode(model_, z)

    mv.plots._decode = spy
    try:
        mv.plots.interpolation(model, x[0], x[1], n_steps=5, image_shape=(2, 3))
    finally:
        mv.plots._decode = decode
    t = np.linspace(0.0, 1.0, 5)[:, None]
    if len(seen) != 1:
        raise AssertionError("interpolation must decode its codes with _decode, once")
    _agree("interpolation, the codes decoded", seen[0], (1 - t) * mu[0] + t * mu[1], 1e-5)
    return "KL per dimension, activity and interpolation codes match"


def _check_distances(mv) -> str:
    import numpy as np

    rng = np.random.default_rng(10)
    a, b = rng.normal(size=(5, 3)), rng.normal(size=(4, 3))
    expected = np.array([[np.sum((p - q) ** 2) for q in b] for p in a])
    _agree("squared_distances", mv.metrics.squared_distances(a, b), expected)
    same = mv.metrics.squared_distances(a * 1e3, a * 1e3)
    if not np.all(_host(same) >= 0.0):
        raise AssertionError(
            "squared_distances: a distance below 0 between a point and itself (rounding in "
            "‖a‖² + ‖b‖² − 2a·b can make it negative; clip at 0)"
        )
    return "all pairs match"


def _check_diffusion(mv) -> str:
    import math

    import numpy as np

    rng = np.random.default_rng(12)
    schedule = mv.diffusion.Schedule("linear", 50)
    ab = np.asarray(schedule.alpha_bar, dtype=np.float64)
    z0, eps, t = rng.normal(size=(6, 2)), rng.normal(size=(6, 2)), rng.integers(1, 51, size=6)
    a = ab[t][:, None]
    result = schedule.q_mean_var(z0, t)
    if not isinstance(result, tuple) or len(result) != 2:
        raise AssertionError("Schedule.q_mean_var must return (mean, variance)")
    _agree("Schedule.q_mean_var, mean", result[0], np.sqrt(a) * z0)
    _agree("Schedule.q_mean_var, variance", result[1], 1.0 - a)
    _agree(
        "Schedule.q_sample", schedule.q_sample(z0, t, eps), np.sqrt(a) * z0 + np.sqrt(1 - a) * eps
    )

    prior = mv.diffusion.LatentDiffusion(
        2, hidden=[4], steps=20, time_dim=2, seed=1, dtype="float64"
    )
    s = prior.schedule
    for step in (20, 7, 1):
        z_t, eps_hat, noise = (rng.normal(size=(3, 2)) for _ in range(3))
        beta, alpha_bar = float(s.beta[step]), float(s.alpha_bar[step])
        mean = (z_t - beta / math.sqrt(1 - alpha_bar) * eps_hat) / math.sqrt(1 - beta)
        expected = mean + math.sqrt(float(s.posterior_var[step])) * noise
        _agree(
            f"LatentDiffusion.ddpm_step at t = {step}",
            prior.ddpm_step(z_t, step, eps_hat, noise),
            expected,
        )

    z0, n0, t0 = rng.normal(size=(5, 2)), rng.normal(size=(5, 2)), rng.integers(1, 21, size=5)
    prior.zero_grad()
    prior.loss(z0, t=t0, eps=n0)
    prior.backward()

    def loss():
        return float(prior.loss(z0, t=t0, eps=n0).total)

    errors = {
        p.name: _rel(_host(p.grad).copy(), _numgrad(loss, p.data)) for p in prior.parameters()
    }
    return _gradient_verdict("LatentDiffusion.backward (every weight)", errors)


#: name → (points, what it checks, function). The grader runs each in the student's process.
LIBRARY_CHECKS = {
    "linear_backward": (3, "minivae/nn.py Linear.backward", _check_linear_backward),
    "adam_step": (2, "minivae/optim.py Adam (its update rule)", _check_adam_step),
    "reconstruction": (
        2,
        "minivae/losses.py bernoulli_log_prob, bernoulli_nll, gaussian_log_prob, gaussian_nll",
        _check_reconstruction,
    ),
    "classifier": (
        2,
        "minivae/losses.py softmax_cross_entropy, minivae/models.py Classifier.accuracy",
        _check_classifier,
    ),
    "sampler_backward": (2, "minivae/sampling.py GaussianSampler.backward", _check_sampler),
    "kl_standard_normal": (
        3,
        "minivae/losses.py kl_standard_normal, kl_per_element",
        _check_kl,
    ),
    "vae": (
        3,
        "minivae/models.py VAE.loss, VAE.backward, minivae/evaluate.py log_weights",
        _check_vae,
    ),
    "latents": (
        2,
        "minivae/evaluate.py kl_per_dimension, latent_activity, minivae/plots.py interpolation",
        _check_latents,
    ),
    "distances": (1, "minivae/metrics.py squared_distances", _check_distances),
    "diffusion": (
        3,
        "minivae/diffusion.py Schedule.q_mean_var, Schedule.q_sample, "
        "LatentDiffusion.ddpm_step, LatentDiffusion.backward",
        _check_diffusion,
    ),
}


#: The library exercises each check grades. While a check runs, every *other* library exercise is
#: the reference answer (the grader's own minivae), so that a wrong ``Linear.backward`` costs the
#: points of its own check and not also those of every check whose code calls it.
CHECKED = {
    "linear_backward": ("Linear.backward",),
    "adam_step": ("Adam.update",),
    "reconstruction": ("bernoulli_log_prob", "bernoulli_nll", "gaussian_log_prob", "gaussian_nll"),
    "classifier": ("softmax_cross_entropy", "Classifier.accuracy"),
    "sampler_backward": ("GaussianSampler.backward",),
    "kl_standard_normal": ("kl_standard_normal", "kl_per_element"),
    "vae": ("VAE.loss", "VAE.backward", "log_weights"),
    "latents": ("kl_per_dimension", "latent_activity", "interpolation"),
    "distances": ("squared_distances",),
    "diffusion": (
        "Schedule.q_mean_var",
        "Schedule.q_sample",
        "LatentDiffusion.backward",
        "LatentDiffusion.ddpm_step",
    ),
}


def _reference_package():
    """The grader's own minivae (the answers), imported under another name."""
    import importlib.util

    here = Path(__file__).resolve().parent.parent
    name = "_minivae_reference"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(
        name, here / "__init__.py", submodule_search_locations=[str(here)]
    )
    module = sys.modules[name] = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _use_references(student, keep) -> None:
    """In the student's package, replace every library exercise not in ``keep`` by the reference
    answer, wherever the package holds it (a module's name, a class's attribute, a staticmethod)."""
    import importlib

    reference = _reference_package()
    exercises = importlib.import_module(f"{reference.__name__}.checks").LIBRARY_EXERCISES
    for name, (file, _, _) in exercises.items():
        if name in keep:
            continue
        module = Path(file).stem
        mine = importlib.import_module(f"{student.__name__}.{module}")
        theirs = importlib.import_module(f"{reference.__name__}.{module}")
        *owner, attribute = name.split(".")
        for part in owner:
            mine, theirs = getattr(mine, part), getattr(theirs, part)
        old, new = vars(mine)[attribute], vars(theirs)[attribute]
        for loaded in [m for k, m in sys.modules.items() if k.split(".")[0] == student.__name__]:
            owners = [loaded] + [c for c in vars(loaded).values() if isinstance(c, type)]
            for holder in owners:
                for key, value in list(vars(holder).items()):
                    if value is old:
                        setattr(holder, key, new)
                    elif isinstance(value, staticmethod) and value.__func__ is old:
                        setattr(holder, key, staticmethod(new))


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
        _use_references(minivae, CHECKED[name])
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
