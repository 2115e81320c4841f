"""User-facing input errors: every problem names the file, line, model and field, and what is allowed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# A file with a thousand broken models would print megabytes: show this many problems and count the rest.
MAX_SHOWN = 50
QUOTE_CHARS = 80  # an echoed value is cut here: the error names it, it need not repeat 50 MB of it


def safe(text: str) -> str:
    """`text` with every non-printable character escaped (\\x1b, \\n, \\u202e): input can never drive a terminal."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def quote(value: Any, limit: int = QUOTE_CHARS) -> str:
    """A value as an error echoes it: repr-style quotes and escapes, cut after `limit` characters."""
    if isinstance(value, str):
        if len(value) <= limit:
            return repr(value)
        return f"{value[:limit]!r}... ({len(value)} characters)"
    text = repr(value)
    shown = text if len(text) <= limit else f"{text[:limit]}..."
    return f"{type(value).__name__} {shown}"


class FieldError(ValueError):
    """A validator's error about a field below the one it validates (`at`, a location relative to it)."""

    def __init__(self, at: tuple[str | int, ...], message: str):
        super().__init__(message)
        self.at = at


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
        parts = [safe(where)]
        if self.model:
            parts.append(f"model {quote(self.model)}" if not self.model.isprintable() else f"model '{self.model}'")
        if self.field:
            parts.append(f"field '{safe(self.field)}'")
        return safe(f"{': '.join(parts)}: {self.message}")

    def to_data(self) -> dict[str, Any]:
        """The problem for JSON output, every text escaped as in the terminal."""
        return {"file": safe(self.file), "line": self.line, "model": None if self.model is None else safe(self.model),
                "field": None if self.field is None else safe(self.field), "message": safe(self.message)}


class InputError(Exception):
    """Bad input: raised before any resource is registered, carrying every problem found."""

    def __init__(self, problems: list[Problem]):
        self.problems = list(problems)
        super().__init__(str(self))

    @property
    def shown(self) -> list[Problem]:
        return self.problems[:MAX_SHOWN]

    @property
    def omitted(self) -> int:
        return max(0, len(self.problems) - MAX_SHOWN)

    def __str__(self) -> str:
        head = "invalid input" if len(self.problems) == 1 else f"{len(self.problems)} problems in the input"
        lines = [f"  - {p}" for p in self.shown]
        if self.omitted:
            lines.append(f"  ... and {self.omitted} more (only the first {MAX_SHOWN} are shown; fix these and run "
                         "again)")
        return head + ":\n" + "\n".join(lines)


class PlanError(InputError):
    """The input is well-formed but cannot be served: fit, capacity or cache problems."""
