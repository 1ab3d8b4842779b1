"""Training in several processes: torchrun's environment, each rank's part of the rows, and two
CPU processes on loopback training together (gloo)."""

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from aekit import engine
from aekit.engine import DistributedError, World
from aekit.engine.data import InMemory
from aekit.engine.distributed import RankNoise, torchrun_environment
from aekit.engine.sharding import BatchShard, part_bounds, shard

sys.path.insert(0, str(Path(__file__).parent))
from distributed_worker import fit_engine  # noqa: E402

WORKER = Path(__file__).parent / "distributed_worker.py"
TORCHRUN = {"RANK": "1", "WORLD_SIZE": "2", "LOCAL_RANK": "1", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29500"}


# -- torchrun's environment ---------------------------------------------------------------------
def test_no_torchrun_environment_is_one_process():
    assert torchrun_environment({}) is None
    assert engine.world() == World() and World().is_main


def test_torchrun_environment_is_read():
    assert torchrun_environment(TORCHRUN) == World(rank=1, size=2, local_rank=1)


@pytest.mark.parametrize(
    ("unset", "match"),
    [
        (("MASTER_PORT",), "RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR set but MASTER_PORT not"),
        (("RANK", "LOCAL_RANK"), "WORLD_SIZE, MASTER_ADDR, MASTER_PORT set but RANK, LOCAL_RANK not"),
    ],
)
def test_a_half_set_torchrun_environment_is_an_error(unset, match):
    env = {k: v for k, v in TORCHRUN.items() if k not in unset}
    with pytest.raises(DistributedError, match=f"torchrun's environment is half set: {match}"):
        torchrun_environment(env)


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"RANK": "one"}, "RANK='one' is not an integer"),
        ({"RANK": "2"}, r"inconsistent: RANK=2, WORLD_SIZE=2.*need 0 <= RANK < WORLD_SIZE"),
        ({"MASTER_PORT": "70000"}, "MASTER_PORT=70000"),
    ],
)
def test_a_malformed_torchrun_environment_is_an_error(changes, match):
    with pytest.raises(DistributedError, match=match):
        torchrun_environment({**TORCHRUN, **changes})


def test_fit_under_a_half_set_environment_fails_before_training(monkeypatch, digits):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    from aekit import AutoencoderTransformer

    with pytest.raises(DistributedError, match="half set"):
        AutoencoderTransformer((4,), epochs=1, device="cpu").fit(digits[0])


# -- each rank's part ------------------------------------------------------------------------------
def test_parts_cover_every_item_once_and_differ_by_one_at_most():
    for n, size in [(150, 2), (63, 2), (7, 3), (2, 3)]:
        bounds = [part_bounds(n, r, size) for r in range(size)]
        assert bounds[0][0] == 0 and bounds[-1][1] == n
        assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:]))
        assert max(hi - lo for lo, hi in bounds) - min(hi - lo for lo, hi in bounds) <= 1


def test_the_ranks_parts_make_up_each_batch_and_the_rows():
    X = torch.arange(40.0).reshape(20, 2)
    source = InMemory(X)
    assert shard(source, 0, 1) is source and isinstance(shard(source, 1, 3), BatchShard)
    ranks = [shard(source, r, 3) for r in range(3)]
    whole = list(source.epoch(7, torch.Generator().manual_seed(0)))
    parts = [list(s.epoch(7, torch.Generator().manual_seed(0))) for s in ranks]
    assert len(whole) == 2 and all(len(p) == 2 for p in parts)
    for i, batch in enumerate(whole):
        assert torch.equal(torch.cat([p[i] for p in parts]), batch)
    assert torch.equal(torch.cat([c for s in ranks for c, _ in s.chunks(6)]), X)
    with pytest.raises(TypeError, match="split a source before sharding"):
        ranks[0].split(0.1, torch.Generator())


def test_more_ranks_than_rows_in_a_batch_is_an_error():
    model = torch.nn.Linear(2, 2)
    optimizer = engine.make_optimizer(list(model.parameters()), 0.1)
    with pytest.raises(DistributedError, match="3 processes but batches of 2 rows"):
        World(0, 3).synchronise(None, None, list(model.parameters()), optimizer, 2, torch.Generator())


def test_one_process_world_changes_nothing():
    world, record = World(), {"loss": 0.5, "seconds": 1.0}
    assert world.average(record) is record and world.total(1.0, 2) == (1.0, 2) and world.any(True)
    fn = object()
    assert world.synchronise(fn, fn, [], None, 10, None) == (fn, fn)


def test_rank_noise_leaves_the_shared_generator_in_step():
    shared = torch.Generator().manual_seed(5)
    expected = torch.rand(3, generator=torch.Generator().manual_seed(5))
    noises = [RankNoise(shared, rank) for rank in range(2)]
    draws = []
    for noise in noises:
        with noise:
            draws.append(torch.rand(4, generator=shared))
    with noises[0], noises[0]:  # the rank's stream goes on where it stopped; nested: swapped once
        later = torch.rand(4, generator=shared)
    assert not torch.equal(draws[0], draws[1]) and not torch.equal(later, draws[0])
    assert torch.equal(torch.rand(3, generator=shared), expected)  # the shared stream never moved
    fresh = torch.Generator().manual_seed(5)
    with RankNoise(fresh, 0):  # deterministic: the same shared state and rank, the same stream
        assert torch.equal(torch.rand(4, generator=fresh), draws[0])


# -- two processes on loopback ---------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def child_env(**more) -> dict:
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(sys.path),
        "GLOO_SOCKET_IFNAME": "lo",  # loopback only
        "OMP_NUM_THREADS": "1",
        **more,
    }


def start_ranks(mode: str, out: Path, size: int = 2) -> list[subprocess.Popen]:
    port = str(free_port())
    return [
        subprocess.Popen(
            [sys.executable, str(WORKER), mode, str(out)],
            env=child_env(
                RANK=str(r), WORLD_SIZE=str(size), LOCAL_RANK=str(r), MASTER_ADDR="127.0.0.1", MASTER_PORT=port
            ),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for r in range(size)
    ]


def records(history):
    return [{k: v for k, v in r.items() if k != "seconds"} for r in history]


@pytest.mark.slow
def test_two_processes_train_as_one_with_the_same_global_batch(tmp_path):
    ranks = start_ranks("train", tmp_path)
    for process in ranks:
        _, err = process.communicate(timeout=300)
        assert process.returncode == 0, err
    rank0, rank1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=False) for r in range(2))
    assert rank0["world_size"] == 2
    for key in ("engine_64", "engine_63", "engine_64_clipped", "sda", "sda_streamed", "classifier"):  # alike
        (state0, history0), (state1, history1) = rank0[key], rank1[key]
        assert records(history0) == records(history1), key
        assert all(torch.equal(state0[name], state1[name]) for name in state0), key
    streamed, in_memory = rank0["sda_streamed"][0], rank0["sda_in_memory"]  # rows on disk train as in memory
    assert all(torch.equal(streamed[name], in_memory[name]) for name in streamed)
    one_process = subprocess.run(
        [sys.executable, str(WORKER), "reference", str(tmp_path)], env=child_env(), capture_output=True, text=True
    )
    assert one_process.returncode == 0, one_process.stderr
    reference = torch.load(tmp_path / "reference.pt", weights_only=False)
    for key in ("engine_64", "engine_63", "engine_64_clipped"):
        (state, history), (state2, history2) = reference[key], rank0[key]
        assert len(history2) == len(history) < 12  # early stopping stopped both at the same epoch
        for one, two in zip(history, history2):
            for name in ("loss", "reconstruction", "l2", "val_loss"):
                # float64: only the order of the sums differs (each rank sums half the batch)
                assert two[name] == pytest.approx(one[name], rel=1e-9), (key, one["epoch"], name)
        for name in state:
            torch.testing.assert_close(state2[name], state[name], rtol=1e-8, atol=1e-10)


@pytest.mark.slow
@pytest.mark.parametrize("how", ["dies", "hangs"])
def test_a_rank_that_stops_makes_the_others_fail_fast(tmp_path, how):
    rank0, rank1 = start_ranks(how, tmp_path)
    start = time.perf_counter()
    try:
        _, err = rank0.communicate(timeout=90)
    finally:
        rank1.kill()
        rank1.communicate()
    assert rank0.returncode == 1, err
    assert "rank 0 of 2" in err and "another rank has probably stopped" in err
    assert time.perf_counter() - start < 60
    if how == "hangs":
        assert "Timed out" in err or "timed out" in err  # the process group's 5 s timeout, not a hang


@pytest.mark.slow
def test_aekit_train_under_torchrun_writes_once_with_the_world_size(tmp_path):
    out = tmp_path / "out"
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-addr", "127.0.0.1"]
    command += ["--master-port", str(free_port()), "-m", "aekit", "-q", "train", "--dataset", "digits"]
    command += ["--epochs", "2", "--hidden", "16,4", "--device", "cpu", "--random-state", "0", "--out", str(out)]
    done = subprocess.run(command, env=child_env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("wrote ") == 1  # rank 0 alone writes
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["world_size"] == 2 and metrics["epochs_run"] == 2
    assert np.isfinite(metrics["train_mse"])


def test_more_processes_than_training_rows_is_an_error_before_any_exchange(monkeypatch, digits):
    """fit asks every rank for at least one row of each batch before it exchanges anything (no
    process group exists here: a collective would fail otherwise)."""
    monkeypatch.setattr(engine.distributed, "world", lambda: World(rank=0, size=3))
    with pytest.raises(DistributedError, match="3 processes but batches of 2 rows"):
        fit_engine(digits[0][:3], 64)  # 1 validation row, 2 training rows
