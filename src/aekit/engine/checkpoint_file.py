"""A :class:`~aekit.engine.checkpoint.Snapshot` as one safetensors file.

The tensors (weights, optimizer moments, random-stream states) are the file's tensors; the
rest (histories, where the run stands, and whatever the caller adds as ``extra``) is JSON in
the file's header. Adam's settings are not stored: a resumed run makes them from its own.
Reading never unpickles; a file that is not a checkpoint this aekit wrote raises
:class:`~aekit.engine.checkpoint.CheckpointError`.
"""

from __future__ import annotations

import json
from pathlib import Path

import safetensors
import safetensors.torch
import torch

from ..files import json_text, write_bytes_atomic
from .checkpoint import CheckpointError, Snapshot, StageRecord, StageState

FORMAT = "aekit-checkpoint"
VERSION = 1


def write(path, snapshot: Snapshot, extra: dict) -> Path:
    """Write ``snapshot`` (and the JSON-ready ``extra``) to ``path`` atomically."""
    tensors: dict[str, torch.Tensor] = {}

    def put(prefix: str, values: dict[str, torch.Tensor]) -> list[str]:
        for name, value in values.items():
            tensors[f"{prefix}.{name}"] = value.detach().cpu().contiguous()
        return list(values)

    done = [
        {"label": r.label, "history": r.history, "weights": put(f"done.{i}", r.weights)}
        for i, r in enumerate(snapshot.done)
    ]
    current = None if snapshot.current is None else _current_to_json(snapshot.current, put)
    header = {"format": FORMAT, "version": VERSION, "done": done, "current": current, "finished": snapshot.finished}
    header["extra"] = extra
    data = safetensors.torch.save(tensors, metadata={"aekit": json_text(header)})
    return write_bytes_atomic(path, data)


def _current_to_json(state: StageState, put) -> dict:
    optimizer = state.optimizer
    # Adam's per-parameter state: step, exp_avg, exp_avg_sq, all tensors
    moments = {str(index): put(f"optimizer.{index}", entry) for index, entry in optimizer["state"].items()}
    stopper = None
    if state.stopper is not None:
        best_state = state.stopper["best_state"]
        stopper = {
            "best": state.stopper["best"],
            "bad_epochs": state.stopper["bad_epochs"],
            "best_state": None if best_state is None else put("best", best_state),
        }
    return {
        "label": state.label,
        "epochs": state.epochs,
        "epoch": state.epoch,
        "stopped": state.stopped,
        "history": state.history,
        "module": put("module", state.module),
        "optimizer": {"state": moments},  # its settings come from the resumed run's own
        "stopper": stopper,
        "rng_entry": put("rng_entry", state.rng_entry),
        "rng": put("rng", state.rng),
    }


def read(path) -> tuple[Snapshot, dict]:
    """``(snapshot, extra)`` from a file :func:`write` wrote.

    Raises
    ------
    CheckpointError
        If the file is missing, unreadable, not an aekit checkpoint, or inconsistent.
    """
    path = Path(path)
    try:
        with safetensors.safe_open(str(path), framework="pt") as f:
            header = json.loads((f.metadata() or {}).get("aekit", "null"))
        if not isinstance(header, dict) or header.get("format") != FORMAT:
            raise CheckpointError(f"{path} is not an aekit checkpoint")
        if header.get("version") != VERSION:
            raise CheckpointError(
                f"{path} is a checkpoint of format {header.get('version')!r}; this aekit reads {VERSION}"
            )
        tensors = safetensors.torch.load_file(str(path))
        return _snapshot(header, tensors), header["extra"]
    except CheckpointError:
        raise
    except FileNotFoundError:
        raise CheckpointError(f"{path} does not exist: there is no checkpoint to resume from") from None
    except (OSError, ValueError, TypeError, KeyError, AttributeError, RuntimeError, safetensors.SafetensorError) as exc:
        raise CheckpointError(f"{path} is not a readable aekit checkpoint ({type(exc).__name__}: {exc})") from exc


def _snapshot(header: dict, tensors: dict[str, torch.Tensor]) -> Snapshot:
    def take(prefix: str, names: list[str]) -> dict[str, torch.Tensor]:
        return {name: tensors[f"{prefix}.{name}"] for name in names}

    done = [
        StageRecord(r["label"], take(f"done.{i}", r["weights"]), _records(r["history"]))
        for i, r in enumerate(header["done"])
    ]
    current = header["current"]
    if current is not None:
        current = _current(current, take)
    return Snapshot(done=done, current=current, finished=bool(header["finished"]))


def _current(c: dict, take) -> StageState:
    optimizer = {
        "state": {int(index): take(f"optimizer.{index}", names) for index, names in c["optimizer"]["state"].items()}
    }
    stopper = c["stopper"]
    if stopper is not None:
        names = stopper["best_state"]
        stopper = {**stopper, "best_state": None if names is None else take("best", names)}
        stopper["best"] = float("inf") if stopper["best"] is None else float(stopper["best"])
        stopper["bad_epochs"] = int(stopper["bad_epochs"])
    return StageState(
        label=str(c["label"]),
        epochs=int(c["epochs"]),
        epoch=int(c["epoch"]),
        stopped=bool(c["stopped"]),
        history=_records(c["history"]),
        module=take("module", c["module"]),
        optimizer=optimizer,
        stopper=stopper,
        rng_entry=take("rng_entry", c["rng_entry"]),
        rng=take("rng", c["rng"]),
    )


def _records(history) -> list[dict]:
    if not isinstance(history, list) or not all(isinstance(r, dict) for r in history):
        raise ValueError("a history is not a list of records")
    return history
