"""Hostile files and flags: bombs, damaged numbers, interrupted saves and contradictory command
lines are refused with one sentence of minivae's own, within limits known before reading.

Every hostile file is built here, in a temporary folder; downloads come from an HTTP server on
127.0.0.1. A bomb test checks that the refusal came without inflating the bomb: the peak of the
memory Python allocates (tracemalloc, which NumPy reports to) stays far below the bomb's size.
"""

import http.server
import io
import json
import math
import os
import re
import shlex
import signal
import subprocess
import sys
import textwrap
import threading
import tracemalloc
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest

import minivae as mv
from minivae import checkpoint, datasets
from minivae.__main__ import main
from minivae.checkpoint import CheckpointError
from minivae.datasets import DatasetError

MiB = 2**20
X = (np.random.default_rng(0).uniform(size=(48, 20)) > 0.5).astype(np.float32)


def _model(**kw):
    return mv.VAE(input_dim=20, hidden=[16], latent_dim=2, seed=0, **kw)


def _saved(tmp_path, optimizer="adam"):
    """A good checkpoint with optimizer state and a one-epoch history; returns its path."""
    model = _model()
    opt = mv.Adam(model.parameters()) if optimizer == "adam" else mv.SGD(model.parameters())
    history = mv.fit(model, opt, X, epochs=1, batch_size=16, seed=0, progress=False)
    return Path(mv.save(model, tmp_path / "m.npz", optimizer=opt, history=history))


def _arrays(path):
    with np.load(path) as f:
        return {k: f[k] for k in f.files}


def _rewrite(path, out, meta=None, **arrays):
    """A copy of the checkpoint at ``path`` with its metadata and arrays changed."""
    stored = _arrays(path)
    if meta is not None:
        stored["meta"] = np.array(json.dumps(meta(json.loads(str(stored["meta"])))))
    stored.update(arrays)
    np.savez(out, **stored)
    return out


def _peak_bytes(fn):
    """The most memory Python (and NumPy) held at once while ``fn()`` ran, in bytes."""
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def _refused(call, error, match):
    """``call()`` raises ``error`` matching ``match``; returns the message."""
    with pytest.raises(error, match=match) as info:
        call()
    return str(info.value)


# ---------------------------------------------------------------------------------------------
# 1. Checkpoints: bombs


def test_a_checkpoint_member_that_inflates_to_gigabytes_is_refused_unread(tmp_path):
    good = _arrays(_saved(tmp_path))
    path = tmp_path / "bomb.npz"
    with zipfile.ZipFile(path, "w") as zf:
        for key, array in good.items():
            buf = io.BytesIO()
            np.lib.format.write_array(buf, array)
            zf.writestr(key + ".npy", buf.getvalue())
        # a member whose header says 64 MiB of float32 and whose deflated zeros inflate to it
        header = io.BytesIO()
        np.lib.format.write_array_header_1_0(
            header, {"descr": "<f4", "fortran_order": False, "shape": (16 * MiB,)}
        )
        info = zipfile.ZipInfo("param/bomb2.npy")
        info.compress_type = zipfile.ZIP_DEFLATED
        with zf.open(info, "w", force_zip64=True) as m:
            m.write(header.getvalue())
            for _ in range(64):
                m.write(bytes(MiB))
    assert path.stat().st_size < 2 * MiB
    peak = _peak_bytes(
        lambda: _refused(
            lambda: mv.load(path),
            CheckpointError,
            "bomb2.npy is compressed, which minivae checkpoints never are",
        )
    )
    assert peak < 8 * MiB  # the 64 MiB were never inflated
    message = _refused(lambda: mv.load(path), CheckpointError, "compressed")
    assert message == (
        f"{path}: param/bomb2.npy is compressed, which minivae checkpoints never are (a small "
        "compressed file can inflate to gigabytes), so it was not read."
    )


def test_a_checkpoint_whose_headers_claim_more_than_the_file_holds(tmp_path):
    good = _arrays(_saved(tmp_path))
    path = tmp_path / "claims.npz"
    with zipfile.ZipFile(path, "w") as zf:
        for key, array in good.items():
            buf = io.BytesIO()
            np.lib.format.write_array(buf, array)
            data = buf.getvalue()
            if key == "param/mu_head.W":  # a header claiming 4 GB, followed by 128 bytes
                header = io.BytesIO()
                np.lib.format.write_array_header_1_0(
                    header, {"descr": "<f4", "fortran_order": False, "shape": (2**30,)}
                )
                data = header.getvalue() + data[-128:]
            zf.writestr(key + ".npy", data)
    peak = _peak_bytes(lambda: _refused(lambda: mv.load(path), CheckpointError, "declares shape"))
    assert peak < 8 * MiB
    assert _refused(lambda: mv.load(path), CheckpointError, "declares") == (
        f"{path}: param/mu_head.W.npy declares shape (1073741824,) of float32 but holds 128 "
        "bytes of data; the file is damaged."
    )


def test_a_checkpoint_whose_directory_claims_more_than_the_file_holds(tmp_path):
    data = bytearray(_saved(tmp_path).read_bytes())
    entry = data.index(b"PK\x01\x02")  # the first entry of the central directory
    data[entry + 20 : entry + 28] = (2**31).to_bytes(4, "little") * 2  # its two sizes: 2 GiB
    bad = tmp_path / "claims.npz"
    bad.write_bytes(bytes(data))
    message = _refused(lambda: mv.load(bad), CheckpointError, "directory declares")
    assert re.fullmatch(
        re.escape(f"{bad}: its directory declares ")
        + r"2,147,4\d\d,\d{3} bytes of arrays but the file has \d+,\d{3} bytes; "
        r"the file is damaged or truncated\.",
        message,
    ), message


def test_a_checkpoint_of_50000_members_is_refused_before_its_directory_is_read(
    tmp_path, monkeypatch
):
    path = tmp_path / "many.npz"
    with zipfile.ZipFile(path, "w") as zf:
        for i in range(50_000):
            zf.writestr(f"param/{i}.npy", b"")

    def never(*args, **kwargs):
        raise AssertionError("the zip directory was parsed")

    monkeypatch.setattr(zipfile, "ZipFile", never)
    assert _refused(lambda: mv.load(path), CheckpointError, "50,000") == (
        f"{path}: its directory lists 50,000 arrays, more than the 4,096 a minivae checkpoint "
        "may hold; it was not read."
    )


def test_metadata_too_deep_or_too_large_is_refused(tmp_path, monkeypatch):
    path = _saved(tmp_path)
    deep = "[" * 100_000 + "]" * 100_000
    bad = tmp_path / "deep.npz"
    np.savez(bad, **{**_arrays(path), "meta": np.array(deep)})
    assert _refused(lambda: mv.load(bad), CheckpointError, "nested") == (
        f"{bad}: its metadata is nested more than 8 levels deep; the file is damaged or not a "
        "minivae checkpoint."
    )
    nested = _rewrite(
        path,
        tmp_path / "nested.npz",
        meta=lambda m: {**m, "history": {**m["history"], "beta": [[[[[[[1.0]]]]]]]}},
    )
    _refused(lambda: mv.resume(nested), CheckpointError, "nested more than 8 levels deep")
    monkeypatch.setattr(checkpoint, "MAX_META_BYTES", MiB)  # 64 MiB unless changed
    big = tmp_path / "big.npz"
    text = json.dumps({"format": "minivae-checkpoint", "pad": "x" * MiB})
    np.savez(big, **{**_arrays(path), "meta": np.array(text)})
    peak = _peak_bytes(
        lambda: _refused(
            lambda: mv.load(big),
            CheckpointError,
            r"its metadata is 4,194,[0-9]{3} bytes, more than the 1,048,576 a minivae "
            r"checkpoint may hold; it was not read\.",
        )
    )
    assert peak < MiB  # the 4 MiB were never read
    _refused(
        lambda: mv.save(_model(), tmp_path / "s.npz", history={"epoch": list(range(1, 100_001))}),
        CheckpointError,
        r"Not saving .*s\.npz: its metadata would be [0-9,]+ bytes, more than the 1,048,576 a "
        r"checkpoint may hold \(is the history that long\?\)\.",
    )


# ---------------------------------------------------------------------------------------------
# 2. Checkpoints: every number checked like a constructor argument


@pytest.mark.parametrize(
    "change, message",
    [
        (
            {"latent_dim": 1e6},
            "its architecture cannot be built: latent_dim is 1000000.0, not a whole number ≥ 1",
        ),
        (
            {"latent_dim": 1e9},
            "its architecture cannot be built: latent_dim is 1000000000.0, not a whole number ≥ 1",
        ),
        (
            {"input_dim": True},
            "its architecture cannot be built: input_dim is True, not a whole number ≥ 1",
        ),
        (
            {"input_dim": 0},
            "its architecture cannot be built: input_dim is 0, not a whole number ≥ 1",
        ),
        (
            {"hidden": [16.0]},
            "its architecture cannot be built: hidden is [16.0], not a list of whole numbers ≥ 1",
        ),
        (
            {"beta": math.inf},
            "its architecture cannot be built: beta is inf, not a finite number ≥ 0",
        ),
        ({"lam": -1}, "its architecture cannot be built: lam is -1, not a finite number > 0"),
    ],
    ids=["latent-1e6", "latent-1e9", "input-true", "input-0", "hidden-float", "beta-inf", "lam"],
)
def test_architecture_numbers_are_checked_before_anything_is_built(tmp_path, change, message):
    path = _saved(tmp_path)
    bad = _rewrite(
        path, tmp_path / "bad.npz", meta=lambda m: {**m, "config": {**m["config"], **change}}
    )
    peak = _peak_bytes(lambda: _refused(lambda: mv.load(bad), CheckpointError, "architecture"))
    assert peak < 8 * MiB  # nothing the size of the claimed model was allocated
    assert _refused(lambda: mv.load(bad), CheckpointError, "architecture") == f"{bad}: {message}."


@pytest.mark.parametrize("version", [0, -5, True, 1.0, "1", None])
def test_format_versions_that_no_minivae_writes_are_refused(tmp_path, version):
    path = _saved(tmp_path)
    bad = _rewrite(path, tmp_path / "v.npz", meta=lambda m: {**m, "version": version})
    assert _refused(lambda: mv.load(bad), CheckpointError, "format version") == (
        f"{bad}: its format version is {version!r}, which no minivae writes (this one reads 1); "
        "the file is damaged."
    )


@pytest.mark.parametrize(
    "change, message",
    [
        (
            {"t": 10**400},
            "the optimizer settings in the file are damaged "
            "(step count t=10000000000000000000… (401 characters); expected a whole number "
            "from 0 to 2**53",
        ),
        (
            {"t": -1},
            "the optimizer settings in the file are damaged "
            "(step count t=-1; expected a whole number from 0 to 2**53",
        ),
        (
            {"t": 3.0},
            "the optimizer settings in the file are damaged "
            "(step count t=3.0; expected a whole number from 0 to 2**53",
        ),
        (
            {"eps": math.inf},
            "the optimizer settings in the file are damaged "
            "(eps=inf; expected a small positive number below 1",
        ),
        (
            {"eps": 0},
            "the optimizer settings in the file are damaged "
            "(eps=0; expected a small positive number below 1",
        ),
        (
            {"lr": math.nan},
            "the optimizer settings in the file are damaged "
            "(lr=nan; expected a positive finite number",
        ),
        (
            {"betas": [0.9, 1.0]},
            "the optimizer settings in the file are damaged "
            "(betas=[0.9, 1.0]; expected two numbers in [0, 1)",
        ),
        (
            {"amsgrad": True},
            "the optimizer settings in the file are damaged (unknown setting 'amsgrad'",
        ),
        ({"kind": "lbfgs"}, "the optimizer settings in the file are damaged (unknown kind 'lbfgs'"),
    ],
    ids=["t-huge", "t-negative", "t-float", "eps-inf", "eps-0", "lr-nan", "betas", "extra", "kind"],
)
def test_damaged_optimizer_settings_are_refused(tmp_path, change, message):
    path = _saved(tmp_path)
    bad = _rewrite(
        path, tmp_path / "o.npz", meta=lambda m: {**m, "optimizer": {**m["optimizer"], **change}}
    )
    got = _refused(lambda: mv.resume(bad), CheckpointError, "optimizer settings")
    assert got.startswith(f"{bad}: {message}")


def test_sgd_momentum_from_a_file_is_checked(tmp_path):
    path = _saved(tmp_path, optimizer="sgd")
    bad = _rewrite(
        path,
        tmp_path / "o.npz",
        meta=lambda m: {**m, "optimizer": {**m["optimizer"], "momentum": 1}},
    )
    assert _refused(lambda: mv.resume(bad), CheckpointError, "momentum") == (
        f"{bad}: the optimizer settings in the file are damaged (momentum=1; expected a number "
        "in [0, 1))."
    )


def test_damaged_optimizer_buffers_are_refused(tmp_path):
    path = _saved(tmp_path)
    v = _arrays(path)["optim/v/mu_head.W"].copy()
    v[0, 0] = -1.0
    bad = _rewrite(path, tmp_path / "v.npz", **{"optim/v/mu_head.W": v})
    assert _refused(lambda: mv.resume(bad), CheckpointError, "negative") == (
        f"{bad}: v of mu_head.W holds 1 negative values, which this running mean of squared "
        "gradients never has; the checkpoint is damaged."
    )
    m = _arrays(path)["optim/m/mu_head.W"].copy()
    m[1, 1] = np.inf
    bad = _rewrite(path, tmp_path / "inf.npz", **{"optim/m/mu_head.W": m})
    _refused(lambda: mv.resume(bad), CheckpointError, "m of mu_head.W holds 1 NaN or infinite")
    zeros = {"optim/velocity/mu_head.W": np.zeros_like(m)}
    extra = _rewrite(path, tmp_path / "extra.npz", **zeros)
    _refused(lambda: mv.resume(extra), CheckpointError, "optimizer state that Adam does not")
    other = _rewrite(path, tmp_path / "other.npz", notes=np.zeros(3))
    assert _refused(lambda: mv.load(other), CheckpointError, "no minivae checkpoint has") == (
        f"{other} holds arrays that no minivae checkpoint has (notes); the file is damaged or "
        "not a checkpoint."
    )


def test_a_resumed_optimizer_carries_on(tmp_path):
    path = _saved(tmp_path)
    model, opt, history = mv.resume(path)
    assert opt.t == 3 and history["epoch"] == [1]
    mv.fit(model, opt, X, epochs=1, batch_size=16, seed=0, history=history, progress=False)
    assert opt.t == 6 and all(np.isfinite(mv.asnumpy(p.data)).all() for p in model.parameters())


# ---------------------------------------------------------------------------------------------
# 3. Loading into a model: all or nothing


def test_a_refused_load_into_a_model_leaves_it_untouched(tmp_path):
    path = _saved(tmp_path)
    stored = _arrays(path)
    last = f"param/{_model().parameters()[-1].name}"  # checked last: all others pass first
    broken = stored[last].copy()
    broken.flat[0] = np.nan
    bad = _rewrite(path, tmp_path / "half.npz", **{last: broken})
    target = _model()
    for p in target.parameters():
        p.data[...] = 7.0
    with pytest.raises(CheckpointError, match="holds 1 NaN or infinite values"):
        mv.load(bad, model=target)
    assert all((p.data == 7.0).all() for p in target.parameters())
    assert mv.load(path, model=target) is target  # the good file still loads into it
    assert not (target.parameters()[0].data == 7.0).all()


# ---------------------------------------------------------------------------------------------
# 4. Interrupted saves leave nothing a later save does not clean up

_KILLED_MID_SAVE = textwrap.dedent(
    """
    import sys, time
    import numpy as np
    import minivae as mv

    def stuck(f, **arrays):
        f.write(b"PK\\x03\\x04 half a checkpoint")
        f.flush()
        print("writing", flush=True)
        time.sleep(600)

    np.savez = stuck
    mv.save(mv.VAE(input_dim=20, hidden=[16], latent_dim=2, seed=1), sys.argv[1])
    """
)


def test_saves_killed_mid_write_leave_no_lasting_debris(tmp_path):
    path = _saved(tmp_path)
    before = path.read_bytes()
    for _ in range(3):  # three saves killed with SIGKILL halfway through writing
        proc = subprocess.Popen(
            [sys.executable, "-c", _KILLED_MID_SAVE, str(path)],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert proc.stdout.readline().strip() == "writing"
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            proc.stdout.close()
    # each save removed what the one killed before it left: only the last one's temporary is here
    left = sorted(p.name for p in tmp_path.iterdir())
    assert len(left) == 2 and left[0].startswith(f".m.npz.tmp-{proc.pid}-")
    assert path.read_bytes() == before  # the kills never harmed the checkpoint
    # the next save removes what the killed ones left, and nothing else
    other = tmp_path / ".other.npz.tmp-1-x.npz"
    other.write_bytes(b"not ours")
    mine = tmp_path / f".m.npz.tmp-{os.getpid()}-live.npz"  # a save in progress, alive
    mine.write_bytes(b"in progress")
    mv.save(_model(), path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["m.npz", other.name, mine.name])
    assert mv.load(path).config["hidden"] == [16]


# ---------------------------------------------------------------------------------------------
# 5. Every checkpoint minivae writes can be resumed


class NaNValidation(mv.VAE):
    """A VAE whose validation loss (32-row batches) turns NaN in epoch 2; training stays finite."""

    val_calls = 0

    def loss(self, x, eps=None, check=True):
        if x.shape[0] == 32:
            self.val_calls += 1
            if self.val_calls == 2:
                x = x + np.float32(np.nan)
        return super().loss(x, eps, check)


def test_a_nan_validation_loss_rolls_back_and_the_checkpoint_resumes(tmp_path):
    ckpt = tmp_path / "c.npz"
    model = NaNValidation(input_dim=20, hidden=[16], latent_dim=2, seed=0)
    opt = mv.Adam(model.parameters())
    history = {}
    with pytest.raises(mv.NonFiniteLossError) as info:
        mv.fit(
            model,
            opt,
            X,
            epochs=3,
            batch_size=16,
            x_val=X[:32],
            seed=0,
            progress=False,
            history=history,
            callbacks=[mv.SaveEachEpoch(ckpt)],
        )
    assert str(info.value) == (
        "The validation total term became nan at the end of epoch 2; the model and optimizer "
        "were put back as they were at the end of epoch 1 (the last completed one). Try a "
        "smaller learning rate or fit(..., clip_grad_norm=1.0)."
    )
    assert history["epoch"] == [1] and all(len(v) == 1 for v in history.values())
    assert opt.t == 3
    _, resumed_opt, saved = mv.resume(ckpt)
    assert saved == history and resumed_opt.t == 3


def test_a_history_that_could_not_be_resumed_is_not_saved(tmp_path):
    path = tmp_path / "m.npz"
    for history in ({"epoch": [1], "val_total": [math.nan]}, {"epoch": [2]}, {"epoch": [True]}):
        assert _refused(
            lambda h=history: mv.save(_model(), path, history=h), CheckpointError, "Not saving"
        ) == (
            f"Not saving {path}: the history is not fit's dict of lists of finite numbers with "
            "epochs numbered 1, 2, …, so the checkpoint could not be resumed."
        )
    assert not path.exists()


# ---------------------------------------------------------------------------------------------
# 6. The command line never guesses

QUICK = ["--epochs", "1", "--limit", "100", "--hidden", "8", "--no-progress", "--no-figures"]


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


def _gallery_script():
    """scripts/build_gallery.py, the maintainer's script that draws the README gallery."""
    import importlib.util

    path = Path(__file__).parents[1] / "scripts" / "build_gallery.py"
    spec = importlib.util.spec_from_file_location("build_gallery", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


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
        capsys, ["train", *QUICK, "--out", str(out)], f"--out {out} is a file, not a folder"
    )
    _flag_refused(capsys, ["--out", str(out)], "--out", "is a file, not a folder", run=gallery)
    # a model larger than any address space: one line, and no output folder
    big = tmp_path / "big"
    argv = ["train", *QUICK, "--hidden", str(10**15), "--out", str(big)]
    _flag_refused(capsys, argv, "error: out of memory", status=1)
    assert not big.exists()


def test_flags_that_contradict_the_resumed_checkpoint_are_refused(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", *QUICK, "--out", str(run)]) == 0
    ckpt = run / "model.npz"
    out = tmp_path / "resumed"
    line = _flag_refused(
        capsys,
        [
            "train",
            *QUICK,
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
        ["train", *QUICK, "--resume", str(ckpt), "--lr", "0.5", "--out", str(out)],
        "--lr 0.5 contradicts the checkpoint",
    )
    assert not out.exists()
    # the same options as the first run, plus --resume, carry on
    assert main(["train", *QUICK, "--lr", "1e-3", "--resume", str(ckpt), "--out", str(out)]) == 0
    ae = tmp_path / "ae"
    assert main(["train", *QUICK, "--model", "ae", "--out", str(ae)]) == 0
    argv = ["train", *QUICK, "--resume", str(ae / "model.npz"), "--beta", "2", "--out", str(out)]
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


# ---------------------------------------------------------------------------------------------
# 7. Data files: IDX headers, gzip bombs, downloads


def _idx_header(*dims):
    return bytes([0, 0, 8, len(dims)]) + np.array(dims, ">u4").tobytes()


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX")
def test_a_pipe_or_a_folder_is_not_read(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)  # opening it would wait for a writer forever
    assert _refused(lambda: datasets.read_idx(fifo), DatasetError, "regular") == (
        f"{fifo}: not a regular file, so not an IDX file."
    )
    _refused(lambda: datasets.read_idx(tmp_path), DatasetError, "not a regular file")
    assert _refused(lambda: mv.load(fifo), CheckpointError, "regular") == (
        f"{fifo} is not a regular file, so not a checkpoint."
    )


def test_an_idx_header_with_255_dimensions_is_refused():
    data = _idx_header(*([1] * 255)) + b"\0"
    assert _refused(lambda: datasets.read_idx(data, name="x.idx"), DatasetError, "255") == (
        "x.idx: the IDX header declares 255 dimensions; MNIST files have 1 or 3, and at most 4 "
        "are read."
    )


def _gzip_bomb(header, n_mib):
    """A gzip file: ``header`` then ``n_mib`` MiB of zeros (a few dozen KiB on disk)."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)  # 31: gzip framing
    chunk = bytes(MiB)
    body = [packer.compress(header), *(packer.compress(chunk) for _ in range(n_mib))]
    return b"".join([*body, packer.flush()])


def test_a_gzip_bomb_is_read_only_as_far_as_its_header_allows(tmp_path):
    bomb = tmp_path / "t10k-labels-idx1-ubyte.gz"
    bomb.write_bytes(_gzip_bomb(_idx_header(10), 64))
    assert bomb.stat().st_size < MiB
    peak = _peak_bytes(lambda: _refused(lambda: datasets.read_idx(bomb), DatasetError, "too long"))
    assert peak < 4 * MiB  # not the 64 MiB it inflates to
    assert _refused(lambda: datasets.read_idx(bomb), DatasetError, "too long") == (
        f"{bomb}: too long, dimensions 10 need 10 data bytes but more follow the header."
    )
    huge = _gzip_bomb(_idx_header(60_000, 28, 28), 1)
    assert _refused(
        lambda: datasets.read_idx(huge, max_bytes=10_000), DatasetError, "more than"
    ) == (
        "<bytes>: dimensions 60000 × 28 × 28 declare 47,040,000 data bytes, more than the "
        "10,000 this file may hold; it was not read."
    )


def test_a_gzip_bomb_in_a_data_folder_is_not_inflated_past_its_dataset(tmp_path):
    folder = tmp_path / "mnist"
    folder.mkdir()
    bomb = folder / "t10k-labels-idx1-ubyte.gz"
    bomb.write_bytes(_gzip_bomb(_idx_header(10_000), 32))
    peak = _peak_bytes(
        lambda: _refused(
            lambda: datasets._read_local("mnist", folder, bomb.name), DatasetError, "inflates"
        )
    )
    assert peak < 4 * MiB
    assert _refused(
        lambda: datasets._read_local("mnist", folder, bomb.name), DatasetError, "inflates"
    ) == (
        f"{bomb}: the gzip data inflates to more than 10,008 bytes, more than the mnist file "
        "t10k-labels-idx1-ubyte.gz has; it was not read further."
    )
    bomb.unlink()
    big = folder / "t10k-labels-idx1-ubyte"  # not gzipped, and far larger than the real file
    big.write_bytes(bytes(MiB))
    assert _refused(
        lambda: datasets._read_local("mnist", folder, bomb.name), DatasetError, "more than"
    ) == (
        f"{big}: 1,048,576 bytes, more than the mnist file t10k-labels-idx1-ubyte.gz can be "
        "(10,008 bytes of data); it was not read."
    )


class _EndlessServer:
    """An HTTP server on 127.0.0.1 that answers every request with up to 256 MiB of zeros and
    no Content-Length, counting what it managed to send before the client hung up."""

    TOTAL = 256 * MiB

    def __init__(self):
        self.sent = 0
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.end_headers()
                chunk = bytes(64 * 1024)
                try:
                    while server.sent < server.TOTAL:
                        self.wfile.write(chunk)
                        server.sent += len(chunk)
                except OSError:
                    pass

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def test_a_download_is_cut_at_the_most_its_file_can_be(tmp_path, monkeypatch):
    monkeypatch.setenv("MINIVAE_DATA", str(tmp_path / "cache"))
    monkeypatch.delenv("MINIVAE_MIRROR", raising=False)
    for var in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    server = _EndlessServer()
    try:
        monkeypatch.setitem(datasets.MIRRORS, "mnist", [server.url + "/mnist/"])
        fname = "t10k-labels-idx1-ubyte.gz"
        message = _refused(
            lambda: datasets._fetch("mnist", fname, download=True, progress=False),
            DatasetError,
            "the server sent more than",
        )
        assert message.startswith(f"could not download {fname} of mnist ({server.url}/mnist/")
        assert (
            ": the server sent more than 75,644 bytes, more than this file can be; the download "
            "was stopped); no unverified data was used" in message
        )
        assert server.sent < server.TOTAL  # not read to the end
        assert not any(p.is_file() for p in (tmp_path / "cache").rglob("*"))
    finally:
        server.close()


def test_the_limits_are_the_documented_ones():
    assert checkpoint.MAX_MEMBERS == 4096 and checkpoint.MAX_META_BYTES == 64 * MiB
    assert checkpoint.MAX_META_DEPTH == 8 and checkpoint.MAX_STEPS == 2**53
    assert datasets.MAX_IDX_DIMS == 4 and datasets.MAX_IDX_BYTES == 2**30
    assert datasets._gz_limit(10_008) == 75_644
