"""Scaling: time per epoch and peak memory against data size and against the number of processes.

MNIST's 60,000 training images replicated 1x, 4x and 16x (up to 960,000 rows, 3 GB of float32)
train the book's tied 784-300-150-300-784 autoencoder (batch 150, Adam 0.01) for one epoch,
from a .npy file loaded into memory or streamed from disk (memory-mapped, never loaded whole),
in one process or in two (torchrun's environment, gloo on loopback, each process one thread).
Every run is a fresh process, so its peak anonymous memory (RssAnon, which leaves out the page
cache of a memory map, sampled every millisecond) is its own; the epoch is timed by the wall
clock and by the process's CPU time (which a shared machine distorts less). Prints a table,
writes a plot.
``--part sync`` measures instead how the gradients are summed in two processes: aekit's one
all-reduce of the flattened gradients against DistributedDataParallel over the same loss, beside
the step with nothing summed and the all-reduce alone (milliseconds per step).

    python benches/bench_scaling.py --data-dir ../shared/datasets --work-dir /tmp/aekit-scaling
    python benches/bench_scaling.py --part sync --steps 200
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve()


# -- one run, in its own process ------------------------------------------------------------------
def rss_anon() -> int:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) << 10 for line in status if line.startswith("RssAnon:"))


def sample_peak(peak: list[int]) -> None:
    while True:
        peak[0] = max(peak[0], rss_anon())
        time.sleep(0.001)


def one_run(path: str, mode: str, threads: int) -> dict:
    """Train one epoch on the .npy file ``path``, loaded (``mode="memory"``) or streamed."""
    peak = [0]
    threading.Thread(target=sample_peak, args=(peak,), daemon=True).start()
    import torch

    from aekit import AutoencoderTransformer, engine
    from aekit.engine import loop

    def timed_epoch(*args):  # the epoch's CPU time too: wall time means little on a shared machine
        start = time.process_time()
        return {**plain_epoch(*args), "cpu_seconds": time.process_time() - start}

    plain_epoch, loop.train_one_epoch = loop.train_one_epoch, timed_epoch
    torch.set_num_threads(threads)
    world = engine.world()
    X = np.load(path) if mode == "memory" else np.load(path, mmap_mode="r")
    ae = AutoencoderTransformer((300, 150), epochs=1, batch_size=150, device="cpu", random_state=0)
    start = time.perf_counter()
    ae.fit(X)
    return {
        "rank": world.rank,
        "seconds": ae.history_[0]["seconds"],
        "cpu_seconds": ae.history_[0]["cpu_seconds"],
        "fit_seconds": time.perf_counter() - start,
        "loss": ae.history_[0]["loss"],
        "peak_rss_anon_mb": peak[0] / 2**20,
    }


# -- the sweep --------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(args_one: list[str], processes: int) -> list[dict]:
    """This script's ``--one`` run in ``processes`` processes (torchrun's environment on
    loopback when more than one); each prints one JSON line."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "GLOO_SOCKET_IFNAME": "lo"}
    port = str(free_port())
    procs = []
    for rank in range(processes):
        more = {}
        if processes > 1:
            more = dict(RANK=str(rank), WORLD_SIZE=str(processes), LOCAL_RANK=str(rank))
            more.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=port)
        procs.append(
            subprocess.Popen(
                [sys.executable, str(HERE), "--one", *args_one],
                env={**env, **more},
                stdout=subprocess.PIPE,
                text=True,
            )
        )
    results = []
    for proc in procs:
        out, _ = proc.communicate()
        if proc.returncode:
            raise SystemExit(f"a run failed: {args_one}")
        results.append(json.loads(out.strip().splitlines()[-1]))
    return results


def write_replicas(data_dir, work: Path, factors) -> dict[int, Path]:
    """MNIST's training images replicated ``factor`` times, as float32 .npy files in ``work``."""
    from aekit.datasets import load

    X = load("mnist", data_dir).X_train
    work.mkdir(parents=True, exist_ok=True)
    paths = {}
    for factor in factors:
        path = paths[factor] = work / f"mnist-x{factor}.npy"
        if path.exists() and path.stat().st_size > factor * X.nbytes:
            continue
        out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(factor * len(X), X.shape[1]))
        for i in range(factor):
            out[i * len(X) : (i + 1) * len(X)] = X
        out.flush()
        del out
    return paths


def sweep(args) -> list[dict]:
    paths = write_replicas(args.data_dir, Path(args.work_dir), args.factors)
    rows = []
    for factor in args.factors:
        for mode in ("memory", "stream"):
            for processes in args.processes:
                if processes > 1 and factor not in args.factors_distributed:
                    continue
                threads = max(1, args.threads // processes)
                load = os.getloadavg()[0]
                runs = launch([str(paths[factor]), mode, str(threads)], processes)
                row = {
                    "rows": factor * 60000,
                    "factor": factor,
                    "mode": mode,
                    "processes": processes,
                    "threads": threads,
                    "seconds": max(r["seconds"] for r in runs),
                    "cpu_seconds": max(r["cpu_seconds"] for r in runs),
                    "loss": runs[0]["loss"],
                    "peak_mb": max(r["peak_rss_anon_mb"] for r in runs),
                    "load": load,
                }
                rows.append(row)
                print(json.dumps(row), flush=True)
    return rows


def print_table(rows: list[dict]) -> None:
    """Seconds per epoch (wall, and the CPU time of the busiest process), per 60,000 rows too."""
    print(
        f"| {'rows':>9} | {'data':>6} | {'processes':>9} | s/epoch | CPU s/epoch | CPU s per 60k rows "
        "| peak RssAnon per process | load |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        per = r["cpu_seconds"] / r["factor"]
        print(
            f"| {r['rows']:>9,} | {r['mode']:>6} | {r['processes']:>9} | {r['seconds']:7.1f} | "
            f"{r['cpu_seconds']:11.1f} | {per:18.2f} | {r['peak_mb']:21.0f} MB | {r['load']:4.1f} |"
        )


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (time_ax, mem_ax) = plt.subplots(1, 2, figsize=(10, 4))
    for mode in ("memory", "stream"):
        for processes in sorted({r["processes"] for r in rows}):
            pts = [r for r in rows if r["mode"] == mode and r["processes"] == processes]
            if not pts:
                continue
            label = f"{'in memory' if mode == 'memory' else 'streamed'}, {processes} process{'es' * (processes > 1)}"
            x = [r["rows"] for r in pts]
            time_ax.plot(x, [r["cpu_seconds"] for r in pts], "o-", label=label)
            mem_ax.plot(x, [r["peak_mb"] for r in pts], "o-", label=label)
    for ax, title in ((time_ax, "CPU seconds per epoch, busiest process"), (mem_ax, "peak RssAnon per process (MB)")):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("training rows (MNIST replicated)")
        ax.set_title(title)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    print(f"plot: {path}")


# -- gradient summing: aekit's all-reduce against DDP ---------------------------------------------
def sync_run(steps: int) -> dict:
    """In each of two processes: the book model's step with its gradients summed by aekit's
    flat all-reduce, then by DistributedDataParallel over the same fused loss, alternating with
    what a step costs apart: the same step with nothing summed (each process on its own), and
    one all-reduce of as many values as there are gradients, alone."""
    import torch
    from torch import nn

    from aekit import engine
    from aekit.nn import StackedAutoencoder, StackedConfig

    torch.set_num_threads(1)
    world = engine.world()
    X = torch.rand(75 * 64, 784, generator=torch.Generator().manual_seed(world.rank))

    def build():
        model = StackedAutoencoder(
            StackedConfig(n_inputs=784, hidden_sizes=(300, 150)), torch.Generator().manual_seed(0)
        )
        params = list(model.parameters())
        return model, params, engine.make_optimizer(params, 0.01, model.weight_matrices(), 5e-4)

    model_a, params_a, opt_a = build()
    loss_a, _ = world.synchronise(
        lambda b: (model_a.reconstruction_loss(b, b), {}), None, params_a, opt_a, 150, torch.Generator()
    )

    class Loss(nn.Module):  # DDP's reducer expects gradients only for a loss computed in forward
        def __init__(self, model):
            super().__init__()
            self.model = model

        def forward(self, batch):
            return self.model.reconstruction_loss(batch, batch)

    model_b, _, opt_b = build()
    ddp = nn.parallel.DistributedDataParallel(Loss(model_b), gradient_as_bucket_view=True)

    def step_a(batch):
        loss, _ = loss_a(batch)
        opt_a.zero_grad(set_to_none=True)
        loss.backward()
        opt_a.step()

    def step_b(batch):
        loss = ddp(batch)
        opt_b.zero_grad(set_to_none=True)
        loss.backward()
        opt_b.step()

    model_c, params_c, opt_c = build()

    def step_c(batch):  # the same step, nothing summed
        loss = model_c.reconstruction_loss(batch, batch)
        opt_c.zero_grad(set_to_none=True)
        loss.backward()
        opt_c.step()

    flat = torch.zeros(sum(p.numel() for p in params_c))
    contenders = {
        "aekit all-reduce": step_a,
        "DDP": step_b,
        "step, nothing summed": step_c,
        "all-reduce alone": lambda batch: torch.distributed.all_reduce(flat),
    }
    times = {name: [] for name in contenders}
    for block in range(steps // 20 + 2):
        for name, step in contenders.items():
            start = time.perf_counter()
            for i in range(20):
                step(X[(i % 64) * 75 : (i % 64 + 1) * 75])
            if block >= 2:  # the first blocks warm up
                times[name].append((time.perf_counter() - start) / 20 * 1e3)
    same = all(torch.equal(a, b) for a, b in zip(model_a.parameters(), model_b.parameters()))  # a and b only
    return {name: statistics.median(t) for name, t in times.items()} | {"rank": world.rank, "same_weights": same}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", default=None, help="folder with MNIST IDX files")
    parser.add_argument("--work-dir", default="/tmp/aekit-scaling", help="where the replicated .npy files go")
    parser.add_argument("--factors", default="1,4,16", help="replications of MNIST (default 1,4,16)")
    parser.add_argument("--factors-distributed", default="1,4,16", help="replications also run in 2 processes")
    parser.add_argument("--processes", default="1,2", help="numbers of processes (default 1,2)")
    parser.add_argument("--threads", type=int, default=2, help="threads in all, split among the processes")
    parser.add_argument("--plot", default="scaling.png", help="where the plot goes")
    parser.add_argument("--json", default=None, help="also write the rows here")
    parser.add_argument("--part", choices=("sweep", "sync"), default="sweep")
    parser.add_argument("--steps", type=int, default=200, help="--part sync: steps per contender")
    parser.add_argument("--one", nargs="+", help=argparse.SUPPRESS)  # a single run (internal)
    args = parser.parse_args(argv)
    if args.one is not None:
        result = sync_run(int(args.one[1])) if args.one[0] == "sync" else one_run(*args.one[:2], int(args.one[2]))
        print(json.dumps(result))
        return
    if args.part == "sync":
        load = os.getloadavg()[0]
        for r in launch(["sync", str(args.steps)], 2):
            print(json.dumps(r))
        print(f"(load average {load:.1f} at the start)")
        return
    for name in ("factors", "factors_distributed", "processes"):
        setattr(args, name, [int(v) for v in getattr(args, name).split(",")])
    rows = sweep(args)
    print_table(rows)
    plot(rows, Path(args.plot))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
