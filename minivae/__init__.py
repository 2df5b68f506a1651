"""minivae: from a plain autoencoder to a variational autoencoder, every gradient by hand.

import minivae as mv
model = mv.VAE(input_dim=784, hidden=[400], latent_dim=20)
terms = model.loss(x); model.backward()
opt = mv.Adam(model.parameters(), lr=1e-3); opt.step(); model.zero_grad()
"""

import os as _os
import sys as _sys

# NumPy's matrix products run in OpenBLAS, whose idle threads keep spinning for about 0.1 s after
# each product before they sleep, and hold a core all that time. A training step alternates
# products with element-wise work that minivae splits over the cores (see minivae.parallel), so
# we ask them to sleep after 2¹⁹ clock cycles (a fraction of a millisecond) instead: the spin
# still bridges the short gaps between the products of one pass. OpenBLAS reads this once, when
# NumPy loads it, so it only takes effect when minivae is imported before NumPy (as
# ``python -m minivae`` does), and a value already set is kept.
_blas_set_up = "numpy" not in _sys.modules or "OPENBLAS_THREAD_TIMEOUT" in _os.environ
if "numpy" not in _sys.modules:
    _os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "19")

from . import (
    backend,
    checkpoint,
    datasets,
    diffusion,
    evaluate,
    gradcheck,
    losses,
    metrics,
    nn,
    parallel,
    sampling,
    train,
    validate,
)
from .backend import (
    BackendError,
    asarray,
    asnumpy,
    available_backends,
    get_backend,
    rng,
    set_backend,
    set_dtype,
)
from .checkpoint import load, resume, save
from .models import VAE, Autoencoder, Classifier, LossTerms
from .optim import SGD, Adam
from .train import KLWarmup, NonFiniteLossError, SaveEachEpoch, fit
from .validate import InputError

# Imported after NumPy, OpenBLAS's threads spin on the other cores: then split only if asked to.
parallel.SPLIT_BY_DEFAULT = _blas_set_up

__version__ = "0.1.0"

__all__ = [
    "Adam",
    "Autoencoder",
    "BackendError",
    "Classifier",
    "InputError",
    "KLWarmup",
    "LossTerms",
    "NonFiniteLossError",
    "SGD",
    "SaveEachEpoch",
    "VAE",
    "asarray",
    "asnumpy",
    "available_backends",
    "backend",
    "checkpoint",
    "datasets",
    "diffusion",
    "evaluate",
    "fit",
    "get_backend",
    "gradcheck",
    "load",
    "losses",
    "metrics",
    "nn",
    "parallel",
    "plots",
    "resume",
    "rng",
    "sampling",
    "save",
    "set_backend",
    "set_dtype",
    "train",
    "validate",
    "xp",
]


def __getattr__(name):
    # mv.xp always reads the *current* namespace, which set_backend changes.
    if name == "xp":
        return backend.xp
    if name == "plots":  # imported on first use: it brings in matplotlib
        import importlib

        return importlib.import_module(".plots", __name__)
    raise AttributeError(f"module 'minivae' has no attribute {name!r}")
