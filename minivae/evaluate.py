"""Evaluation: the ELBO in nats, the importance-weighted log-likelihood, and active units.

Three numbers describe a trained VAE on held-out data::

    mv.evaluate.elbo(model, x_test)             # {"total", "recon", "kl"}: −ELBO = recon + KL
    mv.evaluate.log_likelihood(model, x_test)   # log p(x) ≈ IW estimate with k = 5000 (< 0)
    mv.evaluate.active_units(model, x_test)     # how many latent dimensions the model uses

All values are in **nats per example**: summed over pixels (or latent dimensions) and averaged
over the examples, as papers report them. Two signs to keep apart:

* ``elbo(...)["total"]`` is the *negative* ELBO, a loss: positive, lower is better, and an upper
  bound on −log p(x);
* ``log_likelihood(...)`` is an estimate of log p(x) itself: negative, higher is better. Papers
  usually print −log p(x) (e.g. "≈ 86 nats" on binarized MNIST), i.e. minus this number.

Noise is seeded *per example*: the draws for example i depend only on ``(seed, i)``, so the
results do not change with ``batch_size``, and they agree across backends up to rounding (the
noise is drawn on the CPU and copied to the model's device, a small cost next to decoding it).
The model's own arrays are only touched through their Array API namespace, so everything here
runs unchanged on NumPy, CuPy and array_api_strict.
"""

from __future__ import annotations

import math

import numpy as np

from . import backend, validate
from .losses import kl_per_element, kl_standard_normal
from .sampling import reparameterize

__all__ = [
    "active_units",
    "elbo",
    "kl_per_dimension",
    "latent_activity",
    "latent_means",
    "log_likelihood",
    "log_weights",
]

LOG_2PI = math.log(2.0 * math.pi)


# -- small helpers ------------------------------------------------------------------------------
def _require_vae(model, what: str):
    if model.kind != "vae":
        raise TypeError(
            f"{what} needs a VAE (an encoder q(z|x) and a prior p(z)); a plain "
            f"{type(model).__name__} has a single code per input and no distribution over it."
        )


def _to_model(model, x, where):
    """``x`` checked once, whole (shape, backend, finite values, [0, 1] for a Bernoulli decoder:
    see :mod:`minivae.validate`), as an array of the model's backend and dtype."""
    return validate.for_model(model, x, f"evaluate.{where}")


def _batches(x, batch_size):
    """(start, stop, rows) for consecutive batches of ``x``."""
    n = x.shape[0]
    for start in range(0, n, batch_size):
        stop = min(n, start + batch_size)
        yield start, stop, x[start:stop, ...]


class _ExampleNoise:
    """Standard normal noise ε for the examples ``start, …, stop − 1``.

    Example i has its own generator, seeded by ``(seed, i)``; each call to :meth:`draw` continues
    every example's stream. So the noise an example sees depends only on the seed and its index,
    never on how the data set was cut into batches.
    """

    def __init__(self, seed, start: int, stop: int, latent_dim: int, dtype: str, xp):
        seeds = [None if seed is None else [seed, i] for i in range(start, stop)]
        self.gens = [np.random.default_rng(s) for s in seeds]
        self.latent_dim, self.dtype, self.xp = latent_dim, dtype, xp

    def draw(self, n_samples: int):
        """ε of shape (examples, n_samples, latent_dim), on the model's backend."""
        shape = (n_samples, self.latent_dim)
        eps = np.stack([g.standard_normal(shape, dtype=self.dtype) for g in self.gens])
        return self.xp.asarray(eps)


# -- the ELBO -----------------------------------------------------------------------------------
def elbo(model, x, batch_size: int = 1000, seed=0) -> dict[str, float]:
    """The negative ELBO of ``x`` (examples, features) and its two terms, in nats per example.

    For a VAE, with one sample z = μ + σ·ε per example:

        recon = −log p(x | z)                       (a one-sample Monte Carlo estimate)
        kl    = KL(q(z|x) ‖ N(0, I))                 (closed form, no noise)
        total = recon + kl  = −ELBO  ≥  −log p(x)

    β is always 1 here, whatever ``model.beta`` is: a β-VAE is *trained* with β·KL, but its
    ELBO, the bound on log p(x) that papers compare, weighs the KL by 1.

    For a plain Autoencoder there is no KL: ``recon`` is −log p(x | z = encode(x)), ``kl`` is 0
    and ``total`` equals ``recon``.

    Returns ``{"total": ..., "recon": ..., "kl": ...}`` (Python floats), averaged over the
    data set. It is computed ``batch_size`` examples at a time and is seeded per example, so
    the batch size does not change the result.
    """
    batch_size = validate.whole(batch_size, "evaluate.elbo", "batch_size")
    seed = validate.seed(seed, "evaluate.elbo")
    xp = model.xp
    x = _to_model(model, x, "elbo")
    recon = kl = 0.0
    for start, stop, xb in _batches(x, batch_size):
        eps = None
        if model.kind == "vae":
            noise = _ExampleNoise(seed, start, stop, model.latent_dim, model.dtype, xp)
            eps = noise.draw(1)[:, 0, :]
        terms = model.loss(xb, eps=eps, check=False)  # the model's own terms, batch means
        recon += float(terms.recon) * (stop - start)
        if model.kind == "vae" and model.regularizer is not kl_standard_normal:
            mu, logvar = model.encode(xb, check=False)  # lesson 6's formula: report the true KL
            kl += float(xp.sum(kl_per_element(mu, logvar)))
        else:
            kl += float(terms.kl) * (stop - start)
    recon, kl = recon / x.shape[0], kl / x.shape[0]
    return {"total": recon + kl, "recon": recon, "kl": kl}


# -- the importance-weighted log-likelihood -----------------------------------------------------
def log_weights(model, xb, mu, logvar, eps):
    """log w = log p(x|z) + log p(z) − log q(z|x) for z = μ + σ·ε, shape (examples, samples).

    ``xb`` (m, D), ``mu`` and ``logvar`` (m, L) and ``eps`` (m, s, L): s samples per example.
    The m·s codes go through the decoder as one batch of shape (m·s, L).
    """
    xp = backend.namespace(mu)
    m, s, L = eps.shape
    d = xb.shape[1]
    ### BEGIN SOLUTION
    z = reparameterize(mu[:, None, :], logvar[:, None, :], eps)  # z ~ q(z|x), (m, s, L)
    x_rep = xp.reshape(xp.broadcast_to(xb[:, None, :], (m, s, d)), (m * s, d))
    log_px_z = xp.reshape(model.log_px(xp.reshape(z, (m * s, L)), x_rep, check=False), (m, s))
    # log N(z; 0, I), and log N(z; μ, σ²) written with ε = (z − μ)/σ:  −½ Σ (ε² + log σ² + log 2π)
    log_pz = -0.5 * xp.sum(z * z, axis=2) - 0.5 * L * LOG_2PI
    log_det = xp.sum(logvar, axis=1)[:, None]  # Σ_j log σ_j², shape (m, 1)
    log_qz = -0.5 * (xp.sum(eps * eps, axis=2) + log_det) - 0.5 * L * LOG_2PI
    return log_px_z + log_pz - log_qz
    ### END SOLUTION


def log_likelihood(
    model,
    x,
    k: int = 5000,
    batch_size: int = 5000,
    seed=0,
    progress: bool = False,
    per_example: bool = False,
):
    """Estimate log p(x) by importance sampling (Burda, Grosse & Salakhutdinov, 2016).

    For each example x, draw k codes from the encoder, z_1, …, z_k ~ q(z|x), and average the
    importance weights w_i = p(x|z_i)·p(z_i) / q(z_i|x):

        log p(x)  ≈  log (1/k) Σ_i w_i
                  =  logsumexp_i [log p(x|z_i) + log p(z_i) − log q(z_i|x)]  −  log k

    The expectation of this estimate is a lower bound on log p(x) that rises with k: k = 1 gives
    the ELBO (so its mean is −elbo(...)["total"]), and k → ∞ gives log p(x) itself. k = 5000 is
    the value used in the literature. The log-sum-exp subtracts the largest term before
    exponentiating, since log-weights of −100 nats and below would underflow ``exp``.

    Memory stays bounded: the decoder sees at most ``batch_size`` (example, sample) pairs at once
    (several examples per step when k is small, the k samples of one example in chunks when k is
    large). 5000 pairs take under 100 MB for a 784-400-20 model in float32.

    Returns the mean of the estimate over the examples, in nats: a **negative** number (minus it
    is the "−log p(x)" papers print). ``per_example=True`` returns the NumPy array of the
    estimate for each example instead. ``progress=True`` shows a progress bar over the examples.
    """
    _require_vae(model, "log_likelihood")
    where = "evaluate.log_likelihood"
    k, batch_size = validate.whole(k, where, "k"), validate.whole(batch_size, where, "batch_size")
    seed = validate.seed(seed, where)
    xp = model.xp
    x = _to_model(model, x, "log_likelihood")
    n = x.shape[0]
    L = model.latent_dim
    examples_per_step = max(1, batch_size // k)  # > 1 only when k is small
    samples_per_step = min(k, batch_size)  # < k only when k is large

    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=n, desc=f"log p(x), k={k}", unit="example", leave=False)
    estimates = []
    for start in range(0, n, examples_per_step):
        stop = min(n, start + examples_per_step)
        xb = x[start:stop, ...]
        m = stop - start
        mu, logvar = model.encode(xb, check=False)
        noise = _ExampleNoise(seed, start, stop, L, model.dtype, xp)
        chunks = []  # the log-weights, (m, samples) per chunk
        for s0 in range(0, k, samples_per_step):
            eps = noise.draw(min(k, s0 + samples_per_step) - s0)
            chunks.append(xp.astype(log_weights(model, xb, mu, logvar, eps), xp.float64))
        log_w = xp.concat(chunks, axis=1)  # (m, k)
        # logsumexp, stably: log Σ e^(a_i) = a_max + log Σ e^(a_i − a_max)
        a_max = xp.max(log_w, axis=1, keepdims=True)
        lse = a_max[:, 0] + xp.log(xp.sum(xp.exp(log_w - a_max), axis=1))
        estimates.append(backend.asnumpy(lse - math.log(k)))
        if bar is not None:
            bar.update(m)
    if bar is not None:
        bar.close()
    values = np.concatenate(estimates)
    return values if per_example else float(values.mean())


# -- how much each latent dimension is used -----------------------------------------------------
def latent_means(model, x, batch_size: int = 1000):
    """The posterior means μ(x) of a VAE (or the codes z of an Autoencoder), shape
    (examples, latent_dim), as an array of the model's backend. Computed in batches."""
    batch_size = validate.whole(batch_size, "evaluate.latent_means", "batch_size")
    x = _to_model(model, x, "latent_means")
    parts = [model.encode(xb, check=False) for _, _, xb in _batches(x, batch_size)]
    return model.xp.concat([p[0] if model.kind == "vae" else p for p in parts], axis=0)


def kl_per_dimension(model, x, batch_size: int = 1000) -> np.ndarray:
    """The KL of each latent dimension, averaged over ``x``: a NumPy array (latent_dim,), nats.

    Entry j is the mean over examples of ½(σ_j² + μ_j² − log σ_j² − 1). The entries sum to
    ``elbo(model, x)["kl"]``. A dimension whose KL is ≈ 0 has q(z_j|x) = N(0, 1) for every x: it
    carries no information about x (it has "collapsed" onto the prior).
    """
    _require_vae(model, "kl_per_dimension")
    batch_size = validate.whole(batch_size, "evaluate.kl_per_dimension", "batch_size")
    xp = model.xp
    x = _to_model(model, x, "kl_per_dimension")
    total = xp.zeros((model.latent_dim,), dtype=xp.float64)
    for _, _, xb in _batches(x, batch_size):
        mu, logvar = model.encode(xb, check=False)
        ### BEGIN SOLUTION
        total = total + xp.astype(xp.sum(kl_per_element(mu, logvar), axis=0), xp.float64)
        ### END SOLUTION
    return backend.asnumpy(total) / x.shape[0]


def latent_activity(model, x, batch_size: int = 1000) -> np.ndarray:
    """The activity A_j = Var_x(E_q[z_j | x]) of each latent dimension: a NumPy array
    (latent_dim,).

    E_q[z_j | x] is the posterior mean μ_j(x) (the code itself for an Autoencoder), so A_j is
    the variance of μ_j over the examples of ``x`` (dividing by the number of examples). A
    dimension the decoder relies on moves with x; an unused one sits at the same value for every
    input, whatever its KL.
    """
    xp = model.xp
    mu = xp.astype(latent_means(model, x, batch_size), xp.float64)
    ### BEGIN SOLUTION
    return backend.asnumpy(xp.var(mu, axis=0))
    ### END SOLUTION


def active_units(model, x, threshold: float = 0.01, batch_size: int = 1000) -> int:
    """The number of active latent dimensions (Burda, Grosse & Salakhutdinov, 2016).

    A dimension j is *active* when A_j = Cov_x(E_{q(z|x)}[z_j]) > ``threshold``, with the
    threshold 10⁻² of the paper: its posterior mean varies over the data set, so it carries
    information about x. See :func:`latent_activity` for the values A_j themselves.
    """
    return int(np.sum(latent_activity(model, x, batch_size) > threshold))
