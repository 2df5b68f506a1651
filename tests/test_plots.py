"""Figures: each one draws from a tiny model on NumPy and on array_api_strict, with the axes and
images it promises, and the 2-D manifold refuses any other latent size."""

from statistics import NormalDist

import numpy as np
import pytest
from matplotlib.figure import Figure

import minivae as mv
from minivae import plots

RNG = np.random.default_rng(0)
X = (RNG.random((24, 784)) < 0.2).astype(np.float32)
Y = np.arange(24) % 4


def _history(epochs=3, val=True):
    h = {"epoch": list(range(1, epochs + 1))}
    for term, start in (("total", 200.0), ("recon", 190.0), ("kl", 10.0)):
        h[f"train_{term}"] = list(start / np.arange(1, epochs + 1))
        if val:
            h[f"val_{term}"] = list(1.1 * start / np.arange(1, epochs + 1))
    return h


def _counts(fig):
    """(number of axes, number of images drawn with imshow) of a figure."""
    return len(fig.axes), sum(len(ax.images) for ax in fig.axes)


@pytest.fixture(params=["numpy", "array_api_strict"])
def on_backend(request):
    mv.set_backend(request.param)
    yield request.param
    mv.set_backend("numpy")


@pytest.mark.parametrize("latent_dim", [2, 3])
def test_every_figure_draws(on_backend, latent_dim):
    model = mv.VAE(input_dim=784, hidden=[16], latent_dim=latent_dim, seed=0)
    assert mv.backend.namespace(model.parameters()[0].data) is mv.xp
    x = mv.asarray(X)  # data on the model's backend; NumPy input is tried below
    expected = {
        "reconstructions": (plots.reconstructions(model, x, n=6), (2, 2)),
        "samples": (plots.samples(model, n=16, seed=1), (1, 1)),
        "scatter, classes": (plots.latent_scatter(model, x, Y), (1, 0)),
        "scatter, no labels": (plots.latent_scatter(model, X), (1, 0)),
        "scatter, values": (plots.latent_scatter(model, X, RNG.random(24)), (2, 0)),  # colorbar
        "traversals": (plots.traversals(model, n_steps=5), (1, 1)),
        "traversals of x0": (plots.traversals(model, x0=X[0], dims=[1]), (1, 1)),
        "interpolation": (plots.interpolation(model, X[0], x[1:2, ...], n_steps=4), (1, 1)),
        "loss curves": (plots.loss_curves(_history()), (3, 0)),
        "kl per dimension": (plots.kl_per_dimension(model, x), (2, 0)),
        "image grid": (plots.image_grid(x[:5, ...], nrow=5, title="five"), (1, 1)),
    }
    if latent_dim == 2:
        expected["manifold"] = (plots.latent_manifold(model, n=5), (1, 1))
    for name, (fig, counts) in expected.items():
        assert isinstance(fig, Figure), name
        assert _counts(fig) == counts, name
        fig.canvas.draw()  # render it: layout, text and images, as saving would
        for ax in fig.axes:
            if ax.get_label() != "<colorbar>":
                assert ax.get_title(), name  # every panel says what it shows


def test_titles_and_labels_say_what_is_shown():
    vae2 = mv.VAE(input_dim=784, hidden=[16], latent_dim=2, seed=0)
    vae5 = mv.VAE(input_dim=784, hidden=[16], latent_dim=5, seed=0)
    assert "PCA" not in plots.latent_scatter(vae2, X, Y).axes[0].get_title()
    ax = plots.latent_scatter(vae5, X, Y).axes[0]
    assert "PCA" in ax.get_title() and "5 dimensions" in ax.get_title()
    assert ax.get_legend().get_title().get_text() == "label"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["0", "1", "2", "3"]
    fig = plots.kl_per_dimension(vae5, X)
    assert "sorted by KL" in fig.axes[0].get_xlabel()
    assert "index order" in plots.kl_per_dimension(vae5, X, sort=False).axes[0].get_xlabel()
    for ax in plots.loss_curves(_history()).axes:
        assert ax.get_xlabel() == "epoch" and ax.get_ylabel() == "nats per example"


def test_kl_bars_are_sorted_largest_first():
    model = mv.VAE(input_dim=784, hidden=[16], latent_dim=5, seed=0)
    kl = mv.evaluate.kl_per_dimension(model, X)
    fig = plots.kl_per_dimension(model, X)
    heights = [bar.get_height() for bar in fig.axes[0].patches]
    np.testing.assert_allclose(heights, np.sort(kl)[::-1])
    ticks = [int(t.get_text()) for t in fig.axes[0].get_xticklabels()]
    assert ticks == list(np.argsort(-kl, kind="stable"))


def test_manifold_grid_follows_the_inverse_normal_cdf():
    model = mv.VAE(input_dim=784, hidden=[16], latent_dim=2, seed=0)
    fig = plots.latent_manifold(model, n=7, extent=0.9)
    ax = fig.axes[0]
    assert ax.images[0].get_array().shape == (7 * 28, 7 * 28)
    low = NormalDist().inv_cdf(0.1)
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert labels[0] == f"{low:.2f}" and labels[-1] == f"{-low:.2f}"  # −1.28 … 1.28


def test_manifold_refuses_other_latent_sizes():
    model = mv.VAE(input_dim=784, hidden=[16], latent_dim=3, seed=0)
    with pytest.raises(ValueError, match="latent_dim=3"):
        plots.latent_manifold(model)
    model = mv.VAE(input_dim=784, hidden=[16], latent_dim=2, seed=0)
    with pytest.raises(ValueError, match="extent"):
        plots.latent_manifold(model, extent=1.5)


def test_other_image_shapes():
    model = mv.VAE(input_dim=120, hidden=[8], latent_dim=2, seed=0)
    x = RNG.random((6, 120))
    fig = plots.reconstructions(model, x, n=4, image_shape=(12, 10))
    assert fig.axes[0].images[0].get_array().shape == (12 + 2, 4 * 11 + 1)
    with pytest.raises(ValueError, match="image_shape"):
        plots.reconstructions(model, x)  # 28×28 is not 120 pixels


def test_autoencoders_are_drawn_too():
    ae = mv.Autoencoder(input_dim=784, hidden=[16], latent_dim=2, seed=0)
    assert "decode(encode(x))" in plots.reconstructions(ae, X).axes[1].get_title()
    assert "codes z(x)" in plots.latent_scatter(ae, X, Y).axes[0].get_title()
    plots.interpolation(ae, X[0], X[1])
    with pytest.raises(TypeError, match="needs a VAE"):
        plots.kl_per_dimension(ae, X)


def test_loss_curves_with_and_without_validation():
    fig = plots.loss_curves(_history(val=False))
    assert [len(ax.lines) for ax in fig.axes] == [1, 1, 1]
    fig = plots.loss_curves(_history(epochs=1))  # a single epoch still shows (as markers)
    assert [len(ax.lines) for ax in fig.axes] == [2, 2, 2]
    as_arrays = {k: np.asarray(v) for k, v in _history().items()}  # e.g. from a checkpoint
    assert [len(ax.lines) for ax in plots.loss_curves(as_arrays).axes] == [2, 2, 2]
    with pytest.raises(ValueError, match="train_kl"):
        plots.loss_curves({"epoch": [1], "train_total": [1.0], "train_recon": [1.0]})


def test_traversals_refuse_unknown_dimensions():
    model = mv.VAE(input_dim=784, hidden=[16], latent_dim=3, seed=0)
    with pytest.raises(ValueError, match="between 0 and 2"):
        plots.traversals(model, dims=[3])


def test_save_writes_a_png(tmp_path):
    model = mv.VAE(input_dim=784, hidden=[16], latent_dim=2, seed=0)
    path = plots.save(plots.samples(model, n=9), tmp_path / "figures" / "samples.png")
    data = path.read_bytes()
    assert path.parent.name == "figures"
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 1000
    assert plots.samples(model, n=4)._repr_png_()[:8] == b"\x89PNG\r\n\x1a\n"  # notebooks


def test_an_autoencoder_history_has_no_kl_panel():
    ae = mv.Autoencoder(input_dim=784, hidden=[16], latent_dim=2, seed=0)
    history = mv.fit(
        ae, mv.Adam(ae.parameters()), X, epochs=2, batch_size=8, x_val=X, seed=0, progress=False
    )
    (ax,) = plots.loss_curves(history).axes
    assert "no KL term" in ax.get_title() and len(ax.lines) == 2
    assert len(plots.loss_curves(_history()).axes) == 3  # a VAE keeps all three


def _contrast(colour, background) -> float:
    """WCAG contrast ratio of two colours."""
    from matplotlib.colors import to_rgb

    def luminance(c):
        lin = [v / 12.92 if v <= 0.04045 else ((v + 0.055) / 1.055) ** 2.4 for v in to_rgb(c)]
        return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]

    hi, lo = sorted([luminance(colour), luminance(background)], reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def test_lesson_style_reads_in_light_and_dark_themes():
    """Transparent around the axes (the theme shows through), a white plotting area, and text in
    a grey that keeps a contrast of 4:1 or more on JupyterLab's light (#fff) and dark (#111)
    backgrounds."""
    import io

    import matplotlib
    from matplotlib.image import imread

    with matplotlib.rc_context():
        plots.lesson_style()
        fig = plots.loss_curves(_history())
        image = imread(io.BytesIO(plots._png(fig)))
    assert image.shape[2] == 4 and image[0, 0, 3] == 0, "the corner is transparent"
    ax = fig.axes[0].get_window_extent()
    h = image.shape[0]
    inside = image[int(h - ax.y1) + 5, int(ax.x0) + 5]
    np.testing.assert_allclose(inside, [1, 1, 1, 1])  # the axes face: opaque white
    for background in ("#ffffff", "#111111"):
        assert _contrast(plots.TEXT_GREY, background) >= 4.0
    assert fig.axes[0].title.get_color() == plots.TEXT_GREY
    assert matplotlib.rcParams["figure.facecolor"] != "none"  # rc_context put it back


def test_show_puts_a_caption_under_the_figure(capsys):
    fig = plots.samples(mv.VAE(input_dim=784, hidden=[16], latent_dim=2, seed=0), n=4)
    plots.show(fig, "four  samples\nfrom the prior")  # outside IPython: the caption is printed
    assert capsys.readouterr().out == "Figure: four samples from the prior\n"
    with pytest.raises(ValueError) as info:
        plots.show(fig, " ")
    assert str(info.value) == "show needs a caption: one sentence saying what the figure shows."
