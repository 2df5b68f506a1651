"""Optimizers: they read each parameter's ``grad`` and update its ``data`` in place.

``backward`` computes gradients; the optimizer updates. A training step is always::

    terms = model.loss(x)
    model.backward()
    opt.step()
    model.zero_grad()        # or opt.zero_grad()

``step`` applies the rule (``update``) to one parameter's arrays at a time, as papers write it.
Arrays change in place (``p.grad += ...``, ``p.data[...] = new``) so that everything holding them
sees the same numbers; a step refuses to run when a parameter was given a new array.
"""

from __future__ import annotations

from . import backend, validate
from .validate import ReplacedArrayError

__all__ = ["Adam", "SGD", "Optimizer", "ReplacedArrayError"]


class Optimizer:
    """Holds the parameters and the learning rate; subclasses write ``update``, the rule for one
    parameter's arrays, and ``buffers``, the running state it reads and changes."""

    def __init__(self, parameters, lr: float):
        self.params = validate.parameters(parameters, type(self).__name__)
        self.lr = validate.number(lr, type(self).__name__, "the learning rate lr")
        self.t = 0  # steps taken so far
        self.remember_arrays()

    def zero_grad(self):
        """Set every gradient to zero, in place."""
        for p in self.params:
            p.zero_grad()

    def step(self):
        """One update of every parameter, in turn, with its running state (``buffers``); t counts
        the steps taken, 1 for the first."""
        self.check_arrays()
        self.t += 1
        for p, *state in zip(self.params, *self.buffers().values()):
            self.update(p.data, p.grad, *state)

    def update(self, theta, g, *state):
        raise NotImplementedError

    def _zeros(self):
        """One array of zeros shaped like each parameter (for running state such as m, v)."""
        return [backend.namespace(p.data).zeros_like(p.data) for p in self.params]

    # -- every parameter keeps its arrays -----------------------------------------------------
    def remember_arrays(self):
        """Note which arrays each parameter holds now; ``step`` checks they are still the same."""
        self._arrays = [(p.data, p.grad) for p in self.params]

    def check_arrays(self):
        """Refuse to step when a parameter's ``data`` or ``grad`` is a new array: see
        :func:`minivae.validate.same_arrays` for why that breaks training."""
        validate.same_arrays(self.params, self._arrays)

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
        self.momentum = validate.fraction(momentum, "SGD", "momentum")
        self.velocity = self._zeros()

    def hyperparameters(self):
        return {"lr": self.lr, "momentum": self.momentum}

    def buffers(self):
        return {"velocity": self.velocity}

    def update(self, theta, g, v):
        """The rule, in place, on one parameter θ, its gradient g and its velocity v."""
        v *= self.momentum
        v += g  # v ← μ·v + g
        theta -= self.lr * v  # θ ← θ − lr·v


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
        self.beta1, self.beta2 = validate.betas(betas)
        self.eps = validate.number(eps, "Adam", "eps")
        self.m = self._zeros()  # one running mean of the gradient per parameter
        self.v = self._zeros()  # and one of its square

    def hyperparameters(self):
        return {"lr": self.lr, "betas": [self.beta1, self.beta2], "eps": self.eps}

    def buffers(self):
        return {"m": self.m, "v": self.v}

    def update(self, theta, g, m, v):
        """The rule, in place, on one parameter θ, its gradient g and its running means m and v,
        for step number ``self.t`` (1 for the first step)."""
        xp = backend.namespace(theta)
        b1, b2 = self.beta1, self.beta2
        ### BEGIN SOLUTION
        m *= b1
        m += (1.0 - b1) * g  # m ← β₁·m + (1 − β₁)·g
        v *= b2
        v += (1.0 - b2) * g * g  # v ← β₂·v + (1 − β₂)·g²
        m_hat = m / (1.0 - b1**self.t)
        v_hat = v / (1.0 - b2**self.t)
        theta -= self.lr * m_hat / (xp.sqrt(v_hat) + self.eps)  # θ ← θ − lr·m̂/(√v̂ + ε)
        ### END SOLUTION
