"""A YAML loader that keeps line numbers, rejects duplicate keys, and reports errors with file and line."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .errors import InputError, Problem

Path_ = tuple[str | int, ...]
MAX_DEPTH = 64  # deeper nesting only comes from an alias that contains itself
MAX_VALUES = 200_000  # aliases can expand a small file exponentially ("billion laughs")


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


def _dotted(path: Path_) -> str | None:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".") or None


def _scalar(node: yaml.Node, file: str) -> Any:
    try:
        return yaml.SafeLoader("").construct_object(node)
    except (yaml.YAMLError, ValueError, TypeError, AttributeError):
        # Explicit tags (`!!int abc`, `!custom x`) fail inside PyYAML's constructors with assorted exceptions.
        raise InputError([Problem(file, f"not valid YAML: cannot read {node.value!r} as {node.tag}",
                                  node.start_mark.line + 1)]) from None


def _convert(node: yaml.Node, path: Path_, lines: dict[Path_, int], file: str) -> Any:
    if len(path) > MAX_DEPTH or len(lines) > MAX_VALUES:
        raise InputError([Problem(file, f"too deeply nested or too large (more than {MAX_DEPTH} levels or "
                                        f"{MAX_VALUES} values; recursive or repeated YAML aliases?)",
                                  node.start_mark.line + 1)])
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                raise InputError([Problem(file, "YAML merge keys (<<) are not supported; use 'defaults:'",
                                          key_node.start_mark.line + 1, field=_dotted(path))])
            key = _scalar(key_node, file) if isinstance(key_node, yaml.ScalarNode) else None
            if not isinstance(key, str):
                shown = f" (got {type(key).__name__} {key!r})" if isinstance(key_node, yaml.ScalarNode) else ""
                raise InputError([Problem(file, f"mapping keys must be plain strings{shown}",
                                          key_node.start_mark.line + 1, field=_dotted(path))])
            if key in out:
                first = lines[(*path, key)]
                model = out.get("name") if len(path) == 2 and path[0] == "models" else None
                raise InputError([Problem(file, f"duplicate key '{key}' (first set on line {first}); "
                                                "each key may appear once", key_node.start_mark.line + 1,
                                          model if isinstance(model, str) else None, _dotted((*path, key)))])
            lines[(*path, key)] = key_node.start_mark.line + 1
            out[key] = _convert(value_node, (*path, key), lines, file)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_convert(item, (*path, i), lines, file) for i, item in enumerate(node.value)]
    return _scalar(node, file)


def load_text(text: str, file: str) -> Located:
    """Parse one YAML document. An empty document yields `None` data."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        raise InputError([Problem(file, f"not valid YAML: {exc.problem or exc}", line)]) from None
    except yaml.reader.ReaderError as exc:
        raise InputError([Problem(file, f"not valid YAML: {exc.reason} (character U+{exc.character:04X})",
                                  text[: exc.position].count("\n") + 1)]) from None
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
