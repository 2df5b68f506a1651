import errno
import io
import json
import math
import os
import re
import signal
import sys
import tempfile
import textwrap
import zipfile
from pathlib import Path

import numpy as np
import pytest
from shared import IMAGES, MiB, peak_bytes, refused, same_params, tiny_vae

import minivae as mv
from minivae import checkpoint
from minivae.checkpoint import CheckpointError
from minivae.validate import InputError

X = np.random.default_rng(0).uniform(size=(8, 12)).astype(np.float32)
EPS = np.random.default_rng(1).standard_normal((8, 3)).astype(np.float32)


def _vae(**kw):
    return mv.VAE(input_dim=12, hidden=[10], latent_dim=3, seed=0, **kw)


def test_save_and_load_give_the_same_model(tmp_path):
    model = _vae(beta=0.5, likelihood="gaussian", lam=2.0)
    for p in model.parameters():
        p.data += 0.01  # so the biases are not all zero
    path = mv.save(model, tmp_path / "m.npz")
    loaded = mv.load(path)
    assert loaded.config == model.config
    assert [p.name for p in loaded.parameters()] == [p.name for p in model.parameters()]
    for p, q in zip(model.parameters(), loaded.parameters()):
        np.testing.assert_array_equal(p.data, q.data)
        assert q.data.dtype == np.float32
    assert loaded.loss(X, eps=EPS).total == model.loss(X, eps=EPS).total
    ae = mv.Autoencoder(input_dim=12, hidden=[10], latent_dim=3, dtype="float64")
    back = mv.load(mv.save(ae, tmp_path / "ae.npz"))
    assert isinstance(back, mv.Autoencoder) and back.dtype == "float64"


def test_a_checkpoint_loads_on_either_backend(tmp_path, backend):
    mv.set_backend("numpy")
    model = _vae()
    path = mv.save(model, tmp_path / "m.npz")
    mv.set_backend(backend)
    loaded = mv.load(path)
    assert mv.backend.namespace(loaded.parameters()[0].data) is mv.xp
    got = loaded.loss(mv.asarray(X), eps=mv.asarray(EPS)).total
    assert got == pytest.approx(model.loss(X, eps=EPS).total, rel=1e-6)


def test_no_pickle_ever(tmp_path):
    path = tmp_path / "evil.npz"
    np.savez(path, meta=np.array([{"format": "minivae-checkpoint"}], dtype=object))
    with pytest.raises(CheckpointError, match="holds Python objects") as info:
        mv.load(path)
    assert str(info.value).endswith(
        "evil.npz holds Python objects (pickled data); minivae checkpoints never do, "
        "and unpickling can run arbitrary code, so it was not loaded."
    )


def test_damaged_and_foreign_files_get_clear_errors(tmp_path):
    good = mv.save(_vae(), tmp_path / "m.npz")
    data = open(good, "rb").read()
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated.npz is not a readable"):
        mv.load(truncated)
    other = tmp_path / "other.npz"
    np.savez(other, weights=np.zeros(3))
    with pytest.raises(CheckpointError, match="not a minivae checkpoint"):
        mv.load(other)
    with pytest.raises(CheckpointError, match="No checkpoint at"):
        mv.load(tmp_path / "missing.npz")


def test_another_architecture_is_refused(tmp_path):
    path = mv.save(_vae(), tmp_path / "m.npz")
    with np.load(path) as f:
        arrays = {k: f[k] for k in f.files}
    arrays["param/decoder.0.W"] = np.zeros((3, 11), dtype=np.float32)
    np.savez(tmp_path / "bent.npz", **arrays)
    with pytest.raises(CheckpointError) as info:
        mv.load(tmp_path / "bent.npz")
    assert str(info.value) == (
        f"{tmp_path / 'bent.npz'}: decoder.0.W has shape (3, 11) in the file but (3, 10) in the "
        "model; the checkpoint is of another architecture."
    )


def test_a_failed_save_leaves_the_old_checkpoint_intact(tmp_path, monkeypatch):
    path = tmp_path / "m.npz"
    model = _vae()
    mv.save(model, path)
    before = path.read_bytes()

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(np, "savez", disk_full)
    for p in model.parameters():
        p.data += 1.0
    with pytest.raises(OSError, match="No space left"):
        mv.save(model, path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["m.npz"]  # no temporary file left behind
    monkeypatch.undo()
    assert mv.load(path).loss(X, eps=EPS).total == _vae().loss(X, eps=EPS).total


def test_resume_needs_optimizer_state(tmp_path):
    path = mv.save(_vae(), tmp_path / "m.npz")
    with pytest.raises(CheckpointError, match="no optimizer state"):
        mv.resume(path)


def test_classifiers_are_not_saved(tmp_path):
    clf = mv.Classifier.from_model(_vae(), n_classes=2)
    with pytest.raises(CheckpointError, match="not a Classifier"):
        mv.save(clf, tmp_path / "c.npz")


def _saved_untrained(tmp_path):
    path = tmp_path / "m.npz"
    model = tiny_vae()
    opt = mv.Adam(model.parameters())
    mv.save(model, path, optimizer=opt, history={"epoch": []})
    return path, model, path.read_bytes()


def _changed(model):
    for p in model.parameters():
        p.data += 1.0
    return model


def _intact(path, before, model_before):
    assert path.read_bytes() == before
    assert [f.name for f in path.parent.iterdir()] == [path.name]  # no temporary file left
    same_params(mv.load(path), model_before)


def test_a_crash_mid_write_leaves_the_old_checkpoint(tmp_path, monkeypatch):
    path, model, before = _saved_untrained(tmp_path)
    real = np.savez

    def crash(f, **arrays):
        real(f, **arrays)  # the bytes are written ...
        f.seek(f.tell() // 2)
        f.truncate()  # ... then half are lost and the process "dies"
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez", crash)
    with pytest.raises(KeyboardInterrupt):
        mv.save(_changed(tiny_vae()), path)
    monkeypatch.undo()
    _intact(path, before, model)


def test_a_full_disk_leaves_the_old_checkpoint(tmp_path, monkeypatch):
    path, model, before = _saved_untrained(tmp_path)

    def full(f, **arrays):
        f.write(b"PK\x03\x04 partial")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(np, "savez", full)
    with pytest.raises(OSError) as info:
        mv.save(_changed(tiny_vae()), path)
    monkeypatch.undo()
    assert info.value.errno == errno.ENOSPC
    assert str(info.value) == (
        f"[Errno 28] Could not save the checkpoint {path} (No space left on device); the file "
        "that was there before, if any, is unchanged"
    )
    _intact(path, before, model)


@pytest.mark.parametrize("where", ["mkstemp", "replace"])
def test_a_denied_permission_leaves_the_old_checkpoint(tmp_path, monkeypatch, where):
    path, model, before = _saved_untrained(tmp_path)

    def denied(*args, **kwargs):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))

    target = (tempfile, "mkstemp") if where == "mkstemp" else (os, "replace")
    monkeypatch.setattr(*target, denied)
    with pytest.raises(PermissionError, match="Could not save the checkpoint .*Permission denied"):
        mv.save(_changed(tiny_vae()), path)
    monkeypatch.undo()
    _intact(path, before, model)


def test_a_new_checkpoint_gets_ordinary_permissions(tmp_path):
    path = mv.save(tiny_vae(), tmp_path / "m.npz")
    umask = os.umask(0)
    os.umask(umask)
    assert os.stat(path).st_mode & 0o777 == 0o666 & ~umask


def test_a_checkpoint_with_object_arrays_is_refused_unread(tmp_path, monkeypatch):
    path, _, _ = _saved_untrained(tmp_path)
    with np.load(path) as f:
        arrays = {k: f[k] for k in f.files}
    arrays["param/encoder.0.W"] = np.array([{"a": 1}, None], dtype=object)
    np.savez(tmp_path / "objects.npz", **arrays)

    import pickle

    def never(*args, **kwargs):
        raise AssertionError("unpickling was attempted")

    monkeypatch.setattr(pickle, "load", never)
    monkeypatch.setattr(pickle, "loads", never)
    with pytest.raises(CheckpointError) as info:
        mv.load(tmp_path / "objects.npz")
    assert str(info.value) == (
        f"{tmp_path / 'objects.npz'} holds Python objects (pickled data); minivae checkpoints "
        "never do, and unpickling can run arbitrary code, so it was not loaded."
    )


def test_a_corrupted_checkpoint_is_refused(tmp_path):
    path, _, before = _saved_untrained(tmp_path)
    data = bytearray(before)
    for i in range(len(data) // 2, len(data) // 2 + 16):
        data[i] ^= 0xFF  # flip the bits of 16 bytes in the middle of the file
    bad = tmp_path / "corrupted.npz"
    bad.write_bytes(bytes(data))
    with pytest.raises(CheckpointError) as info:
        mv.load(bad)
    assert str(info.value).startswith(
        f"{bad} is not a readable minivae checkpoint (damaged, truncated or another kind of file)"
    )


def test_damaged_contents_of_a_valid_zip_are_refused(tmp_path):
    path, _, _ = _saved_untrained(tmp_path)
    nan = np.full((16, 2), np.nan, np.float32)
    bad = _rewrite(path, tmp_path / "nan.npz", **{"param/mu_head.W": nan})
    with pytest.raises(CheckpointError) as info:
        mv.load(bad)
    assert str(info.value) == (
        f"{bad}: mu_head.W holds 32 NaN or infinite values; the checkpoint is damaged (or was "
        "saved from a model whose training blew up)."
    )
    text = np.array(["a"] * 32).reshape(16, 2)
    bad = _rewrite(path, tmp_path / "text.npz", **{"param/mu_head.W": text})
    with pytest.raises(CheckpointError, match="mu_head.W is stored as <U1, not as floating"):
        mv.load(bad)
    bad = _rewrite(path, tmp_path / "newer.npz", meta=lambda m: {**m, "version": 99})
    with pytest.raises(CheckpointError, match="was written by a newer minivae"):
        mv.load(bad)
    huge = {"hidden": [10**6, 10**6]}
    bad = _rewrite(
        path, tmp_path / "huge.npz", meta=lambda m: {**m, "config": {**m["config"], **huge}}
    )
    with pytest.raises(CheckpointError) as info:
        mv.load(bad)
    assert str(info.value) == (
        f"{bad}: its architecture needs about 2,000,052,000,008 weights but the file holds 792; "
        "the checkpoint is damaged."
    )
    bad = _rewrite(path, tmp_path / "noconfig.npz", meta=lambda m: {**m, "config": 7})
    with pytest.raises(CheckpointError, match="its architecture cannot be built"):
        mv.load(bad)
    bad = _rewrite(path, tmp_path / "opt.npz", meta=lambda m: {**m, "optimizer": {"kind": "adam"}})
    with pytest.raises(CheckpointError, match="the optimizer settings in the file are damaged"):
        mv.resume(bad)
    bad = _rewrite(path, tmp_path / "hist.npz", meta=lambda m: {**m, "history": {"epoch": 3}})
    with pytest.raises(CheckpointError, match="the training history in the file is damaged"):
        mv.resume(bad)


def test_optimizer_state_of_another_shape_is_refused(tmp_path):
    path, _, _ = _saved_untrained(tmp_path)
    bad = _rewrite(path, tmp_path / "bent.npz", **{"optim/m/mu_head.W": np.zeros((3, 3))})
    with pytest.raises(CheckpointError) as info:
        mv.resume(bad)
    assert str(info.value) == (
        f"{bad}: m of mu_head.W has shape (3, 3) in the file but (16, 2) in the model; the "
        "checkpoint is of another architecture."
    )


def test_loading_into_a_model_of_another_architecture(tmp_path):
    path, model, _ = _saved_untrained(tmp_path)
    other = mv.VAE(input_dim=20, hidden=[12], latent_dim=3)
    with pytest.raises(CheckpointError) as info:
        mv.load(path, model=other)
    assert str(info.value) == (
        f"{path} holds another architecture than this model: hidden is [16] in the file but "
        "[12] in the model; latent_dim is 2 in the file but 3 in the model."
    )
    same = mv.VAE(input_dim=20, hidden=[16], latent_dim=2, seed=7, dtype="float64")
    assert mv.load(path, model=same) is same
    for p, q in zip(same.parameters(), model.parameters()):
        np.testing.assert_array_equal(p.data, q.data.astype(np.float64))


def test_resuming_on_data_of_another_width(tmp_path):
    path, _, _ = _saved_untrained(tmp_path)
    model, opt, history = mv.resume(path)
    with pytest.raises(InputError) as info:
        mv.fit(model, opt, IMAGES.reshape(4, -1), history=history, progress=False)
    assert str(info.value) == (
        "fit: x has shape (4, 784); expected (batch, 20) — the model was built with input_dim=20."
    )


X_BINARY = (np.random.default_rng(0).uniform(size=(48, 20)) > 0.5).astype(np.float32)


def _saved(tmp_path, optimizer="adam"):
    """A good checkpoint with optimizer state and a one-epoch history; returns its path."""
    model = tiny_vae()
    opt = mv.Adam(model.parameters()) if optimizer == "adam" else mv.SGD(model.parameters())
    history = mv.fit(model, opt, X_BINARY, epochs=1, batch_size=16, seed=0, progress=False)
    return Path(mv.save(model, tmp_path / "m.npz", optimizer=opt, history=history))


def _arrays(path):
    with np.load(path) as f:
        return {k: f[k] for k in f.files}


def _npy(array) -> bytes:
    """``array`` as the bytes of a .npy file (a member of a hand-made checkpoint)."""
    buf = io.BytesIO()
    np.lib.format.write_array(buf, array)
    return buf.getvalue()


def _rewrite(path, out, meta=None, **arrays):
    """A copy of the checkpoint at ``path`` with its metadata and arrays changed."""
    stored = _arrays(path)
    if meta is not None:
        stored["meta"] = np.array(json.dumps(meta(json.loads(str(stored["meta"])))))
    stored.update(arrays)
    np.savez(out, **stored)
    return out


_KILLED_MID_SAVE = textwrap.dedent(
    """
    import sys, time
    import numpy as np
    import minivae as mv

    def stuck(f, **arrays):
        f.write(b"PK\\x03\\x04 half a checkpoint")
        f.flush()
        print("writing", flush=True)
        time.sleep(600)

    np.savez = stuck
    mv.save(mv.VAE(input_dim=20, hidden=[16], latent_dim=2, seed=1), sys.argv[1])
    """
)


class NaNValidation(mv.VAE):
    """A VAE whose validation loss (32-row batches) turns NaN in epoch 2; training stays finite."""

    val_calls = 0

    def loss(self, x, eps=None, check=True):
        if x.shape[0] == 32:
            self.val_calls += 1
            if self.val_calls == 2:
                x = x + np.float32(np.nan)
        return super().loss(x, eps, check)


def test_a_checkpoint_member_that_inflates_to_gigabytes_is_refused_unread(tmp_path):
    good = _arrays(_saved(tmp_path))
    path = tmp_path / "bomb.npz"
    with zipfile.ZipFile(path, "w") as zf:
        for key, array in good.items():
            zf.writestr(key + ".npy", _npy(array))
        # a member whose header says 64 MiB of float32 and whose deflated zeros inflate to it
        header = io.BytesIO()
        np.lib.format.write_array_header_1_0(
            header, {"descr": "<f4", "fortran_order": False, "shape": (16 * MiB,)}
        )
        info = zipfile.ZipInfo("param/bomb2.npy")
        info.compress_type = zipfile.ZIP_DEFLATED
        with zf.open(info, "w", force_zip64=True) as m:
            m.write(header.getvalue())
            for _ in range(64):
                m.write(bytes(MiB))
    assert path.stat().st_size < 2 * MiB
    peak = peak_bytes(
        lambda: refused(
            lambda: mv.load(path),
            CheckpointError,
            "bomb2.npy is compressed, which minivae checkpoints never are",
        )
    )
    assert peak < 8 * MiB  # the 64 MiB were never inflated
    message = refused(lambda: mv.load(path), CheckpointError, "compressed")
    assert message == (
        f"{path}: param/bomb2.npy is compressed, which minivae checkpoints never are (a small "
        "compressed file can inflate to gigabytes), so it was not read."
    )


def test_a_checkpoint_whose_headers_claim_more_than_the_file_holds(tmp_path):
    good = _arrays(_saved(tmp_path))
    path = tmp_path / "claims.npz"
    with zipfile.ZipFile(path, "w") as zf:
        for key, array in good.items():
            data = _npy(array)
            if key == "param/mu_head.W":  # a header claiming 4 GB, followed by 128 bytes
                header = io.BytesIO()
                np.lib.format.write_array_header_1_0(
                    header, {"descr": "<f4", "fortran_order": False, "shape": (2**30,)}
                )
                data = header.getvalue() + data[-128:]
            zf.writestr(key + ".npy", data)
    peak = peak_bytes(lambda: refused(lambda: mv.load(path), CheckpointError, "declares shape"))
    assert peak < 8 * MiB
    assert refused(lambda: mv.load(path), CheckpointError, "declares") == (
        f"{path}: param/mu_head.W.npy declares shape (1073741824,) of float32 but holds 128 "
        "bytes of data; the file is damaged."
    )


def test_a_checkpoint_whose_directory_claims_more_than_the_file_holds(tmp_path):
    data = bytearray(_saved(tmp_path).read_bytes())
    entry = data.index(b"PK\x01\x02")  # the first entry of the central directory
    data[entry + 20 : entry + 28] = (2**31).to_bytes(4, "little") * 2  # its two sizes: 2 GiB
    bad = tmp_path / "claims.npz"
    bad.write_bytes(bytes(data))
    message = refused(lambda: mv.load(bad), CheckpointError, "directory declares")
    assert re.fullmatch(
        re.escape(f"{bad}: its directory declares ")
        + r"2,147,4\d\d,\d{3} bytes of arrays but the file has \d+,\d{3} bytes; "
        r"the file is damaged or truncated\.",
        message,
    ), message


def test_a_checkpoint_of_50000_members_is_refused_before_its_directory_is_read(
    tmp_path, monkeypatch
):
    path = tmp_path / "many.npz"
    with zipfile.ZipFile(path, "w") as zf:
        for i in range(50_000):
            zf.writestr(f"param/{i}.npy", b"")

    def never(*args, **kwargs):
        raise AssertionError("the zip directory was parsed")

    monkeypatch.setattr(zipfile, "ZipFile", never)
    assert refused(lambda: mv.load(path), CheckpointError, "50,000") == (
        f"{path}: its directory lists 50,000 arrays, more than the 4,096 a minivae checkpoint "
        "may hold; it was not read."
    )


def test_metadata_too_deep_or_too_large_is_refused(tmp_path, monkeypatch):
    path = _saved(tmp_path)
    deep = "[" * 100_000 + "]" * 100_000
    bad = tmp_path / "deep.npz"
    np.savez(bad, **{**_arrays(path), "meta": np.array(deep)})
    assert refused(lambda: mv.load(bad), CheckpointError, "nested") == (
        f"{bad}: its metadata is nested more than 8 levels deep; the file is damaged or not a "
        "minivae checkpoint."
    )
    nested = _rewrite(
        path,
        tmp_path / "nested.npz",
        meta=lambda m: {**m, "history": {**m["history"], "beta": [[[[[[[1.0]]]]]]]}},
    )
    refused(lambda: mv.resume(nested), CheckpointError, "nested more than 8 levels deep")
    monkeypatch.setattr(checkpoint, "MAX_META_BYTES", MiB)  # 64 MiB unless changed
    big = tmp_path / "big.npz"
    text = json.dumps({"format": "minivae-checkpoint", "pad": "x" * MiB})
    np.savez(big, **{**_arrays(path), "meta": np.array(text)})
    peak = peak_bytes(
        lambda: refused(
            lambda: mv.load(big),
            CheckpointError,
            r"its metadata is 4,194,[0-9]{3} bytes, more than the 1,048,576 a minivae "
            r"checkpoint may hold; it was not read\.",
        )
    )
    assert peak < MiB  # the 4 MiB were never read
    refused(
        lambda: mv.save(tiny_vae(), tmp_path / "s.npz", history={"epoch": list(range(1, 100_001))}),
        CheckpointError,
        r"Not saving .*s\.npz: its metadata would be [0-9,]+ bytes, more than the 1,048,576 a "
        r"checkpoint may hold \(is the history that long\?\)\.",
    )


@pytest.mark.parametrize(
    "change, message",
    [
        (
            {"latent_dim": 1e6},
            "its architecture cannot be built: latent_dim is 1000000.0, not a whole number ≥ 1",
        ),
        (
            {"latent_dim": 1e9},
            "its architecture cannot be built: latent_dim is 1000000000.0, not a whole number ≥ 1",
        ),
        (
            {"input_dim": True},
            "its architecture cannot be built: input_dim is True, not a whole number ≥ 1",
        ),
        (
            {"input_dim": 0},
            "its architecture cannot be built: input_dim is 0, not a whole number ≥ 1",
        ),
        (
            {"hidden": [16.0]},
            "its architecture cannot be built: hidden is [16.0], not a list of whole numbers ≥ 1",
        ),
        (
            {"beta": math.inf},
            "its architecture cannot be built: beta is inf, not a finite number ≥ 0",
        ),
        ({"lam": -1}, "its architecture cannot be built: lam is -1, not a finite number > 0"),
    ],
    ids=["latent-1e6", "latent-1e9", "input-true", "input-0", "hidden-float", "beta-inf", "lam"],
)
def test_architecture_numbers_are_checked_before_anything_is_built(tmp_path, change, message):
    path = _saved(tmp_path)
    bad = _rewrite(
        path, tmp_path / "bad.npz", meta=lambda m: {**m, "config": {**m["config"], **change}}
    )
    peak = peak_bytes(lambda: refused(lambda: mv.load(bad), CheckpointError, "architecture"))
    assert peak < 8 * MiB  # nothing the size of the claimed model was allocated
    assert refused(lambda: mv.load(bad), CheckpointError, "architecture") == f"{bad}: {message}."


@pytest.mark.parametrize("version", [0, -5, True, 1.0, "1", None])
def test_format_versions_that_no_minivae_writes_are_refused(tmp_path, version):
    path = _saved(tmp_path)
    bad = _rewrite(path, tmp_path / "v.npz", meta=lambda m: {**m, "version": version})
    assert refused(lambda: mv.load(bad), CheckpointError, "format version") == (
        f"{bad}: its format version is {version!r}, which no minivae writes (this one reads 1); "
        "the file is damaged."
    )


@pytest.mark.parametrize(
    "change, message",
    [
        (
            {"t": 10**400},
            "the optimizer settings in the file are damaged "
            "(step count t=10000000000000000000… (401 characters); expected a whole number "
            "from 0 to 2**53",
        ),
        (
            {"t": -1},
            "the optimizer settings in the file are damaged "
            "(step count t=-1; expected a whole number from 0 to 2**53",
        ),
        (
            {"t": 3.0},
            "the optimizer settings in the file are damaged "
            "(step count t=3.0; expected a whole number from 0 to 2**53",
        ),
        (
            {"eps": math.inf},
            "the optimizer settings in the file are damaged "
            "(eps=inf; expected a small positive number below 1",
        ),
        (
            {"eps": 0},
            "the optimizer settings in the file are damaged "
            "(eps=0; expected a small positive number below 1",
        ),
        (
            {"lr": math.nan},
            "the optimizer settings in the file are damaged "
            "(lr=nan; expected a positive finite number",
        ),
        (
            {"betas": [0.9, 1.0]},
            "the optimizer settings in the file are damaged "
            "(betas=[0.9, 1.0]; expected two numbers in [0, 1)",
        ),
        (
            {"amsgrad": True},
            "the optimizer settings in the file are damaged (unknown setting 'amsgrad'",
        ),
        ({"kind": "lbfgs"}, "the optimizer settings in the file are damaged (unknown kind 'lbfgs'"),
    ],
    ids=["t-huge", "t-negative", "t-float", "eps-inf", "eps-0", "lr-nan", "betas", "extra", "kind"],
)
def test_damaged_optimizer_settings_are_refused(tmp_path, change, message):
    path = _saved(tmp_path)
    bad = _rewrite(
        path, tmp_path / "o.npz", meta=lambda m: {**m, "optimizer": {**m["optimizer"], **change}}
    )
    got = refused(lambda: mv.resume(bad), CheckpointError, "optimizer settings")
    assert got.startswith(f"{bad}: {message}")


def test_sgd_momentum_from_a_file_is_checked(tmp_path):
    path = _saved(tmp_path, optimizer="sgd")
    bad = _rewrite(
        path,
        tmp_path / "o.npz",
        meta=lambda m: {**m, "optimizer": {**m["optimizer"], "momentum": 1}},
    )
    assert refused(lambda: mv.resume(bad), CheckpointError, "momentum") == (
        f"{bad}: the optimizer settings in the file are damaged (momentum=1; expected a number "
        "in [0, 1))."
    )


def test_damaged_optimizer_buffers_are_refused(tmp_path):
    path = _saved(tmp_path)
    v = _arrays(path)["optim/v/mu_head.W"].copy()
    v[0, 0] = -1.0
    bad = _rewrite(path, tmp_path / "v.npz", **{"optim/v/mu_head.W": v})
    assert refused(lambda: mv.resume(bad), CheckpointError, "negative") == (
        f"{bad}: v of mu_head.W holds 1 negative values, which this running mean of squared "
        "gradients never has; the checkpoint is damaged."
    )
    m = _arrays(path)["optim/m/mu_head.W"].copy()
    m[1, 1] = np.inf
    bad = _rewrite(path, tmp_path / "inf.npz", **{"optim/m/mu_head.W": m})
    refused(lambda: mv.resume(bad), CheckpointError, "m of mu_head.W holds 1 NaN or infinite")
    zeros = {"optim/velocity/mu_head.W": np.zeros_like(m)}
    extra = _rewrite(path, tmp_path / "extra.npz", **zeros)
    refused(lambda: mv.resume(extra), CheckpointError, "optimizer state that Adam does not")
    other = _rewrite(path, tmp_path / "other.npz", notes=np.zeros(3))
    assert refused(lambda: mv.load(other), CheckpointError, "no minivae checkpoint has") == (
        f"{other} holds arrays that no minivae checkpoint has (notes); the file is damaged or "
        "not a checkpoint."
    )


def test_a_resumed_optimizer_carries_on(tmp_path):
    path = _saved(tmp_path)
    model, opt, history = mv.resume(path)
    assert opt.t == 3 and history["epoch"] == [1]
    mv.fit(model, opt, X_BINARY, epochs=1, batch_size=16, seed=0, history=history, progress=False)
    assert opt.t == 6 and all(np.isfinite(mv.asnumpy(p.data)).all() for p in model.parameters())


def test_a_refused_load_into_a_model_leaves_it_untouched(tmp_path):
    path = _saved(tmp_path)
    stored = _arrays(path)
    last = f"param/{tiny_vae().parameters()[-1].name}"  # checked last: all others pass first
    broken = stored[last].copy()
    broken.flat[0] = np.nan
    bad = _rewrite(path, tmp_path / "half.npz", **{last: broken})
    target = tiny_vae()
    for p in target.parameters():
        p.data[...] = 7.0
    with pytest.raises(CheckpointError, match="holds 1 NaN or infinite values"):
        mv.load(bad, model=target)
    assert all((p.data == 7.0).all() for p in target.parameters())
    assert mv.load(path, model=target) is target  # the good file still loads into it
    assert not (target.parameters()[0].data == 7.0).all()


@pytest.mark.slow
def test_saves_killed_mid_write_leave_no_lasting_debris(tmp_path, spawn):
    path = _saved(tmp_path)
    before = path.read_bytes()
    for _ in range(3):  # three saves killed with SIGKILL halfway through writing
        child = spawn([sys.executable, "-c", _KILLED_MID_SAVE, str(path)], stderr=None)
        proc = child.proc
        try:
            assert child.readline().strip() == "writing"
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=60)
    # each save removed what the one killed before it left: only the last one's temporary is here
    left = sorted(p.name for p in tmp_path.iterdir())
    assert len(left) == 2 and left[0].startswith(f".m.npz.tmp-{proc.pid}-")
    assert path.read_bytes() == before  # the kills never harmed the checkpoint
    # the next save removes what the killed ones left, and nothing else
    other = tmp_path / ".other.npz.tmp-1-x.npz"
    other.write_bytes(b"not ours")
    mine = tmp_path / f".m.npz.tmp-{os.getpid()}-live.npz"  # a save in progress, alive
    mine.write_bytes(b"in progress")
    mv.save(tiny_vae(), path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["m.npz", other.name, mine.name])
    assert mv.load(path).config["hidden"] == [16]


def test_a_nan_validation_loss_rolls_back_and_the_checkpoint_resumes(tmp_path):
    ckpt = tmp_path / "c.npz"
    model = NaNValidation(input_dim=20, hidden=[16], latent_dim=2, seed=0)
    opt = mv.Adam(model.parameters())
    history = {}
    with pytest.raises(mv.NonFiniteLossError) as info:
        mv.fit(
            model,
            opt,
            X_BINARY,
            epochs=3,
            batch_size=16,
            x_val=X_BINARY[:32],
            seed=0,
            progress=False,
            history=history,
            callbacks=[mv.SaveEachEpoch(ckpt)],
        )
    assert str(info.value) == (
        "The validation total term became nan at the end of epoch 2; the model and optimizer "
        "were put back as they were at the end of epoch 1 (the last completed one). Try a "
        "smaller learning rate or fit(..., clip_grad_norm=1.0)."
    )
    assert history["epoch"] == [1] and all(len(v) == 1 for v in history.values())
    assert opt.t == 3
    _, resumed_opt, saved = mv.resume(ckpt)
    assert saved == history and resumed_opt.t == 3


def test_a_history_that_could_not_be_resumed_is_not_saved(tmp_path):
    path = tmp_path / "m.npz"
    for history in ({"epoch": [1], "val_total": [math.nan]}, {"epoch": [2]}, {"epoch": [True]}):
        assert refused(
            lambda h=history: mv.save(tiny_vae(), path, history=h), CheckpointError, "Not saving"
        ) == (
            f"Not saving {path}: the history is not fit's dict of lists of finite numbers with "
            "epochs numbered 1, 2, …, so the checkpoint could not be resumed."
        )
    assert not path.exists()
