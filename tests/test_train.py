import json
import re
import subprocess
import sys

import numpy as np
import pytest
from shared import X_VAL, X, params, same_params, tiny_vae, without_seconds

import minivae as mv
from minivae import validate
from minivae.validate import InputError


def test_fit_lowers_the_loss_and_fills_the_history(backend):
    model = tiny_vae()
    history = mv.fit(
        model,
        mv.Adam(model.parameters(), lr=3e-3),
        X,
        epochs=8,
        batch_size=16,
        x_val=X_VAL,
        seed=0,
        progress=False,
    )
    assert history["epoch"] == list(range(1, 9))
    for key in ("train_total", "train_recon", "train_kl", "val_total", "val_recon", "val_kl"):
        assert len(history[key]) == 8 and all(np.isfinite(history[key]))
    assert history["train_total"][-1] < 0.8 * history["train_total"][0]
    assert history["val_total"][-1] < history["val_total"][0]
    np.testing.assert_allclose(
        history["train_total"], np.add(history["train_recon"], history["train_kl"]), rtol=1e-5
    )


def test_same_seed_gives_the_same_run_bit_for_bit():
    runs = []
    for _ in range(2):
        model = tiny_vae()
        h = mv.fit(
            model, mv.Adam(model.parameters()), X, epochs=2, batch_size=16, seed=4, progress=False
        )
        runs.append((h["train_total"], params(model)))
    assert runs[0][0] == runs[1][0]
    for a, b in zip(runs[0][1], runs[1][1]):
        np.testing.assert_array_equal(a, b)
    other = tiny_vae()
    h = mv.fit(
        other, mv.Adam(other.parameters()), X, epochs=2, batch_size=16, seed=5, progress=False
    )
    assert h["train_total"] != runs[0][0]


@pytest.mark.parametrize("opt_cls", [mv.Adam, mv.SGD])
def test_resume_from_a_checkpoint_continues_exactly(tmp_path, opt_cls):
    model = tiny_vae()
    opt = opt_cls(model.parameters(), lr=2e-3)
    straight = mv.fit(model, opt, X, epochs=3, batch_size=16, x_val=X_VAL, seed=1, progress=False)

    first = tiny_vae()
    h = mv.fit(
        first,
        opt_cls(first.parameters(), lr=2e-3),
        X,
        epochs=1,
        batch_size=16,
        x_val=X_VAL,
        seed=1,
        progress=False,
        callbacks=[mv.SaveEachEpoch(tmp_path / "c.npz")],
    )
    resumed, opt2, h2 = mv.resume(tmp_path / "c.npz")
    assert type(opt2) is opt_cls and opt2.t == opt.t // 3
    h2 = mv.fit(
        resumed, opt2, X, epochs=2, batch_size=16, x_val=X_VAL, seed=1, progress=False, history=h2
    )
    for key in ("epoch", "train_total", "train_kl", "val_total"):
        assert h2[key] == straight[key], key
    for a, b in zip(params(resumed), params(model)):
        np.testing.assert_array_equal(a, b)
    assert h["epoch"] == [1]


def test_kl_warmup_raises_beta_linearly():
    model = tiny_vae(beta=2.0)
    h = mv.fit(
        model,
        mv.Adam(model.parameters()),
        X,
        epochs=5,
        batch_size=32,
        seed=0,
        progress=False,
        callbacks=[mv.KLWarmup(epochs=4)],
    )
    assert h["beta"] == [0.5, 1.0, 1.5, 2.0, 2.0]


class Flaky(mv.VAE):
    """A VAE whose KL turns NaN on its 7th call (epoch 2, step 3 with 4 steps per epoch)."""

    calls = 0

    def loss(self, x, eps=None, check=True):
        self.calls += 1
        terms = super().loss(x, eps, check)
        if self.calls == 7:
            terms.arrays["kl"] = terms.arrays["kl"] * float("nan")
            terms.arrays["total"] = terms.arrays["total"] * float("nan")
        return terms


def test_a_nan_loss_stops_training_and_keeps_the_last_good_state():
    reference = tiny_vae()
    ref_opt = mv.Adam(reference.parameters())
    mv.fit(reference, ref_opt, X[:64], epochs=1, batch_size=16, seed=0, progress=False)

    model = Flaky(input_dim=20, hidden=[16], latent_dim=2, seed=0)
    opt = mv.Adam(model.parameters())
    history = {}
    with pytest.raises(mv.NonFiniteLossError, match=r"total term became nan at epoch 2, step 3"):
        mv.fit(model, opt, X[:64], epochs=3, batch_size=16, seed=0, progress=False, history=history)
    assert history["epoch"] == [1]
    assert opt.t == ref_opt.t == 4
    for a, b in zip(params(model), params(reference)):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(opt.buffers()["m"], ref_opt.buffers()["m"]):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(epochs=-1), "fit: epochs must be a whole number ≥ 0, got -1."),
        (dict(batch_size=0), "fit: batch_size must be a whole number ≥ 1, got 0."),
        (dict(batch_size=2.5), "fit: batch_size must be a whole number ≥ 1, got 2.5."),
        (dict(seed=-3), "fit: seed must be a whole number ≥ 0 or None, got -3."),
        (dict(sync_every=0), "fit: sync_every must be a whole number ≥ 1, got 0."),
        (
            dict(clip_grad_norm=0.0),
            "fit: clip_grad_norm must be a positive finite number, got 0.0.",
        ),
    ],
)
def test_bad_training_settings(kwargs, message):
    model = tiny_vae()
    with pytest.raises(ValueError) as info:
        mv.fit(model, mv.Adam(model.parameters()), X, progress=False, **kwargs)
    assert str(info.value) == message


def test_empty_data_is_refused():
    model = tiny_vae()
    with pytest.raises(InputError) as info:
        mv.fit(model, mv.Adam(model.parameters()), X[:0], progress=False)
    assert str(info.value) == "fit: x is empty (shape (0, 20)); give at least one row."


def test_progress_bar_runs(capsys):
    model = tiny_vae()
    mv.fit(model, mv.Adam(model.parameters()), X, epochs=1, batch_size=32, progress=True)
    assert "epoch 1/1" in capsys.readouterr().err


def _rebinding_backward(self, dout, input_grad=True):
    """A student's Linear.backward that makes new gradient arrays instead of adding in place."""
    x = self.cache
    self.W.grad = self.W.grad + x.T @ dout
    self.b.grad = self.b.grad + dout.sum(axis=0)
    return dout @ self.W.data.T if input_grad else None


@pytest.mark.parametrize("path", ["teaching", "fast"])
def test_a_backward_that_rebinds_the_gradient_stops_fit_with_the_fix(monkeypatch, path):
    model = tiny_vae()
    opt = mv.Adam(model.parameters()) if path == "teaching" else mv.fast.Adam(model.parameters())
    before = [p.copy() for p in params(model)]
    monkeypatch.setattr(mv.nn.Linear, "backward", _rebinding_backward)
    with pytest.raises(mv.ReplacedArrayError) as info:
        mv.fit(model, opt, X, epochs=2, batch_size=16, progress=False)
    assert "was given a new gradient array (p.grad = ...)" in str(info.value)
    assert "`self.W.grad += x.T @ dout`" in str(info.value)
    for a, b in zip(params(model), before):
        np.testing.assert_array_equal(a, b)  # refused before any update


def test_fit_takes_either_of_two_teaching_optimizers_on_one_model():
    model = tiny_vae()
    adam, sgd = mv.Adam(model.parameters()), mv.SGD(model.parameters(), lr=0.01)
    history = mv.fit(model, adam, X, epochs=1, batch_size=32, progress=False)
    mv.fit(model, sgd, X, epochs=1, batch_size=32, progress=False, history=history)
    mv.fit(model, adam, X, epochs=1, batch_size=32, progress=False, history=history)
    assert history["epoch"] == [1, 2, 3] and (adam.t, sgd.t) == (6, 3)


def test_fit_with_a_teaching_optimizer_whose_parameters_a_fast_one_took_says_why():
    model = tiny_vae()
    teaching = mv.Adam(model.parameters())
    mv.fast.Adam(model.parameters())
    with pytest.raises(mv.ReplacedArrayError, match="a mv.fast.Adam made after this optimizer"):
        mv.fit(model, teaching, X, epochs=1, batch_size=32, progress=False)


def _fit(model, opt=None, **kw):
    opt = opt or mv.Adam(model.parameters(), lr=3e-3)
    args = dict(epochs=3, batch_size=16, x_val=X_VAL, seed=1, progress=False)
    return mv.fit(model, opt, X, **{**args, **kw}), opt


class NaNGradient(mv.VAE):
    """A VAE whose decoder.0.W gradient turns NaN on its 7th backward (epoch 2, step 3)."""

    calls = 0

    def backward(self):
        out = super().backward()
        self.calls += 1
        if self.calls == 7:
            self.decoder.layers[0].W.grad[0, 0] = np.nan
        return out


class InterruptAt(mv.VAE):
    """A VAE that raises KeyboardInterrupt on its n-th training-or-validation forward pass."""

    at = None
    calls = 0

    def loss(self, x, eps=None, check=True):
        self.calls += 1
        if self.calls == self.at:
            raise KeyboardInterrupt
        return super().loss(x, eps, check)


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
    model = tiny_vae()
    _fit(model, epochs=2)
    assert calls == ["x", "x_val"]


def test_fit_refuses_bad_data_before_touching_the_model():
    model = tiny_vae()
    before = params(model)
    bad = X.copy()
    bad[40, 3] = np.nan
    with pytest.raises(InputError) as info:
        mv.fit(model, mv.Adam(model.parameters()), bad, progress=False)
    assert str(info.value) == (
        "fit: x holds 1 NaN and 0 infinite values (the first in row 40); drop or repair those "
        "rows first, e.g. x = x[np.isfinite(x).all(axis=1)]."
    )
    for a, b in zip(params(model), before):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(InputError, match=r"^fit: x_val has shape \(32, 19\)"):
        mv.fit(model, mv.Adam(model.parameters()), X, x_val=X_VAL[:, :19], progress=False)


def test_an_optimizer_of_another_model_is_refused():
    model, other = tiny_vae(), tiny_vae()
    with pytest.raises(ValueError) as info:
        mv.fit(model, mv.Adam(other.parameters()), X, progress=False)
    assert str(info.value) == (
        "fit: the optimizer does not update this model's parameters (was it made for another "
        "model?); build it with mv.Adam(model.parameters())."
    )


@pytest.mark.parametrize("sync_every", [1, 3])
def test_a_nan_gradient_stops_training_naming_the_parameter(sync_every):
    reference = tiny_vae()
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
    same_params(model, reference)


@pytest.mark.filterwarnings("error::RuntimeWarning")  # no overflow warnings leak from NumPy
def test_a_learning_rate_that_blows_up_stops_with_the_last_good_state():
    model = tiny_vae()
    opt = mv.SGD(model.parameters(), lr=1e4)
    start = params(model)
    history = {}
    with pytest.raises(mv.NonFiniteLossError) as info:
        mv.fit(model, opt, X, epochs=3, batch_size=16, progress=False, history=history)
    message = str(info.value)
    assert re.match(
        r"The (total|reconstruction|kl) term became (nan|inf) at epoch 1, step ", message
    )
    assert "the model and optimizer were put back as they were before training" in message
    assert history["epoch"] == [] and opt.t == 0
    for a, b in zip(params(model), start):
        np.testing.assert_array_equal(a, b)


def test_clipping_keeps_the_same_blow_up_finite():
    model = tiny_vae()
    history, _ = _fit(model, mv.SGD(model.parameters(), lr=1e4), clip_grad_norm=1.0, x_val=None)
    assert np.isfinite(history["train_total"]).all()
    assert all(np.isfinite(p).all() for p in params(model))


def test_clip_grad_norm_scales_the_global_norm():
    model = tiny_vae()
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
    a, b = tiny_vae(), tiny_vae()
    ha, _ = _fit(a)
    hb, _ = _fit(b, clip_grad_norm=1e12)
    assert without_seconds(ha) == without_seconds(hb)
    same_params(a, b)


@pytest.mark.parametrize("at, where", [(9, "during training"), (7, "during validation")])
def test_ctrl_c_keeps_the_last_completed_epoch_and_carrying_on_is_exact(at, where):
    # 6 steps per epoch + 1 validation batch: call 9 is step 2 of epoch 2, call 7 epoch 1's val.
    straight = tiny_vae()
    h_straight, opt_straight = _fit(straight, epochs=3)
    one = tiny_vae()
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
    same_params(model, one if done else tiny_vae())
    # carrying on in the same session gives exactly the uninterrupted run
    model.at = None
    _fit(model, opt, history=history, epochs=3 - done)
    assert without_seconds(history) == without_seconds(h_straight)
    same_params(model, straight)


def test_same_seed_same_everything_with_warmup_clipping_and_validation():
    runs = []
    for _ in range(2):
        model = tiny_vae(beta=2.0)
        h, opt = _fit(model, callbacks=[mv.KLWarmup(epochs=2)], clip_grad_norm=5.0)
        runs.append((h, model, opt))
    (h1, m1, o1), (h2, m2, o2) = runs
    assert without_seconds(h1) == without_seconds(h2)
    same_params(m1, m2)
    for a, b in zip(o1.v, o2.v):
        np.testing.assert_array_equal(a, b)
    assert mv.evaluate.elbo(m1, X_VAL) == mv.evaluate.elbo(m2, X_VAL)


def test_save_and_resume_mid_run_with_warmup_and_clipping_is_exact(tmp_path):
    kw = dict(clip_grad_norm=5.0)
    straight = tiny_vae(beta=2.0)
    h_straight, _ = _fit(straight, epochs=4, callbacks=[mv.KLWarmup(epochs=3)], **kw)
    first = tiny_vae(beta=2.0)
    _fit(
        first,
        epochs=2,
        callbacks=[mv.KLWarmup(epochs=3), mv.SaveEachEpoch(tmp_path / "c.npz")],
        **kw,
    )
    model, opt, history = mv.resume(tmp_path / "c.npz")
    _fit(model, opt, epochs=2, history=history, callbacks=[mv.KLWarmup(epochs=3)], **kw)
    assert without_seconds(history) == without_seconds(h_straight)
    same_params(model, straight)


@pytest.mark.slow
def test_separate_processes_give_the_same_run():
    results = []
    for _ in range(2):
        done = subprocess.run(
            [sys.executable, "-c", _RUN], capture_output=True, text=True, check=True, timeout=120
        )
        results.append(done.stdout)
    assert results[0] == results[1]
    assert json.loads(results[0])[1]["epoch"] == [1, 2]
