"""Losses, each returning its value and its gradient.

Convention (papers', in nats): every loss is **summed over features** (pixels, latent
dimensions, classes) and **averaged over the batch**: L = (1/B) Σ_i ℓ_i, so every gradient
carries a 1/B. ``value`` is a 0-d array (``float`` reads it: on a GPU, a copy to the host).
"""

from __future__ import annotations

import math

from . import backend, validate
from .nn import sigmoid

__all__ = [
    "bernoulli_log_prob",
    "bernoulli_nll",
    "gaussian_log_prob",
    "gaussian_nll",
    "kl_standard_normal",
    "kl_lecture",
    "kl_per_element",
    "softmax_cross_entropy",
]


def bernoulli_log_prob(logits, x):
    """log p(x | z) under a Bernoulli decoder, one value per example (shape (B,)).

    log p = Σ_pixels [x·l − log(1 + eˡ)], with log(1 + eˡ) = max(l, 0) + log(1 + e^(−|l|)): the
    same number, but e^(−|l|) ≤ 1 never overflows where eˡ would (l > 88 in float32).
    """
    xp = backend.namespace(logits)
    ### BEGIN SOLUTION
    softplus = xp.maximum(logits, 0.0) + xp.log1p(xp.exp(-xp.abs(logits)))  # log(1 + eˡ)
    return xp.sum(x * logits - softplus, axis=1)
    ### END SOLUTION


def gaussian_log_prob(x_mean, x, lam: float = 0.5):
    """log N(x | x̂, σ²I) with λ = 1/(2σ²), one value per example (shape (B,)):
    −λ·‖x − x̂‖² − (D/2)·log(π/λ)   (see gaussian_nll)."""
    xp = backend.namespace(x_mean)
    ### BEGIN SOLUTION
    diff = x_mean - x
    return -lam * xp.sum(diff * diff, axis=1) - 0.5 * x_mean.shape[1] * math.log(math.pi / lam)
    ### END SOLUTION


def bernoulli_nll(logits, x):
    """Bernoulli negative log-likelihood of targets ``x`` ∈ [0, 1] given decoder ``logits``.

    With p = σ(l), the per-pixel loss is the binary cross-entropy
        −[x log p + (1 − x) log(1 − p)]  =  log(1 + eˡ) − x·l
    and log(1 + eˡ) = max(l, 0) + log(1 + e^(−|l|)) never overflows, so the loss is finite for any
    logit (±1e4 included). Summed over pixels, averaged over the batch.

    Gradient:  d/dl [log(1 + eˡ) − x·l] = σ(l) − x,  then divide by B for the batch mean.
    Returns ``(value, dlogits)``.
    """
    xp = backend.namespace(logits)
    B = logits.shape[0]
    ### BEGIN SOLUTION
    value = -xp.sum(bernoulli_log_prob(logits, x)) / B
    dlogits = (sigmoid(logits) - x) / B
    ### END SOLUTION
    return value, dlogits


def gaussian_nll(x_mean, x, lam: float = 0.5):
    """Gaussian negative log-likelihood with a fixed variance, in the lecture's weighted form.

    The lecture writes the reconstruction term as λ·‖x − x̂‖². That *is* the negative
    log-likelihood of x under N(x̂, σ²·I) with λ = 1 / (2σ²), up to a constant:
        −log N(x | x̂, σ²I) = ‖x − x̂‖² / (2σ²) + (D/2)·log(2πσ²)
                           = λ·‖x − x̂‖²      + (D/2)·log(π/λ).
    We include the constant so the value is in nats (and comparable to the Bernoulli decoder's);
    it does not change the gradient. λ = 0.5 is σ² = 1; a larger λ trusts the pixels more
    (smaller σ²) and so weighs reconstruction more against the KL.

    Gradient:  d/dx̂ [λ‖x − x̂‖²] = 2λ(x̂ − x),  then divide by B for the batch mean.
    Returns ``(value, dx_mean)``.
    """
    lam = validate.number(lam, "gaussian_nll", "lam (λ = 1/(2σ²))")
    xp = backend.namespace(x_mean)
    B, D = x_mean.shape
    ### BEGIN SOLUTION
    diff = x_mean - x
    value = lam * xp.sum(diff * diff) / B + 0.5 * D * math.log(math.pi / lam)
    dx_mean = (2.0 * lam / B) * diff
    ### END SOLUTION
    return value, dx_mean


def kl_standard_normal(mu, logvar):
    """KL( N(μ, diag σ²) ‖ N(0, I) ) in closed form, from μ and log σ².

    For one latent dimension (Kingma & Welling 2014, appendix B):
        KL = ½ (σ² + μ² − log σ² − 1),   with σ² = exp(log σ²).
    Summed over latent dimensions, averaged over the batch. It is 0 exactly when μ = 0, σ² = 1.
    We work with log σ² (not σ) so the encoder's output can be any real number.

    Gradients (per example, then / B):
        dKL/dμ      = μ
        dKL/dlog σ² = ½ (σ² − 1)          since d(σ²)/d(log σ²) = σ²
    Returns ``(value, dmu, dlogvar)``.
    """
    ### BEGIN SOLUTION
    xp = backend.namespace(mu)
    B = mu.shape[0]
    var = xp.exp(logvar)
    value = 0.5 * xp.sum(var + mu * mu - logvar - 1.0) / B
    dmu = mu / B
    dlogvar = 0.5 * (var - 1.0) / B
    ### END SOLUTION
    return value, dmu, dlogvar


def kl_per_element(mu, logvar):
    """The KL of each example and latent dimension, ½ (σ² + μ² − log σ² − 1), unsummed: the
    terms kl_standard_normal adds up (evaluation reads them per dimension)."""
    xp = backend.namespace(mu)
    ### BEGIN SOLUTION
    return 0.5 * (xp.exp(logvar) + mu * mu - logvar - 1.0)
    ### END SOLUTION


def kl_lecture(mu, logvar):
    """The lecture's regularizer  Σ (σ² + μ² − log σ − 1), for comparison with the exact KL.

    Written with log σ = ½ log σ², it is  Σ (σ² + μ² − ½ log σ² − 1). Against the exact
    KL = ½ Σ (σ² + μ² − log σ² − 1) it weighs σ² + μ² twice as much and log σ² the same, so its
    minimum over σ² is at σ² = ½, not 1: it pulls the posterior tighter than N(0, I) would.
    Nor is it a divergence: at that minimum (μ = 0, σ² = ½) it is ½·log 2 − ½ ≈ −0.153 per
    dimension, below zero. Summed over latent dimensions, averaged over the batch.

    Gradients (per example, then / B):  dμ = 2μ,   dlog σ² = σ² − ½.
    Returns ``(value, dmu, dlogvar)``.
    """
    xp = backend.namespace(mu)
    B = mu.shape[0]
    var = xp.exp(logvar)
    value = xp.sum(var + mu * mu - 0.5 * logvar - 1.0) / B
    return value, 2.0 * mu / B, (var - 0.5) / B


def softmax_cross_entropy(logits, labels):
    """Cross-entropy of integer class ``labels`` (shape (B,)) under softmax(``logits``) (B, K).

    With p = softmax(l):  ℓ = −log p_y = log Σ_k e^(l_k) − l_y.  We subtract m = max_k l_k first
    (log Σ e^(l_k) = m + log Σ e^(l_k − m)) so no exponential overflows. Averaged over the batch.

    Gradient:  dℓ/dl_k = p_k − [k = y],  i.e. softmax minus the one-hot label, then / B.
    Returns ``(value, dlogits)``.
    """
    xp = backend.namespace(logits)
    B, K = logits.shape
    ### BEGIN SOLUTION
    onehot = xp.astype(xp.arange(K)[None, :] == labels[:, None], logits.dtype)
    shifted = logits - xp.max(logits, axis=1, keepdims=True)
    exps = xp.exp(shifted)
    total = xp.sum(exps, axis=1, keepdims=True)
    log_p = shifted - xp.log(total)
    value = -xp.sum(onehot * log_p) / B
    dlogits = (exps / total - onehot) / B
    ### END SOLUTION
    return value, dlogits
