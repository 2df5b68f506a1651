"""Layers with a forward and a backward pass written by hand.

Every layer follows the same three rules:

1. ``forward(x)`` computes the output and caches what ``backward`` will need;
2. ``backward(dout)`` takes dL/d(output) and returns dL/d(input), *adding* dL/d(parameter) into
   each ``Parameter.grad`` (so gradients from several uses of a layer add up);
3. the docstring of ``backward`` is the derivation, one line of math per line of code.

Shapes: a batch is a 2-D array (batch, features); ``B`` is the batch size below.
"""

from __future__ import annotations

import math

from . import backend, validate

__all__ = [
    "Clamp",
    "Identity",
    "LeakyReLU",
    "Linear",
    "Module",
    "Parameter",
    "ReLU",
    "Sequential",
    "Sigmoid",
    "Softplus",
    "Tanh",
    "activation",
    "mlp",
    "sigmoid",
]


class Parameter:
    """A trainable array ``data`` and the gradient of the loss with respect to it, ``grad`` (same
    shape and dtype, zero at first, added to by ``backward`` until ``zero_grad`` clears it)."""

    def __init__(self, data, name: str = ""):
        self.name = name
        self.data = data
        self.grad = backend.namespace(data).zeros_like(data)

    @property
    def shape(self):
        return tuple(self.data.shape)

    def zero_grad(self):
        self.grad[...] = 0

    def __repr__(self):
        return f"Parameter({self.name!r}, shape={self.shape}, dtype={self.data.dtype})"


class Module:
    """Base class: a callable with ``forward``/``backward`` and a list of parameters, found in
    its attributes (in the order they were set, lists of modules included): assigning is enough."""

    name = ""

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    def __repr__(self):
        return f"{type(self).__name__}()"

    def forward(self, x):
        raise NotImplementedError

    def backward(self, dout):
        raise NotImplementedError

    def named_modules(self, prefix: str = ""):
        """Yield ``(dotted_name, module)`` for this module and every module inside it."""
        yield prefix.rstrip("."), self
        for key, value in vars(self).items():
            if isinstance(value, Module):
                yield from value.named_modules(prefix + key + ".")
            elif isinstance(value, (list, tuple)):
                for i, item in enumerate(value):
                    if isinstance(item, Module):
                        yield from item.named_modules(f"{prefix}{i}.")

    def named_parameters(self, prefix: str = ""):
        """Yield ``(dotted_name, parameter)`` for every parameter, sub-modules included."""
        for name, module in self.named_modules(prefix):
            for key, value in vars(module).items():
                if isinstance(value, Parameter):
                    yield f"{name}.{key}" if name else key, value

    def parameters(self) -> list[Parameter]:
        """All trainable parameters, in a fixed order (the order they were defined)."""
        return [p for _, p in self.named_parameters()]

    def set_names(self, prefix: str = ""):
        """Name every sub-module and parameter by its dotted path ('encoder.0.W'), for messages."""
        for name, module in self.named_modules(prefix):
            module.name = name or type(self).__name__
        for name, p in self.named_parameters(prefix):
            p.name = name
        return self

    def zero_grad(self):
        """Set every parameter's gradient to zero (call it after each optimizer step)."""
        for p in self.parameters():
            p.zero_grad()


class Linear(Module):
    """An affine map  y = x·W + b  from ``in_dim`` to ``out_dim`` features.

    W has shape (in_dim, out_dim) and b shape (out_dim,). He/Kaiming uniform initialization:
    W ~ U(−a, a), a = sqrt(6 / in_dim) · gain, b = 0, with gain 1 before a ReLU-like activation
    and 1/sqrt(2) otherwise, so each output's variance is about the input's. Drawn on the CPU
    from ``seed``: the same seed gives the same layer on every backend.
    """

    def __init__(self, in_dim: int, out_dim: int, seed=None, dtype=None, gain: float = 1.0):
        self.in_dim, self.out_dim = int(in_dim), int(out_dim)
        gen = seed if isinstance(seed, backend.Generator) else backend.rng(seed, host=True)
        bound = gain * math.sqrt(6.0 / self.in_dim)
        self.W = Parameter(gen.uniform((self.in_dim, self.out_dim), -bound, bound, dtype), "W")
        self.b = Parameter(backend.xp.zeros((self.out_dim,), dtype=backend.get_dtype(dtype)), "b")
        self.cache = None

    def forward(self, x):
        validate.layer_input(self, x)
        self.cache = x
        return x @ self.W.data + self.b.data

    def backward(self, dout, input_grad: bool = True):
        """y = x·W + b  ⇒  dL/dW = xᵀ·dout,  dL/db = Σ_batch dout,  dL/dx = dout·Wᵀ.

        ``input_grad=False`` skips dL/dx and returns None: nothing upstream of the data learns, so
        the first layer of an encoder has no use for dL/dx (and dout·Wᵀ is a whole matrix product).
        """
        ### BEGIN SOLUTION
        x = self.cache
        xp = backend.namespace(dout)
        self.W.grad += x.T @ dout
        self.b.grad += xp.sum(dout, axis=0)
        return dout @ self.W.data.T if input_grad else None
        ### END SOLUTION

    def __repr__(self):
        return f"Linear({self.in_dim}, {self.out_dim})"


class ReLU(Module):
    """y = max(x, 0) = x · [x > 0], applied element-wise; the 0/1 mask [x > 0] is kept for
    the backward pass."""

    def forward(self, x):
        self.cache = mask = backend.namespace(x).astype(x > 0, x.dtype)
        return x * mask

    def backward(self, dout):
        """dy/dx = 1 where x > 0, else 0   ⇒  dL/dx = dout · [x > 0]."""
        return dout * self.cache


class LeakyReLU(Module):
    """y = x for x > 0, y = slope·x otherwise: y = x · f with f = slope + (1 − slope)·[x > 0]."""

    def __init__(self, slope: float = 0.01):
        self.slope = float(slope)

    def forward(self, x):
        mask = backend.namespace(x).astype(x > 0, x.dtype)
        self.cache = factor = mask * (1.0 - self.slope) + self.slope
        return x * factor

    def backward(self, dout):
        """dy/dx = 1 where x > 0, else slope   ⇒  dL/dx = dout · f."""
        return dout * self.cache


class Tanh(Module):
    """y = tanh(x)."""

    def forward(self, x):
        self.cache = y = backend.namespace(x).tanh(x)
        return y

    def backward(self, dout):
        """dy/dx = 1 − tanh²(x) = 1 − y²   ⇒  dL/dx = dout · (1 − y²)."""
        y = self.cache
        return dout * (1.0 - y * y)


def sigmoid(x):
    """σ(x) = 1 / (1 + e^(−x)), computed as ½ + ½·tanh(x/2), which never overflows.

    The same function: ½ + ½·(1 − e^(−x))/(1 + e^(−x)) = 1/(1 + e^(−x)), but with no e^(−x) (it
    overflows for x < −88 in float32) and no branch on the sign of x. Exact to the rounding of
    numbers near 1 (1e-16 in float64, 6e-8 in float32): where σ(x) is smaller, it returns 0.
    """
    s = backend.namespace(x).tanh(0.5 * x)
    s *= 0.5
    s += 0.5
    return s


class Sigmoid(Module):
    """y = σ(x) = 1 / (1 + e^(−x))."""

    def forward(self, x):
        self.cache = y = sigmoid(x)
        return y

    def backward(self, dout):
        """dy/dx = σ(x)(1 − σ(x)) = y(1 − y)   ⇒  dL/dx = dout · y(1 − y)."""
        y = self.cache
        return dout * y * (1.0 - y)


class Softplus(Module):
    """y = log(1 + eˣ), a smooth ReLU, computed as max(x, 0) + log(1 + e^(−|x|)) (no overflow)."""

    def forward(self, x):
        xp = backend.namespace(x)
        self.cache = x
        return xp.maximum(x, 0.0) + xp.log1p(xp.exp(-xp.abs(x)))

    def backward(self, dout):
        """dy/dx = eˣ / (1 + eˣ) = σ(x)   ⇒  dL/dx = dout · σ(x)."""
        return dout * sigmoid(self.cache)


class Identity(Module):
    """y = x (a placeholder, e.g. for 'no activation')."""

    def forward(self, x):
        return x

    def backward(self, dout):
        """dy/dx = 1   ⇒  dL/dx = dout."""
        return dout


class Clamp(Module):
    """y = min(max(x, lo), hi), element-wise: the identity inside [lo, hi], flat outside. After
    the VAE's log σ² head (``models.LOGVAR_RANGE``) it keeps exp(log σ²) from overflowing."""

    def __init__(self, lo: float, hi: float):
        self.lo, self.hi = float(lo), float(hi)
        self.cache = None

    def forward(self, x):
        xp = backend.namespace(x)
        self.cache = (x >= self.lo) & (x <= self.hi)
        return xp.clip(x, min=self.lo, max=self.hi)

    def backward(self, dout):
        """dy/dx = 1 where lo ≤ x ≤ hi, else 0   ⇒  dL/dx = dout · [lo ≤ x ≤ hi]."""
        return backend.namespace(dout).where(self.cache, dout, 0.0)

    def __repr__(self):
        return f"Clamp({self.lo:g}, {self.hi:g})"


class Sequential(Module):
    """Layers applied one after the other: y = f_n(… f_2(f_1(x)))."""

    def __init__(self, *layers: Module):
        self.layers = list(layers)

    def forward(self, x):
        for layer in self.layers:
            x = layer(x)
        return x

    def backward(self, dout, input_grad: bool = True):
        """The chain rule: dL/dx = f_1'ᵀ(… f_n'ᵀ(dout)), i.e. each layer's backward in reverse.
        ``input_grad=False`` lets a first Linear layer skip dL/dx (None is returned then)."""
        for i in range(len(self.layers) - 1, -1, -1):
            layer = self.layers[i]
            if i == 0 and not input_grad and isinstance(layer, Linear):
                return layer.backward(dout, input_grad=False)
            dout = layer.backward(dout)
        return dout

    def __getitem__(self, i):
        return self.layers[i]

    def __len__(self):
        return len(self.layers)

    def __repr__(self):
        inner = ", ".join(repr(layer) for layer in self.layers)
        return f"Sequential({inner})"


ACTIVATIONS = {
    "relu": ReLU,
    "leaky_relu": LeakyReLU,
    "tanh": Tanh,
    "sigmoid": Sigmoid,
    "softplus": Softplus,
    "identity": Identity,
}


def activation(name: str) -> Module:
    """An activation layer by name: relu, leaky_relu, tanh, sigmoid, softplus or identity."""
    return ACTIVATIONS[validate.choice(name, ACTIVATIONS, "activation")]()


def mlp(
    sizes, activation_name: str = "relu", final_activation: bool = False, seed=None, dtype=None
) -> Sequential:
    """A multilayer perceptron: Linear(sizes[0]→sizes[1]), activation, …, Linear(→sizes[-1]).
    The activation follows every Linear but the last, unless ``final_activation`` is true.
    ``seed`` is an int or a :class:`backend.Generator` shared by all layers."""
    sizes = [int(s) for s in sizes]
    if len(sizes) < 2:
        return Sequential()
    gen = seed if isinstance(seed, backend.Generator) else backend.rng(seed, host=True)
    layers: list[Module] = []
    relu_like = activation_name in ("relu", "leaky_relu")
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        last = i == len(sizes) - 2
        followed = not last or final_activation
        gain = 1.0 if (followed and relu_like) else 1.0 / math.sqrt(2.0)
        layers.append(Linear(a, b, seed=gen, dtype=dtype, gain=gain))
        if followed:
            layers.append(activation(activation_name))
    return Sequential(*layers)
