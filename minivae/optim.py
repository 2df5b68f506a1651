"""Optimizers: they read each parameter's ``grad`` and update its ``data`` in place.

``backward`` computes gradients; the optimizer updates. A training step is always::

    terms = model.loss(x)
    model.backward()
    opt.step()
    model.zero_grad()        # or opt.zero_grad()
"""

from __future__ import annotations

import math

from . import backend

__all__ = ["Adam", "SGD", "Optimizer"]


class Optimizer:
    """Holds the parameters and the learning rate; subclasses write ``step``."""

    def __init__(self, parameters, lr: float):
        self.params = list(parameters)
        if not self.params:
            raise ValueError("The optimizer was given no parameters to update.")
        if not (lr > 0 and math.isfinite(lr)):
            raise ValueError(f"The learning rate must be a positive number, got {lr}.")
        self.lr = float(lr)
        self.t = 0  # steps taken so far

    def zero_grad(self):
        for p in self.params:
            p.zero_grad()

    def step(self):
        raise NotImplementedError

    # -- state, for checkpoints and for rolling back a step that went bad ---------------------
    def hyperparameters(self) -> dict:
        """The settings that rebuild this optimizer: ``type(opt)(params, **hyperparameters())``."""
        return {"lr": self.lr}

    def buffers(self) -> dict[str, list]:
        """The running state, one array per parameter under each name (e.g. Adam's m and v)."""
        return {}


class SGD(Optimizer):
    """Stochastic gradient descent with (heavy-ball) momentum, as in PyTorch:

    v ← μ·v + g          (v starts at 0; μ = 0 is plain SGD)
    θ ← θ − lr·v
    """

    def __init__(self, parameters, lr: float = 0.01, momentum: float = 0.0):
        super().__init__(parameters, lr)
        if not 0 <= momentum < 1:
            raise ValueError(f"momentum must be in [0, 1), got {momentum}.")
        self.momentum = float(momentum)
        self.velocity = [backend.namespace(p.data).zeros_like(p.data) for p in self.params]

    def hyperparameters(self):
        return {"lr": self.lr, "momentum": self.momentum}

    def buffers(self):
        return {"velocity": self.velocity}

    def step(self):
        self.t += 1
        for p, v in zip(self.params, self.velocity):
            v *= self.momentum
            v += p.grad
            p.data -= self.lr * v


class Adam(Optimizer):
    """Adam (Kingma & Ba, 2015) with bias correction:

        m ← β₁·m + (1 − β₁)·g            running mean of the gradient
        v ← β₂·v + (1 − β₂)·g²           running mean of its square
        m̂ = m / (1 − β₁ᵗ),  v̂ = v / (1 − β₂ᵗ)   undo the pull towards 0 of m, v starting at 0
        θ ← θ − lr · m̂ / (√v̂ + ε)

    t counts the steps taken, starting at 1 for the first step.
    """

    def __init__(self, parameters, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8):
        super().__init__(parameters, lr)
        self.beta1, self.beta2 = (float(b) for b in betas)
        if not (0 <= self.beta1 < 1 and 0 <= self.beta2 < 1):
            raise ValueError(f"Adam's betas must be in [0, 1), got {tuple(betas)}.")
        self.eps = float(eps)
        self.m = [backend.namespace(p.data).zeros_like(p.data) for p in self.params]
        self.v = [backend.namespace(p.data).zeros_like(p.data) for p in self.params]

    def hyperparameters(self):
        return {"lr": self.lr, "betas": [self.beta1, self.beta2], "eps": self.eps}

    def buffers(self):
        return {"m": self.m, "v": self.v}

    def step(self):
        self.t += 1
        b1, b2 = self.beta1, self.beta2
        correction1 = 1.0 - b1**self.t
        correction2 = 1.0 - b2**self.t
        ### BEGIN SOLUTION
        for p, m, v in zip(self.params, self.m, self.v):
            xp = backend.namespace(p.data)
            g = p.grad
            m *= b1
            m += (1.0 - b1) * g
            v *= b2
            v += (1.0 - b2) * (g * g)
            m_hat = m / correction1
            v_hat = v / correction2
            p.data -= self.lr * m_hat / (xp.sqrt(v_hat) + self.eps)
        ### END SOLUTION
