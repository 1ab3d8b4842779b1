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
        kwargs = dict(dest=dest, default=None, help=help_text(entry))
        constraint = entry.param.constraint
        if isinstance(constraint, params.Flag):
            kwargs["action"] = argparse.BooleanOptionalAction
        else:
            kwargs.update(type=_parser(constraint), metavar=constraint.metavar())
        group.add_argument(*flags, **kwargs)
        dests.append(dest)
    return dests


def given(args: argparse.Namespace, dests) -> dict:
    """The flags among ``dests`` that the user gave, as parameters."""
    return {dest: getattr(args, dest) for dest in dests if getattr(args, dest, None) is not None}
