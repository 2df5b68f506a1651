import os

import numpy as np
import pytest

import minivae as mv
from minivae.checkpoint import CheckpointError

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
