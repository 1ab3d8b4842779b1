"""Estimator parameters, each declared once: default, allowed values and one-line description.

An estimator declares its parameters as dataclass fields made by :meth:`Param.field`. From that
one table come ``__init__`` (the dataclass's, which only stores), the check that ``fit`` runs
before it touches the data (:func:`validate`), the numpydoc "Parameters" section
(:func:`numpydoc`) and the command line's flags (:mod:`aekit.cli`). A constraint knows how to
check a value, describe what it allows, and parse a command-line string.

This module imports neither torch nor the rest of aekit.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import re
import textwrap
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from numbers import Integral, Real
from typing import Any

import numpy as np


class InvalidParameterError(ValueError, TypeError):
    """A parameter has a value its table does not allow; the message names it and what is allowed.

    A ``ValueError`` (and a ``TypeError``, for values of the wrong type), as scikit-learn's own
    parameter errors are.
    """


# -- constraints -----------------------------------------------------------------------------
class Constraint:
    """What one parameter accepts. Subclasses define :meth:`allows`, and the texts below as
    attributes or, where they depend on the constraint's arguments, as methods."""

    description = ""  # what is allowed, for error messages: "a float > 0"
    type_name = ""  # the numpydoc type: "float", "tuple of int"
    placeholder = ""  # how the command line's help shows a value; default: type_name.upper()

    def allows(self, value) -> bool:
        raise NotImplementedError

    def describe(self) -> str:
        return self.description

    def doc_type(self) -> str:
        return self.type_name

    def metavar(self) -> str:
        return self.placeholder or self.doc_type().upper()

    def parse(self, text: str):
        """The value a command-line string stands for (checked later, with the others)."""
        return text

    def hint(self, value) -> str:
        """Extra help for a rejected value (e.g. "did you mean ..."); empty by default."""
        return ""

    def check(self, name: str, value) -> None:
        if not self.allows(value):
            raise InvalidParameterError(
                f"{name}={value!r} is not allowed: {name} must be {self.describe()}{self.hint(value)}"
            )


def is_int(value) -> bool:
    """An integer, and not a boolean."""
    return isinstance(value, Integral) and not isinstance(value, (bool, np.bool_))


_is_int = is_int


def _is_real(value) -> bool:
    return isinstance(value, Real) and not isinstance(value, (bool, np.bool_))


class Options(Constraint):
    """One of a fixed set of values (strings, None, booleans), compared by type and value."""

    def __init__(self, *values):
        self.values = values

    def allows(self, value) -> bool:
        return any(type(value) is type(v) and value == v for v in self.values) or (
            value is None and None in self.values
        )

    def describe(self) -> str:
        return "one of " + ", ".join(repr(v) for v in self.values)

    def doc_type(self) -> str:
        return "{" + ", ".join('"' + v + '"' if isinstance(v, str) else repr(v) for v in self.values) + "}"

    def metavar(self) -> str:
        return "{" + ",".join("none" if v is None else str(v) for v in self.values) + "}"

    def parse(self, text: str):
        for v in self.values:
            if text == str(v) or (v is None and text.lower() == "none"):
                return v
        return text  # rejected, with a hint, by check()

    def hint(self, value) -> str:
        if not isinstance(value, str):
            return ""
        close = difflib.get_close_matches(value, [v for v in self.values if isinstance(v, str)], n=1)
        return f"; did you mean {close[0]!r}?" if close else ""


class Flag(Options):
    """True or False (numpy booleans too); on the command line ``--name`` / ``--no-name``."""

    def __init__(self):
        super().__init__(True, False)

    def allows(self, value) -> bool:
        return isinstance(value, (bool, np.bool_))

    def doc_type(self) -> str:
        return "bool"  # not Options' {True, False}


class Interval(Constraint):
    """A number of ``kind`` (``int`` or ``float``) between ``low`` and ``high`` (None: unbounded).

    ``closed`` says which ends belong to the interval: "both", "left", "right" or "neither".
    Booleans and NaN are never allowed; a float interval accepts ints too.
    """

    def __init__(self, kind: type, low: float | None = None, high: float | None = None, closed: str = "both"):
        self.kind, self.low, self.high, self.closed = kind, low, high, closed

    def allows(self, value) -> bool:
        if not (_is_int(value) if self.kind is int else _is_real(value)) or math.isnan(value):
            return False
        low_ok = self.low is None or (value >= self.low if self.closed in ("both", "left") else value > self.low)
        high_ok = self.high is None or (value <= self.high if self.closed in ("both", "right") else value < self.high)
        return low_ok and high_ok

    def describe(self) -> str:
        kind = "an int" if self.kind is int else "a float"
        if self.low is not None and self.high is not None:
            left = "[" if self.closed in ("both", "left") else "("
            right = "]" if self.closed in ("both", "right") else ")"
            return f"{kind} in {left}{self.low}, {self.high}{right}"
        if self.low is not None:
            return f"{kind} {'>=' if self.closed in ('both', 'left') else '>'} {self.low}"
        if self.high is not None:
            return f"{kind} {'<=' if self.closed in ('both', 'right') else '<'} {self.high}"
        return kind

    def doc_type(self) -> str:
        return self.kind.__name__

    def parse(self, text: str):
        return self.kind(text)


class Maybe(Constraint):
    """None, or a value that ``inner`` allows."""

    def __init__(self, inner: Constraint):
        self.inner = inner

    def allows(self, value) -> bool:
        return value is None or self.inner.allows(value)

    def describe(self) -> str:
        return f"None or {self.inner.describe()}"

    def doc_type(self) -> str:
        return f"{self.inner.doc_type()} or None"

    def metavar(self) -> str:
        inner = self.inner.metavar()
        return inner[:-1] + ",none}" if inner.endswith("}") else inner + "|none"

    def parse(self, text: str):
        return None if text.lower() == "none" else self.inner.parse(text)

    def hint(self, value) -> str:
        return self.inner.hint(value)


class AnyOf(Constraint):
    """A value that one of ``constraints`` allows."""

    def __init__(self, *constraints: Constraint):
        self.constraints = constraints

    def allows(self, value) -> bool:
        return any(c.allows(value) for c in self.constraints)

    def describe(self) -> str:
        return " or ".join(c.describe() for c in self.constraints)

    def doc_type(self) -> str:
        return " or ".join(c.doc_type() for c in self.constraints)

    def parse(self, text: str):
        for c in self.constraints:
            try:
                value = c.parse(text)
            except ValueError:
                continue
            if c.allows(value):
                return value
        return text

    def hint(self, value) -> str:
        return next((h for h in (c.hint(value) for c in self.constraints) if h), "")


class Sizes(Constraint):
    """Layer widths: a positive int or a non-empty sequence of them (``"300,150"`` on the command line)."""

    description = "a positive int or a non-empty tuple of positive ints"
    type_name, placeholder = "tuple of int", "N[,N...]"

    def allows(self, value) -> bool:
        values = value if isinstance(value, (tuple, list)) else (value,)
        return len(values) > 0 and all(_is_int(v) and v >= 1 for v in values)

    def parse(self, text: str):
        return tuple(int(v) for v in text.split(","))


class PerLayer(Constraint):
    """One value for every layer, or a sequence with one value per layer (``"4,2"``)."""

    def __init__(self, inner: Constraint):
        self.inner = inner

    def allows(self, value) -> bool:
        if isinstance(value, (tuple, list)):
            return len(value) > 0 and all(self.inner.allows(v) for v in value)
        return self.inner.allows(value)

    def describe(self) -> str:
        return f"{self.inner.describe()}, or a tuple with one such value per layer"

    def doc_type(self) -> str:
        return f"{self.inner.doc_type()} or tuple"

    def metavar(self) -> str:
        return f"{self.inner.metavar()}[,{self.inner.metavar()}...]"

    def parse(self, text: str):
        values = tuple(self.inner.parse(v) for v in text.split(","))
        return values[0] if len(values) == 1 else values


class Device(Constraint):
    """``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"`` or ``"cuda:N"``; checked for
    availability when training starts."""

    _PATTERN = re.compile(r"(auto|cpu|cuda|cuda:\d+)")
    description, type_name, placeholder = "'auto', 'cpu', 'cuda' or 'cuda:N'", "str", "DEVICE"

    def allows(self, value) -> bool:
        return isinstance(value, str) and self._PATTERN.fullmatch(value) is not None


class Seed(Constraint):
    """What scikit-learn's ``check_random_state`` takes: None, an int >= 0 or a RandomState."""

    description = "None, an int in [0, 2**32) or a numpy RandomState"
    type_name, placeholder = "int, RandomState or None", "INT"

    def allows(self, value) -> bool:
        return value is None or (_is_int(value) and 0 <= value < 2**32) or isinstance(value, np.random.RandomState)

    def parse(self, text: str):
        return int(text)


class Callables(Constraint):
    """A list or tuple of callables, possibly empty."""

    description, type_name = "a list or tuple of callables", "list of callable"

    def allows(self, value) -> bool:
        return isinstance(value, (list, tuple)) and all(callable(v) for v in value)


class InstanceOf(Constraint):
    """None or an instance of one of ``types`` (an estimator given as a parameter)."""

    def __init__(self, *types: type, unwrap: Callable[[Any], Any] = lambda v: v):
        self.types, self.unwrap = types, unwrap

    def allows(self, value) -> bool:
        return value is None or isinstance(self.unwrap(value), self.types)

    def describe(self) -> str:
        return "None or " + " or ".join(f"an instance of {t.__name__}" for t in self.types)

    def doc_type(self) -> str:
        return " or ".join(t.__name__ for t in self.types) + " or None"


# -- parameters ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Param:
    """One parameter's allowed values, description and command-line flags.

    Parameters
    ----------
    constraint : Constraint
    doc : str
        What the parameter does, one or a few sentences; the first line is the CLI help.
    flags : tuple of str, optional
        Command-line flags; by default ``--name-with-dashes``. ``()`` keeps it off the CLI.
    saved : bool, default=True
        False: :mod:`aekit.io` writes the default instead of the value, which only means
        something in the process that set it (callbacks).
    """

    constraint: Constraint
    doc: str
    flags: tuple[str, ...] | None = None
    saved: bool = True

    def field(self, default=dataclasses.MISSING, **kwargs) -> dataclasses.Field:
        """A dataclass field with this parameter's metadata and ``default`` (none: required)."""
        return dataclasses.field(default=default, metadata={"param": self}, **kwargs)

    def but(self, **changes) -> Param:
        """This parameter with some attributes changed, e.g. a doc that says more."""
        return dataclasses.replace(self, **changes)

    def cli_flags(self, name: str) -> tuple[str, ...]:
        return self.flags if self.flags is not None else ("--" + name.replace("_", "-"),)


@dataclass(frozen=True)
class Entry:
    """One row of a parameter table."""

    name: str
    default: Any
    param: Param


def table(cls) -> list[Entry]:
    """The parameter table of an estimator class (or instance): the parameters the class
    declares itself, in order, then those it inherits."""
    cls = cls if isinstance(cls, type) else type(cls)
    own = cls.__dict__.get("__annotations__", {})
    fields = sorted(dataclasses.fields(cls), key=lambda f: f.name not in own)  # stable: keeps order
    return [Entry(f.name, f.default, f.metadata["param"]) for f in fields if "param" in f.metadata]


def literal(value) -> str:
    """``value`` as the docs and the command line's help write it: strings in double quotes."""
    return f'"{value}"' if isinstance(value, str) else repr(value)


def validate(obj) -> None:
    """Check every parameter of ``obj`` against its table; raise :class:`InvalidParameterError`."""
    for entry in table(obj):
        entry.param.constraint.check(entry.name, getattr(obj, entry.name))


def iter_docs(cls) -> Iterator[str]:
    for entry in table(cls):
        default = entry.default
        yield f"{entry.name} : {entry.param.constraint.doc_type()}, default={literal(default)}"
        yield textwrap.indent(textwrap.fill(" ".join(entry.param.doc.split()), 92), "    ")


def numpydoc(cls) -> str:
    """The numpydoc "Parameters" section of ``cls``'s table."""
    return "Parameters\n----------\n" + "\n".join(iter_docs(cls))


def with_parameters_doc(cls):
    """Class decorator: put the table's Parameters section where the docstring says
    ``{parameters}``, at that line's indentation."""
    doc = cls.__doc__ or ""
    place = re.search(r"^([ \t]*)\{parameters\}", doc, re.MULTILINE)
    if place is None:
        raise ValueError(f"{cls.__name__}'s docstring has no {{parameters}} line")
    section = textwrap.indent(numpydoc(cls), place.group(1))
    cls.__doc__ = doc[: place.start()] + section + doc[place.end() :]
    return cls
