import numpy as np
import pytest

import minivae as mv
from minivae.nn import Parameter

P0 = [[0.5, -1.0, 2.0], [0.0, 1.5, -0.3]]
GRADS = [
    [[0.1, -0.2, 0.3], [1.0, -1.0, 0.0]],
    [[0.2, 0.2, -0.1], [0.5, 0.0, 2.0]],
    [[-0.3, 0.1, 0.0], [0.2, -0.4, 1.0]],
    [[0.05, -0.5, 0.4], [-1.0, 0.3, 0.1]],
]
# Expected parameters after each step, computed once with torch.optim (PyTorch 2.13.0, float64)
# from the same start and gradients. A bias correction that forgets to count steps is right on
# step 1 and wrong from step 2 on, so four steps are checked.
ADAM_LR_01 = [
    [
        [0.400000009999999, -0.9000000049999998, 1.9000000033333333],
        [-0.09999999900000002, 1.599999999, -0.3],
    ],
    [
        [0.30348181352125303, -0.9052631626315787, 1.8599781479280808],
        [-0.19321796170183894, 1.6670058234658114, -0.3744136818306456],
    ],
    [
        [0.31014171477095, -0.9304065917097083, 1.8290411380154363],
        [-0.275406461698365, 1.738835688294628, -0.4544378127275009],
    ],
    [
        [0.3078463286020575, -0.8911473081590497, 1.7677260266845725],
        [-0.2874740254432038, 1.7798979797994698, -0.5225217649606566],
    ],
]
SGD_LR_01_MOMENTUM_09 = [
    [[0.49, -0.98, 1.97], [-0.1, 1.6, -0.3]],
    [[0.461, -0.982, 1.953], [-0.24, 1.69, -0.5]],
    [[0.4649, -0.9938, 1.9377], [-0.386, 1.811, -0.78]],
    [[0.46341, -0.95442, 1.88393], [-0.4174, 1.8899, -1.042]],
]


def _run(make, backend_dtype="float64"):
    p = Parameter(mv.asarray(np.array(P0), dtype=backend_dtype))
    opt = make([p])
    seen = []
    for g in GRADS:
        p.grad[...] = mv.asarray(np.array(g), dtype=backend_dtype)
        opt.step()
        seen.append(mv.asnumpy(p.data).copy())
    return seen


@pytest.mark.parametrize(
    "make, expected",
    [
        (lambda ps: mv.Adam(ps, lr=0.1), ADAM_LR_01),
        (lambda ps: mv.SGD(ps, lr=0.1, momentum=0.9), SGD_LR_01_MOMENTUM_09),
    ],
    ids=["adam", "sgd-momentum"],
)
def test_optimizers_match_fixed_expected_arrays(backend, make, expected):
    for step, (got, want) in enumerate(zip(_run(make), expected), start=1):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14, err_msg=f"step {step}")


def test_adam_counts_its_steps():
    opt = mv.Adam([Parameter(np.zeros(2))], lr=0.1)
    assert opt.t == 0
    opt.step()
    opt.step()
    assert opt.t == 2


@pytest.mark.parametrize("make", [mv.Adam, lambda ps: mv.SGD(ps, momentum=0.5)])
def test_each_parameter_keeps_its_own_arrays_updated_in_place_in_its_dtype(make):
    ps = [Parameter(np.ones((2, 3), dtype=np.float32)), Parameter(np.full(4, 2.0, np.float32))]
    arrays = [(p.data, p.grad) for p in ps]
    ps[0].grad[...] = 0.5
    opt = make(ps)
    opt.step()
    assert all(p.data is d and p.grad is g for p, (d, g) in zip(ps, arrays))
    assert ps[0].data.dtype == np.float32
    assert float(ps[0].data[0, 0]) < 1.0 and float(ps[1].data[0]) == 2.0  # only ps[0] had a grad
    assert not any(np.shares_memory(ps[0].data, a) for b in opt.buffers().values() for a in b)
    opt.zero_grad()
    assert not np.any(ps[0].grad) and ps[0].grad is arrays[0][1]


def test_replacing_a_parameter_array_is_caught_at_the_next_step():
    p = Parameter(np.ones(3, dtype=np.float32), name="encoder.0.W")
    opt = mv.Adam([p])
    p.data = np.zeros(3, dtype=np.float32)
    with pytest.raises(mv.ReplacedArrayError, match=r"encoder\.0\.W was given a new data array"):
        opt.step()


def test_replacing_a_gradient_array_is_caught_and_says_to_add_in_place():
    p = Parameter(np.ones(3), name="decoder.1.b")
    opt = mv.SGD([p], lr=0.1)
    p.grad = p.grad + 1.0  # the student's `self.b.grad = self.b.grad + ...`
    with pytest.raises(mv.ReplacedArrayError) as info:
        opt.step()
    assert "Parameter decoder.1.b was given a new gradient array (p.grad = ...)" in str(info.value)
    assert "write `self.W.grad += x.T @ dout`" in str(info.value)
    np.testing.assert_array_equal(p.data, 1.0)  # nothing was updated


def test_two_teaching_optimizers_on_one_model_both_work():
    model = mv.VAE(input_dim=6, hidden=[5], latent_dim=2)
    first, second = mv.Adam(model.parameters(), lr=0.1), mv.SGD(model.parameters(), lr=0.1)
    x = np.random.default_rng(0).uniform(size=(4, 6)).astype(np.float32)
    for opt in (first, second, first):
        before = [p.data.copy() for p in model.parameters()]
        model.loss(x)
        model.backward()
        opt.step()
        model.zero_grad()
        assert any(not np.array_equal(b, p.data) for b, p in zip(before, model.parameters()))
    assert (first.t, second.t) == (2, 1)


@pytest.mark.parametrize("kwargs", [dict(lr=0.0), dict(lr=-1.0), dict(lr=float("nan"))])
def test_bad_learning_rates_are_refused(kwargs):
    with pytest.raises(ValueError, match="learning rate lr must be a positive finite number"):
        mv.Adam([Parameter(np.zeros(2))], **kwargs)


def test_an_optimizer_given_the_model_or_bad_betas_says_what_to_pass():
    model = mv.VAE(input_dim=6, hidden=[5], latent_dim=2)
    with pytest.raises(TypeError) as info:
        mv.Adam(model)
    assert "Adam takes the parameters to update, e.g. Adam(model.parameters()), not VAE." in str(
        info.value
    )
    with pytest.raises(ValueError) as info:
        mv.Adam(model.parameters(), betas=0.9)
    assert "Adam's betas must be two numbers (β₁, β₂), got 0.9." in str(info.value)
    with pytest.raises(ValueError) as info:
        mv.SGD(model.parameters(), momentum=1.0)
    assert "momentum must be in [0, 1), got 1.0." in str(info.value)


def test_replacing_a_parameter_array_names_it_in_the_message():
    model = mv.VAE(input_dim=6, hidden=[5], latent_dim=2)
    opt = mv.Adam(model.parameters())
    model.decoder[0].W.data = np.zeros((2, 5), np.float32)
    with pytest.raises(mv.ReplacedArrayError) as info:
        opt.step()
    assert (
        "Parameter decoder.0.W was given a new data array (p.data = ...) after the optimizer was "
        "made, so the optimizer no longer updates the array the model uses: change values in "
        "place (p.data[...] = new), or make the optimizer after the change." in str(info.value)
    )


def test_no_parameters_is_an_error():
    with pytest.raises(ValueError, match="no parameters"):
        mv.SGD([], lr=0.1)


@pytest.mark.parametrize("opt_name", ["adam", "sgd"])
def test_a_tiny_vae_learns(backend, opt_name):
    gen = np.random.default_rng(0)
    # two prototype images plus a little noise: easy to reconstruct once trained
    protos = (gen.uniform(size=(2, 16)) > 0.5).astype(np.float32)
    x = mv.asarray(
        np.clip(protos[gen.integers(0, 2, 64)] + 0.05 * gen.standard_normal((64, 16)), 0, 1),
        dtype="float32",
    )
    model = mv.VAE(input_dim=16, hidden=[12], latent_dim=2, seed=0)
    if opt_name == "adam":
        opt = mv.Adam(model.parameters(), lr=1e-2)
    else:
        opt = mv.SGD(model.parameters(), lr=0.05, momentum=0.9)
    eps = mv.rng(1).normal((64, 2))
    before = model.loss(x, eps=eps).total
    for _ in range(150):
        model.loss(x)
        model.backward()
        opt.step()
        model.zero_grad()
    after = model.loss(x, eps=eps).total
    assert after < 0.7 * before, (before, after)
