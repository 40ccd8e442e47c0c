"""One exception family per layer.

`InputError` names *where* bad input is (a YAML path, a file and line, a topic), *what* is wrong
with it, and the offending *value*, so that every entry point can say exactly what to fix.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


class GridError(Exception):
    """Base class of every error this package raises on purpose."""


class InputError(GridError, ValueError):
    """Bad input: `where` (path, file:line, field), `what` is wrong, and the `value` seen."""

    _MISSING: Any = object()

    def __init__(self, where: str, what: str, value: Any = _MISSING) -> None:
        self.where = where
        self.what = what
        self.value = value
        super().__init__(self.message)

    @property
    def has_value(self) -> bool:
        return self.value is not InputError._MISSING

    @property
    def message(self) -> str:
        text = f"{self.where}: {self.what}" if self.where else self.what
        if self.has_value:
            text += f", got {self.value!r}"
        return text

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"where": self.where, "what": self.what}
        if self.has_value:
            out["value"] = _jsonable(self.value)
        return out


class InputErrors(GridError, ValueError):  # noqa: N818 - the plural of InputError
    """Several input errors found in one pass; the message lists each on its own line."""

    def __init__(self, errors: Iterable[InputError], context: str = "") -> None:
        self.errors = list(errors)
        self.context = context
        head = f"{context}: " if context else ""
        lines = "\n".join(f"  - {e.message}" for e in self.errors)
        super().__init__(f"{head}{len(self.errors)} problem(s)\n{lines}")


class PlanError(GridError):
    """A plan could not be made (solver failure, time limit, broken model)."""


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)
