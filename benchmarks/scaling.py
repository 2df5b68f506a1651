"""How minivae's cost grows with the batch size and the hidden width (PyTorch beside it).

Each configuration of the 784-H-20 VAE recipe (ReLU, Bernoulli decoder, Adam 1e-3, float32,
full Fashion-MNIST) runs in a fresh process, so that each gets its own peak memory: first a
few warm-up steps, then two timed epochs, of which the faster counts (a shared machine slows
some epochs at random; the faster one is closer to what the code costs). The batch size goes
from 32 to 1024 at H = 400, then the hidden width H from 100 to 1000 at batch 128.

    python benchmarks/scaling.py --data-dir ../shared/datasets/fashion-mnist

It prints a Markdown table (what benchmarks/RESULTS.md records).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

BATCHES = [32, 64, 128, 256, 512, 1024]
WIDTHS = [100, 200, 400, 700, 1000]


def one(framework, batch, hidden, data_dir, threads):
    """Time one epoch of one configuration in this process; print seconds and peak MB."""
    import numpy as np

    import minivae as mv
    from minivae import fast

    x, _ = mv.datasets.load("fashion-mnist", split="train", data_dir=data_dir, progress=False)
    if framework == "minivae":
        model = mv.VAE(input_dim=784, hidden=[hidden], latent_dim=20, seed=0)
        opt = fast.Adam(model.parameters(), lr=1e-3)  # the fast path, as the CLI trains
        mv.fit(model, opt, x[: 20 * batch], epochs=1, batch_size=batch, progress=False)

        def epoch_once():
            mv.fit(model, opt, x, epochs=1, batch_size=batch, progress=False)

    else:
        import torch
        import torch.nn.functional as F

        torch.set_num_threads(threads)
        torch.manual_seed(0)
        lin = torch.nn.Linear
        enc, mu_h, lv_h = lin(784, hidden), lin(hidden, 20), lin(hidden, 20)
        dec1, dec2 = lin(20, hidden), lin(hidden, 784)
        params = [p for m in (enc, mu_h, lv_h, dec1, dec2) for p in m.parameters()]
        opt = torch.optim.Adam(params, lr=1e-3)
        xt = torch.from_numpy(x)

        def epoch(data):
            for idx in torch.randperm(len(data)).split(batch):
                xb = data[idx]
                h = torch.relu(enc(xb))
                mu, lv = mu_h(h), lv_h(h)
                z = mu + torch.exp(0.5 * lv) * torch.randn_like(mu)
                logits = dec2(torch.relu(dec1(z)))
                bce = F.binary_cross_entropy_with_logits(logits, xb, reduction="sum")
                kl = -0.5 * torch.sum(1 + lv - mu.pow(2) - lv.exp())
                opt.zero_grad()
                ((bce + kl) / len(xb)).backward()
                opt.step()

        epoch(xt[: 20 * batch])

        def epoch_once():
            epoch(xt)

    seconds = float("inf")
    for _ in range(2):
        started = time.perf_counter()
        epoch_once()
        seconds = min(seconds, time.perf_counter() - started)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: kB
    print(json.dumps({"seconds": seconds, "peak_mb": peak, "numpy": np.__version__}))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=None, help="folder of the Fashion-MNIST IDX files")
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--no-torch", action="store_true")
    parser.add_argument("--one", nargs=3, metavar=("FRAMEWORK", "BATCH", "HIDDEN"))
    args = parser.parse_args(argv)
    if args.one:
        framework, batch, hidden = args.one[0], int(args.one[1]), int(args.one[2])
        return one(framework, batch, hidden, args.data_dir, args.threads)

    env = dict(os.environ)
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = str(args.threads)
    frameworks = ["minivae"]
    if not args.no_torch:
        try:
            import torch  # noqa: F401

            frameworks.append("pytorch")
        except ImportError:
            print("PyTorch is not installed: minivae only.")
    configs = [(b, 400) for b in BATCHES] + [(128, h) for h in WIDTHS if h != 400]
    print(f"# {time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores, {args.threads} threads each")
    header = "| batch | hidden | minivae s/epoch | minivae peak MB |"
    if "pytorch" in frameworks:
        header += " PyTorch s/epoch | PyTorch peak MB | ratio |"
    print(header)
    print("|---" * (header.count("|") - 1) + "|")
    for batch, hidden in configs:
        row = {}
        for fw in frameworks:
            cmd = [sys.executable, __file__, "--one", fw, str(batch), str(hidden)]
            cmd += ["--threads", str(args.threads)]
            if args.data_dir:
                cmd += ["--data-dir", args.data_dir]
            out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
            row[fw] = json.loads(out.stdout.strip().splitlines()[-1])
        line = (
            f"| {batch} | {hidden} | {row['minivae']['seconds']:.2f} | "
            f"{row['minivae']['peak_mb']:.0f} |"
        )
        if "pytorch" in row:
            ratio = row["minivae"]["seconds"] / row["pytorch"]["seconds"]
            line += (
                f" {row['pytorch']['seconds']:.2f} | {row['pytorch']['peak_mb']:.0f} | "
                f"{ratio:.2f} |"
            )
        print(line, flush=True)


if __name__ == "__main__":
    main()
