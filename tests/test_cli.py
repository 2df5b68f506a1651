"""The command line, end to end, in a temporary folder (embedded data: no network)."""

import json
import subprocess
import sys

import numpy as np
import pytest

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


def test_a_bad_flag_gets_one_clear_line():
    result = subprocess.run(
        [sys.executable, "-m", "minivae", "train", "--epochs", "zero"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "--epochs" in lines[0] and "whole number" in lines[0] and "--help" in lines[0]


def test_a_missing_checkpoint_is_one_line_not_a_traceback(tmp_path, capsys):
    assert main(["sample", str(tmp_path / "nope.npz")]) == 1
    err = capsys.readouterr().err
    assert "No checkpoint at" in err and "Traceback" not in err


def test_help_reads_well():
    result = subprocess.run(
        [sys.executable, "-m", "minivae", "train", "--help"], capture_output=True, text=True
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
