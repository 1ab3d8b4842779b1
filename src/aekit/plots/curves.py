"""Curves: training loss per epoch and phase, test error against label budget."""

from __future__ import annotations

from collections import defaultdict

import matplotlib
import numpy as np
from matplotlib.figure import Figure

_PART_KEYS = ("reconstruction", "l2", "sparsity", "activity_l1", "kl", "contractive")


def _parts(record: dict) -> dict:
    parts = dict(record.get("parts", {}))
    parts.update({k: record[k] for k in _PART_KEYS if k in record})
    return parts


def _phase_series(history) -> dict[str, dict[str, list]]:
    """``{phase: {"loss": [(x, y), ...], "val_loss": [...], part: [...]}}``, x cumulative."""
    series: dict[str, dict[str, list]] = {}
    for x, record in enumerate(history, start=1):
        s = series.setdefault(str(record.get("phase", "train")), defaultdict(list))
        for key, value in {
            "loss": record["loss"],
            "val_loss": record.get("val_loss"),
            **_parts(record),
        }.items():
            if value is not None:
                s[key].append((x, float(value)))
    return series


def loss_curves(history, *, show_parts: bool = False, logy: bool = True, title: str | None = "Training loss") -> Figure:
    """Loss per epoch, one colour per phase: training solid, validation dashed.

    Parameters
    ----------
    history : list of dict
        ``history_`` of a fitted estimator: records with ``phase``, ``epoch``, ``loss`` and
        optionally ``val_loss`` and the loss's parts (``reconstruction``, ``l2``, ...), either
        as keys of the record or in a ``parts`` dict. The x axis counts epochs across phases.
    show_parts : bool, default=False
        Add a second panel with the parts of the training loss (dotted lines per phase).
    logy : bool, default=True
        Logarithmic y axis (when every value is positive).

    Returns
    -------
    matplotlib.figure.Figure
        One axes, two with ``show_parts``.
    """
    series = _phase_series(list(history))
    fig = Figure(figsize=(10.0 if show_parts else 6.0, 4.0), layout="constrained")
    axes = fig.subplots(1, 2 if show_parts else 1, squeeze=False)[0]
    cmap = matplotlib.colormaps["tab10"]
    for i, (phase, s) in enumerate(series.items()):
        for key, style in (("loss", "-"), ("val_loss", "--")):
            if s.get(key):
                x, y = zip(*s[key])
                axes[0].plot(
                    x,
                    y,
                    style,
                    color=cmap(i % 10),
                    marker=".",
                    label=phase if key == "loss" else f"{phase} (validation)",
                )
        if show_parts:
            for j, part in enumerate(k for k in s if k not in ("loss", "val_loss")):
                x, y = zip(*s[part])
                axes[1].plot(x, y, ls=("-", ":", "-.", "--")[j % 4], color=cmap(i % 10), label=f"{phase}: {part}")
    for ax, name in zip(axes, ("loss", "loss parts")):
        ax.set_xlabel("epoch (cumulative over phases)")
        ax.set_ylabel(name)
        if logy and all(y > 0 for line in ax.get_lines() for y in line.get_ydata()):
            ax.set_yscale("log")
        if ax.get_lines():
            ax.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    return fig


def _aggregate(results, metric: str) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """``{method: (n_labels, mean, std)}`` over seeds, n_labels ascending."""
    groups: dict[str, dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    for r in results:
        groups[str(r["method"])][int(r["n_labels"])].append(float(r[metric]))
    out = {}
    for method, by_n in groups.items():
        ns = np.array(sorted(by_n))
        values = [np.asarray(by_n[n]) for n in ns]
        out[method] = (
            ns,
            np.array([v.mean() for v in values]),
            np.array([v.std(ddof=1) if len(v) > 1 else 0.0 for v in values]),
        )
    return out


def label_budget(results, *, metric: str | None = None, title: str | None = None) -> Figure:
    """Test metric against the number of labels, one line per method, mean ± std over seeds.

    Parameters
    ----------
    results : list of dict
        Records ``{"method", "n_labels", "seed", "error" or "accuracy"}``; extra keys ignored.
    metric : {"error", "accuracy"} or None, default=None
        Key to plot; None picks ``"accuracy"`` when present, else ``"error"``.
    title : str, optional
        Default: "<Metric> against label budget".

    Returns
    -------
    matplotlib.figure.Figure
        One axes; log x axis; error bars are the sample standard deviation over seeds.
    """
    results = list(results)
    if not results:
        raise ValueError("no results to plot")
    metric = metric or ("accuracy" if "accuracy" in results[0] else "error")
    fig = Figure(figsize=(6.0, 4.0), layout="constrained")
    ax = fig.add_subplot()
    for method, (ns, mean, std) in _aggregate(results, metric).items():
        ax.errorbar(ns, mean, yerr=std, marker="o", capsize=3, label=method)
    ax.set_xscale("log")
    ax.set_xlabel("number of labelled examples")
    ax.set_ylabel(f"test {metric}")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(title or f"{metric.capitalize()} against label budget")
    return fig


# -- output --------------------------------------------------------------------------------
