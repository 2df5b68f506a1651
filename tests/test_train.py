import numpy as np
import pytest

import minivae as mv
from minivae.validate import InputError

gen = np.random.default_rng(0)
PROTOS = (gen.uniform(size=(3, 20)) > 0.5).astype(np.float32)
X = np.clip(PROTOS[gen.integers(0, 3, 96)] + 0.1 * gen.standard_normal((96, 20)), 0, 1)
X = X.astype(np.float32)
X_VAL = X[:32]


def _model(**kw):
    return mv.VAE(input_dim=20, hidden=[16], latent_dim=2, seed=0, **kw)


def _params(model):
    return [mv.asnumpy(p.data).copy() for p in model.parameters()]


def test_fit_lowers_the_loss_and_fills_the_history(backend):
    model = _model()
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
        model = _model()
        h = mv.fit(
            model, mv.Adam(model.parameters()), X, epochs=2, batch_size=16, seed=4, progress=False
        )
        runs.append((h["train_total"], _params(model)))
    assert runs[0][0] == runs[1][0]
    for a, b in zip(runs[0][1], runs[1][1]):
        np.testing.assert_array_equal(a, b)
    other = _model()
    h = mv.fit(
        other, mv.Adam(other.parameters()), X, epochs=2, batch_size=16, seed=5, progress=False
    )
    assert h["train_total"] != runs[0][0]


@pytest.mark.parametrize("opt_cls", [mv.Adam, mv.SGD])
def test_resume_from_a_checkpoint_continues_exactly(tmp_path, opt_cls):
    model = _model()
    opt = opt_cls(model.parameters(), lr=2e-3)
    straight = mv.fit(model, opt, X, epochs=3, batch_size=16, x_val=X_VAL, seed=1, progress=False)

    first = _model()
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
    for a, b in zip(_params(resumed), _params(model)):
        np.testing.assert_array_equal(a, b)
    assert h["epoch"] == [1]


def test_kl_warmup_raises_beta_linearly():
    model = _model(beta=2.0)
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
    reference = _model()
    ref_opt = mv.Adam(reference.parameters())
    mv.fit(reference, ref_opt, X[:64], epochs=1, batch_size=16, seed=0, progress=False)

    model = Flaky(input_dim=20, hidden=[16], latent_dim=2, seed=0)
    opt = mv.Adam(model.parameters())
    history = {}
    with pytest.raises(mv.NonFiniteLossError, match=r"total term became nan at epoch 2, step 3"):
        mv.fit(model, opt, X[:64], epochs=3, batch_size=16, seed=0, progress=False, history=history)
    assert history["epoch"] == [1]
    assert opt.t == ref_opt.t == 4
    for a, b in zip(_params(model), _params(reference)):
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
    model = _model()
    with pytest.raises(ValueError) as info:
        mv.fit(model, mv.Adam(model.parameters()), X, progress=False, **kwargs)
    assert str(info.value) == message


def test_empty_data_is_refused():
    model = _model()
    with pytest.raises(InputError) as info:
        mv.fit(model, mv.Adam(model.parameters()), X[:0], progress=False)
    assert str(info.value) == "fit: x is empty (shape (0, 20)); give at least one row."


def test_progress_bar_runs(capsys):
    model = _model()
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
    model = _model()
    opt = mv.Adam(model.parameters()) if path == "teaching" else mv.fast.Adam(model.parameters())
    before = [p.copy() for p in _params(model)]
    monkeypatch.setattr(mv.nn.Linear, "backward", _rebinding_backward)
    with pytest.raises(mv.ReplacedArrayError) as info:
        mv.fit(model, opt, X, epochs=2, batch_size=16, progress=False)
    assert "was given a new gradient array (p.grad = ...)" in str(info.value)
    assert "`self.W.grad += x.T @ dout`" in str(info.value)
    for a, b in zip(_params(model), before):
        np.testing.assert_array_equal(a, b)  # refused before any update


def test_fit_takes_either_of_two_teaching_optimizers_on_one_model():
    model = _model()
    adam, sgd = mv.Adam(model.parameters()), mv.SGD(model.parameters(), lr=0.01)
    history = mv.fit(model, adam, X, epochs=1, batch_size=32, progress=False)
    mv.fit(model, sgd, X, epochs=1, batch_size=32, progress=False, history=history)
    mv.fit(model, adam, X, epochs=1, batch_size=32, progress=False, history=history)
    assert history["epoch"] == [1, 2, 3] and (adam.t, sgd.t) == (6, 3)


def test_fit_with_a_teaching_optimizer_whose_parameters_a_fast_one_took_says_why():
    model = _model()
    teaching = mv.Adam(model.parameters())
    mv.fast.Adam(model.parameters())
    with pytest.raises(mv.ReplacedArrayError, match="a mv.fast.Adam made after this optimizer"):
        mv.fit(model, teaching, X, epochs=1, batch_size=32, progress=False)
