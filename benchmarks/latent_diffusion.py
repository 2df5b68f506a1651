"""Is a latent diffusion prior closer to the data than the VAE's own prior N(0, I)? Measured.

For each data set: train a VAE, train a classifier (its last hidden layer gives the features of
the Fréchet distance), fit a diffusion prior to the VAE's posterior means of the training set,
then compare sets of images with the training images, all on one seed:

    test images           held-out real images: the floor (as close as a new sample can be)
    VAE prior             decode(z), z ~ N(0, I)
    diffusion, DDPM       decode(z), z from the diffusion prior, ancestral sampling, T steps
    diffusion, DDIM       decode(z), z from the diffusion prior, DDIM with 50 steps

with three numbers (see minivae/metrics.py): MMD² on pixels and on classifier features (Gaussian
RBF kernel, median-heuristic bandwidth, unbiased estimator) and the Fréchet distance on
classifier features. Every set has ``--n`` images; the reference is ``--n`` training images,
and the kernel's bandwidths are the median heuristic of the reference alone, the same for every
row.
Generated images are the decoder's means (pixel probabilities), as ``model.sample`` gives.

    python benchmarks/latent_diffusion.py --data-dir ../shared/datasets/fashion-mnist

prints Markdown tables (what benchmarks/RESULTS.md records) and writes the numbers as JSON.
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import numpy as np

import minivae as mv
from minivae import diffusion, metrics


def run(name, x, y, x_test, y_test, args, latent):
    t0 = time.perf_counter()
    rng = np.random.default_rng(args.seed)
    epochs = args.epochs_small if len(x) < 10_000 else args.epochs_large
    vae = mv.VAE(input_dim=784, hidden=[400], latent_dim=latent, seed=args.seed)
    mv.fit(vae, mv.Adam(vae.parameters()), x, epochs=epochs, seed=args.seed, progress=False)
    test_elbo = mv.evaluate.elbo(vae, x_test)["total"]
    t_vae = time.perf_counter() - t0

    clf = metrics.FeatureClassifier(hidden=(256, 128), seed=args.seed)
    clf.fit(x, y, epochs=args.classifier_epochs)
    acc = clf.accuracy(x_test, y_test)

    t1 = time.perf_counter()
    mu = mv.evaluate.latent_means(vae, x)
    prior = diffusion.LatentDiffusion(latent, hidden=[256, 256, 256], seed=args.seed)
    history = diffusion.train(prior, mu, steps=args.steps, seed=args.seed)
    t_diffusion = time.perf_counter() - t1

    n = min(args.n, len(x_test))
    reference = x[rng.choice(len(x), size=n, replace=False)]
    t2 = time.perf_counter()
    z_ddpm = prior.sample(n, seed=args.seed + 1)
    t_ddpm = time.perf_counter() - t2
    t3 = time.perf_counter()
    z_ddim = prior.sample(n, seed=args.seed + 1, sampler="ddim", steps=50)
    t_ddim = time.perf_counter() - t3
    sets = {
        "test images (floor)": x_test[rng.choice(len(x_test), size=n, replace=False)],
        "VAE prior N(0, I)": mv.asnumpy(vae.sample(n, seed=args.seed + 1)),
        f"diffusion prior, DDPM ({prior.schedule.T} steps)": mv.asnumpy(vae.decode(z_ddpm)),
        "diffusion prior, DDIM (50 steps)": mv.asnumpy(vae.decode(z_ddim)),
    }
    h = metrics.reference_bandwidths(reference, clf)  # one kernel for every row
    rows = {label: metrics.compare(images, reference, clf, h) for label, images in sets.items()}
    return {
        "dataset": name,
        "latent_dim": latent,
        "train_images": len(x),
        "n": n,
        "vae_epochs": epochs,
        "vae_test_negative_elbo": test_elbo,
        "classifier_test_accuracy": acc,
        "diffusion_steps": args.steps,
        "diffusion_final_loss": history[-1],
        "bandwidths": {"pixels": h[0], "features": h[1]},
        "seconds": {
            "vae": round(t_vae, 1),
            "diffusion_training": round(t_diffusion, 1),
            "ddpm_sampling": round(t_ddpm, 1),
            "ddim_sampling": round(t_ddim, 1),
        },
        "rows": rows,
    }


def table(result):
    r = result
    lines = [
        f"**{r['dataset']}, latent_dim {r['latent_dim']}** — {r['train_images']:,} training "
        f"images, VAE 784-400-{r['latent_dim']} for {r['vae_epochs']} epochs (test negative ELBO "
        f"{r['vae_test_negative_elbo']:.1f} nats), classifier test accuracy "
        f"{r['classifier_test_accuracy']:.3f}, diffusion prior trained {r['diffusion_steps']} "
        f"steps in {r['seconds']['diffusion_training']} s (final L_simple "
        f"{r['diffusion_final_loss']:.3f}); {r['n']:,} images per set; RBF bandwidths "
        f"{r['bandwidths']['pixels']:.2f} (pixels) and {r['bandwidths']['features']:.2f} "
        f"(features); sampling took "
        f"{r['seconds']['ddpm_sampling']} s (DDPM) and {r['seconds']['ddim_sampling']} s (DDIM).",
        "",
        "| images compared with the training set | MMD² pixels | MMD² features | Fréchet "
        "distance, features |",
        "|---|---|---|---|",
    ]
    for label, m in r["rows"].items():
        lines.append(
            f"| {label} | {m['mmd2_pixels']:.4f} | {m['mmd2_features']:.4f} | "
            f"{m['frechet_features']:.2f} |"
        )
    return "\n".join(lines)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data-dir", default=None, help="folder with the Fashion-MNIST IDX files")
    p.add_argument("--datasets", nargs="+", default=["embedded", "fashion-mnist"])
    p.add_argument("--latent", type=int, nargs="+", default=[2, 16])
    p.add_argument("--epochs-small", type=int, default=50, help="VAE epochs on the subset")
    p.add_argument("--epochs-large", type=int, default=20, help="VAE epochs on full data")
    p.add_argument("--classifier-epochs", type=int, default=5)
    p.add_argument("--steps", type=int, default=8000, help="diffusion training steps")
    p.add_argument("--n", type=int, default=2000, help="images in each set")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", default="latent_diffusion.json")
    args = p.parse_args()
    print(
        f"{time.strftime('%Y-%m-%d')}, {platform.machine()}, Python {platform.python_version()}, "
        f"NumPy {np.__version__}, minivae {mv.__version__}; settings: {vars(args)}",
        flush=True,
    )
    results = []
    for name in args.datasets:
        x, y = mv.datasets.load(name, split="train", data_dir=args.data_dir, progress=False)
        x_test, y_test = mv.datasets.load(
            name, split="test", data_dir=args.data_dir, progress=False
        )
        for latent in args.latent:
            result = run(name, x, y, x_test, y_test, args, latent)
            results.append(result)
            print("\n" + table(result) + "\n", flush=True)
            with open(args.json, "w") as f:
                json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
