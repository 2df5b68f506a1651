"""Checkpoints: a model (and, to resume training, its optimizer and history) in one ``.npz``.

    mv.save(model, "vae.npz")                          # weights + architecture
    model = mv.load("vae.npz")                         # on the active backend
    mv.save(model, "run.npz", optimizer=opt, history=history)
    model, opt, history = mv.resume("run.npz")         # carry on with mv.fit(..., history=history)

The file is a plain NumPy ``.npz``: one array per parameter (and per optimizer buffer) and a
JSON text with the architecture, never a pickle, so loading a checkpoint cannot run code (a file
holding Python objects is refused, not unpickled). Saving is atomic: the file is written under a
temporary name beside the target, flushed to disk, and renamed over it only when complete, so a
crash, a full disk or a denied permission mid-save leaves the previous checkpoint as it was.

Anything wrong with a file on loading — missing, truncated, damaged, not a checkpoint, of another
architecture, holding NaN — is a :class:`CheckpointError` with one sentence naming the file.
"""

from __future__ import annotations

import json
import math
import os
import tempfile

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
    """Write ``model`` (and optionally ``optimizer`` state and ``history``) to ``path`` (.npz).

    If writing fails (disk full, permission denied, Ctrl-C), an ``OSError`` (or the interrupt)
    is raised and whatever was at ``path`` before is left untouched.
    """
    if getattr(model, "config", {}).get("kind") not in MODELS:
        name = type(model).__name__
        raise CheckpointError(f"Only autoencoders and VAEs can be saved, not a {name}.")
    path = os.fspath(path)
    arrays = {f"param/{p.name}": backend.asnumpy(p.data) for p in model.parameters()}
    meta = {"format": FORMAT, "version": VERSION, "config": model.config}
    if optimizer is not None:
        kind = (
            "adam" if isinstance(optimizer, Adam) else "sgd" if isinstance(optimizer, SGD) else None
        )
        if kind is None:
            raise CheckpointError(
                f"Only Adam and SGD optimizers can be saved, not a {type(optimizer).__name__}."
            )
        meta["optimizer"] = {"kind": kind, "t": optimizer.t, **optimizer.hyperparameters()}
        for name, bufs in optimizer.buffers().items():
            for p, buf in zip(model.parameters(), bufs):
                arrays[f"optim/{name}/{p.name}"] = backend.asnumpy(buf)
    if history is not None:
        meta["history"] = history
    arrays["meta"] = np.array(json.dumps(meta))

    folder = os.path.dirname(os.path.abspath(path))
    tmp = None
    try:
        os.makedirs(folder, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=".npz")
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, _file_mode(path))
        os.replace(tmp, path)  # atomic on POSIX and Windows: the old file or the new, never half
        tmp = None
        _sync_folder(folder)
    except OSError as err:
        raise OSError(
            err.errno,
            f"Could not save the checkpoint {path} ({err.strerror or err}); the file that was "
            "there before, if any, is unchanged",
        ) from err
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.remove(tmp)
    return path


def _file_mode(path) -> int:
    """The permissions for a new checkpoint: those of the file it replaces, else rw-r--r--
    less the umask (mkstemp makes its files private to the owner)."""
    try:
        return os.stat(path).st_mode & 0o777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def _sync_folder(folder):
    """Flush the rename itself to disk (POSIX); a no-op where folders cannot be opened."""
    if os.name != "posix":
        return
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _read(path):
    """``(meta, arrays)`` of the file at ``path``, or a CheckpointError saying what is wrong."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise CheckpointError(f"No checkpoint at {path}.")
    if os.path.isdir(path):
        raise CheckpointError(f"{path} is a folder, not a checkpoint file.")
    try:
        data = np.load(path, allow_pickle=False)  # allow_pickle=False: never run code
        if not isinstance(data, np.lib.npyio.NpzFile):
            raise CheckpointError(f"{path} is a single NumPy array, not a minivae checkpoint.")
        with data:
            arrays = {k: data[k] for k in data.files}
    except CheckpointError:
        raise
    except Exception as err:  # any failure to parse the bytes: the file is not a checkpoint
        if "pickle" in str(err).lower():
            raise CheckpointError(
                f"{path} holds Python objects (pickled data); minivae checkpoints never do, "
                "and unpickling can run arbitrary code, so it was not loaded."
            ) from None
        raise CheckpointError(
            f"{path} is not a readable minivae checkpoint (damaged, truncated or another kind "
            f"of file): {type(err).__name__}: {err}"
        ) from None
    meta = None
    raw = arrays.pop("meta", None)
    if raw is not None and raw.shape == () and raw.dtype.kind == "U":
        try:
            meta = json.loads(str(raw))
        except ValueError:
            meta = None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{path} is an .npz file but not a minivae checkpoint.")
    version = meta.get("version")
    if not isinstance(version, int) or version > VERSION:
        raise CheckpointError(
            f"{path} was written by a newer minivae (format version {version!r}; this one "
            f"reads {VERSION}): upgrade minivae to load it."
        )
    return meta, arrays


def _put(dst, src: np.ndarray, what: str, path: str):
    """Copy a stored array into a model's (or optimizer's) array, checking it on the way."""
    if src.dtype.kind != "f":
        raise CheckpointError(
            f"{path}: {what} is stored as {src.dtype}, not as floating-point numbers; the file is "
            "damaged or not a minivae checkpoint."
        )
    if tuple(dst.shape) != src.shape:
        raise CheckpointError(
            f"{path}: {what} has shape {src.shape} in the file but {tuple(dst.shape)} in the "
            "model; the checkpoint is of another architecture."
        )
    if not np.all(np.isfinite(src)):
        raise CheckpointError(
            f"{path}: {what} holds {int(np.sum(~np.isfinite(src)))} NaN or infinite values; "
            "the checkpoint is damaged (or was saved from a model whose training blew up)."
        )
    dst[...] = backend.asarray(
        src, dtype=backend.dtype_name(dst.dtype), namespace=backend.namespace(dst)
    )


def load(path, backend_name: str | None = None, model=None):
    """The model saved at ``path``, on the active backend (or ``backend_name``).

    With ``model=`` an existing Autoencoder or VAE, the weights are copied into it instead (cast
    to its dtype); its architecture must be the one in the file, else a CheckpointError names
    the settings that differ.
    """
    model, _, _ = _load(path, backend_name, into=model)
    return model


def resume(path, backend_name: str | None = None):
    """``(model, optimizer, history)`` from a checkpoint saved with an optimizer and history."""
    model, optimizer, history = _load(path, backend_name, need_optimizer=True)
    return model, optimizer, history


_ARCHITECTURE = ("kind", "input_dim", "hidden", "latent_dim", "likelihood", "activation")


def _check_same_architecture(config, model, path):
    """The file's architecture against an existing model's; the dtype, β and λ may differ."""
    mine = getattr(model, "config", None)
    if not isinstance(mine, dict) or mine.get("kind") not in MODELS:
        raise CheckpointError(
            f"{path}: can only load into an Autoencoder or VAE, not a {type(model).__name__}."
        )
    diffs = [
        f"{key} is {config.get(key)!r} in the file but {mine.get(key)!r} in the model"
        for key in _ARCHITECTURE
        if config.get(key) != mine.get(key)
    ]
    if diffs:
        raise CheckpointError(
            f"{path} holds another architecture than this model: {'; '.join(diffs)}."
        )


def _check_size(kind, config, arrays, path):
    """Refuse, before building anything, an architecture with more weights than the file holds
    (a damaged or crafted file could otherwise ask for terabytes)."""
    sizes = [config["input_dim"], *config["hidden"], config["latent_dim"]]
    if not all(isinstance(n, int) and n >= 1 for n in sizes):
        return  # building the model will say what is wrong
    if kind == "vae":  # the two heads read the last hidden layer: one more latent-sized output
        sizes = [*sizes[:-1], 2 * sizes[-1]]
    layers = list(zip(sizes[:-1], sizes[1:]))
    need = 2 * sum(a * b + b for a, b in layers)  # encoder and decoder mirror each other
    have = sum(a.size for k, a in arrays.items() if k.startswith("param/"))
    if need > 2 * have + 1000:
        raise CheckpointError(
            f"{path}: its architecture needs about {need:,} weights but the file holds {have:,}; "
            "the checkpoint is damaged."
        )


def _load(path, backend_name=None, need_optimizer=False, into=None):
    path = os.fspath(path)
    meta, arrays = _read(path)
    if backend_name is not None:
        backend.set_backend(backend_name)
    try:
        config = dict(meta["config"])
        kind = config.get("kind")
        if kind not in MODELS:
            raise CheckpointError(f"{path}: unknown model kind {kind!r}.")
        if into is not None:
            _check_same_architecture(config, into, path)
            model = into
        else:
            _check_size(kind, config, arrays, path)
            build = {k: v for k, v in config.items() if k != "kind"}
            model = MODELS[kind](**build, seed=None)
    except CheckpointError:
        raise
    except (KeyError, TypeError, ValueError) as err:
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
    if "optimizer" in meta and into is None:
        optimizer = _optimizer(meta["optimizer"], params, arrays, path)
    elif need_optimizer:
        raise CheckpointError(f"{path} holds no optimizer state: save it with optimizer=opt.")
    history = meta.get("history")
    if need_optimizer:
        _check_history(history, path)
    return model, optimizer, history


def _optimizer(hyper, params, arrays, path):
    """Rebuild the optimizer stored in the file, its step count and running buffers."""
    try:
        hyper = dict(hyper)
        cls = OPTIMIZERS[hyper.pop("kind")]
        t = hyper.pop("t")
        if not (isinstance(t, int) and t >= 0):
            raise ValueError(f"step count t={t!r}")
        optimizer = cls(params, **hyper)
    except (KeyError, TypeError, ValueError) as err:
        raise CheckpointError(
            f"{path}: the optimizer settings in the file are damaged ({type(err).__name__}: {err})."
        ) from None
    optimizer.t = t
    for name, bufs in optimizer.buffers().items():
        for p, buf in zip(params, bufs):
            key = f"optim/{name}/{p.name}"
            if key not in arrays:
                raise CheckpointError(f"{path}: the optimizer state {key} is missing.")
            _put(buf, arrays[key], f"{name} of {p.name}", path)
    return optimizer


def _check_history(history, path):
    """A history that fit can carry on: a dict of lists of numbers, epochs numbered 1, 2, …
    (a list may be shorter than "epoch", e.g. validation numbers of a run that began without)."""
    ok = isinstance(history, dict) and isinstance(history.get("epoch"), list)
    if ok:
        n = len(history["epoch"])
        ok = history["epoch"] == list(range(1, n + 1)) and all(
            isinstance(v, list)
            and len(v) <= n
            and all(isinstance(e, (int, float)) and math.isfinite(e) for e in v)
            for v in history.values()
        )
    if not ok:
        raise CheckpointError(
            f"{path}: the training history in the file is damaged or missing; load the weights "
            "with mv.load instead and train on from a fresh optimizer."
        )
