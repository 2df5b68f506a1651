"""The reparameterization trick: sampling z ~ N(μ, σ²) so that gradients reach μ and σ.

A sample drawn directly from N(μ, σ²) is a dead end for backpropagation: "draw a random number"
has no derivative with respect to μ or σ. The trick moves the randomness into a fixed input ε:

    ε ~ N(0, I)          (drawn once, does not depend on any parameter)
    σ = exp(½ · log σ²)
    z = μ + σ · ε        (an ordinary differentiable function of μ and log σ²)

so z has the same distribution, and dz/dμ, dz/dlog σ² exist.
"""

from __future__ import annotations

from . import backend, validate
from .nn import Module

__all__ = ["GaussianSampler", "reparameterize"]


def reparameterize(mu, logvar, eps):
    """z = μ + exp(½ log σ²) · ε for a given noise ε (the forward pass, as a plain function)."""
    return mu + backend.namespace(mu).exp(0.5 * logvar) * eps


class GaussianSampler(Module):
    """z = μ + σ·ε with σ = exp(½ log σ²); forward and backward.

    ``forward(mu, logvar, eps=None)`` draws ε ~ N(0, I) from its generator unless ε is given, and
    caches ε and σ: ``backward`` reuses exactly the noise that made z and never draws again.
    """

    def __init__(self, seed=None):
        self.gen = seed if isinstance(seed, backend.Generator) else None
        self.seed = seed
        self.cache = None

    def reseed(self, seed):
        """Start a fresh stream of noise from ``seed`` (training reseeds it every epoch)."""
        self.seed, self.gen = seed, None

    def forward(self, mu, logvar, eps=None):
        xp = backend.namespace(mu)
        if eps is None:
            if self.gen is None:
                self.gen = backend.Generator(self.seed, namespace=xp)
            eps = self.gen.normal(tuple(mu.shape), dtype=mu.dtype)
        else:
            validate.same_shape(eps, mu, self.name or "GaussianSampler")
        sigma = xp.exp(0.5 * logvar)
        self.cache = (eps, sigma)
        return mu + sigma * eps

    def backward(self, dz):
        """z = μ + σ·ε,  σ = exp(½ log σ²)

        dz/dμ = 1                            ⇒  dL/dμ      = dz
        dz/dlog σ² = ε · dσ/dlog σ² = ε·½σ   ⇒  dL/dlog σ² = dz · ε · ½σ
        Returns ``(dmu, dlogvar)``.
        """
        ### BEGIN SOLUTION
        eps, sigma = self.cache
        dmu = dz
        dlogvar = dz * eps * 0.5 * sigma
        ### END SOLUTION
        return dmu, dlogvar
