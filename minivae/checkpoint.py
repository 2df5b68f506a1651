"""Checkpoints: a model (and, to resume training, its optimizer and history) in one ``.npz``.

    mv.save(model, "vae.npz")                          # weights + architecture
    model = mv.load("vae.npz")                         # on the active backend
    mv.save(model, "run.npz", optimizer=opt, history=history)
    model, opt, history = mv.resume("run.npz")         # carry on with mv.fit(..., history=history)

The file is a plain NumPy ``.npz``: one array per parameter (and per optimizer buffer) and a
JSON text with the architecture, never a pickle, so loading a checkpoint cannot run code (a file
holding Python objects is refused, not unpickled). Saving is atomic: the file is written under a
temporary name beside the target, flushed to disk, and renamed over it only when complete, so a
crash, a full disk or a denied permission mid-save leaves the previous checkpoint as it was. The
temporary name holds the target's name and the saving process's id, so a save removes what a
save of the same target in a process that died mid-write (kill -9, power cut) left behind.

Loading reads within limits known before it reads anything: the archive may hold at most
:data:`MAX_MEMBERS` arrays, stored uncompressed as :func:`save` writes them (so no small file can
expand into a large one), each exactly as long as its ``.npy`` header says and all of them within
the file's own size; the metadata is at most :data:`MAX_META_BYTES` of JSON (a save refuses
more) nested at most :data:`MAX_META_DEPTH` deep. Every number in the metadata is checked as the
constructor would check it, whole numbers being JSON integers; the architecture must account for
the weights in the file before a model is built, and every array is checked (shape, dtype, finite
values, Adam's ``v`` ≥ 0) before any is copied, so a failed ``load(path, model=m)`` leaves ``m``
untouched.

Anything wrong with a file on loading — missing, truncated, damaged, not a checkpoint, of another
architecture, holding NaN — is a :class:`CheckpointError` with one sentence naming the file.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import struct
import tempfile
import zipfile

import numpy as np

from . import backend, validate
from .models import VAE, Autoencoder
from .optim import SGD, Adam

__all__ = ["CheckpointError", "load", "resume", "save"]

FORMAT = "minivae-checkpoint"
VERSION = 1
SUPPORTED_VERSIONS = (1,)
MODELS = {"ae": Autoencoder, "vae": VAE}
OPTIMIZERS = {"adam": Adam, "sgd": SGD}

MAX_MEMBERS = 4096
"""The most arrays a checkpoint may hold (a 100-layer VAE with Adam's state needs about 1,200)."""
MAX_META_BYTES = 64 * 2**20
"""The largest metadata (architecture, optimizer settings, history) read or written, in bytes as
stored: NumPy keeps 4 bytes per character, so about 16 million characters, the history of some
80,000 epochs."""
MAX_META_DEPTH = 8
"""The deepest nesting of lists and dicts allowed in the metadata (a checkpoint's is 3)."""
MAX_STEPS = 2**53
"""The largest step count ``t`` read (the largest whole number a float holds exactly)."""
_NPY_HEADER_MAX = 10_000  # NumPy's own default bound on a .npy header
_NONNEGATIVE = {("adam", "v")}  # optimizer buffers that are never negative


class CheckpointError(ValueError):
    """A checkpoint that cannot be read: missing, damaged, or of another architecture."""


# -- saving ------------------------------------------------------------------------------------
def save(model, path, optimizer=None, history=None) -> str:
    """Write ``model`` (and optionally ``optimizer`` state and ``history``) to ``path`` (.npz).

    If writing fails (disk full, permission denied, Ctrl-C), an ``OSError`` (or the interrupt)
    is raised and whatever was at ``path`` before is left untouched. A ``history`` that
    :func:`resume` would refuse (not fit's dict of lists of finite numbers) is refused here.
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
        if not _resumable(history):
            raise CheckpointError(
                f"Not saving {path}: the history is not fit's dict of lists of finite numbers "
                "with epochs numbered 1, 2, …, so the checkpoint could not be resumed."
            )
        meta["history"] = history
    arrays["meta"] = np.array(json.dumps(meta))
    if arrays["meta"].nbytes > MAX_META_BYTES:
        raise CheckpointError(
            f"Not saving {path}: its metadata would be {arrays['meta'].nbytes:,} bytes, more than "
            f"the {MAX_META_BYTES:,} a checkpoint may hold (is the history that long?)."
        )

    return write_npz(path, arrays, "checkpoint")


def write_npz(path, arrays: dict, what: str = "checkpoint") -> str:
    """Write ``arrays`` (NumPy arrays by name) to ``path`` as an uncompressed ``.npz``, atomically:
    into a temporary file beside it, flushed to disk, then renamed over ``path``. If writing
    fails, an ``OSError`` names the ``what`` and ``path``, and whatever was at ``path`` is left
    untouched; temporaries that a killed save left for this target are removed first."""
    folder = os.path.dirname(os.path.abspath(path))
    tmp = None
    try:
        os.makedirs(folder, exist_ok=True)
        _remove_stale_temporaries(folder, os.path.basename(path))
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=_temporary_prefix(path), suffix=".npz")
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
            f"Could not save the {what} {path} ({err.strerror or err}); the file that was "
            "there before, if any, is unchanged",
        ) from err
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.remove(tmp)
    return path


def _temporary_prefix(path, pid=None) -> str:
    """``.model.npz.tmp-<pid>-``: the temporaries of one target, and the process writing each."""
    return f".{os.path.basename(path)}.tmp-{os.getpid() if pid is None else pid}-"


def _remove_stale_temporaries(folder, name):
    """Remove the temporaries of ``name`` whose process is gone: what a save killed mid-write
    (kill -9, a power cut) left behind. A save in progress in a live process is left alone."""
    prefix = f".{name}.tmp-"
    with os.scandir(folder) as entries:
        stale = [
            e.path
            for e in entries
            if e.name.startswith(prefix) and not _running(e.name[len(prefix) :].partition("-")[0])
        ]
    for tmp in stale:
        with contextlib.suppress(OSError):
            os.remove(tmp)


def _running(pid: str) -> bool:
    """Whether the process ``pid`` (a decimal string) is alive; True when it cannot be told."""
    if os.name != "posix" or not pid.isdigit():
        return True
    try:
        os.kill(int(pid), 0)  # signal 0: no signal, only the check that the process exists
    except ProcessLookupError:
        return False
    except (OSError, OverflowError):
        return True  # another user's process (EPERM), or a number no process can have
    return True


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


# -- reading within limits -----------------------------------------------------------------------
def _short(value) -> str:
    """``repr(value)``, cut to a readable length (a damaged file may hold a 400-digit number)."""
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:20]}… ({len(text)} characters)"


class Archive:
    """A checkpoint file opened for reading, its directory and every array's ``.npy`` header
    checked and its metadata parsed; arrays are read one at a time, on request, with
    :meth:`read`. Any failure is a CheckpointError naming the file."""

    def __init__(self, path):
        self.path = path
        if not os.path.exists(path):
            raise CheckpointError(f"No checkpoint at {path}.")
        if os.path.isdir(path):
            raise CheckpointError(f"{path} is a folder, not a checkpoint file.")
        if not os.path.isfile(path):  # a pipe or a device: no size known, maybe no end
            raise CheckpointError(f"{path} is not a regular file, so not a checkpoint.")
        try:
            self.file = open(path, "rb")
        except OSError as err:
            raise CheckpointError(f"{path} cannot be read ({err.strerror or err}).") from None
        try:
            with self._reading():
                self._open()
        except BaseException:
            self.close()
            raise

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        zip_ = getattr(self, "zip", None)
        if zip_ is not None:
            zip_.close()
        self.file.close()

    @contextlib.contextmanager
    def _reading(self):
        """Turn any failure to parse the bytes into one CheckpointError naming the file."""
        try:
            yield
        except CheckpointError:
            raise
        except Exception as err:
            raise CheckpointError(
                f"{self.path} is not a readable minivae checkpoint (damaged, truncated or another "
                f"kind of file): {type(err).__name__}: {err}"
            ) from None

    def _open(self):
        path, f = self.path, self.file
        size = os.fstat(f.fileno()).st_size
        if f.read(6) == b"\x93NUMPY":
            raise CheckpointError(f"{path} is a single NumPy array, not a minivae checkpoint.")
        count = _zip_entry_count(f, size)
        if count > MAX_MEMBERS:
            raise CheckpointError(
                f"{path}: its directory lists {count:,} arrays, more than the {MAX_MEMBERS:,} a "
                "minivae checkpoint may hold; it was not read."
            )
        self.zip = zipfile.ZipFile(f)
        infos = self.zip.infolist()
        names = [info.filename for info in infos]
        if len(infos) > MAX_MEMBERS or len(set(names)) != len(names):
            raise CheckpointError(
                f"{path}: its directory lists {len(infos):,} entries for {len(set(names)):,} "
                "names; the file is damaged."
            )
        for info in infos:
            if info.compress_type != zipfile.ZIP_STORED:
                raise CheckpointError(
                    f"{path}: {info.filename} is compressed, which minivae checkpoints never are "
                    "(a small compressed file can inflate to gigabytes), so it was not read."
                )
            if not info.filename.endswith(".npy"):
                raise CheckpointError(f"{path} is a zip archive but not a minivae checkpoint.")
        declared = sum(info.file_size for info in infos)
        if declared > size:
            raise CheckpointError(
                f"{path}: its directory declares {declared:,} bytes of arrays but the file has "
                f"{size:,} bytes; the file is damaged or truncated."
            )
        self.headers = {info.filename[:-4]: self._header(info) for info in infos}
        self.meta = self._meta()

    def _header(self, info):
        """``(shape, dtype, fortran_order, data offset)`` of one member, from its header alone."""
        with self.zip.open(info) as m:
            version = np.lib.format.read_magic(m)
            if version == (1, 0):
                header = np.lib.format.read_array_header_1_0(m, max_header_size=_NPY_HEADER_MAX)
            elif version == (2, 0):
                header = np.lib.format.read_array_header_2_0(m, max_header_size=_NPY_HEADER_MAX)
            else:
                raise ValueError(f"{info.filename} is a .npy file of version {version}")
            start = m.tell()
        shape, fortran, dtype = header
        if dtype.hasobject:
            raise CheckpointError(
                f"{self.path} holds Python objects (pickled data); minivae checkpoints never do, "
                "and unpickling can run arbitrary code, so it was not loaded."
            )
        if min(shape, default=0) < 0 or start + math.prod(shape) * dtype.itemsize != info.file_size:
            raise CheckpointError(
                f"{self.path}: {info.filename} declares shape {shape} of {dtype} but holds "
                f"{info.file_size - start:,} bytes of data; the file is damaged."
            )
        return shape, dtype, fortran, start

    def read(self, key) -> np.ndarray:
        """The array ``key`` as stored; its header has been checked against its length."""
        shape, dtype, fortran, start = self.headers[key]
        size = math.prod(shape)
        with self._reading(), self.zip.open(key + ".npy") as m:
            m.read(start)  # the header, read before
            data = m.read(size * dtype.itemsize)  # the rest, to the end: zipfile checks the CRC
            if len(data) != size * dtype.itemsize:
                raise EOFError(f"{key} is cut short")
        return np.frombuffer(data, dtype=dtype, count=size).reshape(
            shape, order="F" if fortran else "C"
        )

    def _meta(self):
        """The metadata dict: at most MAX_META_BYTES of JSON, nested at most MAX_META_DEPTH."""
        header = self.headers.get("meta")
        meta, too_deep = None, False
        if header is not None and header[0] == () and header[1].kind == "U":
            if header[1].itemsize > MAX_META_BYTES:
                raise CheckpointError(
                    f"{self.path}: its metadata is {header[1].itemsize:,} bytes, more than the "
                    f"{MAX_META_BYTES:,} a minivae checkpoint may hold; it was not read."
                )
            try:
                meta = json.loads(str(self.read("meta")[()]))
                too_deep = _depth(meta) > MAX_META_DEPTH
            except RecursionError:  # the parser's own limit, met before ours
                too_deep = True
            except ValueError:
                meta, too_deep = None, False
        if too_deep:
            raise CheckpointError(
                f"{self.path}: its metadata is nested more than {MAX_META_DEPTH} levels deep; "
                "the file is damaged or not a minivae checkpoint."
            )
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            raise CheckpointError(f"{self.path} is an .npz file but not a minivae checkpoint.")
        version = meta.get("version")
        if type(version) is int and version > VERSION:
            raise CheckpointError(
                f"{self.path} was written by a newer minivae (format version {version!r}; this "
                f"one reads {VERSION}): upgrade minivae to load it."
            )
        if type(version) is not int or version not in SUPPORTED_VERSIONS:
            raise CheckpointError(
                f"{self.path}: its format version is {_short(version)}, which no minivae writes "
                f"(this one reads {', '.join(map(str, SUPPORTED_VERSIONS))}); the file is damaged."
            )
        return meta


def _zip_entry_count(f, size) -> int:
    """The number of entries a zip file's end-of-central-directory record declares, read before
    the directory itself (which can be made as long as the file); -1 when there is none."""
    tail = min(size, 22 + 65_535)  # the record and the longest comment after it
    f.seek(size - tail)
    data = f.read(tail)
    at = data.rfind(b"PK\x05\x06")
    if at < 0 or len(data) - at < 22:
        return -1  # zipfile will say what is wrong
    (count,) = struct.unpack("<H", data[at + 10 : at + 12])
    return count if count != 0xFFFF else MAX_MEMBERS + 1  # 0xFFFF: a ZIP64 count, far too many


def _depth(value) -> int:
    """How deeply lists and dicts nest in a parsed JSON value (without recursion)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, (list, dict)):
            deepest = max(deepest, level)
            if level > MAX_META_DEPTH:
                break
            children = item.values() if isinstance(item, dict) else item
            stack.extend((c, level + 1) for c in children)
    return deepest


def checked_array(archive, key, like, what, nonnegative=False):
    """The stored array ``key``, checked against the array ``like`` it will be copied into:
    shape first (from the header, before reading), then floating-point and finite values."""
    path = archive.path
    shape, dtype, _, _ = archive.headers[key]
    if dtype.kind != "f":
        raise CheckpointError(
            f"{path}: {what} is stored as {dtype}, not as floating-point numbers; the file is "
            "damaged or not a minivae checkpoint."
        )
    if tuple(like.shape) != shape:
        raise CheckpointError(
            f"{path}: {what} has shape {shape} in the file but {tuple(like.shape)} in the "
            "model; the checkpoint is of another architecture."
        )
    src = archive.read(key)
    if not np.all(np.isfinite(src)):
        raise CheckpointError(
            f"{path}: {what} holds {int(np.sum(~np.isfinite(src)))} NaN or infinite values; "
            "the checkpoint is damaged (or was saved from a model whose training blew up)."
        )
    if nonnegative and np.any(src < 0):
        raise CheckpointError(
            f"{path}: {what} holds {int(np.sum(src < 0))} negative values, which this running "
            "mean of squared gradients never has; the checkpoint is damaged."
        )
    return src


def copy_into(dst, src):
    """Copy a checked array into a model's (or optimizer's) array, in place."""
    dst[...] = backend.asarray(
        src, dtype=backend.dtype_name(dst.dtype), namespace=backend.namespace(dst)
    )


# -- loading -----------------------------------------------------------------------------------
def load(path, backend_name: str | None = None, model=None):
    """The model saved at ``path``, on the active backend (or ``backend_name``).

    With ``model=`` an existing Autoencoder or VAE, the weights are copied into it instead (cast
    to its dtype); its architecture must be the one in the file, else a CheckpointError names
    the settings that differ. Every array is checked before any is copied: if the file is
    refused, ``model`` is left as it was.
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


def _check_config(config, path):
    """The architecture in the file, each number checked as the constructor would check it,
    whole numbers being JSON integers: refused before anything is allocated."""

    def refuse(why):
        return CheckpointError(f"{path}: its architecture cannot be built: {why}.")

    if not isinstance(config, dict):
        raise refuse(f"the config is {_short(config)}, not a dict")
    kind = config.get("kind")
    if not (isinstance(kind, str) and kind in MODELS):
        raise CheckpointError(f"{path}: unknown model kind {_short(kind)}.")
    for key in ("input_dim", "latent_dim"):
        if not validate.is_whole(config.get(key), exact_int=True):
            raise refuse(f"{key} is {_short(config.get(key))}, not a whole number ≥ 1")
    hidden = config.get("hidden")
    if not (isinstance(hidden, list) and all(validate.is_whole(h, exact_int=True) for h in hidden)):
        raise refuse(f"hidden is {_short(hidden)}, not a list of whole numbers ≥ 1")
    for key, zero_ok in (("lam", False), ("beta", True)):
        value = config.get(key, 1.0)
        if not (validate.is_finite(value) and (value >= 0 if zero_ok else value > 0)):
            bound = "≥ 0" if zero_ok else "> 0"
            raise refuse(f"{key} is {_short(value)}, not a finite number {bound}")
    return config


def _check_size(kind, config, archive, path):
    """Refuse, before building anything, an architecture with more weights than the file holds
    (a damaged or crafted file could otherwise ask for terabytes)."""
    sizes = [config["input_dim"], *config["hidden"], config["latent_dim"]]
    if kind == "vae":  # the two heads read the last hidden layer: one more latent-sized output
        sizes = [*sizes[:-1], 2 * sizes[-1]]
    layers = list(zip(sizes[:-1], sizes[1:]))
    need = 2 * sum(a * b + b for a, b in layers)  # encoder and decoder mirror each other
    have = sum(math.prod(h[0]) for k, h in archive.headers.items() if k.startswith("param/"))
    if need > 2 * have + 1000:
        raise CheckpointError(
            f"{path}: its architecture needs about {need:,} weights but the file holds {have:,}; "
            "the checkpoint is damaged."
        )


def _load(path, backend_name=None, need_optimizer=False, into=None):
    path = os.fspath(path)
    with Archive(path) as archive:
        meta = archive.meta
        if backend_name is not None:
            backend.set_backend(backend_name)
        config = _check_config(meta.get("config"), path)
        kind = config["kind"]
        if into is not None:
            _check_same_architecture(config, into, path)
            model = into
        else:
            _check_size(kind, config, archive, path)
            build = {k: v for k, v in config.items() if k != "kind"}
            try:
                model = MODELS[kind](**build, seed=None)
            except (KeyError, TypeError, ValueError) as err:
                raise CheckpointError(f"{path}: its architecture cannot be built: {err}") from None
        unknown = sorted(
            k for k in archive.headers if k != "meta" and not k.startswith(("param/", "optim/"))
        )
        if unknown:
            raise CheckpointError(
                f"{path} holds arrays that no minivae checkpoint has ({', '.join(unknown[:3])}"
                f"{', …' if len(unknown) > 3 else ''}); the file is damaged or not a checkpoint."
            )
        params = model.parameters()
        names = {f"param/{p.name}" for p in params}
        stored = {k for k in archive.headers if k.startswith("param/")}
        if names != stored:
            raise CheckpointError(
                f"{path}: the parameters in the file do not match a {kind.upper()} with this "
                f"configuration (missing: {sorted(names - stored)}, extra: "
                f"{sorted(stored - names)})."
            )
        # Every array is read and checked before any is copied: all or nothing.
        weights = [(p, checked_array(archive, f"param/{p.name}", p.data, p.name)) for p in params]
        optimizer, buffers = None, []
        if "optimizer" in meta and into is None:
            optimizer, buffers = _optimizer(meta["optimizer"], params, archive, path)
        elif need_optimizer:
            raise CheckpointError(f"{path} holds no optimizer state: save it with optimizer=opt.")
        history = meta.get("history")
        if need_optimizer and not _resumable(history):
            raise CheckpointError(
                f"{path}: the training history in the file is damaged or missing; load the "
                "weights with mv.load instead and train on from a fresh optimizer."
            )
    for p, src in weights:  # p.data, not an array taken before: the optimizer may move it
        copy_into(p.data, src)
    for buf, src in buffers:
        copy_into(buf, src)
    return model, optimizer, history


def _check_optimizer_settings(stored, path):
    """``(class, kind, t, hyperparameters)`` from the file, each checked as its constructor
    checks it, and more: finite, in range, the step count a whole number from 0 to 2⁵³."""

    def refuse(why):
        return CheckpointError(f"{path}: the optimizer settings in the file are damaged ({why}).")

    if not isinstance(stored, dict):
        raise refuse(f"{_short(stored)} is not a dict")
    hyper = dict(stored)
    kind = hyper.pop("kind", None)
    if not (isinstance(kind, str) and kind in OPTIMIZERS):
        raise refuse(f"unknown kind {_short(kind)}")
    t = hyper.pop("t", None)
    if not (validate.is_whole(t, 0, exact_int=True) and t <= MAX_STEPS):
        raise refuse(f"step count t={_short(t)}; expected a whole number from 0 to 2**53")
    unit = (lambda b: validate.is_finite(b) and 0 <= b < 1, "a number in [0, 1)")
    rules = {
        "lr": (lambda v: validate.is_finite(v) and v > 0, "a positive finite number"),
        "eps": (lambda v: validate.is_finite(v) and 0 < v < 1, "a small positive number below 1"),
        "momentum": unit,
        "betas": (
            lambda v: isinstance(v, list) and len(v) == 2 and all(unit[0](b) for b in v),
            "two numbers in [0, 1)",
        ),
    }
    for name, value in hyper.items():
        if name not in rules:
            raise refuse(f"unknown setting {_short(name)}")
        ok, expected = rules[name]
        if not ok(value):
            raise refuse(f"{name}={_short(value)}; expected {expected}")
    return OPTIMIZERS[kind], kind, t, hyper


def _optimizer(stored, params, archive, path):
    """The optimizer stored in the file, rebuilt, and ``(buffer, stored array)`` pairs to copy
    in once everything is checked."""
    cls, kind, t, hyper = _check_optimizer_settings(stored, path)
    try:
        optimizer = cls(params, **hyper)
    except (TypeError, ValueError) as err:
        raise CheckpointError(
            f"{path}: the optimizer settings in the file are damaged ({type(err).__name__}: {err})."
        ) from None
    missing = sorted(set(optimizer.hyperparameters()) - set(hyper))
    if missing:
        raise CheckpointError(
            f"{path}: the optimizer settings in the file are damaged ({', '.join(missing)} "
            "missing)."
        )
    optimizer.t = t
    copies, expected = [], set()
    for name, bufs in optimizer.buffers().items():
        for p, buf in zip(params, bufs):
            key = f"optim/{name}/{p.name}"
            expected.add(key)
            if key not in archive.headers:
                raise CheckpointError(f"{path}: the optimizer state {key} is missing.")
            nonnegative = (kind, name) in _NONNEGATIVE
            copies.append(
                (buf, checked_array(archive, key, buf, f"{name} of {p.name}", nonnegative))
            )
    extra = sorted(k for k in archive.headers if k.startswith("optim/") and k not in expected)
    if extra:
        raise CheckpointError(
            f"{path}: the file holds optimizer state that {cls.__name__} does not have "
            f"({', '.join(extra[:3])}{', …' if len(extra) > 3 else ''}); the file is damaged."
        )
    return optimizer, copies


def _resumable(history) -> bool:
    """A history that fit can carry on: a dict of lists of finite numbers, epochs numbered 1, 2,
    … (a list may be shorter than "epoch", e.g. validation numbers of a run that began without)."""
    if not (isinstance(history, dict) and isinstance(history.get("epoch"), list)):
        return False
    n = len(history["epoch"])
    return (
        all(type(e) is int for e in history["epoch"])
        and history["epoch"] == list(range(1, n + 1))
        and all(
            isinstance(v, list) and len(v) <= n and all(validate.is_finite(e) for e in v)
            for v in history.values()
        )
    )
