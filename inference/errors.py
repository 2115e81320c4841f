"""User-facing input errors: every problem names the file, line, model and field, and what is allowed."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the user's input."""

    file: str
    message: str
    line: int | None = None
    model: str | None = None
    field: str | None = None

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        parts = [where]
        if self.model:
            parts.append(f"model '{self.model}'")
        if self.field:
            parts.append(f"field '{self.field}'")
        return f"{': '.join(parts)}: {self.message}"


class InputError(Exception):
    """Bad input: raised before any resource is registered, carrying every problem found."""

    def __init__(self, problems: list[Problem]):
        self.problems = list(problems)
        super().__init__(str(self))

    def __str__(self) -> str:
        head = "invalid input" if len(self.problems) == 1 else f"{len(self.problems)} problems in the input"
        return head + ":\n" + "\n".join(f"  - {p}" for p in self.problems)


class PlanError(InputError):
    """The input is well-formed but cannot be served: fit, capacity or cache problems."""
