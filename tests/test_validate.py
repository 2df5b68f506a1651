"""minivae.validate: bad data and bad settings get one sentence, raised at the public method
that was called (the rows of docs/errors.md about data and settings)."""

import array_api_strict
import numpy as np
import pytest
from shared import IMAGES, X, tiny_vae

import minivae as mv
from minivae.validate import InputError


def _mnist_model(**kw):
    return mv.VAE(input_dim=784, hidden=[8], latent_dim=2, seed=0, **kw)


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
    model = tiny_vae()
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
    model = tiny_vae()
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
    model = tiny_vae()
    terms = model.loss(X)  # a NumPy array is copied over
    assert np.isfinite(terms.total)
    assert mv.backend.namespace(model.encode(X)[0]) is mv.xp


def test_other_float_precisions_are_cast_to_the_model_dtype():
    model = tiny_vae()  # float32
    terms = model.loss(X.astype(np.float64))
    assert terms.arrays["total"].dtype == np.float32
    mu, logvar = model.encode(X.astype(np.float64))
    assert mu.dtype == np.float32 and logvar.dtype == np.float32
    assert model.decode(np.zeros((2, 2), np.float64)).dtype == np.float32
    assert model.reconstruct(X.astype(np.float16)).dtype == np.float32
    wide = mv.VAE(input_dim=20, hidden=[16], latent_dim=2, dtype="float64")
    assert wide.encode(X)[0].dtype == np.float64


def test_binary_images_as_bool_or_int_equal_the_float_ones():
    model = tiny_vae()
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
    clf = mv.Classifier.from_model(tiny_vae(), n_classes=3)
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
