"""Setup that several test files share (the fixtures are in conftest.py; these are plain values
and helpers, imported where they are used): a toy data set, the small VAE trained on it, and ways
to compare models and measure memory.
"""

import tracemalloc

import numpy as np
import pytest

import minivae as mv

MiB = 2**20

_gen = np.random.default_rng(0)
PROTOS = (_gen.uniform(size=(3, 20)) > 0.5).astype(np.float32)
#: 96 noisy copies of three binary 20-pixel prototypes, in [0, 1]; X_VAL is its first 32 rows.
X = np.clip(PROTOS[_gen.integers(0, 3, 96)] + 0.1 * _gen.standard_normal((96, 20)), 0, 1)
X = X.astype(np.float32)
X_VAL = X[:32]
#: Four 28 × 28 images that were not flattened (a model wants (batch, 784)).
IMAGES = np.random.default_rng(1).uniform(size=(4, 28, 28)).astype(np.float32)


def tiny_vae(**kw):
    """The VAE most tests train: 20 pixels, one hidden layer of 16, two latent dimensions."""
    return mv.VAE(input_dim=20, hidden=[16], latent_dim=2, seed=0, **kw)


def params(model):
    """Copies of a model's parameters, as NumPy arrays."""
    return [mv.asnumpy(p.data).copy() for p in model.parameters()]


def same_params(a, b):
    """Two models hold exactly the same parameters."""
    for p, q in zip(params(a), params(b)):
        np.testing.assert_array_equal(p, q)


def without_seconds(history):
    """A history without its timings, to compare two runs."""
    return {k: v for k, v in history.items() if k != "seconds"}


def peak_bytes(fn):
    """The most memory Python (and NumPy) held at once while ``fn()`` ran, in bytes."""
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def refused(call, error, match):
    """``call()`` raises ``error`` matching ``match``; returns the message."""
    with pytest.raises(error, match=match) as info:
        call()
    return str(info.value)
