"""``python -m minivae diffuse CKPT``: fit a latent diffusion prior to a trained VAE and sample.

    python -m minivae train                                  # a VAE in runs/latest/model.npz
    python -m minivae diffuse runs/latest/model.npz          # its diffusion prior, samples, figures
    python -m minivae diffuse runs/latest/model.npz --prior runs/latest/diffusion/prior.npz \\
        --sampler ddim --sample-steps 50                    # sample again from a saved prior

The VAE encodes the training images (posterior means μ(x)); a :class:`LatentDiffusion` model is
trained on those codes, then codes drawn from it are decoded by the VAE's decoder. Written to
``--out`` (default: a ``diffusion`` folder beside the checkpoint): prior.npz, samples.npy,
history.json, summary.json and figures/*.png. Its flags are parsed in :mod:`minivae.cli`.
"""

from __future__ import annotations

import json
import os

from .validate import SettingError

__all__ = ["cmd_diffuse"]


def _vae(path):
    """The VAE at ``path``, or a CheckpointError saying in one sentence what the file is."""
    import minivae as mv
    from minivae import checkpoint

    with checkpoint.Archive(path) as archive:  # missing, damaged or hostile: refused here
        kind = (archive.meta.get("config") or {}).get("kind")
    if kind == "ae":
        raise checkpoint.CheckpointError(
            f"{path} holds a plain autoencoder, not a VAE; latent diffusion needs a VAE "
            "(train one with `python -m minivae train --model vae`)."
        )
    if kind == "latent-diffusion":
        raise checkpoint.CheckpointError(
            f"{path} is a latent diffusion prior, not a VAE; pass the VAE's model.npz and give "
            "this file with --prior."
        )
    if kind != "vae":
        raise checkpoint.CheckpointError(f"{path} does not hold a VAE (its kind is {kind!r}).")
    return mv.load(path)


def cmd_diffuse(args) -> int:
    import time

    import numpy as np

    import minivae as mv
    from minivae import datasets, diffusion, evaluate, metrics

    vae = _vae(args.checkpoint)
    out = args.out or os.path.join(os.path.dirname(os.path.abspath(args.checkpoint)), "diffusion")
    progress = not args.no_progress
    x, _ = datasets.load(args.dataset, split="train", data_dir=args.data_dir, progress=progress)
    x_test, _ = datasets.load(args.dataset, split="test", data_dir=args.data_dir, progress=progress)
    if x.shape[1] != vae.config["input_dim"]:
        raise SettingError(
            f"The {args.dataset} images have {x.shape[1]} pixels but the VAE in "
            f"{args.checkpoint} takes {vae.config['input_dim']}; pass the --dataset it was "
            "trained on."
        )
    if args.sampler == "ddpm" and args.sample_steps is not None:
        raise SettingError("--sample-steps is for --sampler ddim (DDPM goes through all T steps).")
    mu = evaluate.latent_means(vae, x)  # the posterior means μ(x) of the training images
    print(f"encoded {len(x)} {args.dataset} images to {vae.latent_dim}-D codes", flush=True)

    started = time.perf_counter()
    history = []
    if args.prior:
        prior = diffusion.load(args.prior)
        if prior.latent_dim != vae.latent_dim:
            raise SettingError(
                f"The diffusion prior {args.prior} makes {prior.latent_dim}-D codes but the VAE "
                f"in {args.checkpoint} has latent_dim {vae.latent_dim}; use a prior fitted to "
                "this VAE."
            )
        print(f"loaded {prior} from {args.prior}")
    else:
        prior = diffusion.LatentDiffusion(
            vae.latent_dim,
            hidden=args.hidden,
            steps=args.T,
            schedule=args.schedule,
            seed=args.seed,
        )
        print(f"training {prior} for {args.steps} steps", flush=True)
        history = diffusion.train(
            prior,
            mu,
            steps=args.steps,
            batch_size=args.batch_size,
            lr=args.lr,
            seed=args.seed,
            progress=progress,
        )
        print(f"denoiser loss {history[0]:.3f} → {history[-1]:.3f}", flush=True)
    seconds = time.perf_counter() - started

    os.makedirs(out, exist_ok=True)
    kw = dict(seed=args.seed, sampler=args.sampler, steps=args.sample_steps)
    z = prior.sample(args.n, **kw)
    images = mv.asnumpy(vae.decode(z))
    np.save(os.path.join(out, "samples.npy"), images)
    if not args.prior:
        diffusion.save(prior, os.path.join(out, "prior.npz"))
    with open(os.path.join(out, "history.json"), "w") as f:
        json.dump({"loss": history, "log_every": 100}, f, indent=1)

    # how close are the samples to held-out images? (MMD², RBF kernel, median bandwidth)
    n_cmp = min(1000, len(x_test))
    from_prior = vae.sample(n_cmp, seed=args.seed)
    from_diffusion = vae.decode(prior.sample(n_cmp, **kw))
    reference = x_test[:n_cmp]
    h = metrics.median_bandwidth(reference)  # one kernel for both comparisons
    summary = {
        "checkpoint": args.checkpoint,
        "dataset": args.dataset,
        "prior": args.prior or os.path.join(out, "prior.npz"),
        "config": prior.config,
        "training_steps": 0 if args.prior else args.steps,
        "train_seconds": round(seconds, 2),
        "sampler": args.sampler,
        "sample_steps": args.sample_steps or prior.schedule.T,
        "mmd2_vs_test_images": {
            "kernel": "Gaussian RBF on pixels, bandwidth: median distance between the test "
            "images, unbiased estimator",
            "images": n_cmp,
            "bandwidth": h,
            "vae_prior_N(0,I)": metrics.mmd2(from_prior, reference, bandwidth=h),
            "diffusion_prior": metrics.mmd2(from_diffusion, reference, bandwidth=h),
        },
    }
    with open(os.path.join(out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1)
    m = summary["mmd2_vs_test_images"]
    print(
        f"MMD² to {n_cmp} test images: {m['vae_prior_N(0,I)']:.4f} from N(0, I), "
        f"{m['diffusion_prior']:.4f} from the diffusion prior"
    )
    written = ["samples.npy", "history.json", "summary.json"]
    if not args.prior:
        written.insert(0, "prior.npz")
    if not args.no_figures:
        paths = _figures(vae, prior, history, mu, z, out, args)
        written.append(f"figures/ ({len(paths)} PNGs)")
    print(f"wrote {', '.join(written)} to {out}")
    return 0


def _figures(vae, prior, history, mu, z, out, args):
    from minivae import backend, plots

    folder = os.path.join(out, "figures")
    drawn = {
        "samples": lambda: plots.image_grid(
            vae.decode(z), title=f"{args.n} samples from the diffusion prior ({args.sampler})"
        ),
        "prior_vs_diffusion": lambda: plots.prior_samples(vae, z, seed=args.seed),
    }
    if history:
        drawn["loss"] = lambda: plots.diffusion_loss(history)
    if vae.latent_dim >= 2:
        n = min(2000, mu.shape[0])
        z_many = prior.sample(n, seed=args.seed, sampler=args.sampler, steps=args.sample_steps)
        z_normal = backend.Generator(args.seed).normal((n, vae.latent_dim))
        drawn["latents"] = lambda: plots.latent_priors(
            {"posterior means μ(x)": mu, "N(0, I)": z_normal, "diffusion prior": z_many}
        )
    paths = []
    for name, draw in drawn.items():
        paths.append(plots.save(draw(), os.path.join(folder, f"{name}.png")))
    return paths
