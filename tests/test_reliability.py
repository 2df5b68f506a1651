"""Reliability: bad input gets one clear sentence, numerical faults stop training cleanly, saved
state survives crashes and Ctrl-C, and runs are reproducible. docs/errors.md lists every bad
input and the test here (or elsewhere) that backs it; the last test keeps that table honest.
"""

import errno
import importlib
import inspect
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import array_api_strict
import numpy as np
import pytest

import minivae as mv
from minivae import datasets, validate
from minivae.__main__ import main
from minivae.checkpoint import CheckpointError
from minivae.validate import InputError

ROOT = Path(__file__).resolve().parents[1]

gen = np.random.default_rng(0)
PROTOS = (gen.uniform(size=(3, 20)) > 0.5).astype(np.float32)
X = np.clip(PROTOS[gen.integers(0, 3, 96)] + 0.1 * gen.standard_normal((96, 20)), 0, 1)
X = X.astype(np.float32)
X_VAL = X[:32]
IMAGES = np.random.default_rng(1).uniform(size=(4, 28, 28)).astype(np.float32)


def _model(**kw):
    return mv.VAE(input_dim=20, hidden=[16], latent_dim=2, seed=0, **kw)


def _mnist_model(**kw):
    return mv.VAE(input_dim=784, hidden=[8], latent_dim=2, seed=0, **kw)


def _params(model):
    return [mv.asnumpy(p.data).copy() for p in model.parameters()]


def _same_params(a, b):
    for p, q in zip(_params(a), _params(b)):
        np.testing.assert_array_equal(p, q)


def _fit(model, opt=None, **kw):
    opt = opt or mv.Adam(model.parameters(), lr=3e-3)
    args = dict(epochs=3, batch_size=16, x_val=X_VAL, seed=1, progress=False)
    return mv.fit(model, opt, X, **{**args, **kw}), opt


def _without_seconds(history):
    return {k: v for k, v in history.items() if k != "seconds"}


# ---------------------------------------------------------------------------------------------
# 1. Bad input to a model: one sentence, raised at the public method


def _with_nan():
    x = IMAGES.reshape(4, -1).copy()
    x[2, 5] = np.nan
    x[3, 0] = np.inf
    x[3, 1] = np.nan
    return x


@pytest.mark.parametrize(
    "make, error, message",
    [
        (
            lambda: IMAGES,
            InputError,
            "VAE.loss: x has shape (4, 28, 28); expected (batch, 784) — flatten images with "
            "x.reshape(len(x), -1).",
        ),
        (
            lambda: IMAGES[0].reshape(-1),
            InputError,
            "VAE.loss: x has shape (784,); expected (batch, 784) — it looks like one example: "
            "add the batch axis with x[None, :].",
        ),
        (
            lambda: IMAGES.reshape(4, -1).T,
            InputError,
            "VAE.loss: x has shape (784, 4); expected (batch, 784) — it looks transposed: use x.T.",
        ),
        (
            lambda: IMAGES.reshape(4, -1)[:, :100],
            InputError,
            "VAE.loss: x has shape (4, 100); expected (batch, 784) — the model was built with "
            "input_dim=784.",
        ),
        (
            lambda: IMAGES.reshape(4, -1)[:0],
            InputError,
            "VAE.loss: x is empty (shape (0, 784)); give at least one row.",
        ),
        (
            lambda: (IMAGES.reshape(4, -1) * 255).astype(np.uint8),
            InputError,
            "VAE.loss: x has values from 0 to 254 (the first outside [0, 1] in row 0), but a "
            "Bernoulli decoder needs values in [0, 1]; divide by 255: x.astype(np.float32) / 255.",
        ),
        (
            lambda: np.full((4, 784), 200.0),
            InputError,
            "VAE.loss: x has values from 200 to 200 (the first outside [0, 1] in row 0), but a "
            "Bernoulli decoder needs values in [0, 1]; if these are 8-bit pixel values, divide by "
            "255: x / 255.",
        ),
        (
            lambda: np.where(np.arange(784) < 3, -1.5, 0.5)[None, :].repeat(2, 0),
            InputError,
            "VAE.loss: x has values from -1.5 to 0.5 (the first outside [0, 1] in row 0), but a "
            "Bernoulli decoder needs values in [0, 1]; rescale them to [0, 1], or use "
            "likelihood='gaussian' for real-valued data.",
        ),
        (
            _with_nan,
            InputError,
            "VAE.loss: x holds 2 NaN and 1 infinite values (the first in row 2); drop or repair "
            "those rows first, e.g. x = x[np.isfinite(x).all(axis=1)].",
        ),
        (
            lambda: IMAGES.reshape(4, -1).astype(np.complex64),
            TypeError,
            "VAE.loss: x has dtype complex64; expected real numbers (float32 or float64; integer "
            "and boolean images are converted).",
        ),
        (
            lambda: "x_train.npy",
            TypeError,
            "VAE.loss: x must be an array of shape (batch, 784), got a str.",
        ),
        (
            lambda: [[0.0] * 784, [0.0] * 3],
            InputError,
            "VAE.loss: x is a ragged list (rows of different lengths); expected an array of "
            "shape (batch, 784).",
        ),
    ],
    ids=[
        "3d-images",
        "one-example",
        "transposed",
        "wrong-width",
        "empty",
        "uint8-0-255",
        "float-0-255",
        "negative",
        "nan-inf",
        "complex",
        "a-path",
        "ragged",
    ],
)
def test_bad_data_to_a_model(make, error, message):
    model = _mnist_model()
    with pytest.raises(error) as info:
        model.loss(make())
    assert str(info.value) == message
    # the same check guards the other public methods, named in the message
    with pytest.raises(error, match=r"^VAE\.reconstruct: "):
        model.reconstruct(make())


def test_input_errors_are_value_errors():
    assert issubclass(InputError, ValueError)
    with pytest.raises(ValueError):
        _mnist_model().encode(IMAGES)


def test_bad_codes_noise_and_sample_sizes():
    model = _model()
    with pytest.raises(InputError) as info:
        model.decode(np.zeros((3, 5)))
    assert str(info.value) == (
        "VAE.decode: z has shape (3, 5); expected (batch, 2) — the model was built with "
        "latent_dim=2."
    )
    with pytest.raises(InputError) as info:
        model.loss(X[:6], eps=np.zeros((4, 2)))
    assert str(info.value) == (
        "VAE.loss: eps has shape (4, 2); expected (6, 2), one row of noise per row of x."
    )
    with pytest.raises(InputError, match=r"^VAE\.decode: z holds 1 NaN"):
        model.decode(np.array([[0.0, np.nan]]))
    with pytest.raises(ValueError) as info:
        model.sample(0)
    assert str(info.value) == "VAE.sample: n must be a whole number ≥ 1, got 0."
    with pytest.raises(ValueError, match="seed must be a whole number ≥ 0 or None"):
        model.sample(4, seed=-1)


def test_gaussian_decoder_takes_any_finite_values():
    model = mv.VAE(input_dim=20, hidden=[8], latent_dim=2, likelihood="gaussian", seed=0)
    assert np.isfinite(model.loss(X * 40.0 - 20.0).total)
    with pytest.raises(InputError, match="holds 0 NaN and 1 infinite values"):
        model.loss(np.where(np.arange(20) == 7, np.inf, 0.0)[None, :])


def test_another_backend_is_refused_with_the_way_to_convert():
    model = _model()
    x = array_api_strict.asarray(X)
    with pytest.raises(mv.BackendError) as info:
        model.loss(x)
    assert str(info.value) == (
        "VAE.loss: x is an array of the array_api_strict backend but the model is on numpy; "
        "convert it with model.asarray(x)."
    )
    with pytest.raises(mv.BackendError, match="^fit: x is an array of the array_api_strict"):
        mv.fit(model, mv.Adam(model.parameters()), x, epochs=1, progress=False)
    # the conversion the message suggests works
    assert np.isfinite(model.loss(model.asarray(x)).total)


def test_numpy_data_goes_to_a_model_on_another_backend():
    mv.set_backend("array_api_strict")
    model = _model()
    terms = model.loss(X)  # a NumPy array is copied over
    assert np.isfinite(terms.total)
    assert mv.backend.namespace(model.encode(X)[0]) is mv.xp


def test_other_float_precisions_are_cast_to_the_model_dtype():
    model = _model()  # float32
    terms = model.loss(X.astype(np.float64))
    assert terms.arrays["total"].dtype == np.float32
    mu, logvar = model.encode(X.astype(np.float64))
    assert mu.dtype == np.float32 and logvar.dtype == np.float32
    assert model.decode(np.zeros((2, 2), np.float64)).dtype == np.float32
    assert model.reconstruct(X.astype(np.float16)).dtype == np.float32
    wide = mv.VAE(input_dim=20, hidden=[16], latent_dim=2, dtype="float64")
    assert wide.encode(X)[0].dtype == np.float64


def test_binary_images_as_bool_or_int_equal_the_float_ones():
    model = _model()
    eps = np.zeros((96, 2), np.float32)
    binary = X > 0.5
    want = model.loss(binary.astype(np.float32), eps=eps).total
    assert model.loss(binary, eps=eps).total == want
    assert model.loss(binary.astype(np.uint8), eps=eps).total == want
    assert model.loss(binary.astype(np.int64).tolist(), eps=eps).total == want


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (
            dict(hidden=400),
            "VAE: hidden must be a list of layer sizes, e.g. hidden=[400], got 400.",
        ),
        (dict(hidden=[2.5]), "VAE: hidden size must be a whole number ≥ 1, got 2.5."),
        (dict(latent_dim=True), "VAE: latent_dim must be a whole number ≥ 1, got True."),
        (dict(input_dim="784"), "VAE: input_dim must be a whole number ≥ 1, got '784'."),
        (dict(beta=float("inf")), "VAE: beta must be a finite number ≥ 0, got inf."),
        (
            dict(lam=float("nan")),
            "VAE: lam (λ = 1/(2σ²) of the Gaussian decoder) must be a positive finite number, "
            "got nan.",
        ),
        (dict(seed=-1), "VAE: seed must be a whole number ≥ 0 or None, got -1."),
        (dict(dtype="float16"), "dtype must be 'float32' or 'float64', got 'float16'."),
    ],
)
def test_settings_that_make_no_sense(kwargs, message):
    with pytest.raises(ValueError) as info:
        mv.VAE(**{**dict(input_dim=8, hidden=[4], latent_dim=2), **kwargs})
    assert str(info.value) == message


def test_classifier_labels_are_checked():
    clf = mv.Classifier.from_model(_model(), n_classes=3)
    with pytest.raises(InputError) as info:
        clf.loss(X[:4], np.array([0, 1, 2, 3]))
    assert str(info.value) == (
        "Classifier.loss: labels run from 0 to 3; expected class numbers 0 to 2 (the "
        "classifier has n_classes=3)."
    )
    with pytest.raises(InputError, match=r"labels have shape \(3,\); expected \(4,\)"):
        clf.loss(X[:4], np.array([0, 1, 2]))
    with pytest.raises(TypeError, match="labels have dtype float64; expected integers"):
        clf.accuracy(X[:2], np.array([0.0, 1.0]))
    with pytest.raises(InputError, match=r"^Classifier\.predict: x has shape \(4, 19\)"):
        clf.predict(X[:4, :19])


# ---------------------------------------------------------------------------------------------
# 2. fit checks the data once, then trains unchecked


def test_fit_checks_the_data_once_not_every_batch(monkeypatch):
    calls = []
    real = validate.batch

    def counting(x, **kw):
        calls.append(kw["name"])
        return real(x, **kw)

    monkeypatch.setattr(validate, "batch", counting)

    checked_loss = mv.VAE.loss

    def refuse(self, x, eps=None, check=True):
        if check:
            raise AssertionError("fit called model.loss with its checks on")
        return checked_loss(self, x, eps, check)

    monkeypatch.setattr(mv.VAE, "loss", refuse)
    model = _model()
    _fit(model, epochs=2)
    assert calls == ["x", "x_val"]


def test_fit_refuses_bad_data_before_touching_the_model():
    model = _model()
    before = _params(model)
    bad = X.copy()
    bad[40, 3] = np.nan
    with pytest.raises(InputError) as info:
        mv.fit(model, mv.Adam(model.parameters()), bad, progress=False)
    assert str(info.value) == (
        "fit: x holds 1 NaN and 0 infinite values (the first in row 40); drop or repair those "
        "rows first, e.g. x = x[np.isfinite(x).all(axis=1)]."
    )
    for a, b in zip(_params(model), before):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(InputError, match=r"^fit: x_val has shape \(32, 19\)"):
        mv.fit(model, mv.Adam(model.parameters()), X, x_val=X_VAL[:, :19], progress=False)


def test_an_optimizer_of_another_model_is_refused():
    model, other = _model(), _model()
    with pytest.raises(ValueError) as info:
        mv.fit(model, mv.Adam(other.parameters()), X, progress=False)
    assert str(info.value) == (
        "fit: the optimizer does not update this model's parameters (was it made for another "
        "model?); build it with mv.Adam(model.parameters())."
    )


# ---------------------------------------------------------------------------------------------
# 3. Numerical faults


@pytest.mark.parametrize("raw", [-1e3, -45.0, 35.0, 1e3])
def test_log_variance_is_clamped_and_stays_finite(raw):
    # At the top of the range the KL is about ½·e²⁰ ≈ 2.4e8 nats, so large that rounding swamps
    # a finite difference of the whole loss; β = 0 leaves it out of the check there.
    beta = 1.0 if raw < 0 else 0.0
    model = mv.VAE(
        input_dim=8, hidden=[6], latent_dim=3, dtype="float64", activation="tanh", beta=beta
    )
    model.logvar_head.b.data[...] = raw
    model.logvar_head.W.data[...] *= 1e-3
    x = np.random.default_rng(0).uniform(size=(5, 8))
    eps = np.random.default_rng(1).standard_normal((5, 3))
    _, logvar = model.encode(x)
    lo, hi = mv.models.LOGVAR_RANGE
    assert np.all(logvar == (lo if raw < 0 else hi))
    terms = model.loss(x, eps=eps)
    assert np.isfinite([terms.total, terms.recon, terms.kl]).all()
    model.backward()
    assert all(np.isfinite(p.grad).all() for p in model.parameters())
    # outside the range the clamp is flat: no gradient reaches the log-variance head ...
    assert not model.logvar_head.W.grad.any() and not model.logvar_head.b.grad.any()
    # ... and the backward pass still matches finite differences everywhere
    errors = mv.gradcheck.model_errors(model, x, eps=eps)
    assert max(errors.values()) < 1e-7, errors


def test_the_clamp_is_the_identity_inside_its_range():
    clamp = mv.nn.Clamp(-30.0, 20.0)
    x = np.linspace(-29.0, 19.0, 12).reshape(3, 4)
    np.testing.assert_array_equal(clamp(x), x)
    assert mv.gradcheck.check_module(clamp, x) < 1e-9
    np.testing.assert_array_equal(clamp(np.array([[-50.0, 50.0]])), [[-30.0, 20.0]])


class NaNGradient(mv.VAE):
    """A VAE whose decoder.0.W gradient turns NaN on its 7th backward (epoch 2, step 3)."""

    calls = 0

    def backward(self):
        out = super().backward()
        self.calls += 1
        if self.calls == 7:
            self.decoder.layers[0].W.grad[0, 0] = np.nan
        return out


@pytest.mark.parametrize("sync_every", [1, 3])
def test_a_nan_gradient_stops_training_naming_the_parameter(sync_every):
    reference = _model()
    ref_opt = mv.Adam(reference.parameters())
    mv.fit(reference, ref_opt, X[:64], epochs=1, batch_size=16, seed=0, progress=False)

    model = NaNGradient(input_dim=20, hidden=[16], latent_dim=2, seed=0)
    opt = mv.Adam(model.parameters())
    history = {}
    with pytest.raises(mv.NonFiniteLossError) as info:
        mv.fit(
            model,
            opt,
            X[:64],
            epochs=3,
            batch_size=16,
            seed=0,
            progress=False,
            history=history,
            sync_every=sync_every,
        )
    assert str(info.value) == (
        "The gradient of decoder.0.W became NaN at epoch 2, step 3 while the loss was finite; "
        "the model and optimizer were put back as they were at the end of epoch 1 (the last "
        "completed one). Try a smaller learning rate or fit(..., clip_grad_norm=1.0)."
    )
    assert history["epoch"] == [1] and opt.t == 4
    _same_params(model, reference)


@pytest.mark.filterwarnings("error::RuntimeWarning")  # no overflow warnings leak from NumPy
def test_a_learning_rate_that_blows_up_stops_with_the_last_good_state():
    model = _model()
    opt = mv.SGD(model.parameters(), lr=1e4)
    start = _params(model)
    history = {}
    with pytest.raises(mv.NonFiniteLossError) as info:
        mv.fit(model, opt, X, epochs=3, batch_size=16, progress=False, history=history)
    message = str(info.value)
    assert re.match(
        r"The (total|reconstruction|kl) term became (nan|inf) at epoch 1, step ", message
    )
    assert "the model and optimizer were put back as they were before training" in message
    assert history["epoch"] == [] and opt.t == 0
    for a, b in zip(_params(model), start):
        np.testing.assert_array_equal(a, b)


def test_clipping_keeps_the_same_blow_up_finite():
    model = _model()
    history, _ = _fit(model, mv.SGD(model.parameters(), lr=1e4), clip_grad_norm=1.0, x_val=None)
    assert np.isfinite(history["train_total"]).all()
    assert all(np.isfinite(p).all() for p in _params(model))


def test_clip_grad_norm_scales_the_global_norm():
    model = _model()
    model.loss(X)
    model.backward()
    grads = [p.grad.copy() for p in model.parameters()]
    norm = np.sqrt(sum(float(np.sum(g.astype(np.float64) ** 2)) for g in grads))
    returned = mv.train.clip_grad_norm(model.parameters(), norm / 4)
    assert float(returned) == pytest.approx(norm, rel=1e-5)
    for p, g in zip(model.parameters(), grads):
        np.testing.assert_allclose(p.grad, g / 4, rtol=1e-5)
    mv.train.clip_grad_norm(model.parameters(), 1e9)  # below the limit: unchanged
    for p, g in zip(model.parameters(), grads):
        np.testing.assert_allclose(p.grad, g / 4, rtol=1e-5)
    with pytest.raises(ValueError, match="max_norm must be a positive finite number"):
        mv.train.clip_grad_norm(model.parameters(), -1.0)


def test_a_loose_clip_changes_nothing():
    a, b = _model(), _model()
    ha, _ = _fit(a)
    hb, _ = _fit(b, clip_grad_norm=1e12)
    assert _without_seconds(ha) == _without_seconds(hb)
    _same_params(a, b)


def test_the_command_line_passes_the_clip_on(tmp_path, monkeypatch):
    seen = []
    real = mv.fit

    def spy(*args, **kwargs):
        seen.append(kwargs["clip_grad_norm"])
        return real(*args, **kwargs)

    monkeypatch.setattr(mv, "fit", spy)
    quick = ["--epochs", "1", "--limit", "100", "--hidden", "8", "--no-progress", "--no-figures"]
    assert main(["train", *quick, "--clip-grad-norm", "0.5", "--out", str(tmp_path)]) == 0
    assert seen == [0.5]
    with pytest.raises(SystemExit) as info:
        main(["train", "--clip-grad-norm", "0"])
    assert info.value.code == 2


# ---------------------------------------------------------------------------------------------
# 4. Ctrl-C


class InterruptAt(mv.VAE):
    """A VAE that raises KeyboardInterrupt on its n-th training-or-validation forward pass."""

    at = None
    calls = 0

    def loss(self, x, eps=None, check=True):
        self.calls += 1
        if self.calls == self.at:
            raise KeyboardInterrupt
        return super().loss(x, eps, check)


@pytest.mark.parametrize("at, where", [(9, "during training"), (7, "during validation")])
def test_ctrl_c_keeps_the_last_completed_epoch_and_carrying_on_is_exact(at, where):
    # 6 steps per epoch + 1 validation batch: call 9 is step 2 of epoch 2, call 7 epoch 1's val.
    straight = _model()
    h_straight, opt_straight = _fit(straight, epochs=3)
    one = _model()
    h_one, opt_one = _fit(one, epochs=1)

    model = InterruptAt(input_dim=20, hidden=[16], latent_dim=2, seed=0)
    model.at = at
    opt = mv.Adam(model.parameters(), lr=3e-3)
    history = {}
    with pytest.raises(KeyboardInterrupt):
        _fit(model, opt, history=history)
    done = 1 if at == 9 else 0
    assert history["epoch"] == list(range(1, done + 1)), where
    assert all(len(v) == done for v in history.values())
    assert opt.t == 6 * done
    _same_params(model, one if done else _model())
    # carrying on in the same session gives exactly the uninterrupted run
    model.at = None
    _fit(model, opt, history=history, epochs=3 - done)
    assert _without_seconds(history) == _without_seconds(h_straight)
    _same_params(model, straight)


def test_ctrl_c_in_the_command_line_saves_the_last_epoch_and_resume_is_exact(
    tmp_path, monkeypatch, capsys
):
    quick = ["--limit", "300", "--hidden", "16", "--no-progress", "--no-figures"]
    # 3 steps per epoch + 1 validation batch: call 6 is step 2 of epoch 2.
    calls = []
    real = mv.VAE.loss

    def interrupting(self, x, eps=None, check=True):
        calls.append(1)
        if len(calls) == 6:
            raise KeyboardInterrupt
        return real(self, x, eps, check)

    monkeypatch.setattr(mv.VAE, "loss", interrupting)
    out = tmp_path / "run"
    assert main(["train", "--epochs", "3", *quick, "--out", str(out)]) == 130
    line = capsys.readouterr().out.strip().splitlines()[-1]
    ckpt = out / "model.npz"
    assert line == (
        f"interrupted: saved epoch 1 (the last completed one) to {ckpt}; carry on with the "
        f"same options plus --resume {ckpt} --epochs 2"
    )
    monkeypatch.setattr(mv.VAE, "loss", real)
    _, _, saved = mv.resume(ckpt)
    assert saved["epoch"] == [1]
    assert json.loads((out / "history.json").read_text())["epoch"] == [1]

    assert main(["train", "--epochs", "2", *quick, "--resume", str(ckpt), "--out", str(out)]) == 0
    assert main(["train", "--epochs", "3", *quick, "--out", str(tmp_path / "straight")]) == 0
    resumed = json.loads((out / "history.json").read_text())
    straight = json.loads((tmp_path / "straight" / "history.json").read_text())
    assert _without_seconds(resumed) == _without_seconds(straight)


def test_a_real_sigint_to_the_command_line(tmp_path):
    out = tmp_path / "run"
    args = ["--epochs", "5000", "--limit", "200", "--hidden", "8", "--no-progress", "--no-figures"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "minivae", "train", *args, "--out", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    )
    try:
        for line in proc.stdout:
            if line.startswith("epoch   2"):
                break
        proc.send_signal(signal.SIGINT)
        rest, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    last = rest.strip().splitlines()[-1]
    assert last.startswith("interrupted: saved epoch ") and "--resume" in last
    done = int(last.split()[3])
    _, _, history = mv.resume(out / "model.npz")
    assert done >= 2 and history["epoch"] == list(range(1, done + 1))


# ---------------------------------------------------------------------------------------------
# 5. Checkpoints: atomic saves, clear refusals


def _saved(tmp_path):
    path = tmp_path / "m.npz"
    model = _model()
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
    _same_params(mv.load(path), model_before)


def test_a_crash_mid_write_leaves_the_old_checkpoint(tmp_path, monkeypatch):
    path, model, before = _saved(tmp_path)
    real = np.savez

    def crash(f, **arrays):
        real(f, **arrays)  # the bytes are written ...
        f.seek(f.tell() // 2)
        f.truncate()  # ... then half are lost and the process "dies"
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez", crash)
    with pytest.raises(KeyboardInterrupt):
        mv.save(_changed(_model()), path)
    monkeypatch.undo()
    _intact(path, before, model)


def test_a_full_disk_leaves_the_old_checkpoint(tmp_path, monkeypatch):
    path, model, before = _saved(tmp_path)

    def full(f, **arrays):
        f.write(b"PK\x03\x04 partial")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(np, "savez", full)
    with pytest.raises(OSError) as info:
        mv.save(_changed(_model()), path)
    monkeypatch.undo()
    assert info.value.errno == errno.ENOSPC
    assert str(info.value) == (
        f"[Errno 28] Could not save the checkpoint {path} (No space left on device); the file "
        "that was there before, if any, is unchanged"
    )
    _intact(path, before, model)


@pytest.mark.parametrize("where", ["mkstemp", "replace"])
def test_a_denied_permission_leaves_the_old_checkpoint(tmp_path, monkeypatch, where):
    path, model, before = _saved(tmp_path)

    def denied(*args, **kwargs):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))

    target = (tempfile, "mkstemp") if where == "mkstemp" else (os, "replace")
    monkeypatch.setattr(*target, denied)
    with pytest.raises(PermissionError, match="Could not save the checkpoint .*Permission denied"):
        mv.save(_changed(_model()), path)
    monkeypatch.undo()
    _intact(path, before, model)


def test_a_new_checkpoint_gets_ordinary_permissions(tmp_path):
    path = mv.save(_model(), tmp_path / "m.npz")
    umask = os.umask(0)
    os.umask(umask)
    assert os.stat(path).st_mode & 0o777 == 0o666 & ~umask


def test_a_checkpoint_with_object_arrays_is_refused_unread(tmp_path, monkeypatch):
    path, _, _ = _saved(tmp_path)
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
    path, _, before = _saved(tmp_path)
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


def _rewrite(path, out, meta=None, **arrays):
    with np.load(path) as f:
        stored = {k: f[k] for k in f.files}
    if meta is not None:
        stored["meta"] = np.array(json.dumps(meta(json.loads(str(stored["meta"])))))
    stored.update(arrays)
    np.savez(out, **stored)
    return out


def test_damaged_contents_of_a_valid_zip_are_refused(tmp_path):
    path, _, _ = _saved(tmp_path)
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
    path, _, _ = _saved(tmp_path)
    bad = _rewrite(path, tmp_path / "bent.npz", **{"optim/m/mu_head.W": np.zeros((3, 3))})
    with pytest.raises(CheckpointError) as info:
        mv.resume(bad)
    assert str(info.value) == (
        f"{bad}: m of mu_head.W has shape (3, 3) in the file but (16, 2) in the model; the "
        "checkpoint is of another architecture."
    )


def test_loading_into_a_model_of_another_architecture(tmp_path):
    path, model, _ = _saved(tmp_path)
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
    path, _, _ = _saved(tmp_path)
    model, opt, history = mv.resume(path)
    with pytest.raises(InputError) as info:
        mv.fit(model, opt, IMAGES.reshape(4, -1), history=history, progress=False)
    assert str(info.value) == (
        "fit: x has shape (4, 784); expected (batch, 20) — the model was built with input_dim=20."
    )


# ---------------------------------------------------------------------------------------------
# 6. Determinism on NumPy


def test_same_seed_same_everything_with_warmup_clipping_and_validation():
    runs = []
    for _ in range(2):
        model = _model(beta=2.0)
        h, opt = _fit(model, callbacks=[mv.KLWarmup(epochs=2)], clip_grad_norm=5.0)
        runs.append((h, model, opt))
    (h1, m1, o1), (h2, m2, o2) = runs
    assert _without_seconds(h1) == _without_seconds(h2)
    _same_params(m1, m2)
    for a, b in zip(o1.v, o2.v):
        np.testing.assert_array_equal(a, b)
    assert mv.evaluate.elbo(m1, X_VAL) == mv.evaluate.elbo(m2, X_VAL)


def test_save_and_resume_mid_run_with_warmup_and_clipping_is_exact(tmp_path):
    kw = dict(clip_grad_norm=5.0)
    straight = _model(beta=2.0)
    h_straight, _ = _fit(straight, epochs=4, callbacks=[mv.KLWarmup(epochs=3)], **kw)
    first = _model(beta=2.0)
    _fit(
        first,
        epochs=2,
        callbacks=[mv.KLWarmup(epochs=3), mv.SaveEachEpoch(tmp_path / "c.npz")],
        **kw,
    )
    model, opt, history = mv.resume(tmp_path / "c.npz")
    _fit(model, opt, epochs=2, history=history, callbacks=[mv.KLWarmup(epochs=3)], **kw)
    assert _without_seconds(history) == _without_seconds(h_straight)
    _same_params(model, straight)


_RUN = """
import hashlib, json
import numpy as np
import minivae as mv

x, _ = mv.datasets.load("embedded")
model = mv.VAE(784, [80], 2, seed=3)
opt = mv.Adam(model.parameters())
h = mv.fit(model, opt, x[:192], epochs=2, batch_size=64, x_val=x[:50], seed=3, progress=False)
digest = hashlib.sha256()
for p in model.parameters():
    digest.update(np.ascontiguousarray(p.data).tobytes())
del h["seconds"]
print(json.dumps([digest.hexdigest(), h]))
"""


def test_separate_processes_give_the_same_run():
    results = []
    for _ in range(2):
        done = subprocess.run(
            [sys.executable, "-c", _RUN], capture_output=True, text=True, check=True
        )
        results.append(done.stdout)
    assert results[0] == results[1]
    assert json.loads(results[0])[1]["epoch"] == [1, 2]


# ---------------------------------------------------------------------------------------------
# 7. Data files


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


# ---------------------------------------------------------------------------------------------
# 8. docs/errors.md: every row backed by a test that exists and asserts the row's message


def _table_rows():
    text = (ROOT / "docs" / "errors.md").read_text(encoding="utf-8")
    rows = []
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 4 and "::" in cells[3]:
            rows.append(cells)
    return rows


def _test_function(ref):
    """The source (decorators included) of the test that ``tests/file.py::name[id]`` names."""
    file, name = ref.strip("`").split("::")
    name, _, case = name.partition("[")
    assert (ROOT / file).is_file(), f"{file} does not exist"
    module = importlib.import_module(Path(file).stem)  # tests/ is on sys.path under pytest
    func = getattr(module, name, None)
    assert callable(func), f"{ref}: no test function {name} in {file}"
    source = inspect.getsource(func)
    assert f'"{case.rstrip("]")}"' in source or not case, f"{ref}: no case {case.rstrip(']')}"
    return source


def _plain(source):
    """Test source as the messages read: adjacent string literals joined, regex escapes undone."""
    joined = re.sub(r"[\"']\s*\n\s*[rfb]*[\"']", "", source)
    return re.sub(r"\\(\W)", r"\1", joined)


def test_the_errors_table_is_backed_by_tests_that_assert_its_messages():
    rows = _table_rows()
    assert len(rows) >= 60, "docs/errors.md should list every bad input"
    for bad_input, exception, message, ref in rows:
        body = _plain(_test_function(ref))
        for fixed in re.findall(r"`([^`]+)`", message):
            for piece in fixed.split("…"):
                piece = piece.strip()
                if len(piece) >= 6:
                    assert piece in body, f"{ref} does not assert {piece!r} (row: {bad_input})"
        for name in re.findall(r"`(\w+)`", exception):
            assert name in body, f"{ref} does not check for {name} (row: {bad_input})"
