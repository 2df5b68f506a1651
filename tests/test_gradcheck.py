import numpy as np
import pytest

import minivae as mv
from minivae import gradcheck


def test_rel_error():
    a = np.array([1.0, 2.0, 0.0])
    assert gradcheck.rel_error(a, a) == 0.0
    assert gradcheck.rel_error(np.array([1.0]), np.array([-1.0])) == 1.0
    assert gradcheck.rel_error(np.array([1.0]), np.array([1.0 + 1e-6])) == pytest.approx(5e-7)
    # tiny values are compared against 1e-8, not blown up by their own size
    assert gradcheck.rel_error(np.array([0.0]), np.array([1e-12])) == pytest.approx(1e-4)


def test_numerical_gradient_of_a_known_function(backend):
    x = mv.asarray(np.array([[1.0, -2.0], [0.5, 3.0]]), dtype="float64")
    xp = mv.xp
    grad = gradcheck.numerical_gradient(lambda: xp.sum(x**3), x)
    np.testing.assert_allclose(mv.asnumpy(grad), 3 * mv.asnumpy(x) ** 2, rtol=1e-9)
    # x is left exactly as it was
    np.testing.assert_array_equal(mv.asnumpy(x), [[1.0, -2.0], [0.5, 3.0]])


def test_check_function_flags_a_wrong_gradient():
    x = np.array([0.3, -1.2, 2.0])
    assert gradcheck.check_function(lambda v: np.sum(np.sin(v)), [x], [np.cos(x)]) < 1e-9
    assert gradcheck.check_function(lambda v: np.sum(np.sin(v)), [x], [-np.cos(x)]) == 1.0


def test_check_model_finds_the_wrong_parameter():
    model = mv.VAE(input_dim=5, hidden=[4], latent_dim=2, dtype="float64", activation="tanh")
    x = np.random.default_rng(0).uniform(size=(3, 5))
    eps = np.zeros((3, 2)) + 0.5
    assert gradcheck.check_model(model, x, eps=eps) < 1e-7

    head = model.logvar_head
    original = head.backward

    def forgot_the_bias(dout):
        result = original(dout)
        head.b.grad[...] = 0  # a student who forgot dL/db
        return result

    head.backward = forgot_the_bias
    errors = gradcheck.model_errors(model, x, eps=eps)
    assert errors["logvar_head.b"] == 1.0
    assert max(v for k, v in errors.items() if k != "logvar_head.b") < 1e-7
