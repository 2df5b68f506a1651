"""The command line's parser: ``python -m minivae {train, sample, diffuse, assign, grade} ...``.

    python -m minivae train                      # a VAE on the embedded MNIST subset, offline
    python -m minivae train --dataset fashion-mnist --data-dir ../shared/datasets/fashion-mnist \\
        --hidden 400 --latent 20 --epochs 10 --out runs/fashion
    python -m minivae sample runs/latest/model.npz --n 64 --out samples.png
    python -m minivae diffuse runs/latest/model.npz          # a latent diffusion prior
    python -m minivae assign course/          # the student edition of lessons and library
    python -m minivae grade course/           # a score per exercise

The commands are small functions in :mod:`minivae.commands` and :mod:`minivae.cli_diffuse`;
``main`` in :mod:`minivae.__main__` runs the one asked for. Flag types refuse a value in the words
:mod:`minivae.validate` uses for the same rule; choices come from :mod:`minivae.datasets` and
:mod:`minivae.nn`.
"""

from __future__ import annotations

import argparse
import os

from . import validate
from .datasets import DATASETS as _ALL_DATASETS
from .nn import ACTIVATIONS as _ALL_ACTIVATIONS

try:
    from .course import cli as course_cli
except ImportError:  # a student edition has no course/ package: no assign, no grade
    course_cli = None

__all__ = ["FlagError", "Parser", "build_parser"]

DESCRIPTION = "minivae: train and sample variational autoencoders written by hand in NumPy/CuPy."

#: The --dataset choices: every data set but the "mnist-small" alias of "embedded".
DATASETS = [d for d in _ALL_DATASETS if d != "mnist-small"]
#: The --activation choices: every hidden activation but the identity.
ACTIVATIONS = [a for a in _ALL_ACTIVATIONS if a != "identity"]


class FlagError(ValueError):
    """Flags that contradict each other or the --resume checkpoint: one line, exit status 2."""


class Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line, with a pointer to --help."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _flag_type(convert, rule, words):
    """An argparse type: ``convert(text)``, kept when ``rule(value)`` holds, else refused in the
    words :mod:`minivae.validate` uses ("expected a whole number ≥ 1, got 0")."""
    whole = convert is int

    def parse(text):
        try:
            value = convert(text)
        except ValueError:
            kind = "a whole number" if whole else "a number"
            raise argparse.ArgumentTypeError(f"expected {kind}, got {text!r}") from None
        if not rule(value):
            raise argparse.ArgumentTypeError(f"expected {words}, got {value if whole else text}")
        return value

    return parse


WHOLE = _flag_type(int, lambda v: validate.is_whole(v, 1), "a whole number ≥ 1")
WHOLE_OR_ZERO = _flag_type(int, lambda v: validate.is_whole(v, 0), "a whole number ≥ 0")
POSITIVE = _flag_type(float, lambda v: validate.is_finite(v) and v > 0, "a positive number")
NONNEGATIVE = _flag_type(float, lambda v: validate.is_finite(v) and v >= 0, "a number ≥ 0")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="python -m minivae", description=DESCRIPTION)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    sub.required = True
    for add in (_train_parser, _sample_parser, _diffuse_parser):
        add(sub)
    if course_cli is not None:  # the instructor's commands: assign and grade
        course_cli.add_commands(sub)
    return parser


def _train_parser(sub):
    train = sub.add_parser(
        "train",
        help="train an autoencoder or a VAE and write checkpoint, history and figures",
        description="Train a model, print train and validation nats per epoch, and write "
        "model.npz, history.json, history.csv, summary.json and figures/*.png to --out. "
        "The defaults run offline on the embedded MNIST subset in well under a minute.",
    )
    data = train.add_argument_group("data")
    data.add_argument(
        "--dataset",
        default="embedded",
        choices=DATASETS,
        help="which images to train on (default: embedded, shipped in the package)",
    )
    data.add_argument(
        "--data-dir",
        default=None,
        metavar="DIR",
        help="read MNIST/Fashion-MNIST IDX files from this folder (no download)",
    )
    data.add_argument(
        "--limit",
        type=WHOLE,
        default=None,
        metavar="N",
        help="use only the first N training images (quick experiments)",
    )
    model = train.add_argument_group("model")
    model.add_argument(
        "--model",
        default=None,
        choices=["vae", "ae"],
        help="a variational (vae) or plain (ae) autoencoder (default: vae)",
    )
    model.add_argument(
        "--hidden",
        type=WHOLE,
        nargs="*",
        default=None,
        metavar="H",
        help="hidden layer sizes, encoder side (default: 256)",
    )
    model.add_argument(
        "--latent",
        type=WHOLE,
        default=None,
        metavar="D",
        help="latent size; 2 also draws the manifold grid (default: 2)",
    )
    model.add_argument(
        "--likelihood",
        default=None,
        choices=validate.LIKELIHOODS,
        help="decoder likelihood (default: bernoulli)",
    )
    model.add_argument(
        "--lam",
        type=POSITIVE,
        default=None,
        help="λ = 1/(2σ²) of the Gaussian decoder (default: 0.5; only with --likelihood gaussian)",
    )
    model.add_argument(
        "--beta",
        type=NONNEGATIVE,
        default=None,
        help="weight of the KL term (default: 1.0; only with --model vae)",
    )
    model.add_argument(
        "--activation",
        default=None,
        choices=ACTIVATIONS,
        help="hidden activation (default: relu)",
    )
    opt = train.add_argument_group("training")
    opt.add_argument("--epochs", type=WHOLE, default=50, help="(default: 50)")
    opt.add_argument("--batch-size", type=WHOLE, default=128, help="(default: 128)")
    opt.add_argument(
        "--lr", type=POSITIVE, default=None, help="Adam's learning rate (default: 1e-3)"
    )
    opt.add_argument(
        "--clip-grad-norm",
        type=POSITIVE,
        default=None,
        metavar="C",
        help="scale each step's gradients so their global norm is at most C (default: off)",
    )
    opt.add_argument(
        "--warmup",
        type=WHOLE,
        default=None,
        metavar="E",
        help="raise β from 0 over the first E epochs (only with --model vae)",
    )
    opt.add_argument("--seed", type=WHOLE_OR_ZERO, default=0, help="(default: 0)")
    opt.add_argument(
        "--backend",
        default="numpy",
        choices=["numpy", "cupy"],
        help="numpy (CPU) or cupy (GPU) (default: numpy)",
    )
    opt.add_argument(
        "--threads",
        type=WHOLE,
        default=None,
        metavar="N",
        help="BLAS threads for the matrix products (default: one per core that other programs "
        "leave free, by the load average)",
    )
    opt.add_argument(
        "--teaching",
        action="store_true",
        help="train with the teaching optimizer (mv.Adam) instead of the fast path "
        "(mv.fast.Adam); both give the same numbers on NumPy",
    )
    opt.add_argument(
        "--resume",
        default=None,
        metavar="CKPT",
        help="continue from a model.npz saved by an earlier train run; its architecture and "
        "learning rate are kept, and model or --lr flags that differ from them are refused",
    )
    out = train.add_argument_group("output")
    out.add_argument(
        "--out",
        default=os.path.join("runs", "latest"),
        metavar="DIR",
        help="output folder (default: runs/latest)",
    )
    out.add_argument(
        "--iw-samples",
        type=WHOLE_OR_ZERO,
        default=0,
        metavar="K",
        help="also estimate log p(x) on the test set by importance weighting "
        "with K samples (e.g. 5000; default: skip)",
    )
    out.add_argument("--no-figures", action="store_true", help="skip the figures")
    out.add_argument("--no-progress", action="store_true", help="hide the progress bars")

    return train


def _sample_parser(sub):
    sample = sub.add_parser(
        "sample",
        help="draw new images from a trained model",
        description="Decode codes drawn from the prior N(0, I) and save them as a grid of images.",
    )
    sample.add_argument("checkpoint", help="a model.npz written by train")
    sample.add_argument("--n", type=WHOLE, default=64, help="how many (default: 64)")
    sample.add_argument("--seed", type=WHOLE_OR_ZERO, default=0, help="(default: 0)")
    sample.add_argument("--out", default="samples.png", help="PNG to write (default: samples.png)")
    sample.add_argument("--npy", default=None, help="also save the images as a .npy array")

    return sample


def _diffuse_parser(sub):
    p = sub.add_parser(
        "diffuse",
        help="fit a latent diffusion prior to a trained VAE and sample from it",
        description="Encode the training images with a trained VAE, fit a diffusion model "
        "(DDPM) to their posterior means, decode codes sampled from it, and write prior.npz, "
        "samples.npy, history.json, summary.json and figures/*.png. The defaults run offline "
        "on the embedded MNIST subset in about a minute.",
    )
    p.add_argument("checkpoint", help="a VAE's model.npz written by train")
    p.add_argument(
        "--dataset",
        default="embedded",
        choices=[d for d in DATASETS if d != "shapes"],
        help="the images to encode: those the VAE was trained on (default: embedded)",
    )
    p.add_argument("--data-dir", default=None, metavar="DIR", help="read IDX files from here")
    p.add_argument(
        "--prior",
        default=None,
        metavar="NPZ",
        help="sample from this saved diffusion prior instead of training a new one",
    )
    p.add_argument("--steps", type=WHOLE, default=4000, help="training steps (default: 4000)")
    p.add_argument("--batch-size", type=WHOLE, default=256, help="(default: 256)")
    p.add_argument("--lr", type=float, default=1e-3, help="Adam's first learning rate (1e-3)")
    p.add_argument(
        "--hidden",
        type=WHOLE,
        nargs="+",
        default=[256, 256, 256],
        metavar="H",
        help="the denoiser's hidden layer sizes (default: 256 256 256)",
    )
    p.add_argument("--T", type=WHOLE, default=1000, help="diffusion steps T (1000)")
    p.add_argument(
        "--schedule", default="linear", choices=["linear", "cosine"], help="(default: linear)"
    )
    p.add_argument("--sampler", default="ddpm", choices=["ddpm", "ddim"], help="(default: ddpm)")
    p.add_argument(
        "--sample-steps",
        type=WHOLE,
        default=None,
        metavar="S",
        help="DDIM's number of steps (default: T)",
    )
    p.add_argument("--n", type=WHOLE, default=64, help="images to sample (default: 64)")
    p.add_argument("--seed", type=WHOLE_OR_ZERO, default=0, help="(default: 0)")
    p.add_argument("--out", default=None, metavar="DIR", help="(default: CKPT's folder/diffusion)")
    p.add_argument("--no-figures", action="store_true", help="skip the figures")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return p
