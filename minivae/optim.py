"""Optimizers: they read each parameter's ``grad`` and update its ``data`` in place.

``backward`` computes gradients; the optimizer updates. A training step is always::

    terms = model.loss(x)
    model.backward()
    opt.step()
    model.zero_grad()        # or opt.zero_grad()

An optimizer loops over its parameters and applies its rule to one parameter's arrays at a time
(``update``), exactly as the papers write it. Each parameter owns its arrays for good: layers add
into ``p.grad`` in place (``+=``) and values change in place (``p.data[...] = new``), so that the
optimizer, the model and anything else holding the arrays always see the same numbers. A step
refuses to run when a parameter was given a new array, and says what to write instead.
"""

from __future__ import annotations

from . import backend, validate
from .nn import Module, Parameter

__all__ = ["Adam", "SGD", "Optimizer", "ReplacedArrayError"]


class ReplacedArrayError(RuntimeError):
    """A parameter's ``data`` or ``grad`` was replaced by a new array after the optimizer was
    made; the message names the parameter and says what to write instead."""


# The one other way a parameter gets new arrays: the fast path moving it into a flat buffer.
_MOVED = " (If a mv.fast.Adam made after this optimizer moved it, train with that one.)"


class Optimizer:
    """Holds the parameters and the learning rate; subclasses write ``step``, a loop over the
    parameters, and ``update``, the rule for one parameter's arrays."""

    def __init__(self, parameters, lr: float):
        if isinstance(parameters, Module) or not hasattr(parameters, "__iter__"):
            raise TypeError(
                f"{type(self).__name__} takes the parameters to update, e.g. "
                f"{type(self).__name__}(model.parameters()), not {type(parameters).__name__}."
            )
        self.params = list(parameters)
        if not all(isinstance(p, Parameter) for p in self.params):
            raise TypeError(
                f"{type(self).__name__} takes Parameter objects, e.g. model.parameters()."
            )
        if not self.params:
            raise validate.SettingError("The optimizer was given no parameters to update.")
        self.lr = validate.number(lr, type(self).__name__, "the learning rate lr")
        self.t = 0  # steps taken so far
        self.remember_arrays()

    def zero_grad(self):
        """Set every gradient to zero, in place."""
        for p in self.params:
            p.zero_grad()

    def step(self):
        raise NotImplementedError

    def _zeros(self):
        """One array of zeros shaped like each parameter (for running state such as m, v)."""
        return [backend.namespace(p.data).zeros_like(p.data) for p in self.params]

    # -- every parameter keeps its arrays -----------------------------------------------------
    def remember_arrays(self):
        """Note which arrays each parameter holds now; ``step`` checks they are still the same."""
        self._arrays = [(p.data, p.grad) for p in self.params]

    def check_arrays(self):
        """Refuse to step when a parameter's ``data`` or ``grad`` is a new array.

        A new ``grad`` means some backward pass wrote ``p.grad = ...`` where it must add in place
        (``p.grad += ...``): gradients from two uses of a layer would no longer add up, and code
        that holds the old array (a fast optimizer's flat buffer, a gradient clipper) would never
        see them. A new ``data`` cuts the parameter off from everything that holds its values.
        """
        for p, (data, grad) in zip(self.params, self._arrays):
            if p.grad is not grad:
                raise ReplacedArrayError(
                    f"Parameter {p.name or '?'} was given a new gradient array (p.grad = ...) "
                    "after the optimizer was made, so the gradient must be added in place: "
                    "write `self.W.grad += x.T @ dout`, not `self.W.grad = ...`, in backward."
                    + _MOVED
                )
            if p.data is not data:
                raise ReplacedArrayError(
                    f"Parameter {p.name or '?'} was given a new data array (p.data = ...) after "
                    "the optimizer was made, so the optimizer no longer updates the array the "
                    "model uses: change values in place (p.data[...] = new), or make the "
                    "optimizer after the change." + _MOVED
                )

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

    def step(self):
        """One update of every parameter, in turn."""
        self.check_arrays()
        self.t += 1
        for p, v in zip(self.params, self.velocity):
            self.update(p.data, p.grad, v)

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

    def step(self):
        """One update of every parameter, in turn (t counts the steps: 1 for the first)."""
        self.check_arrays()
        self.t += 1
        for p, m, v in zip(self.params, self.m, self.v):
            self.update(p.data, p.grad, m, v)

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
