"""Datasets: an embedded MNIST subset, synthetic shapes, and full MNIST / Fashion-MNIST.

Every loader returns ``(x, y)``: ``x`` is a float32 NumPy array of shape ``(N, 784)`` with pixel
values in [0, 1] (28 × 28 images, flattened row by row) and ``y`` an int64 array of ``N`` labels::

    from minivae import datasets
    x, y = datasets.load("embedded")                       # 4,000 MNIST digits, no network
    x, y = datasets.load("mnist", split="test")            # downloaded once, then cached
    x, y = datasets.load("fashion-mnist", data_dir="../shared/datasets/fashion-mnist")
    x, y, factors = datasets.shapes(1000, seed=0)          # minivae/synthetic.py

Where the data comes from:

``"embedded"`` (alias ``"mnist-small"``) and ``"fashion-small"``
    Small real subsets stored inside the package (``minivae/data/``), so lessons and tests need no
    network: 4,000 + 1,000 MNIST digits and 800 + 200 Fashion-MNIST images (train + test). See
    ``minivae/data/README.md`` for their sources and licences.
``"mnist"`` and ``"fashion-mnist"``
    The full datasets (60,000 + 10,000 images). On first use the four original IDX ``.gz`` files
    are downloaded from a public mirror with ``pooch``, checked against their SHA-256 digests and
    kept in a cache folder (see :func:`cache_dir`; the ``MINIVAE_DATA`` environment variable
    moves it). With ``data_dir=...`` they are read from that folder instead, with no network.
``"shapes"``
    Synthetic 28 × 28 images of one shape each, generated on the fly (:mod:`minivae.synthetic`).

A download is written to a temporary file and only moved into the cache once its SHA-256
matches, so a failed or tampered download never leaves a file that a later call would trust.

Every read is bounded before it starts: a download stops as soon as it runs past the most its
file can be (:data:`RAW_SIZES` plus gzip's overhead), a local ``.gz`` is inflated only up to its
dataset file's size, and :func:`read_idx` reads at most :data:`MAX_IDX_DIMS` dimensions and only
as much data as the header declares (and ``max_bytes`` allows), so a small file that would
inflate to gigabytes is refused after a few bytes.
"""

from __future__ import annotations

import contextlib
import functools
import gzip
import hashlib
import io
import logging
import math
import os
import stat
import zlib
from pathlib import Path
from typing import NamedTuple

import numpy as np

from .synthetic import SHAPE_NAMES, shapes  # mv.datasets.shapes and load("shapes")
from .validate import DatasetError

__all__ = [
    "CLASS_NAMES",
    "DATASETS",
    "DIGESTS",
    "MIRRORS",
    "SHAPE_NAMES",
    "SPLITS",
    "DatasetError",
    "cache_dir",
    "embedded",
    "load",
    "read_idx",
    "shapes",
]


DATASETS = ("embedded", "mnist-small", "fashion-small", "mnist", "fashion-mnist", "shapes")
SPLITS = ("train", "test")

_DIGITS = tuple(str(d) for d in range(10))
# Class names as listed in the Fashion-MNIST README (github.com/zalandoresearch/fashion-mnist).
_FASHION = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)

CLASS_NAMES = {
    "embedded": _DIGITS,
    "mnist-small": _DIGITS,
    "mnist": _DIGITS,
    "fashion-small": _FASHION,
    "fashion-mnist": _FASHION,
    "shapes": SHAPE_NAMES,
}
"""For each dataset name, the meaning of label ``k`` is ``CLASS_NAMES[name][k]``."""


# --------------------------------------------------------------------------------------------
# Where the full datasets come from, and what their files must hash to.

MIRRORS = {
    "mnist": [
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
    ],
    # Plain HTTP is the address Fashion-MNIST publishes; the SHA-256 check below is what makes
    # the download trustworthy, not the transport.
    "fashion-mnist": ["http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"],
}
"""Base URLs tried in order. Setting ``MINIVAE_MIRROR=<url>`` replaces them all with
``<url>/mnist/`` and ``<url>/fashion-mnist/`` (a copy of the cache folder's layout)."""

FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}


class Digests(NamedTuple):
    """The SHA-256 digests of one file of a full data set."""

    gz: str
    """Of the .gz file exactly as the mirrors serve it. Source: TensorFlow Datasets,
    tensorflow_datasets/url_checksums/mnist.txt and fashion_mnist.txt (Apache-2.0); the two MNIST
    t10k digests also match the original MNIST test files (whose MD5s are the published ones)."""
    raw: str
    """Of the *decompressed* IDX bytes. A local copy may have been recompressed (Debian's
    Fashion-MNIST package is), which changes the .gz digest but not this one. Fashion-MNIST: the
    digests of the files in Debian's dataset-fashion-mnist, which public projects also list for
    upstream's files. MNIST t10k: those of the original test files. MNIST train: those several
    independent public projects list, not checked against a copy; a copy whose .gz matches is
    accepted without them."""


DIGESTS = {
    ("mnist", "train-images-idx3-ubyte.gz"): Digests(
        "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
        "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    ),
    ("mnist", "train-labels-idx1-ubyte.gz"): Digests(
        "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
        "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    ),
    ("mnist", "t10k-images-idx3-ubyte.gz"): Digests(
        "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
        "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    ),
    ("mnist", "t10k-labels-idx1-ubyte.gz"): Digests(
        "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
        "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
    ),
    ("fashion-mnist", "train-images-idx3-ubyte.gz"): Digests(
        "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
        "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    ),
    ("fashion-mnist", "train-labels-idx1-ubyte.gz"): Digests(
        "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
        "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    ),
    ("fashion-mnist", "t10k-images-idx3-ubyte.gz"): Digests(
        "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
        "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    ),
    ("fashion-mnist", "t10k-labels-idx1-ubyte.gz"): Digests(
        "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
        "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
    ),
}
"""(data set, file name) → its :class:`Digests`: one row per file of the full data sets."""

# The size of each file once decompressed (the same for MNIST and Fashion-MNIST): a header of
# 4 + 4·ndim bytes and one byte per pixel or label. Nothing longer is ever inflated or read, and
# no download or local .gz file may be longer than _gz_limit of it (a gzip of incompressible
# data is a little longer than the data itself; a real one is far shorter).
RAW_SIZES = {
    "train-images-idx3-ubyte.gz": 16 + 60_000 * 28 * 28,
    "train-labels-idx1-ubyte.gz": 8 + 60_000,
    "t10k-images-idx3-ubyte.gz": 16 + 10_000 * 28 * 28,
    "t10k-labels-idx1-ubyte.gz": 8 + 10_000,
}


def _gz_limit(raw_size):
    """The most bytes a .gz file of ``raw_size`` bytes of data is allowed to have."""
    return raw_size + raw_size // 100 + 65_536


MAX_IDX_BYTES = 2**30
"""The most bytes of data :func:`read_idx` reads unless told a smaller limit (1 GiB; the largest
MNIST file has 47 MB)."""
MAX_IDX_DIMS = 4
"""The most dimensions an IDX header may declare (MNIST's files have 1 or 3)."""

_DATA_DIR = Path(__file__).with_name("data")
_EMBEDDED_FILES = {"mnist-small": "mnist_small.npz.xz", "fashion-small": "fashion_small.npz.xz"}
_SHAPES_SPLITS = {"train": (10_000, 0), "test": (2_000, 1)}  # (number of images, seed)


# --------------------------------------------------------------------------------------------
# The public entry point


def load(name, split="train", data_dir=None, download=True, progress=True):
    """Load a dataset split as ``(x, y)``: float32 ``(N, 784)`` in [0, 1] and int64 ``(N,)``.

    Parameters
    ----------
    name : str
        ``"embedded"`` (alias ``"mnist-small"``), ``"fashion-small"``, ``"mnist"``,
        ``"fashion-mnist"`` or ``"shapes"``.
    split : str
        ``"train"`` or ``"test"``.
    data_dir : str or Path, optional
        For ``"mnist"`` / ``"fashion-mnist"``: a folder holding the original IDX files
        (``train-images-idx3-ubyte.gz`` ..., gzipped or not). They are read from there with no
        network use, after checking their SHA-256. Ignored by the other datasets.
    download : bool
        If False, never touch the network: use the cache or fail.
    progress : bool
        Show a progress bar while downloading.
    """
    key = _canonical_name(name)
    if split not in SPLITS:
        raise DatasetError(
            f"unknown split {split!r} for dataset {name!r}; choose one of: "
            + ", ".join(repr(s) for s in SPLITS)
            + "."
        )
    if key in _EMBEDDED_FILES:
        return _load_embedded(key, split)
    if key == "shapes":
        n, seed = _SHAPES_SPLITS[split]
        x, y, _ = shapes(n, seed=seed)
        return x, y
    return _load_full(key, split, data_dir=data_dir, download=download, progress=progress)


def embedded(split="train", dataset="mnist"):
    """The dataset shipped inside minivae, as ``(x, y)``; works offline.

    ``dataset="mnist"`` gives 4,000 train / 1,000 test MNIST digits (400 / 100 of each digit,
    all drawn from the MNIST training set); ``dataset="fashion-mnist"`` gives 800 / 200
    Fashion-MNIST images (80 / 20 of each class, from the upstream train / test files).
    """
    choices = {"mnist": "mnist-small", "fashion-mnist": "fashion-small"}
    if dataset not in choices:
        raise DatasetError(f"no embedded dataset {dataset!r}; choose 'mnist' or 'fashion-mnist'.")
    return load(choices[dataset], split=split)


def cache_dir(name=None):
    """The folder where downloads are kept: ``$MINIVAE_DATA`` if set, else the per-user cache.

    The per-user cache is ``pooch.os_cache("minivae")``, e.g. ``~/.cache/minivae`` on Linux.
    Each dataset gets its own subfolder (``cache_dir("mnist")``), since MNIST and Fashion-MNIST
    use the same file names.
    """
    root = os.environ.get("MINIVAE_DATA")
    if not root:
        import pooch

        root = pooch.os_cache("minivae")
    root = Path(root).expanduser()
    return root / name if name else root


def _canonical_name(name):
    key = str(name).strip().lower().replace("_", "-")
    if key == "embedded":
        return "mnist-small"
    if key not in DATASETS:
        raise DatasetError(
            f"unknown dataset {name!r}; choose one of: "
            + ", ".join(repr(d) for d in DATASETS)
            + "."
        )
    return key


# --------------------------------------------------------------------------------------------
# The strict IDX reader

_IDX_TYPES = {
    0x08: "unsigned byte",
    0x09: "signed byte",
    0x0B: "int16",
    0x0C: "int32",
    0x0D: "float32",
    0x0E: "float64",
}


def read_idx(source, name=None, max_bytes=MAX_IDX_BYTES):
    """Read an IDX file of unsigned bytes (the MNIST format) into a uint8 array.

    ``source`` is a path or the file's bytes, gzipped (recognised by its first two bytes) or not.
    The format is a 4-byte magic number ``00 00 08 ndim`` (08 = unsigned bytes), then ``ndim``
    big-endian uint32 sizes, then exactly ``prod(sizes)`` bytes of data in C order.

    The file is read as a stream, within limits known before reading: at most
    :data:`MAX_IDX_DIMS` dimensions, and no more than ``max_bytes`` of data (the dimensions in
    the header are checked against it first); gzip data is inflated only as far as the header
    says, so a small .gz that would inflate to gigabytes is refused after a few bytes.

    Anything else raises :class:`DatasetError` with a message naming the file (``name`` if
    given, else the path) and what is wrong: not an IDX file, another element type, a header or
    payload cut short, or extra bytes after the data.
    """
    if isinstance(source, (bytes, bytearray, memoryview)):
        label, stream = name or "<bytes>", io.BytesIO(bytes(source))
    else:
        label = name or str(source)
        try:
            if not stat.S_ISREG(os.stat(source).st_mode):  # a folder, a pipe, a device
                raise DatasetError(f"{label}: not a regular file, so not an IDX file.")
            stream = open(source, "rb")
        except OSError as err:
            raise DatasetError(f"{label}: cannot be read ({err.strerror or err}).") from None
    with stream:
        zipped = stream.read(2) == b"\x1f\x8b"  # the gzip magic number
        total = stream.seek(0, os.SEEK_END)  # the length of the data, when not gzipped
        stream.seek(0)
        if not zipped:
            return _read_idx(stream, label, total, max_bytes)
        try:
            with gzip.GzipFile(fileobj=stream) as inflated:
                return _read_idx(inflated, label, None, max_bytes)
        except (EOFError, OSError, zlib.error) as err:
            raise DatasetError(f"{label}: the gzip data is damaged or cut short ({err}).") from None


def _read_idx(f, label, total, max_bytes):
    """The IDX array in the stream ``f`` (``total`` bytes long, or None when that is unknown
    until read: gzip), reading no more than the header declares and ``max_bytes`` allows."""
    head = f.read(4)
    if len(head) < 4:
        raise DatasetError(f"{label}: only {len(head)} bytes, too short to be an IDX file.")
    if head[0] != 0 or head[1] != 0:
        raise DatasetError(
            f"{label}: not an IDX file (it starts with bytes {head[0]:#04x} {head[1]:#04x}, "
            "an IDX file with 0x00 0x00)."
        )
    type_code, ndim = head[2], head[3]
    if type_code != 0x08:
        kind = _IDX_TYPES.get(type_code, "an unknown type")
        raise DatasetError(
            f"{label}: IDX type code {type_code:#04x} ({kind}) is not supported; "
            "only 0x08 (unsigned bytes) is read."
        )
    if ndim == 0:
        raise DatasetError(f"{label}: the IDX header declares zero dimensions.")
    if ndim > MAX_IDX_DIMS:
        raise DatasetError(
            f"{label}: the IDX header declares {ndim} dimensions; MNIST files have 1 or 3, and "
            f"at most {MAX_IDX_DIMS} are read."
        )
    header = 4 + 4 * ndim
    sizes = f.read(4 * ndim)
    if len(sizes) < 4 * ndim:
        raise DatasetError(
            f"{label}: the header is cut short ({ndim} dimensions need {header} bytes, "
            f"the file has {4 + len(sizes)})."
        )
    dims = tuple(int(d) for d in np.frombuffer(sizes, dtype=">u4"))
    expected = math.prod(dims)
    shape = " × ".join(str(d) for d in dims)
    if math.prod(d for d in dims if d) > 2**62:  # with a 0 among them: no data, yet no array
        raise DatasetError(f"{label}: dimensions {shape} are too large for any array.")
    if expected > max_bytes:
        raise DatasetError(
            f"{label}: dimensions {shape} declare {expected:,} data bytes, more than the "
            f"{max_bytes:,} this file may hold; it was not read."
        )
    if total is not None and total - header != expected:  # known before reading the data
        payload = total - header
    else:
        data = f.read(expected + 1)  # one byte more than declared tells a file too long
        payload = len(data) if len(data) <= expected else None
    if payload is not None and payload < expected:
        raise DatasetError(
            f"{label}: truncated, dimensions {shape} need {expected:,} data bytes "
            f"but only {payload:,} follow the header."
        )
    if payload is None or payload > expected:
        more = f"{payload:,}" if payload is not None else "more"
        raise DatasetError(
            f"{label}: too long, dimensions {shape} need {expected:,} data bytes "
            f"but {more} follow the header."
        )
    return np.frombuffer(data, dtype=np.uint8, count=expected).reshape(dims).copy()


# --------------------------------------------------------------------------------------------
# Full MNIST / Fashion-MNIST


def _load_full(name, split, data_dir, download, progress):
    """Read the images and labels of one split, from ``data_dir`` or through the cache."""
    arrays = []
    for filename in FILES[split]:
        limit = RAW_SIZES[filename]
        if data_dir is not None:
            path, raw = _read_local(name, Path(data_dir), filename)
            arrays.append(read_idx(raw, name=str(path), max_bytes=limit))
        else:
            path = _fetch(name, filename, download=download, progress=progress)
            arrays.append(read_idx(path, max_bytes=limit))
    images, labels = arrays
    return _to_xy(images, labels, source=f"{name} {split} ({FILES[split][0]})")


def _to_xy(images, labels, source):
    """Check that images and labels belong together; scale to float32 [0, 1] and int64."""
    if images.ndim != 3 or images.shape[1:] != (28, 28):
        raise DatasetError(f"{source}: images have shape {images.shape}, expected (N, 28, 28).")
    if labels.ndim != 1 or len(labels) != len(images):
        raise DatasetError(f"{source}: {len(images)} images but labels of shape {labels.shape}.")
    if len(images) == 0:
        raise DatasetError(f"{source}: the file holds no images.")
    if labels.size and labels.max() > 9:
        raise DatasetError(f"{source}: a label is {labels.max()}, expected 0 to 9.")
    x = images.reshape(len(images), -1).astype(np.float32) / np.float32(255)
    return x, labels.astype(np.int64)


def _sha256(data):
    return hashlib.sha256(data).hexdigest()


def _read_local(name, folder, filename):
    """Find ``filename`` (gzipped or not) in ``folder``, check its SHA-256, return its IDX bytes.

    A file is accepted if its own digest is the published ``.gz`` one, or if its decompressed
    bytes hash to the known value of the uncompressed dataset file.
    """
    candidates = [folder / filename, folder / filename.removesuffix(".gz")]
    path = next((p for p in candidates if p.is_file()), None)
    if path is None:
        raise DatasetError(
            f"{candidates[0]} not found (nor {candidates[1].name}); data_dir must hold the "
            f"original {name} IDX files: "
            + ", ".join(f for pair in FILES.values() for f in pair)
            + "."
        )
    raw_size = RAW_SIZES[filename]
    size = path.stat().st_size
    if size > _gz_limit(raw_size):
        raise DatasetError(
            f"{path}: {size:,} bytes, more than the {name} file {filename} can be "
            f"({raw_size:,} bytes of data); it was not read."
        )
    data = path.read_bytes()
    raw = data
    if data[:2] == b"\x1f\x8b":
        raw = _inflate(data, raw_size, path, f"the {name} file {filename}")
    if _sha256(data) == DIGESTS[name, filename].gz:
        return path, raw
    digest, expected = _sha256(raw), DIGESTS[name, filename].raw
    if digest != expected:
        raise DatasetError(
            f"{path}: contents do not match the {name} file {filename} "
            f"(SHA-256 of the decompressed data is {digest}, expected {expected})."
        )
    return path, raw


def _inflate(data, limit, path, what):
    """The gzip ``data`` decompressed, inflating no more than ``limit`` bytes (and one more, to
    tell a file that would inflate further, which is refused)."""
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(data)) as inflated:
            raw = inflated.read(limit + 1)
    except (EOFError, OSError, zlib.error) as err:
        raise DatasetError(f"{path}: the gzip data is damaged or cut short ({err}).") from None
    if len(raw) > limit:
        raise DatasetError(
            f"{path}: the gzip data inflates to more than {limit:,} bytes, more than {what} has; "
            "it was not read further."
        )
    return raw


def _mirrors(name):
    base = os.environ.get("MINIVAE_MIRROR")
    if base:
        return [base.rstrip("/") + f"/{name}/"]
    return list(MIRRORS[name])


def _fetch(name, filename, download, progress):
    """Path of a verified copy of ``filename`` in the cache, downloading it if needed."""
    import pooch  # imported here, on first download: it brings in tqdm and requests

    folder = cache_dir(name)
    path = folder / filename
    expected = DIGESTS[name, filename].gz
    limit = _gz_limit(RAW_SIZES[filename])
    if path.is_file() and path.stat().st_size <= limit and _sha256(path.read_bytes()) == expected:
        return path
    if not download:
        state = "does not match its SHA-256" if path.exists() else "is not there"
        raise DatasetError(
            f"{path} {state} and download=False; allow the download, or pass data_dir= a folder "
            "holding the IDX files."
        )
    failures = []
    for base in _mirrors(name):
        try:
            with _pooch_logging(progress):
                fetched = pooch.retrieve(
                    base + filename,
                    known_hash="sha256:" + expected,
                    fname=filename,
                    path=folder,
                    downloader=_capped_download(limit, progress),
                )
            return Path(fetched)
        except (ValueError, OSError) as err:  # hash mismatch, HTTP error, cut connection
            failures.append(f"{base + filename}: {str(err).splitlines()[0]}")
    raise DatasetError(
        f"could not download {filename} of {name} ({'; '.join(failures)}); no unverified data "
        "was used; pass data_dir= a folder holding the IDX files to work offline."
    )


def _capped_download(limit, progress):
    """A pooch downloader that stops a download, with a DatasetError, as soon as the server has
    sent more than ``limit`` bytes: more than the file can be, so it is not read to the end."""
    import pooch

    http = pooch.HTTPDownloader(progressbar=progress, timeout=60)

    def download(url, output_file, pooch_obj, check_only=False):
        if check_only:
            return http(url, output_file, pooch_obj, check_only=True)
        with open(output_file, "w+b") as f:
            return http(url, _CappedFile(f, limit), pooch_obj)

    return download


class _CappedFile:
    """A file open for writing that refuses to grow past ``limit`` bytes."""

    def __init__(self, file, limit):
        self.file, self.limit, self.size = file, limit, 0

    def write(self, chunk):
        self.size += len(chunk)
        if self.size > self.limit:
            raise DatasetError(
                f"the server sent more than {self.limit:,} bytes, more than this file can be; "
                "the download was stopped"
            )
        return self.file.write(chunk)

    def flush(self):
        self.file.flush()


@contextlib.contextmanager
def _pooch_logging(show):
    """Let pooch print its 'Downloading ...' lines only when progress output is wanted."""
    import pooch

    logger = pooch.get_logger()
    level = logger.level
    if not show:
        logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


# --------------------------------------------------------------------------------------------
# The embedded subsets


@functools.cache
def _embedded_arrays(key):
    """The uint8 arrays of an embedded ``.npz.xz`` file (read once per process)."""
    path = _DATA_DIR / _EMBEDDED_FILES[key]
    if not path.is_file():
        raise DatasetError(
            f"{path} is missing; reinstall minivae, or rebuild it with scripts/build_embedded.py."
        )
    try:
        import lzma  # standard library, but left out of some self-compiled Pythons
    except ImportError:
        raise DatasetError(
            "this Python was built without the lzma module, which the embedded data needs; "
            "use a Python with lzma, or load('mnist') / load('shapes') instead."
        ) from None
    try:
        raw = lzma.decompress(path.read_bytes())
    except lzma.LZMAError as err:
        raise DatasetError(f"{path}: the xz data is damaged ({err}).") from None
    with np.load(io.BytesIO(raw), allow_pickle=False) as npz:
        return {k: npz[k] for k in ("x_train", "y_train", "x_test", "y_test")}


def _load_embedded(key, split):
    arrays = _embedded_arrays(key)
    x = arrays[f"x_{split}"].astype(np.float32) / np.float32(255)
    return x, arrays[f"y_{split}"].astype(np.int64)
