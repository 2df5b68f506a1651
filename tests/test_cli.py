"""The command line, end to end, in a temporary folder (embedded data: no network)."""

import json
import shlex
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from shared import without_seconds

import minivae as mv
from minivae.__main__ import main

QUICK = ["--epochs", "2", "--limit", "300", "--hidden", "32", "--no-progress"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    assert main(["train", *QUICK, "--out", str(out)]) == 0
    return out


def test_train_writes_checkpoint_history_summary_and_figures(trained, capsys):
    names = {p.name for p in trained.iterdir()}
    assert {"model.npz", "history.json", "history.csv", "summary.json", "figures"} <= names
    history = json.loads((trained / "history.json").read_text())
    assert history["epoch"] == [1, 2] and len(history["val_total"]) == 2
    assert (trained / "history.csv").read_text().splitlines()[0].startswith("epoch,")
    summary = json.loads((trained / "summary.json").read_text())
    assert summary["config"]["latent_dim"] == 2 and summary["test"]["total"] > 0
    figures = {p.name for p in (trained / "figures").iterdir()}
    assert {"loss_curves.png", "samples.png", "latent_manifold.png"} <= figures
    assert all((trained / "figures" / f).stat().st_size > 1000 for f in figures)


def test_train_prints_nats_per_epoch(tmp_path, capsys):
    assert (
        main(
            [
                "train",
                *QUICK,
                "--model",
                "ae",
                "--latent",
                "3",
                "--no-figures",
                "--out",
                str(tmp_path),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "epoch   1  train" in out and "val" in out and "epoch   2" in out
    assert "test:" in out and "(reconstruction;" in out


def test_resume_continues_the_run(trained, tmp_path):
    ckpt = trained / "model.npz"
    args = ["train", "--epochs", "1", "--limit", "300", "--no-progress", "--no-figures"]
    assert main([*args, "--resume", str(ckpt), "--out", str(tmp_path)]) == 0
    history = json.loads((tmp_path / "history.json").read_text())
    assert history["epoch"] == [1, 2, 3]


def test_sample_writes_a_png_and_an_array(trained, tmp_path):
    png, npy = tmp_path / "s.png", tmp_path / "s.npy"
    assert (
        main(
            ["sample", str(trained / "model.npz"), "--n", "9", "--out", str(png), "--npy", str(npy)]
        )
        == 0
    )
    assert png.stat().st_size > 1000
    images = np.load(npy)
    assert images.shape == (9, 784) and images.min() >= 0 and images.max() <= 1


@pytest.mark.slow
def test_a_bad_flag_gets_one_clear_line():
    result = subprocess.run(
        [sys.executable, "-m", "minivae", "train", "--epochs", "zero"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "--epochs" in lines[0] and "whole number" in lines[0] and "--help" in lines[0]


def test_a_missing_checkpoint_is_one_line_not_a_traceback(tmp_path, capsys):
    assert main(["sample", str(tmp_path / "nope.npz")]) == 1
    err = capsys.readouterr().err
    assert "No checkpoint at" in err and "Traceback" not in err


@pytest.mark.slow
def test_help_reads_well():
    result = subprocess.run(
        [sys.executable, "-m", "minivae", "train", "--help"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0
    for flag in (
        "--dataset",
        "--data-dir",
        "--model",
        "--hidden",
        "--latent",
        "--likelihood",
        "--beta",
        "--epochs",
        "--batch-size",
        "--lr",
        "--seed",
        "--backend",
        "--out",
    ):
        assert flag in result.stdout


def test_train_uses_the_fast_path_and_teaching_gives_the_same_model(tmp_path, capsys):
    runs = {}
    for name, extra in [("fast", []), ("teaching", ["--teaching", "--threads", "1"])]:
        out = tmp_path / name
        assert (
            main(["train", *QUICK, "--no-figures", "--iw-samples", "0", *extra, "--out", str(out)])
            == 0
        )
        runs[name] = (capsys.readouterr().out, np.load(out / "model.npz", allow_pickle=False))
    assert "training on the fast path (numba) with" in runs["fast"][0]
    assert "training on the teaching path (mv.Adam) with 1 BLAS thread(s)" in runs["teaching"][0]
    fast_npz, teaching_npz = runs["fast"][1], runs["teaching"][1]
    params = [k for k in fast_npz.files if k != "meta"]
    assert params and all(np.array_equal(fast_npz[k], teaching_npz[k]) for k in params)


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
    assert without_seconds(resumed) == without_seconds(straight)


@pytest.mark.slow
def test_a_real_sigint_to_the_command_line(tmp_path, spawn):
    out = tmp_path / "run"
    args = ["--epochs", "5000", "--limit", "200", "--hidden", "8", "--no-progress", "--no-figures"]
    child = spawn(
        [sys.executable, "-m", "minivae", "train", *args, "--out", str(out)], cwd=tmp_path
    )
    proc = child.proc
    for line in child.lines():
        if line.startswith("epoch   2"):
            break
    proc.send_signal(signal.SIGINT)
    rest, err = child.finish()
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    last = rest.strip().splitlines()[-1]
    assert last.startswith("interrupted: saved epoch ") and "--resume" in last
    done = int(last.split()[3])
    _, _, history = mv.resume(out / "model.npz")
    assert done >= 2 and history["epoch"] == list(range(1, done + 1))


TINY = [
    "--epochs",
    "1",
    "--limit",
    "100",
    "--hidden",
    "8",
    "--no-progress",
    "--no-figures",
]


def _flag_refused(capsys, argv, *pieces, status=2, run=main):
    """``run(argv)`` (the command line's main) exits with ``status`` and one line on stderr
    holding each piece."""
    try:
        code = run(argv)
    except SystemExit as stop:
        code = stop.code
    assert code == status
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    for piece in pieces:
        assert piece in lines[0]
    return lines[0]


def _gallery_script():
    """scripts/build_gallery.py, the maintainer's script that draws the README gallery."""
    import importlib.util

    path = Path(__file__).parents[1] / "scripts" / "build_gallery.py"
    spec = importlib.util.spec_from_file_location("build_gallery", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    "flags, pieces",
    [
        (["--iw-samples", "-5"], ["argument --iw-samples: expected a whole number ≥ 0, got -5"]),
        (["--seed", "-1"], ["argument --seed: expected a whole number ≥ 0, got -1"]),
        (
            ["--data-dir", "/nonexistent"],
            ["--data-dir applies only to --dataset mnist or fashion-mnist, not embedded"],
        ),
        (
            ["--dataset", "mnist", "--data-dir", "/nonexistent"],
            ["--data-dir /nonexistent: does not exist"],
        ),
        (["--model", "ae", "--beta", "2"], ["--beta applies only to --model vae"]),
        (["--lam", "2"], ["--lam applies only to --likelihood gaussian"]),
        (
            ["--model", "ae", "--iw-samples", "10"],
            ["--iw-samples applies only to a VAE, and this model is an autoencoder"],
        ),
        (["--model", "ae", "--warmup", "2"], ["--warmup applies only to a VAE"]),
        (["--limit", "5000"], ["--limit 5000 is more than the 4000 training images of embedded"]),
    ],
    ids=[
        "iw-negative",
        "seed-negative",
        "data-dir-embedded",
        "data-dir-missing",
        "ae-beta",
        "lam-bernoulli",
        "ae-iw",
        "ae-warmup",
        "limit",
    ],
)
def test_impossible_flags_are_refused_before_anything_is_created(tmp_path, capsys, flags, pieces):
    out = tmp_path / "run"
    base = ["--epochs", "1", "--hidden", "8", "--no-progress", "--no-figures"]
    _flag_refused(capsys, ["train", *base, *flags, "--out", str(out)], *pieces, "--help")
    assert not out.exists()


def test_bad_seeds_and_paths_are_refused_by_every_command(capsys, tmp_path):
    _flag_refused(capsys, ["sample", "x.npz", "--seed", "-1"], "argument --seed")
    gallery = _gallery_script().main
    _flag_refused(capsys, ["--seed", "-2", "--out", str(tmp_path)], "argument --seed", run=gallery)
    _flag_refused(
        capsys, ["--data-dir", str(tmp_path / "no")], "--data-dir", "does not exist", run=gallery
    )
    _flag_refused(capsys, ["sample", "x.npz", "--out", str(tmp_path)], "--out", "is a folder")
    out = tmp_path / "file"
    out.write_text("")
    _flag_refused(
        capsys,
        ["train", *TINY, "--out", str(out)],
        f"--out {out} is a file, not a folder",
    )
    _flag_refused(capsys, ["--out", str(out)], "--out", "is a file, not a folder", run=gallery)
    # a model larger than any address space: one line, and no output folder
    big = tmp_path / "big"
    argv = ["train", *TINY, "--hidden", str(10**15), "--out", str(big)]
    _flag_refused(capsys, argv, "error: out of memory", status=1)
    assert not big.exists()


def test_flags_that_contradict_the_resumed_checkpoint_are_refused(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", *TINY, "--out", str(run)]) == 0
    ckpt = run / "model.npz"
    out = tmp_path / "resumed"
    line = _flag_refused(
        capsys,
        [
            "train",
            *TINY,
            "--resume",
            str(ckpt),
            "--lr",
            "0.5",
            "--hidden",
            "32",
            "--out",
            str(out),
        ],
        "--hidden 32 contradicts the checkpoint",
    )
    assert line.endswith(
        f"error: --hidden 32 contradicts the checkpoint {ckpt}, which has --hidden 8; leave "
        "--hidden out to carry on with the checkpoint's settings, or start a new run without "
        "--resume (see python -m minivae train --help)"
    )
    _flag_refused(
        capsys,
        ["train", *TINY, "--resume", str(ckpt), "--lr", "0.5", "--out", str(out)],
        "--lr 0.5 contradicts the checkpoint",
    )
    assert not out.exists()
    # the same options as the first run, plus --resume, carry on
    assert main(["train", *TINY, "--lr", "1e-3", "--resume", str(ckpt), "--out", str(out)]) == 0
    ae = tmp_path / "ae"
    assert main(["train", *TINY, "--model", "ae", "--out", str(ae)]) == 0
    argv = [
        "train",
        *TINY,
        "--resume",
        str(ae / "model.npz"),
        "--beta",
        "2",
        "--out",
        str(out),
    ]
    _flag_refused(capsys, argv, "--beta applies only to a VAE, and this checkpoint is of an")


def test_the_ctrl_c_hint_pastes_into_a_shell_as_it_is(tmp_path, monkeypatch, capsys):
    calls = []
    real = mv.VAE.loss

    def interrupting(self, x, eps=None, check=True):
        calls.append(1)
        if len(calls) == 3:  # 1 step per epoch + 1 validation batch: step 1 of epoch 2
            raise KeyboardInterrupt
        return real(self, x, eps, check)

    monkeypatch.setattr(mv.VAE, "loss", interrupting)
    out = tmp_path / "my run's folder"
    quick = ["--limit", "100", "--batch-size", "128", "--hidden", "8", "--no-progress"]
    assert main(["train", "--epochs", "3", *quick, "--no-figures", "--out", str(out)]) == 130
    line = capsys.readouterr().out.strip().splitlines()[-1]
    ckpt = str(out / "model.npz")
    assert line.endswith(f"--resume {shlex.quote(ckpt)} --epochs 2")
    words = shlex.split(line.split("plus ", 1)[1])  # as a shell reads what was pasted
    assert words == ["--resume", ckpt, "--epochs", "2"]
    monkeypatch.setattr(mv.VAE, "loss", real)
    assert main(["train", *quick, "--no-figures", "--out", str(out), *words]) == 0
