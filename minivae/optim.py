"""Optimizers: they read each parameter's ``grad`` and update its ``data`` in place.

``backward`` computes gradients; the optimizer updates. A training step is always::

    terms = model.loss(x)
    model.backward()
    opt.step()
    model.zero_grad()        # or opt.zero_grad()
"""

from __future__ import annotations

import math

from . import backend, parallel
from .nn import Module, Parameter, flatten_parameters

__all__ = ["Adam", "SGD", "Optimizer"]


class Optimizer:
    """Holds the parameters and the learning rate; subclasses write ``step``.

    On creation the optimizer moves its parameters into one flat buffer (see
    :func:`minivae.nn.flatten_parameters`): ``flat_data`` holds every parameter's values and
    ``flat_grad`` every gradient, each ``Parameter`` being a view into them. A step is then a few
    operations on whole vectors (about 650,000 numbers for the 784-400-20 VAE) rather than a loop
    of small ones per layer, which is what makes it cheap in NumPy.
    """

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
            raise ValueError("The optimizer was given no parameters to update.")
        if not (isinstance(lr, (int, float)) and lr > 0 and math.isfinite(lr)):
            raise ValueError(f"The learning rate must be a positive number, got {lr!r}.")
        self.lr = float(lr)
        self.t = 0  # steps taken so far
        self.flat_data, self.flat_grad = flatten_parameters(self.params)
        self._views = [p.data for p in self.params]
        self.xp = backend.namespace(self.flat_data)

    def zero_grad(self):
        """Set every gradient to zero: one fill of the flat gradient buffer."""
        self.flat_grad[...] = 0

    def step(self):
        raise NotImplementedError

    def _zeros(self):
        """A flat buffer of zeros like the parameters, and its per-parameter views."""
        flat = self.xp.zeros_like(self.flat_data)
        views, start = [], 0
        for p in self.params:
            size = math.prod(p.shape)
            views.append(self.xp.reshape(flat[start : start + size], p.shape))
            start += size
        return flat, views

    def _check_parameters(self):
        """Refuse to step if a parameter's array was replaced (``p.data = ...``): the update would
        go to the flat buffer and never reach the new array."""
        for p, view in zip(self.params, self._views):
            if p.data is not view:
                raise RuntimeError(
                    f"Parameter {p.name or '?'} was given a new array after the optimizer was "
                    "made, so this optimizer no longer updates it. Change values in place "
                    "(p.data[...] = new) or make the optimizer after the change."
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
        if not 0 <= momentum < 1:
            raise ValueError(f"momentum must be in [0, 1), got {momentum}.")
        self.momentum = float(momentum)
        self.flat_velocity, self.velocity = self._zeros()

    def hyperparameters(self):
        return {"lr": self.lr, "momentum": self.momentum}

    def buffers(self):
        return {"velocity": self.velocity}

    def step(self):
        self._check_parameters()
        self.t += 1
        self.update(self.flat_data, self.flat_grad, self.flat_velocity)

    def update(self, theta, g, v):
        """The rule, in place, on the parameters θ, their gradient g and the velocity v (the flat
        buffers: every parameter at once)."""
        v *= self.momentum
        v += g
        theta -= self.lr * v


class Adam(Optimizer):
    """Adam (Kingma & Ba, 2015) with bias correction:

        m ← β₁·m + (1 − β₁)·g            running mean of the gradient
        v ← β₂·v + (1 − β₂)·g²           running mean of its square
        m̂ = m / (1 − β₁ᵗ),  v̂ = v / (1 − β₂ᵗ)   undo the pull towards 0 of m, v starting at 0
        θ ← θ − lr · m̂ / (√v̂ + ε)

    t counts the steps taken, starting at 1 for the first step. Every line runs once on the flat
    buffers (all parameters together), in place where it can, so no per-layer loop is needed.
    """

    def __init__(self, parameters, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8):
        super().__init__(parameters, lr)
        try:
            self.beta1, self.beta2 = (float(b) for b in betas)
        except (TypeError, ValueError):
            raise ValueError(f"Adam's betas must be two numbers (β₁, β₂), got {betas!r}.") from None
        if not (0 <= self.beta1 < 1 and 0 <= self.beta2 < 1):
            raise ValueError(f"Adam's betas must be in [0, 1), got {tuple(betas)}.")
        if not eps > 0:
            raise ValueError(f"Adam's eps must be a small positive number, got {eps}.")
        self.eps = float(eps)
        self.flat_m, self.m = self._zeros()
        self.flat_v, self.v = self._zeros()
        # Room for the step's intermediate results, made once: a step then allocates nothing.
        self.scratch = self.xp.empty_like(self.flat_data)

    def hyperparameters(self):
        return {"lr": self.lr, "betas": [self.beta1, self.beta2], "eps": self.eps}

    def buffers(self):
        return {"m": self.m, "v": self.v}

    def step(self):
        self._check_parameters()
        self.t += 1
        flat = (self.flat_data, self.flat_grad, self.flat_m, self.flat_v, self.scratch)
        # Each number's update involves only that number, so on the CPU the vectors are cut in
        # one piece per core and the pieces updated at once (see minivae.parallel).
        parallel.run(
            lambda piece: self.update(*(a[piece] for a in flat)),
            parallel.pieces(self.flat_data.shape[0], self.xp),
        )

    def update(self, theta, g, m, v, scratch):
        """The rule, in place, on the parameters θ, their gradient g and the running means m, v
        (the flat buffers: every parameter at once, or a piece of them), for step number
        ``self.t``. ``scratch`` is spare room of the same size for intermediate results: writing
        them there (``out=scratch``) rather than into new arrays saves making and filling a
        fresh 2.6 MB array for each, a dozen times a step for the 784-400-20 VAE."""
        b1, b2 = self.beta1, self.beta2
        correction1 = 1.0 - b1**self.t
        correction2 = 1.0 - b2**self.t
        ### BEGIN SOLUTION
        xp = self.xp
        out = backend.out_to(xp, scratch)  # write into scratch, not a new array (NumPy, CuPy)
        m *= b1
        m += xp.multiply(g, 1.0 - b1, **out)  # m ← β₁·m + (1 − β₁)·g
        g2 = xp.multiply(g, g, **out)
        g2 *= 1.0 - b2
        v *= b2
        v += g2  # v ← β₂·v + (1 − β₂)·g²
        # m̂ / (√v̂ + ε) = m / (√v + ε·√c₂) · √c₂ / c₁  with c = 1 − βᵗ: the two corrections
        # become scalars, so no m̂ or v̂ array is ever made.
        root_c2 = math.sqrt(correction2)
        step = xp.sqrt(v, **out)
        step += self.eps * root_c2
        step = xp.divide(m, step, **out)
        step *= self.lr * root_c2 / correction1
        theta -= step
        ### END SOLUTION
