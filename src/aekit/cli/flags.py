"""Command-line flags made from estimators' parameter tables: the type, the allowed values,
the default and the help of each flag are the table's, never retyped here."""

from __future__ import annotations

import argparse

from .. import params


def _parser(constraint: params.Constraint):
    """The ``type=`` of a flag; argparse names it in its message for a malformed value."""

    def parse(text: str):
        return constraint.parse(text)

    parse.__name__ = constraint.doc_type()
    return parse


def help_text(entry: params.Entry) -> str:
    """The parameter's description and its default."""
    doc = " ".join(entry.param.doc.split()).rstrip(".")
    return f"{doc} (default: {params.literal(entry.default)})".replace("%", "%%")


def add_param_flags(group, cls, *, prefix: str = "", only=None, exclude=()) -> list[str]:
    """Add a flag for each parameter of ``cls``'s table that has flags.

    With a ``prefix`` (e.g. ``"autoencoder"``) the flags are ``--autoencoder-epochs`` and the
    destinations ``autoencoder__epochs``: the nested parameter's own name. Every flag's default
    is None, so only what the user typed is passed on (presets and the estimator's own
    defaults fill in the rest). Returns the destinations added.
    """
    dests = []
    for entry in params.table(cls):
        flags = entry.param.cli_flags(entry.name)
        if not flags or entry.name in exclude or (only is not None and entry.name not in only):
            continue
        if prefix:
            flags = tuple(f"--{prefix}-{flag[2:]}" for flag in flags)
        dest = f"{prefix}__{entry.name}" if prefix else entry.name
        _add_flag(group, flags, dest, entry.param.constraint, help_text(entry))
        dests.append(dest)
    return dests


def add_model_flags(group, models: dict, *, exclude=()) -> dict[str, tuple[str, tuple[str, ...]]]:
    """One flag for each parameter of any of ``models`` (``{model name: estimator class}``).

    A parameter that several tables share (``--epochs``) gets one flag, whose help gives each
    model's description and default where they differ; one that only some models have says
    which. The models' tables must agree on a shared parameter's values and flags. Returns
    ``{destination: (first flag, names of the models that have the parameter)}``, from which
    the command rejects a flag the chosen model does not have.
    """
    owners: dict[str, list[tuple[str, params.Entry]]] = {}
    for model, cls in models.items():
        for entry in params.table(cls):
            if entry.param.cli_flags(entry.name) and entry.name not in exclude:
                owners.setdefault(entry.name, []).append((model, entry))
    added = {}
    for name, entries in owners.items():
        first = entries[0][1]
        for model, entry in entries[1:]:
            if entry.param.constraint is not first.param.constraint or entry.param.cli_flags(
                name
            ) != first.param.cli_flags(name):
                raise TypeError(f"parameter {name!r} of --model {model} differs in its values or flags from the others")
        helps = {model: help_text(entry) for model, entry in entries}
        if len(entries) == len(models) and len(set(helps.values())) == 1:
            text = helps[entries[0][0]]
        else:  # each model's own description and default
            text = " | ".join(f"[--model {model}] {help}" for model, help in helps.items())
        flags = first.param.cli_flags(name)
        _add_flag(group, flags, name, first.param.constraint, text)
        added[name] = (flags[0], tuple(model for model, _ in entries))
    return added


def _add_flag(group, flags: tuple[str, ...], dest: str, constraint: params.Constraint, help: str) -> None:
    kwargs = dict(dest=dest, default=None, help=help)
    if isinstance(constraint, params.Flag):
        kwargs["action"] = argparse.BooleanOptionalAction
    else:
        kwargs.update(type=_parser(constraint), metavar=constraint.metavar())
    group.add_argument(*flags, **kwargs)


def given(args: argparse.Namespace, dests) -> dict:
    """The flags among ``dests`` that the user gave, as parameters."""
    return {dest: getattr(args, dest) for dest in dests if getattr(args, dest, None) is not None}
