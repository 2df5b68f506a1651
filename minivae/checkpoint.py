"""Checkpoints: a model (and, to resume training, its optimizer and history) in one ``.npz``.

    mv.save(model, "vae.npz")                          # weights + architecture
    model = mv.load("vae.npz")                         # on the active backend
    mv.save(model, "run.npz", optimizer=opt, history=history)
    model, opt, history = mv.resume("run.npz")         # carry on with mv.fit(..., history=history)

The file is a plain NumPy ``.npz``: one array per parameter (and per optimizer buffer) and a
JSON text with the architecture, never a pickle, so loading a checkpoint cannot run code.
Saving is atomic: the file is written under a temporary name beside the target and renamed
over it only when complete, so a crash mid-save leaves the previous checkpoint as it was.
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile

import numpy as np

from . import backend
from .models import VAE, Autoencoder
from .optim import SGD, Adam

__all__ = ["CheckpointError", "load", "resume", "save"]

FORMAT = "minivae-checkpoint"
VERSION = 1
MODELS = {"ae": Autoencoder, "vae": VAE}
OPTIMIZERS = {"adam": Adam, "sgd": SGD}


class CheckpointError(ValueError):
    """A checkpoint that cannot be read: missing, damaged, or of another architecture."""


def save(model, path, optimizer=None, history=None) -> str:
    """Write ``model`` (and optionally ``optimizer`` state and ``history``) to ``path`` (.npz)."""
    if getattr(model, "config", {}).get("kind") not in MODELS:
        name = type(model).__name__
        raise CheckpointError(f"Only autoencoders and VAEs can be saved, not a {name}.")
    path = os.fspath(path)
    arrays = {f"param/{p.name}": backend.asnumpy(p.data) for p in model.parameters()}
    meta = {"format": FORMAT, "version": VERSION, "config": model.config}
    if optimizer is not None:
        kind = {Adam: "adam", SGD: "sgd"}[type(optimizer)]
        meta["optimizer"] = {"kind": kind, "t": optimizer.t, **optimizer.hyperparameters()}
        for name, bufs in optimizer.buffers().items():
            for p, buf in zip(model.parameters(), bufs):
                arrays[f"optim/{name}/{p.name}"] = backend.asnumpy(buf)
    if history is not None:
        meta["history"] = history
    arrays["meta"] = np.array(json.dumps(meta))

    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=".npz")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)  # atomic on POSIX and Windows: the old file or the new, never half
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return path


def _read(path):
    path = os.fspath(path)
    if not os.path.exists(path):
        raise CheckpointError(f"No checkpoint at {path}.")
    try:
        with np.load(path, allow_pickle=False) as data:  # allow_pickle=False: never run code
            arrays = {k: data[k] for k in data.files}
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as err:
        raise CheckpointError(
            f"{path} is not a readable minivae checkpoint (damaged, truncated or another kind "
            f"of file): {err}"
        ) from None
    try:
        meta = json.loads(str(arrays.pop("meta")))
    except (KeyError, ValueError):
        meta = None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{path} is an .npz file but not a minivae checkpoint.")
    return meta, arrays


def _put(dst, src: np.ndarray, what: str, path: str):
    if tuple(dst.shape) != src.shape:
        raise CheckpointError(
            f"{path}: {what} has shape {src.shape} in the file but {tuple(dst.shape)} in the "
            "model; the checkpoint is of another architecture."
        )
    dst[...] = backend.asarray(
        src, dtype=backend.dtype_name(dst.dtype), namespace=backend.namespace(dst)
    )


def load(path, backend_name: str | None = None):
    """The model saved at ``path``, on the active backend (or ``backend_name``)."""
    model, _, _ = _load(path, backend_name)
    return model


def resume(path, backend_name: str | None = None):
    """``(model, optimizer, history)`` from a checkpoint saved with an optimizer and history."""
    model, optimizer, history = _load(path, backend_name, need_optimizer=True)
    return model, optimizer, history


def _load(path, backend_name=None, need_optimizer=False):
    path = os.fspath(path)
    meta, arrays = _read(path)
    if backend_name is not None:
        backend.set_backend(backend_name)
    config = dict(meta["config"])
    kind = config.pop("kind", None)
    if kind not in MODELS:
        raise CheckpointError(f"{path}: unknown model kind {kind!r}.")
    try:
        model = MODELS[kind](**config, seed=None)
    except (TypeError, ValueError) as err:
        raise CheckpointError(f"{path}: its architecture cannot be built: {err}") from None
    params = model.parameters()
    names = {f"param/{p.name}" for p in params}
    stored = {k for k in arrays if k.startswith("param/")}
    if names != stored:
        raise CheckpointError(
            f"{path}: the parameters in the file do not match a {kind.upper()} with this "
            f"configuration (missing: {sorted(names - stored)}, extra: {sorted(stored - names)})."
        )
    for p in params:
        _put(p.data, arrays[f"param/{p.name}"], p.name, path)

    optimizer = None
    if "optimizer" in meta:
        hyper = dict(meta["optimizer"])
        cls = OPTIMIZERS[hyper.pop("kind")]
        t = hyper.pop("t")
        optimizer = cls(params, **hyper)
        optimizer.t = int(t)
        for name, bufs in optimizer.buffers().items():
            for p, buf in zip(params, bufs):
                _put(buf, arrays[f"optim/{name}/{p.name}"], f"{name} of {p.name}", path)
    elif need_optimizer:
        raise CheckpointError(f"{path} holds no optimizer state: save it with optimizer=opt.")
    return model, optimizer, meta.get("history")
