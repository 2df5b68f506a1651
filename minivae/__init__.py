"""minivae: from a plain autoencoder to a variational autoencoder, every gradient by hand.

import minivae as mv
model = mv.VAE(input_dim=784, hidden=[400], latent_dim=20)
terms = model.loss(x); model.backward()
opt = mv.Adam(model.parameters(), lr=1e-3); opt.step(); model.zero_grad()
"""

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
    sampling,
    synthetic,
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
from .optim import SGD, Adam, ReplacedArrayError
from .train import KLWarmup, NonFiniteLossError, SaveEachEpoch, fit
from .validate import InputError, SettingError

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
    "ReplacedArrayError",
    "SGD",
    "SaveEachEpoch",
    "SettingError",
    "VAE",
    "asarray",
    "asnumpy",
    "available_backends",
    "backend",
    "checkpoint",
    "datasets",
    "diffusion",
    "evaluate",
    "fast",
    "fit",
    "get_backend",
    "gradcheck",
    "load",
    "losses",
    "metrics",
    "nn",
    "plots",
    "resume",
    "rng",
    "sampling",
    "save",
    "set_backend",
    "set_dtype",
    "synthetic",
    "train",
    "validate",
    "xp",
]


def __getattr__(name):
    # mv.xp always reads the *current* namespace, which set_backend changes.
    if name == "xp":
        return backend.xp
    if name in ("plots", "fast"):  # imported on first use: they bring in matplotlib, numba
        import importlib

        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'minivae' has no attribute {name!r}")
