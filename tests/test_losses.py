import math

import numpy as np
import pytest
from conftest import assert_on_backend

import minivae as mv
from minivae import losses
from minivae.gradcheck import check_function

SMOOTH = 1e-7
rng = np.random.default_rng(0)
LOGITS = rng.standard_normal((5, 6)) * 2
TARGETS = rng.uniform(size=(5, 6))
MU = rng.standard_normal((5, 3))
LOGVAR = rng.standard_normal((5, 3)) * 0.5


def test_bernoulli_value_and_gradient(to_backend):
    logits, x = to_backend(LOGITS), to_backend(TARGETS)
    value, dlogits = losses.bernoulli_nll(logits, x)
    assert_on_backend(dlogits)
    p = 1 / (1 + np.exp(-LOGITS))
    direct = -np.sum(TARGETS * np.log(p) + (1 - TARGETS) * np.log(1 - p)) / 5
    assert float(value) == pytest.approx(direct, rel=1e-12)
    f = lambda l: losses.bernoulli_nll(l, x)[0]  # noqa: E731
    assert check_function(f, [logits], [dlogits]) < SMOOTH


def test_bernoulli_is_finite_for_huge_logits(to_backend):
    logits = to_backend([[1e4, -1e4, 1e4, -1e4]])
    x = to_backend([[1.0, 0.0, 0.0, 1.0]])
    value, dlogits = losses.bernoulli_nll(logits, x)
    # right answers: 0 for the two confident hits, 1e4 nats for each confident miss
    assert float(value) == pytest.approx(2e4)
    np.testing.assert_allclose(mv.asnumpy(dlogits), [[0.0, 0.0, 1.0, -1.0]])
    for dtype in ("float32", "float64"):
        v, g = losses.bernoulli_nll(
            to_backend([[1e4, -1e4]], dtype), to_backend([[0.5, 0.5]], dtype)
        )
        assert math.isfinite(float(v)) and np.isfinite(mv.asnumpy(g)).all()


def test_gaussian_is_the_nll_of_a_fixed_variance_gaussian(to_backend):
    lam = 2.0
    mean, x = to_backend(LOGITS), to_backend(TARGETS)
    value, dmean = losses.gaussian_nll(mean, x, lam)
    var = 1 / (2 * lam)
    log_density = -0.5 * (TARGETS - LOGITS) ** 2 / var - 0.5 * np.log(2 * np.pi * var)
    assert float(value) == pytest.approx(-log_density.sum() / 5, rel=1e-12)
    per_example = losses.gaussian_log_prob(mean, x, lam)
    np.testing.assert_allclose(mv.asnumpy(per_example), log_density.sum(axis=1))
    f = lambda m: losses.gaussian_nll(m, x, lam)[0]  # noqa: E731
    assert check_function(f, [mean], [dmean]) < SMOOTH
    with pytest.raises(ValueError, match="positive"):
        losses.gaussian_nll(mean, x, 0.0)


def test_kl_gradients(to_backend):
    mu, lv = to_backend(MU), to_backend(LOGVAR)
    value, dmu, dlv = losses.kl_standard_normal(mu, lv)
    f = lambda m, v: losses.kl_standard_normal(m, v)[0]  # noqa: E731
    assert check_function(f, [mu, lv], [dmu, dlv]) < SMOOTH
    value, dmu, dlv = losses.kl_lecture(mu, lv)
    f = lambda m, v: losses.kl_lecture(m, v)[0]  # noqa: E731
    assert check_function(f, [mu, lv], [dmu, dlv]) < SMOOTH


def test_kl_is_zero_at_the_prior_and_positive_elsewhere(to_backend):
    zeros = to_backend(np.zeros((4, 3)))
    value, dmu, dlv = losses.kl_standard_normal(zeros, zeros)
    assert float(value) == 0.0
    assert not mv.asnumpy(dmu).any() and not mv.asnumpy(dlv).any()
    assert float(losses.kl_standard_normal(to_backend(MU), to_backend(LOGVAR))[0]) > 0


def test_lecture_kl_has_its_minimum_below_zero_at_half_variance():
    mu = np.zeros((1, 1))
    at_half = float(losses.kl_lecture(mu, np.log(np.full((1, 1), 0.5)))[0])
    assert at_half == pytest.approx(0.5 * np.log(2) - 0.5)
    for var in (0.3, 0.45, 0.55, 1.0):
        assert float(losses.kl_lecture(mu, np.log(np.full((1, 1), var)))[0]) > at_half


def test_closed_form_kl_matches_monte_carlo():
    # KL(q‖p) = E_q[log q(z) − log p(z)]: estimate it from samples of q and compare.
    mu = np.array([[0.5, -1.0, 2.0]])
    logvar = np.array([[0.3, -1.2, 0.8]])
    n = 200_000
    gen = np.random.default_rng(1)
    z = mu + np.exp(0.5 * logvar) * gen.standard_normal((n, 3))
    log_q = -0.5 * (((z - mu) ** 2) / np.exp(logvar) + logvar + np.log(2 * np.pi)).sum(axis=1)
    log_p = -0.5 * (z**2 + np.log(2 * np.pi)).sum(axis=1)
    samples = log_q - log_p
    estimate, stderr = samples.mean(), samples.std() / np.sqrt(n)
    exact = float(losses.kl_standard_normal(mu, logvar)[0])
    assert abs(exact - estimate) < 3 * stderr
    assert stderr < 0.01  # the check has teeth: a factor-of-2 slip would be far outside


def test_softmax_cross_entropy(to_backend):
    logits = to_backend(LOGITS)
    labels = mv.xp.asarray(np.array([0, 5, 2, 2, 1]))
    value, dlogits = losses.softmax_cross_entropy(logits, labels)
    shifted = LOGITS - LOGITS.max(axis=1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    assert float(value) == pytest.approx(-log_p[np.arange(5), [0, 5, 2, 2, 1]].mean(), rel=1e-12)
    f = lambda l, y: losses.softmax_cross_entropy(l, y)[0]  # noqa: E731
    assert check_function(f, [logits, labels], [dlogits, None]) < SMOOTH
    huge, _ = losses.softmax_cross_entropy(to_backend([[1e4, -1e4, 0.0]]), labels[:1])
    assert float(huge) == 0.0
