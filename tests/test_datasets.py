"""Tests for minivae.datasets: embedded data, downloads and the cache, local folders, the IDX
reader and the synthetic shapes. No network: downloads come from an HTTP server on 127.0.0.1
that serves small IDX files made here; the digests the loader expects are patched to match.
"""

import gzip
import hashlib
import http.server
import os
import threading
import zlib
from pathlib import Path

import numpy as np
import pooch
import pytest
from shared import MiB, peak_bytes, refused

import minivae as mv
from minivae import checkpoint, datasets, synthetic
from minivae.checkpoint import CheckpointError
from minivae.datasets import DatasetError
from minivae.synthetic import SHAPE_NAMES

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"


# --------------------------------------------------------------------------------------------
# Helpers: small IDX files and a local HTTP server


def idx_bytes(array, type_code=0x08):
    """An IDX file holding ``array`` (header then raw bytes)."""
    array = np.asarray(array)
    header = bytes([0, 0, type_code, array.ndim]) + np.array(array.shape, ">u4").tobytes()
    return header + array.tobytes()


def sha256(data):
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def small_set():
    """Small fake MNIST files: {filename: (gz bytes, raw bytes)} and the arrays per split."""
    rng = np.random.default_rng(0)
    files, arrays = {}, {}
    for split, n in (("train", 30), ("test", 12)):
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, size=n, dtype=np.uint8)
        arrays[split] = (images, labels)
        for fname, array in zip(datasets.FILES[split], (images, labels)):
            raw = idx_bytes(array)
            files[fname] = (gzip.compress(raw, mtime=0), raw)
    return files, arrays


class _Server:
    def __init__(self):
        self.files = {}  # URL path -> bytes
        self.cut = set()  # paths whose response stops halfway through
        self.hits = []  # paths requested, in order
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                server.hits.append(self.path)
                data = server.files.get(self.path)
                if data is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.path in server.cut:
                    self.wfile.write(data[: len(data) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                else:
                    self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = _Server()
    yield s
    s.close()


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """An empty cache folder (through MINIVAE_DATA) and no proxy or mirror settings."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("MINIVAE_DATA", str(folder))
    monkeypatch.delenv("MINIVAE_MIRROR", raising=False)
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    return folder


@pytest.fixture
def mirror(server, cache, small_set, monkeypatch):
    """The fake MNIST files served under /mnist/, the mirror list and digests patched to match."""
    files, _ = small_set
    for fname, (gz, raw) in files.items():
        server.files[f"/mnist/{fname}"] = gz
        digests = datasets.Digests(sha256(gz), sha256(raw))
        monkeypatch.setitem(datasets.DIGESTS, ("mnist", fname), digests)
    monkeypatch.setitem(datasets.MIRRORS, "mnist", [server.url + "/mnist/"])
    return server


def cached_files(folder):
    """Every file under the cache folder (temporary files included)."""
    return sorted(p.relative_to(folder) for p in folder.rglob("*") if p.is_file())


def no_network(monkeypatch):
    """Make any download attempt fail the test."""

    def refuse(*args, **kwargs):
        raise AssertionError("the network was used")

    monkeypatch.setattr(pooch, "retrieve", refuse)


# --------------------------------------------------------------------------------------------
# Names, splits, class names


def test_unknown_name_lists_the_choices():
    with pytest.raises(ValueError, match="unknown dataset 'cifar'.*'mnist'.*'shapes'"):
        datasets.load("cifar")
    with pytest.raises(DatasetError, match="unknown split 'validation'.*'train'.*'test'"):
        datasets.load("embedded", split="validation")
    with pytest.raises(DatasetError, match="'mnist' or 'fashion-mnist'"):
        datasets.embedded(dataset="kmnist")


def test_dataset_error_is_a_value_error():
    assert issubclass(DatasetError, ValueError)


def test_class_names():
    assert datasets.CLASS_NAMES["mnist"] == tuple("0123456789")
    assert datasets.CLASS_NAMES["fashion-mnist"][0] == "T-shirt/top"
    assert datasets.CLASS_NAMES["fashion-mnist"][9] == "Ankle boot"
    assert datasets.CLASS_NAMES["shapes"] == ("square", "circle", "triangle")
    for name in datasets.DATASETS:
        assert name in datasets.CLASS_NAMES


# --------------------------------------------------------------------------------------------
# Embedded data


@pytest.mark.parametrize(
    "name, split, n, per_class",
    [
        ("embedded", "train", 4000, 400),
        ("mnist-small", "test", 1000, 100),
        ("fashion-small", "train", 800, 80),
        ("fashion-small", "test", 200, 20),
    ],
)
def test_embedded_loads(name, split, n, per_class):
    x, y = datasets.load(name, split=split)
    assert x.shape == (n, 784) and x.dtype == np.float32
    assert y.shape == (n,) and y.dtype == np.int64
    assert x.min() == 0.0 and x.max() == 1.0
    assert 0.05 < x.mean() < 0.5  # mostly dark background, some ink
    assert np.bincount(y, minlength=10).tolist() == [per_class] * 10
    assert not np.all(np.diff(y) >= 0), "labels should be shuffled, not sorted"


def test_embedded_convenience_and_disjoint_splits():
    x, y = datasets.embedded()
    x2, y2 = datasets.load("embedded")
    np.testing.assert_array_equal(x, x2)
    np.testing.assert_array_equal(y, y2)
    x2[0, 0] = 0.5  # the caller's copy only
    assert datasets.load("embedded")[0][0, 0] == x[0, 0]
    xt, _ = datasets.embedded("test")
    train_rows = {row.tobytes() for row in x}
    assert not any(row.tobytes() in train_rows for row in xt)
    xf, yf = datasets.embedded("train", dataset="fashion-mnist")
    assert xf.shape == (800, 784) and yf.dtype == np.int64


# --------------------------------------------------------------------------------------------
# Download, cache and hashes (local HTTP server)


def test_download_then_cache(mirror, cache, small_set):
    _, arrays = small_set
    x, y = datasets.load("mnist", split="train", progress=False)
    images, labels = arrays["train"]
    np.testing.assert_array_equal(x, images.reshape(-1, 784).astype(np.float32) / 255)
    np.testing.assert_array_equal(y, labels)
    assert x.dtype == np.float32 and y.dtype == np.int64
    assert cached_files(cache) == [
        Path("mnist/train-images-idx3-ubyte.gz"),
        Path("mnist/train-labels-idx1-ubyte.gz"),
    ]
    assert len(mirror.hits) == 2
    # Second time: straight from the cache, even with downloads forbidden.
    x2, y2 = datasets.load("mnist", split="train", download=False)
    np.testing.assert_array_equal(x2, x)
    assert len(mirror.hits) == 2


def test_download_with_progress_bar(mirror, cache, capsys):
    x, _ = datasets.load("mnist", split="test", progress=True)
    assert x.shape == (12, 784)
    assert "100%" in capsys.readouterr().err


def test_wrong_hash_leaves_nothing_trusted(mirror, cache, monkeypatch):
    fname = "t10k-images-idx3-ubyte.gz"
    wrong = datasets.DIGESTS["mnist", fname]._replace(gz="0" * 64)
    monkeypatch.setitem(datasets.DIGESTS, ("mnist", fname), wrong)
    with pytest.raises(DatasetError, match=fname) as info:
        datasets.load("mnist", split="test", progress=False)
    message = str(info.value)
    assert message.startswith(f"could not download {fname} of mnist (")
    assert message.endswith(
        "no unverified data was used; pass data_dir= a folder holding the IDX files to work "
        "offline."
    )
    assert not (cache / "mnist" / fname).exists()
    assert cached_files(cache) == []  # no temporary file left either
    hits = len(mirror.hits)
    # A second call downloads again and still refuses; the cache is never trusted.
    with pytest.raises(DatasetError, match="SHA256"):
        datasets.load("mnist", split="test", progress=False)
    assert len(mirror.hits) == hits + 1
    assert cached_files(cache) == []
    with pytest.raises(DatasetError, match="download=False"):
        datasets.load("mnist", split="test", download=False)


def test_tampered_cache_file_is_replaced(mirror, cache, small_set):
    _, arrays = small_set
    datasets.load("mnist", split="test", progress=False)
    path = cache / "mnist" / "t10k-labels-idx1-ubyte.gz"
    path.write_bytes(gzip.compress(idx_bytes(np.zeros(12, np.uint8))))
    with pytest.raises(DatasetError, match="does not match its SHA-256"):
        datasets.load("mnist", split="test", download=False)
    _, y = datasets.load("mnist", split="test", progress=False)
    np.testing.assert_array_equal(y, arrays["test"][1])
    assert sha256(path.read_bytes()) == datasets.DIGESTS["mnist", path.name].gz


def test_cut_connection_leaves_nothing_trusted(mirror, cache, small_set):
    fname = "train-images-idx3-ubyte.gz"
    mirror.cut.add(f"/mnist/{fname}")
    # The client sees the short read (Content-Length unmet); were it missed, the hash would not
    # match either. Both end the same way: an error, and no file in the cache.
    with pytest.raises(DatasetError, match=f"{fname}.*(Connection broken|IncompleteRead|SHA256)"):
        datasets.load("mnist", split="train", progress=False)
    assert cached_files(cache) == []
    # Once the server behaves, the same call works.
    mirror.cut.clear()
    x, _ = datasets.load("mnist", split="train", progress=False)
    assert x.shape == (30, 784)


def test_falls_back_to_the_next_mirror(mirror, cache, monkeypatch):
    monkeypatch.setitem(datasets.MIRRORS, "mnist", [mirror.url + "/gone/", mirror.url + "/mnist/"])
    x, _ = datasets.load("mnist", split="test", progress=False)
    assert x.shape == (12, 784)
    assert mirror.hits[0].startswith("/gone/")


def test_all_mirrors_failing_is_one_clear_error(mirror, cache, monkeypatch):
    monkeypatch.setitem(datasets.MIRRORS, "mnist", [mirror.url + "/gone/"])
    with pytest.raises(DatasetError, match="could not download .*404.*data_dir"):
        datasets.load("mnist", split="test", progress=False)
    assert cached_files(cache) == []


def test_minivae_mirror_env(mirror, cache, monkeypatch):
    monkeypatch.setitem(datasets.MIRRORS, "mnist", ["http://127.0.0.1:9/never/"])
    monkeypatch.setenv("MINIVAE_MIRROR", mirror.url + "/")
    x, _ = datasets.load("mnist", split="test", progress=False)
    assert x.shape == (12, 784)
    assert all(hit.startswith("/mnist/") for hit in mirror.hits)


def test_minivae_data_override(tmp_path, monkeypatch):
    monkeypatch.setenv("MINIVAE_DATA", str(tmp_path / "here"))
    assert datasets.cache_dir() == tmp_path / "here"
    assert datasets.cache_dir("fashion-mnist") == tmp_path / "here" / "fashion-mnist"
    monkeypatch.delenv("MINIVAE_DATA")
    assert datasets.cache_dir() == Path(pooch.os_cache("minivae"))


# --------------------------------------------------------------------------------------------
# Reading from a local folder


def write_folder(folder, small_set, recompress=True, gzipped=True):
    files, _ = small_set
    folder.mkdir(parents=True, exist_ok=True)
    for fname, (gz, raw) in files.items():
        if not gzipped:
            (folder / fname.removesuffix(".gz")).write_bytes(raw)
        elif recompress:  # other gzip settings: a different .gz digest, the same contents
            (folder / fname).write_bytes(gzip.compress(raw, compresslevel=1, mtime=12345))
        else:
            (folder / fname).write_bytes(gz)
    return folder


@pytest.mark.parametrize("recompress, gzipped", [(False, True), (True, True), (True, False)])
def test_data_dir_reads_local_files(
    mirror, cache, small_set, tmp_path, monkeypatch, recompress, gzipped
):
    folder = write_folder(tmp_path / "local", small_set, recompress, gzipped)
    no_network(monkeypatch)
    x, y = datasets.load("mnist", split="train", data_dir=folder)
    images, labels = small_set[1]["train"]
    np.testing.assert_array_equal(x, images.reshape(-1, 784) / np.float32(255))
    np.testing.assert_array_equal(y, labels)
    assert cached_files(cache) == []


def test_data_dir_rejects_other_contents(mirror, small_set, tmp_path, monkeypatch):
    folder = write_folder(tmp_path / "local", small_set)
    bad = idx_bytes(np.zeros(12, np.uint8))
    (folder / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(bad))
    no_network(monkeypatch)
    with pytest.raises(DatasetError, match=r"t10k-labels-idx1-ubyte\.gz: contents do not match"):
        datasets.load("mnist", split="test", data_dir=folder)


def test_data_dir_missing_file(tmp_path):
    with pytest.raises(DatasetError, match="train-images-idx3-ubyte.gz not found"):
        datasets.load("fashion-mnist", split="train", data_dir=tmp_path)


@pytest.mark.parametrize("name, folder", [("fashion-mnist", "fashion-mnist"), ("mnist", "mnist")])
def test_shared_datasets_if_present(name, folder, monkeypatch):
    path = SHARED / folder
    if not (path / "t10k-images-idx3-ubyte.gz").is_file():
        pytest.skip(f"{path} is not available here")
    no_network(monkeypatch)
    x, y = datasets.load(name, split="test", data_dir=path)
    assert x.shape == (10000, 784) and x.dtype == np.float32
    assert y.shape == (10000,) and set(np.unique(y)) == set(range(10))
    assert 0.0 <= x.min() and x.max() == 1.0


# --------------------------------------------------------------------------------------------
# The IDX reader


@pytest.fixture
def good_images():
    return np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)


def test_read_idx_good(tmp_path, good_images):
    raw = idx_bytes(good_images)
    (tmp_path / "a-idx3-ubyte").write_bytes(raw)
    (tmp_path / "a-idx3-ubyte.gz").write_bytes(gzip.compress(raw))
    for source in (
        raw,
        gzip.compress(raw),
        tmp_path / "a-idx3-ubyte",
        tmp_path / "a-idx3-ubyte.gz",
    ):
        out = datasets.read_idx(source)
        assert out.dtype == np.uint8 and out.shape == (2, 3, 4)
        np.testing.assert_array_equal(out, good_images)
    out = datasets.read_idx(str(tmp_path / "a-idx3-ubyte"))
    out[0, 0, 0] = 99  # the result is an ordinary writable array
    labels = datasets.read_idx(idx_bytes(np.array([3, 1, 4], np.uint8)))
    assert labels.tolist() == [3, 1, 4]


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda raw: raw[:-5], "truncated, dimensions 2 × 3 × 4 need 24 data bytes but only 19"),
        (lambda raw: raw[:10], "the header is cut short"),
        (lambda raw: raw + b"\0\0", "too long, dimensions 2 × 3 × 4 need 24 data bytes but 26"),
        (lambda raw: b"\x89PNG\r\n\x1a\n" + raw, "not an IDX file"),
        (lambda raw: b"hello", "not an IDX file"),
        (lambda raw: b"\0\0", "too short to be an IDX file"),
        (lambda raw: raw[:2] + b"\x0d" + raw[3:], r"type code 0x0d \(float32\) is not supported"),
        (lambda raw: b"\0\0\x08\0", "zero dimensions"),
        (lambda raw: gzip.compress(raw)[:-12], "gzip data is damaged or cut short"),
    ],
    ids=["payload-short", "header-short", "too-long", "png", "text", "tiny", "float", "0d", "gz"],
)
def test_read_idx_rejects_bad_files(tmp_path, good_images, make, message):
    path = tmp_path / "weird-idx3-ubyte"
    path.write_bytes(make(idx_bytes(good_images)))
    with pytest.raises(DatasetError, match=message) as info:
        datasets.read_idx(path)
    assert str(info.value).startswith(str(path) + ": ")
    with pytest.raises(DatasetError, match="^labels.bin: "):
        datasets.read_idx(path.read_bytes(), name="labels.bin")


def test_loader_checks_that_images_and_labels_match(mirror, small_set, tmp_path, monkeypatch):
    folder = write_folder(tmp_path / "local", small_set, recompress=False)
    raw = idx_bytes(np.zeros(5, np.uint8))  # 5 labels for 12 images
    (folder / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(raw, mtime=0))
    key = ("mnist", "t10k-labels-idx1-ubyte.gz")
    digest = sha256(gzip.compress(raw, mtime=0))
    monkeypatch.setitem(datasets.DIGESTS, key, datasets.DIGESTS[key]._replace(gz=digest))
    with pytest.raises(DatasetError, match="12 images but labels of shape"):
        datasets.load("mnist", split="test", data_dir=folder)


# --------------------------------------------------------------------------------------------
# Synthetic shapes


def test_shapes_types_and_determinism():
    x, y, f = datasets.shapes(500, seed=3)
    assert x.shape == (500, 784) and x.dtype == np.float32
    assert y.shape == (500,) and y.dtype == np.int64
    assert x.min() == 0.0 and x.max() == 1.0
    assert set(f) == {"shape", "x", "y", "scale", "rotation"}
    assert all(len(v) == 500 for v in f.values())
    x2, y2, f2 = datasets.shapes(500, seed=3)
    np.testing.assert_array_equal(x, x2)
    np.testing.assert_array_equal(y, y2)
    for key in f:
        np.testing.assert_array_equal(f[key], f2[key])
    x3, _, _ = datasets.shapes(500, seed=4)
    assert not np.array_equal(x, x3)


def test_shapes_factors_match_the_pictures():
    x, y, f = datasets.shapes(600, seed=1)
    np.testing.assert_array_equal(f["shape"], y)
    img = x.reshape(-1, 28, 28)
    rows, cols = np.mgrid[:28, :28]
    mass = img.sum(axis=(1, 2))
    # Every shape here has its centroid at its centre.
    np.testing.assert_allclose((img * cols).sum(axis=(1, 2)) / mass, f["x"], atol=0.15)
    np.testing.assert_allclose((img * rows).sum(axis=(1, 2)) / mass, f["y"], atol=0.15)
    # The ink equals the area of a shape inscribed in a circle of radius `scale`.
    unit_area = np.array([2.0, np.pi, 3 * np.sqrt(3) / 4])[y]  # square, circle, triangle
    np.testing.assert_allclose(mass, unit_area * f["scale"] ** 2, rtol=0.06)
    # Nothing touches the border; rotations stay within each shape's symmetry period.
    assert img[:, [0, -1], :].max() == 0 and img[:, :, [0, -1]].max() == 0
    period = np.array([np.pi / 2, 0.0, 2 * np.pi / 3])[y]
    assert np.all((f["rotation"] >= 0) & (f["rotation"] <= period))
    assert np.all(f["rotation"][y == 1] == 0)


def test_shapes_subset_and_unknown_names():
    x, y, f = datasets.shapes(50, seed=0, shapes=("triangle",))
    assert np.all(y == 0)
    assert np.all(f["rotation"] < 2 * np.pi / 3)
    with pytest.raises(DatasetError, match="unknown shape.*'hexagon'.*choose from"):
        datasets.shapes(5, shapes=("square", "hexagon"))


def test_load_shapes_splits_are_fixed():
    x, y = datasets.load("shapes", split="test")
    x2, y2 = datasets.load("shapes", split="test")
    assert x.shape == (2000, 784) and y.dtype == np.int64
    np.testing.assert_array_equal(x, x2)
    np.testing.assert_array_equal(y, y2)
    assert set(np.unique(y)) == {0, 1, 2}


def test_shapes_render_in_blocks_like_one_at_a_time():
    # 10,000 images are drawn in blocks of 2,048 (bounded memory); the blocks change nothing
    x, y, f = datasets.shapes(10_000, seed=0)
    assert x.shape == (10_000, 784)
    again = synthetic._render(
        [SHAPE_NAMES[k] for k in y[2040:2060]],
        f["x"][2040:2060],
        f["y"][2040:2060],
        f["scale"][2040:2060],
        f["rotation"][2040:2060],
        28,
    )
    np.testing.assert_array_equal(x[2040:2060], again)


def test_a_missing_idx_file_is_a_dataset_error(tmp_path):
    path = tmp_path / "nope-idx3-ubyte"
    with pytest.raises(datasets.DatasetError) as info:
        datasets.read_idx(path)
    assert str(info.value) == f"{path}: cannot be read (No such file or directory)."


def test_an_idx_file_with_no_images_is_refused(tmp_path):
    empty = bytes([0, 0, 8, 3]) + np.array([0, 28, 28], ">u4").tobytes()
    labels = bytes([0, 0, 8, 1]) + np.array([0], ">u4").tobytes()
    with pytest.raises(datasets.DatasetError) as info:
        datasets._to_xy(datasets.read_idx(empty), datasets.read_idx(labels), "mnist test")
    assert str(info.value) == "mnist test: the file holds no images."


def test_an_idx_header_with_impossible_dimensions():
    data = bytes([0, 0, 8, 3]) + np.array([0, 2**32 - 1, 2**32 - 1], ">u4").tobytes()
    with pytest.raises(datasets.DatasetError) as info:
        datasets.read_idx(data, name="labels.idx")
    assert str(info.value) == (
        "labels.idx: dimensions 0 × 4294967295 × 4294967295 are too large for any array."
    )


def test_bad_shapes_arguments():
    with pytest.raises(mv.validate.SettingError) as info:
        datasets.shapes(-5)
    assert str(info.value) == "shapes: n must be a whole number ≥ 1, got -5."


def _idx_header(*dims):
    return bytes([0, 0, 8, len(dims)]) + np.array(dims, ">u4").tobytes()


def _gzip_bomb(header, n_mib):
    """A gzip file: ``header`` then ``n_mib`` MiB of zeros (a few dozen KiB on disk)."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)  # 31: gzip framing
    chunk = bytes(MiB)
    body = [packer.compress(header), *(packer.compress(chunk) for _ in range(n_mib))]
    return b"".join([*body, packer.flush()])


class _EndlessServer:
    """An HTTP server on 127.0.0.1 that answers every request with up to 256 MiB of zeros and
    no Content-Length, counting what it managed to send before the client hung up."""

    TOTAL = 256 * MiB

    def __init__(self):
        self.sent = 0
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.end_headers()
                chunk = bytes(64 * 1024)
                try:
                    while server.sent < server.TOTAL:
                        self.wfile.write(chunk)
                        server.sent += len(chunk)
                except OSError:
                    pass

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX")
def test_a_pipe_or_a_folder_is_not_read(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)  # opening it would wait for a writer forever
    assert refused(lambda: datasets.read_idx(fifo), DatasetError, "regular") == (
        f"{fifo}: not a regular file, so not an IDX file."
    )
    refused(lambda: datasets.read_idx(tmp_path), DatasetError, "not a regular file")
    assert refused(lambda: mv.load(fifo), CheckpointError, "regular") == (
        f"{fifo} is not a regular file, so not a checkpoint."
    )


def test_an_idx_header_with_255_dimensions_is_refused():
    data = _idx_header(*([1] * 255)) + b"\0"
    assert refused(lambda: datasets.read_idx(data, name="x.idx"), DatasetError, "255") == (
        "x.idx: the IDX header declares 255 dimensions; MNIST files have 1 or 3, and at most 4 "
        "are read."
    )


def test_a_gzip_bomb_is_read_only_as_far_as_its_header_allows(tmp_path):
    bomb = tmp_path / "t10k-labels-idx1-ubyte.gz"
    bomb.write_bytes(_gzip_bomb(_idx_header(10), 64))
    assert bomb.stat().st_size < MiB
    peak = peak_bytes(lambda: refused(lambda: datasets.read_idx(bomb), DatasetError, "too long"))
    assert peak < 4 * MiB  # not the 64 MiB it inflates to
    assert refused(lambda: datasets.read_idx(bomb), DatasetError, "too long") == (
        f"{bomb}: too long, dimensions 10 need 10 data bytes but more follow the header."
    )
    huge = _gzip_bomb(_idx_header(60_000, 28, 28), 1)
    assert refused(
        lambda: datasets.read_idx(huge, max_bytes=10_000), DatasetError, "more than"
    ) == (
        "<bytes>: dimensions 60000 × 28 × 28 declare 47,040,000 data bytes, more than the "
        "10,000 this file may hold; it was not read."
    )


def test_a_gzip_bomb_in_a_data_folder_is_not_inflated_past_its_dataset(tmp_path):
    folder = tmp_path / "mnist"
    folder.mkdir()
    bomb = folder / "t10k-labels-idx1-ubyte.gz"
    bomb.write_bytes(_gzip_bomb(_idx_header(10_000), 32))
    peak = peak_bytes(
        lambda: refused(
            lambda: datasets._read_local("mnist", folder, bomb.name), DatasetError, "inflates"
        )
    )
    assert peak < 4 * MiB
    assert refused(
        lambda: datasets._read_local("mnist", folder, bomb.name), DatasetError, "inflates"
    ) == (
        f"{bomb}: the gzip data inflates to more than 10,008 bytes, more than the mnist file "
        "t10k-labels-idx1-ubyte.gz has; it was not read further."
    )
    bomb.unlink()
    big = folder / "t10k-labels-idx1-ubyte"  # not gzipped, and far larger than the real file
    big.write_bytes(bytes(MiB))
    assert refused(
        lambda: datasets._read_local("mnist", folder, bomb.name), DatasetError, "more than"
    ) == (
        f"{big}: 1,048,576 bytes, more than the mnist file t10k-labels-idx1-ubyte.gz can be "
        "(10,008 bytes of data); it was not read."
    )


def test_a_download_is_cut_at_the_most_its_file_can_be(tmp_path, monkeypatch):
    monkeypatch.setenv("MINIVAE_DATA", str(tmp_path / "cache"))
    monkeypatch.delenv("MINIVAE_MIRROR", raising=False)
    for var in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    server = _EndlessServer()
    try:
        monkeypatch.setitem(datasets.MIRRORS, "mnist", [server.url + "/mnist/"])
        fname = "t10k-labels-idx1-ubyte.gz"
        message = refused(
            lambda: datasets._fetch("mnist", fname, download=True, progress=False),
            DatasetError,
            "the server sent more than",
        )
        assert message.startswith(f"could not download {fname} of mnist ({server.url}/mnist/")
        assert (
            ": the server sent more than 75,644 bytes, more than this file can be; the download "
            "was stopped); no unverified data was used" in message
        )
        assert server.sent < server.TOTAL  # not read to the end
        assert not any(p.is_file() for p in (tmp_path / "cache").rglob("*"))
    finally:
        server.close()


def test_the_limits_are_the_documented_ones():
    assert checkpoint.MAX_MEMBERS == 4096 and checkpoint.MAX_META_BYTES == 64 * MiB
    assert checkpoint.MAX_META_DEPTH == 8 and checkpoint.MAX_STEPS == 2**53
    assert datasets.MAX_IDX_DIMS == 4 and datasets.MAX_IDX_BYTES == 2**30
    assert datasets._gz_limit(10_008) == 75_644
