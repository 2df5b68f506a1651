import numpy as np
import pytest
from conftest import assert_on_backend

import minivae as mv
from minivae import nn
from minivae.gradcheck import check_module, module_errors

SMOOTH, KINK = 1e-7, 1e-5


def _x(to_backend, shape=(5, 4), seed=0, scale=1.0):
    return to_backend(scale * np.random.default_rng(seed).standard_normal(shape))


def test_linear_gradients(to_backend):
    layer = nn.Linear(4, 3, seed=0, dtype="float64")
    layer.b.data += mv.asarray(np.array([0.1, -0.2, 0.3]), dtype="float64")
    errors = module_errors(layer, _x(to_backend))
    assert set(errors) == {"x", "W", "b"}
    assert max(errors.values()) < SMOOTH


@pytest.mark.parametrize(
    "make, tol",
    [
        (nn.Tanh, SMOOTH),
        (nn.Sigmoid, SMOOTH),
        (nn.Softplus, SMOOTH),
        (nn.Identity, SMOOTH),
        (nn.ReLU, KINK),
        (lambda: nn.LeakyReLU(0.1), KINK),
    ],
    ids=["tanh", "sigmoid", "softplus", "identity", "relu", "leaky_relu"],
)
def test_activation_gradients(to_backend, make, tol):
    layer = make()
    x = _x(to_backend, scale=2.0)
    assert_on_backend(layer(x))
    assert check_module(layer, x) < tol


def test_sequential_and_mlp_gradients(to_backend):
    net = nn.mlp([4, 6, 5, 3], "tanh", seed=1, dtype="float64").set_names("net.")
    errors = module_errors(net, _x(to_backend))
    assert set(errors) == {"x", "net.0.W", "net.0.b", "net.2.W", "net.2.b", "net.4.W", "net.4.b"}
    assert max(errors.values()) < SMOOTH
    relu_net = nn.mlp([4, 6, 3], "relu", final_activation=True, seed=2, dtype="float64")
    assert check_module(relu_net, _x(to_backend, seed=3)) < KINK


def test_gradcheck_catches_a_wrong_backward(to_backend):
    class WrongTanh(nn.Tanh):
        def backward(self, dout):
            return dout * (1.0 - self.cache)  # forgot to square y

    x = _x(to_backend)
    assert check_module(nn.Tanh(), x) < SMOOTH
    assert check_module(WrongTanh(), x) > 1e-2


def test_gradients_accumulate_until_zero_grad():
    layer = nn.Linear(3, 2, seed=0, dtype="float64")
    x = np.ones((4, 3))
    dout = np.ones((4, 2))
    layer(x)
    layer.backward(dout)
    once = layer.W.grad.copy()
    layer(x)
    layer.backward(dout)
    np.testing.assert_allclose(layer.W.grad, 2 * once)
    layer.zero_grad()
    assert not layer.W.grad.any() and not layer.b.grad.any()


def test_linear_init_is_documented_he_uniform():
    layer = nn.Linear(400, 300, seed=0)
    bound = np.sqrt(6.0 / 400)
    assert layer.W.data.dtype == np.float32
    assert np.abs(layer.W.data).max() <= bound
    assert np.abs(layer.W.data).max() > 0.95 * bound
    np.testing.assert_allclose(layer.W.data.var(), bound**2 / 3, rtol=0.05)
    assert not layer.b.data.any()


def test_shape_error_names_the_layer_and_both_shapes():
    model = mv.VAE(input_dim=784, hidden=[16], latent_dim=2)
    with pytest.raises(ValueError) as info:
        model.encoder(np.zeros((8, 100), dtype=np.float32))
    message = str(info.value)
    assert "encoder.0" in message and "(batch, 784)" in message and "(8, 100)" in message
    with pytest.raises(ValueError, match=r"got \(784,\)"):
        model.encoder(np.zeros(784, dtype=np.float32))


def test_unknown_activation_lists_choices():
    with pytest.raises(ValueError, match="'relu'"):
        nn.activation("gelu")


def test_sigmoid_and_softplus_are_stable_for_huge_inputs():
    x = np.array([[-1e4, -50.0, 0.0, 50.0, 1e4]])
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        s = nn.sigmoid(x)
        sp = nn.Softplus()(x)
    # accurate to rounding of numbers near 1 (absolute error), so σ(−50) ≈ 2e-22 comes out as 0
    np.testing.assert_allclose(s, [[0.0, 0.0, 0.5, 1.0, 1.0]], rtol=0, atol=1e-15)
    z = np.linspace(-20, 20, 101)
    np.testing.assert_allclose(nn.sigmoid(z), 1 / (1 + np.exp(-z)), rtol=0, atol=5e-16)
    np.testing.assert_allclose(sp, [[0.0, np.log1p(np.exp(-50.0)), np.log(2.0), 50.0, 1e4]])


def test_parameters_are_named_by_path():
    model = mv.VAE(input_dim=6, hidden=[5, 4], latent_dim=2)
    names = [p.name for p in model.parameters()]
    assert names[:4] == ["encoder.0.W", "encoder.0.b", "encoder.2.W", "encoder.2.b"]
    assert "mu_head.W" in names and "logvar_head.b" in names and names[-1] == "decoder.4.b"
    assert len(set(names)) == len(names)
