"""Contractive, plain and denoising autoencoders of the same size on MNIST (issue 11):
reconstruction, the Jacobian norm of the codes, and a logistic regression on the codes.

Every model is 784-300 with sigmoid codings, tied weights, no L2 (so that the regulariser is
the only difference), Adam 0.01, batch 150, 10 epochs: plain; denoising (masking noise at each
``--corruption-levels`` value); contractive (each ``--contractive-weights`` value: the weight of
the mean squared Frobenius norm of dh/dx against a reconstruction error that is a mean over
pixels, so about 1/784 of Rifai et al. 2011's lambda with a summed error). For each it prints
the reconstruction MSE, the mean over rows of ||dh/dx||_F (exact: one sigmoid layer), and the
error of a logistic regression trained on the codes of every training row (all labels), with
the CPU time of training. ``--validate`` trains on the first 50,000 training images and
evaluates on the other 10,000 (where the settings were chosen) instead of the test set.

    python benches/bench_contractive.py --data-dir ../shared/datasets --validate \\
        --corruption-levels 0.25,0.5 --contractive-weights 1e-4,3e-4,1e-3,3e-3
    python benches/bench_contractive.py --data-dir ../shared/datasets
    python benches/bench_contractive.py --data-dir ../shared/datasets --deep-cost

``--deep-cost`` measures instead what the penalty costs through a 784-300-150 encoder, where
no closed form applies: one training step (batch 150) without the penalty, with the
one-projection estimate aekit uses, and with the exact norm by autograd (one vector-Jacobian
product per coding unit), and the estimate's spread around the exact value over 200 draws.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np
import torch

from aekit import AutoencoderTransformer, losses
from aekit.datasets import load
from aekit.inspect import linear_probe
from aekit.nn import StackedAutoencoder, StackedConfig


def jacobian_norms(ae: AutoencoderTransformer, X: np.ndarray) -> np.ndarray:
    """||dh/dx||_F of each row for one sigmoid layer: sqrt(sum_j (h_j (1 - h_j))^2 ||W_j||^2)."""
    h = torch.from_numpy(ae.transform(X)).double()
    row_norms = ae.module_.encoder.layers[0].weight.detach().double().square().sum(1)  # (n_codes,)
    return (h * (1 - h)).square().matmul(row_norms).sqrt().numpy()


def exact_jacobian_norm(x: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
    """Mean over rows of ||dh/dx||_F^2 by autograd: one vector-Jacobian product per coding unit."""
    eye = torch.eye(codes.shape[1], dtype=codes.dtype).unsqueeze(1).expand(-1, *codes.shape)  # (n_codes, B, n_codes)
    (rows,) = torch.autograd.grad(codes, x, grad_outputs=eye, is_grads_batched=True, create_graph=True)
    return rows.square().sum((0, 2)).mean()  # (n_codes, B, n_inputs) -> scalar


def deep_cost(X: np.ndarray, repeats: int = 20) -> None:
    """Time per step of the deep penalty: none, the estimate, the exact norm."""
    module = StackedAutoencoder(
        StackedConfig(784, (300, 150), "sigmoid", "linear", True, None), torch.Generator().manual_seed(0)
    )
    x = torch.from_numpy(X[:150]).requires_grad_(True)
    generator = torch.Generator().manual_seed(0)
    penalties = {
        "no penalty": lambda x, h: h.sum() * 0,
        "one-projection estimate": lambda x, h: losses.jacobian_frobenius_estimate(x, h, generator),
        "exact, autograd (150 VJPs)": exact_jacobian_norm,
    }
    print("| contractive penalty, 784-300-150 | ms per step | value |")
    print("|----------------------------------|-------------|-------|")
    for name, penalty in penalties.items():
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            codes = module.encode(x)
            value = penalty(x, codes) + losses.reconstruction(module.decode(codes), x.detach())
            value.backward()
            times.append(time.perf_counter() - start)
        print(f"| {name:32s} | {1000 * np.median(times):11.1f} | {penalty(x, module.encode(x)).item():.3f} |")
    draws = [losses.jacobian_frobenius_estimate(x, module.encode(x), generator).item() for _ in range(200)]
    exact = exact_jacobian_norm(x, module.encode(x)).item()
    print(f"estimate over 200 draws: mean {np.mean(draws):.4f}, std {np.std(draws):.4f}; exact {exact:.4f}")


def models(args) -> list[tuple[str, dict]]:
    out = [("plain", {})]
    out += [
        (f"denoising, masking {c:g}", dict(corruption="masking", corruption_level=c)) for c in args.corruption_levels
    ]
    out += [(f"contractive, weight {w:g}", dict(contractive_weight=w)) for w in args.contractive_weights]
    return out


def main(argv=None) -> None:
    floats = lambda text: [float(v) for v in text.split(",") if v]  # noqa: E731
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--corruption-levels", type=floats, default=[0.25])
    parser.add_argument("--contractive-weights", type=floats, default=[1e-3])
    parser.add_argument("--max-iter", type=int, default=300, help="logistic regression iterations")
    parser.add_argument("--validate", action="store_true", help="train on 50,000 images, evaluate on the other 10,000")
    parser.add_argument("--deep-cost", action="store_true", help="time the penalty through a 2-layer encoder")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    data = load("mnist", args.data_dir)
    if args.deep_cost:
        load_now = os.getloadavg()[0]
        print(
            f"machine: {platform.machine()}, torch {torch.__version__}, {args.threads} thread(s); load {load_now:.2f}"
        )
        return deep_cost(data.X_train)
    if args.validate:
        X_train, y_train, X_eval, y_eval = (
            data.X_train[:50000],
            data.y_train[:50000],
            data.X_train[50000:],
            data.y_train[50000:],
        )
    else:
        X_train, y_train, X_eval, y_eval = data.X_train, data.y_train, data.X_test, data.y_test
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, {args.threads} thread(s); "
        f"load {os.getloadavg()[0]:.2f}; {'validation split' if args.validate else 'test set'}; {vars(args)}"
    )
    print("| model                        | MSE     | mean ||J||_F | logistic regression error | CPU s |")
    print("|------------------------------|---------|--------------|---------------------------|-------|")
    for name, settings in models(args):
        ae = AutoencoderTransformer(
            (300,),
            code_activation="sigmoid",
            l2=0.0,
            epochs=args.epochs,
            device="cpu",
            random_state=args.seed,
            **settings,
        )
        start = time.process_time()
        ae.fit(X_train)
        seconds = time.process_time() - start
        probe = linear_probe(ae.transform(X_train), y_train, ae.transform(X_eval), y_eval, max_iter=args.max_iter)
        print(
            f"| {name:28s} | {-ae.score(X_eval):.5f} | {jacobian_norms(ae, X_eval).mean():12.3f} | "
            f"{1 - probe['codes']:25.2%} | {seconds:5.0f} |",
            flush=True,
        )
    print(f"done; load {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
