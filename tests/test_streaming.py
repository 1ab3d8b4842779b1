"""Training on rows that stay on disk: the same batches, splits and weights as in memory."""

import threading

import numpy as np
import pytest
import torch
from helpers import train_config

from aekit import AutoencoderTransformer, PretrainedClassifier, engine
from aekit.datasets import open_shards
from aekit.engine import streaming
from aekit.engine.data import InMemory
from aekit.engine.streaming import Streamed, in_background
from aekit.nn import StackedAutoencoder, StackedConfig
from aekit.objectives import reconstruction_objective


@pytest.fixture
def on_disk(tmp_path, digits):
    """(the digits in memory, the same rows as a float32 memory map, as uint8-valued shards)."""
    X = digits[0]
    np.save(tmp_path / "x.npy", X)
    scaled = np.round(X * 16).astype(np.uint8)  # whole numbers: exact in uint8 and float32
    (tmp_path / "shards").mkdir()
    for i, part in enumerate(np.array_split(scaled, 4)):
        np.save(tmp_path / "shards" / f"part-{i}.npy", part)
    return X, np.load(tmp_path / "x.npy", mmap_mode="r"), open_shards(tmp_path / "shards"), scaled


@pytest.fixture
def small_chunks(monkeypatch):
    """Chunks of a few rows, so every epoch crosses many chunk boundaries."""
    monkeypatch.setattr(streaming, "CHUNK_BYTES", 3 * 64 * 4)


def test_same_batches_split_and_chunks_as_in_memory(on_disk, small_chunks):
    X, mapped, _, _ = on_disk
    memory, disk = InMemory(torch.from_numpy(X)), Streamed(mapped, torch.device("cpu"), torch.float32)
    assert engine.source_of(mapped, torch.device("cpu"), torch.float32).__class__ is Streamed
    (m_train, m_val), (d_train, d_val) = (s.split(0.25, torch.Generator().manual_seed(3)) for s in (memory, disk))
    assert len(d_train) == len(m_train) and d_train.steps(50) == m_train.steps(50)
    for m, d in zip(
        m_train.epoch(50, torch.Generator().manual_seed(4)), d_train.epoch(50, torch.Generator().manual_seed(4))
    ):
        assert torch.equal(m, d)
    got = list(d_val.chunks(100))
    assert [n for _, n in got] == [n for _, n in m_val.chunks(100)]
    assert torch.equal(torch.cat([c for c, _ in got]), m_val.X)


def test_ranks_read_their_parts_of_every_batch(on_disk):
    X, mapped, _, _ = on_disk
    whole = list(InMemory(torch.from_numpy(X)).epoch(15, torch.Generator().manual_seed(0)))
    ranks = [Streamed(mapped, "cpu", torch.float32).shard(r, 4) for r in range(4)]
    parts = [list(s.epoch(15, torch.Generator().manual_seed(0))) for s in ranks]
    assert [len(p[0]) for p in parts] == [3, 4, 4, 4]  # 15 rows: parts differ by at most one
    for i, batch in enumerate(whole):
        assert torch.equal(torch.cat([p[i] for p in parts]), batch)
    assert torch.equal(torch.cat([c for s in ranks for c, _ in s.chunks(64)]), torch.from_numpy(X))


def fit_engine(data, layer=None, validation=0.0):
    model = StackedAutoencoder(StackedConfig(n_inputs=64, hidden_sizes=(16, 4)), torch.Generator().manual_seed(0))
    generator = torch.Generator().manual_seed(1)
    loss_fn = reconstruction_objective(
        model, corruption="masking", corruption_level=0.2, generator=generator, criterion=model.reconstruction_loss
    )
    history = engine.fit(
        model,
        loss_fn,
        data,
        params=list(model.parameters()),
        config=train_config(epochs=2, batch_size=32, validation_fraction=validation),
        generator=generator,
    )
    return model, history


def test_fit_on_disk_gives_the_weights_of_fit_in_memory(on_disk, small_chunks):
    X, mapped, _, _ = on_disk
    (m_model, m_history), (d_model, d_history) = fit_engine(X, validation=0.2), fit_engine(mapped, validation=0.2)
    assert [{k: v for k, v in r.items() if k != "seconds"} for r in m_history] == [
        {k: v for k, v in r.items() if k != "seconds"} for r in d_history
    ]
    for a, b in zip(m_model.state_dict().values(), d_model.state_dict().values()):
        assert torch.equal(a, b)


@pytest.mark.parametrize("training", ["end_to_end", "layerwise"])
def test_estimator_on_shards_matches_the_array_in_memory(on_disk, small_chunks, training):
    _, _, shards, scaled = on_disk
    settings = dict(
        hidden_layer_sizes=(16, 4),
        epochs=2,
        layerwise_epochs=1,
        fine_tune_epochs=1,
        batch_size=40,
        device="cpu",
        random_state=0,
        training=training,
        validation_fraction=0.1,
        patience=1,
    )
    memory = AutoencoderTransformer(**settings).fit(scaled.astype(np.float32))
    disk = AutoencoderTransformer(**settings).fit(shards)
    for a, b in zip(memory.module_.state_dict().values(), disk.module_.state_dict().values()):
        assert torch.equal(a, b)
    assert disk.n_features_in_ == 64 and disk.score(shards) == memory.score(scaled.astype(np.float32))
    np.testing.assert_array_equal(disk.transform(shards), memory.transform(scaled))


def test_the_layerwise_cache_of_streamed_rows_is_a_file(on_disk):
    X, mapped, _, _ = on_disk
    model = StackedAutoencoder(StackedConfig(n_inputs=64, hidden_sizes=(16, 4)), torch.Generator().manual_seed(0))
    layer = model.encoder.layers[0]
    cached = engine.map_rows(lambda h: layer(h), Streamed(mapped, "cpu", torch.float32), 16, batch_size=100)
    assert isinstance(cached, Streamed) and isinstance(cached.rows, np.memmap) and cached.rows.filename is None
    with torch.no_grad():
        np.testing.assert_array_equal(np.asarray(cached.rows), layer(torch.from_numpy(X)).numpy())


def test_classifier_pretrains_on_rows_on_disk(on_disk):
    X, mapped, _, _ = on_disk
    y = np.arange(len(X)) % 3
    y[::2] = -1
    settings = dict(autoencoder=AutoencoderTransformer(hidden_layer_sizes=(8,), epochs=1), epochs=2, device="cpu")
    memory = PretrainedClassifier(**settings, random_state=0).fit(X, y)
    disk = PretrainedClassifier(**settings, random_state=0).fit(mapped, y)
    np.testing.assert_array_equal(disk.predict_proba(mapped), memory.predict_proba(X))


def test_background_errors_are_raised_and_a_stopped_consumer_stops_the_thread():
    def failing():
        yield 1
        raise OSError("disk gone")

    with pytest.raises(OSError, match="disk gone"):
        list(in_background(failing(), 1))
    produced = []

    def endless():
        while True:
            produced.append(len(produced))
            yield produced[-1]

    items = in_background(endless(), 2)
    assert [next(items) for _ in range(3)] == [0, 1, 2]
    items.close()
    assert not any(t.name == "aekit-rows" for t in threading.enumerate())
    assert len(produced) <= 6  # at most a few items ahead, then it stopped


PEAK_PROBE = """
import sys, threading, time
from aekit.cli import main

def anon():
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) << 10 for line in f if line.startswith("RssAnon:"))

peak = [0]
def sample():
    while True:
        peak[0] = max(peak[0], anon())
        time.sleep(0.0005)

threading.Thread(target=sample, daemon=True).start()
flags = ["-q", "train", "--epochs", "1", "--hidden", "8", "--batch-size", "1024", "--device", "cpu",
         "--validation-fraction", "0.1", "--random-state", "0"]
peaks = []
for dataset, out in zip(sys.argv[1:3], sys.argv[3:5]):
    peak[0] = 0
    assert main([*flags, "--dataset", dataset, "--out", out]) == 0
    peaks.append(peak[0])
print("PEAKS", *peaks)
"""


@pytest.mark.slow
def test_aekit_train_on_a_file_four_times_the_memory_budget(tmp_path):
    """The peak anonymous memory (RssAnon: a memory map's pages are the page cache's, not the
    process's) of ``aekit train`` on a 256 MB .npy file exceeds that of the same run on a 1 MB
    file by less than 64 MB: the data is never copied, whole or in part beyond a few chunks.
    The small run first makes the fixed costs (imports, figures, thread pools) cancel out, and
    glibc's mmap threshold is pinned so that freed blocks go back to the system instead of
    staying counted in a heap cache that grows with the largest block freed."""
    import os
    import subprocess
    import sys

    budget = 64 << 20
    big = np.lib.format.open_memmap(tmp_path / "big.npy", mode="w+", dtype=np.float32, shape=(4 * budget // 1024, 256))
    rng = np.random.default_rng(0)
    for start in range(0, len(big), 16384):
        big[start : start + 16384] = rng.random((min(16384, len(big) - start), 256), dtype=np.float32)
    big.flush()
    np.save(tmp_path / "small.npy", np.asarray(big[:4000]))
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "131072", "PYTHONPATH": os.pathsep.join(sys.path)}
    paths = [tmp_path / name for name in ("small.npy", "big.npy", "out-small", "out-big")]
    done = subprocess.run(
        [sys.executable, "-c", PEAK_PROBE, *map(str, paths)], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    small, big_peak = map(int, done.stdout.split("PEAKS")[1].split())
    assert os.path.getsize(tmp_path / "big.npy") >= 4 * budget
    assert big_peak - small < budget, (
        f"peak RssAnon {big_peak >> 20} MB, {(big_peak - small) >> 20} MB above the small run"
    )


def test_bad_rows_on_disk_are_named(tmp_path, on_disk):
    X, mapped, shards, _ = on_disk
    bad = np.array(X)
    bad[700, 3] = np.inf
    np.save(tmp_path / "bad.npy", bad)
    with pytest.raises(ValueError, match=r"NaN or infinity \(first in rows 0\.\.1796\)"):
        AutoencoderTransformer((4,), epochs=1, device="cpu").fit(np.load(tmp_path / "bad.npy", mmap_mode="r"))
    fitted = AutoencoderTransformer((4,), epochs=1, device="cpu").fit(mapped)
    np.save(tmp_path / "narrow.npy", X[:, :10])
    with pytest.raises(ValueError, match="X has 10 features, but AutoencoderTransformer is expecting 64"):
        fitted.transform(np.load(tmp_path / "narrow.npy", mmap_mode="r"))


def test_aekit_train_on_a_folder_of_shards(tmp_path, on_disk):
    import json

    from aekit.cli import main

    out = tmp_path / "out"
    assert (
        main(
            ["-q", "train", "--dataset", str(tmp_path / "shards"), "--hidden", "8", "--epochs", "1", "--out", str(out)]
        )
        == 0
    )
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["dataset"] == "shards" and metrics["n_train"] == len(on_disk[0]) and metrics["world_size"] == 1
