"""A YAML loader that keeps line numbers, rejects duplicate keys, and reports errors with file and line."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .errors import InputError, Problem

Path_ = tuple[str | int, ...]


@dataclass
class Located:
    """Plain Python data loaded from YAML, plus the line of every mapping key and sequence item."""

    file: str
    data: Any
    lines: dict[Path_, int] = field(default_factory=dict)

    def line(self, path: Path_) -> int | None:
        """Line of the deepest existing prefix of `path` (1-based), or None for an empty document."""
        for end in range(len(path), -1, -1):
            if path[:end] in self.lines:
                return self.lines[path[:end]]
        return None

    def has(self, path: Path_) -> bool:
        return path in self.lines


def _scalar(node: yaml.Node) -> Any:
    return yaml.SafeLoader("").construct_object(node)


def _convert(node: yaml.Node, path: Path_, lines: dict[Path_, int], file: str) -> Any:
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise InputError([Problem(file, "mapping keys must be plain strings", key_node.start_mark.line + 1)])
            key = _scalar(key_node)
            if key == "<<":
                raise InputError([Problem(file, "YAML merge keys (<<) are not supported; use 'defaults:'",
                                          key_node.start_mark.line + 1)])
            if key in out:
                first = lines[(*path, key)]
                raise InputError([Problem(file, f"duplicate key '{key}' (first set on line {first}); "
                                                "each key may appear once", key_node.start_mark.line + 1)])
            lines[(*path, key)] = key_node.start_mark.line + 1
            out[key] = _convert(value_node, (*path, key), lines, file)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_convert(item, (*path, i), lines, file) for i, item in enumerate(node.value)]
    return _scalar(node)


def load_text(text: str, file: str) -> Located:
    """Parse one YAML document. An empty document yields `None` data."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        raise InputError([Problem(file, f"not valid YAML: {exc.problem or exc}", line)]) from None
    except yaml.YAMLError as exc:
        raise InputError([Problem(file, f"not valid YAML: {exc}")]) from None
    lines: dict[Path_, int] = {}
    if node is None:
        return Located(file, None, lines)
    return Located(file, _convert(node, (), lines, file), lines)


def load_file(path: Path, display: str) -> Located:
    """Read a YAML file as strict UTF-8; `display` is the name errors use (relative to the project)."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise InputError([Problem(display, "file not found")]) from None
    except OSError as exc:
        raise InputError([Problem(display, f"cannot be read: {exc.strerror}")]) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise InputError([Problem(display, f"is not UTF-8 text (byte {exc.start}); save it as UTF-8", line)]) from None
    return load_text(text, display)
