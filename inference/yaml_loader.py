"""A YAML loader that keeps line numbers, rejects duplicate keys, and reports errors with file and line."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .errors import InputError, Problem, quote

Path_ = tuple[str | int, ...]
# Limits far above any real file, each checked before the work it bounds (a models file of 1000 models is ~300 KiB).
MAX_FILE_BYTES = 1024 * 1024  # parsing is ~1 s per MiB: bigger files answer slowly and only come from mistakes
MAX_DEPTH = 32  # real files nest 4 levels; deeper is a mistake, an attack, or an alias that contains itself
MAX_VALUES = 200_000  # aliases can expand a small file exponentially ("billion laughs")
MAX_STRING_CHARS = 64 * 1024  # one value; an inline chat template (the longest real one) is under 16 KiB
TAG_RULE = "YAML tags (!!str, !!binary, !custom, ...) are not allowed; write plain values"


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



# libyaml's problem texts, in plain words (the line comes with the error).
YAML_WORDS: tuple[tuple[str, str], ...] = (
    ("mapping values are not allowed", "a ':' where no mapping can start: quote a value that holds ': ', or indent "
                                       "the key like the keys around it"),
    ("did not find expected key", "a line is indented differently from the keys around it, or a '{' is not closed"),
    ("did not find expected '-' indicator", "a line is indented differently from the list items around it"),
    ("did not find expected node content", "a value is missing: a '[' or '{' is not closed, or a ',' or '-' has "
                                           "nothing after it"),
    ("did not find expected ',' or ']'", "a '[' list is not closed with ']'"),
    ("did not find expected ',' or '}'", "a '{' mapping is not closed with '}'"),
    ("could not find expected ':'", "a key without its ':'"),
    ("found a tab character", "a tab where YAML needs spaces: indent with spaces"),
    ("found unexpected end of stream", "the file ends inside a quoted value or an open '[' or '{'"),
    ("found undefined alias", "an alias (*name) that no anchor (&name) defines"),
    ("found unknown escape character", "an unknown backslash escape in a double-quoted value: use single quotes"),
    ("block sequence entries are not allowed", "a '- ' list item on the line of its key: start the list on the "
                                               "next line"),
    ("but found another document", "more than one YAML document ('---'): the file holds one"),
    ("found incompatible YAML document", "an unsupported %YAML version directive: remove it"),
    ("did not find expected <document start>", "text after the end of the document: an extra ']' or '}'?"),
    ("expected <block end>", "a line is indented differently from the lines around it"),
)


def _plain(problem: str, text: str, index: int | None) -> str:
    """libyaml's problem in plain words; an unknown one as it is."""
    if "cannot start any token" in problem and index is not None and index < len(text):
        char = text[index]
        if char == "\t":
            return "a tab where YAML needs spaces: indent with spaces"
        return f"{quote(char)} cannot start a value: quote the value"
    for needle, words in YAML_WORDS:
        if needle in problem:
            return words
    return problem


def _dotted(path: Path_) -> str | None:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".") or None


class _Loader(yaml.composer.Composer, yaml._yaml.CParser, yaml.constructor.SafeConstructor, yaml.resolver.Resolver):
    """libyaml's parser (fast, iterative) under PyYAML's composer, with a depth bound and no tags."""

    def __init__(self, text: str, file: str):
        yaml._yaml.CParser.__init__(self, text)
        yaml.composer.Composer.__init__(self)
        yaml.constructor.SafeConstructor.__init__(self)
        yaml.resolver.Resolver.__init__(self)
        self.file = file
        self.depth = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node:
        # PyYAML's composer recurses once per level: bound the depth before Python's stack runs out.
        event = self.peek_event()
        line = event.start_mark.line + 1
        if not isinstance(event, yaml.AliasEvent) and event.tag is not None:
            tag = event.tag.replace("tag:yaml.org,2002:", "!!")
            raise InputError([Problem(self.file, f"not valid YAML here: tag {quote(tag)}; {TAG_RULE}", line)])
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise InputError([Problem(self.file, f"nested more than {MAX_DEPTH} levels deep, the limit (models and "
                                                 "stack files nest a few levels)", line)])
        try:
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


def _convert(node: yaml.Node, path: Path_, lines: dict[Path_, int], loader: _Loader) -> Any:
    file = loader.file
    if len(path) > MAX_DEPTH or len(lines) > MAX_VALUES:
        raise InputError([Problem(file, f"too deeply nested or too large (more than {MAX_DEPTH} levels or "
                                        f"{MAX_VALUES} values, the limits; recursive or repeated YAML aliases?)",
                                  node.start_mark.line + 1)])
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                raise InputError([Problem(file, "YAML merge keys (<<) are not supported; use 'defaults:'",
                                          key_node.start_mark.line + 1, field=_dotted(path))])
            key = _scalar(key_node, path, loader) if isinstance(key_node, yaml.ScalarNode) else None
            if not isinstance(key, str):
                shown = f" (got {quote(key)})" if isinstance(key_node, yaml.ScalarNode) else ""
                raise InputError([Problem(file, f"mapping keys must be plain strings{shown}",
                                          key_node.start_mark.line + 1, field=_dotted(path))])
            if key in out:
                first = lines[(*path, key)]
                model = out.get("name") if len(path) == 2 and path[0] == "models" else None
                raise InputError([Problem(file, f"duplicate key {quote(key)} (first set on line {first}); "
                                                "each key may appear once", key_node.start_mark.line + 1,
                                          model if isinstance(model, str) else None, _dotted((*path, key)))])
            lines[(*path, key)] = key_node.start_mark.line + 1
            out[key] = _convert(value_node, (*path, key), lines, loader)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_convert(item, (*path, i), lines, loader) for i, item in enumerate(node.value)]
    if len(node.value) > MAX_STRING_CHARS:
        raise InputError([Problem(file, f"a value of {len(node.value)} characters, over the limit of "
                                        f"{MAX_STRING_CHARS} for one value: {quote(node.value)}",
                                  node.start_mark.line + 1, field=_dotted(path))])
    return _scalar(node, path, loader)


def _scalar(node: yaml.Node, path: Path_, loader: _Loader) -> Any:
    try:
        return loader.construct_object(node)
    except (yaml.YAMLError, ValueError, TypeError, OverflowError) as exc:
        # Implicit values PyYAML cannot build (a date like 2020-02-30) fail in its constructors.
        raise InputError([Problem(loader.file, f"not valid YAML: cannot read {quote(node.value)} ({exc})",
                                  node.start_mark.line + 1, field=_dotted(path))]) from None


def load_text(text: str, file: str) -> Located:
    """Parse one YAML document. An empty document yields `None` data."""
    loader = _Loader(text, file)
    try:
        node = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        problem = _plain(str(exc.problem or exc), text, mark.index if mark else None)
        raise InputError([Problem(file, f"not valid YAML: {problem}", line)]) from None
    except yaml.reader.ReaderError as exc:
        char = exc.character if isinstance(exc.character, int) else ord(exc.character)
        raise InputError([Problem(file, f"not valid YAML: character U+{char:04X} is not allowed (write control "
                                        "characters as escapes in double quotes)",
                                  text[: exc.position].count("\n") + 1)]) from None
    except yaml.YAMLError as exc:
        raise InputError([Problem(file, f"not valid YAML: {exc}")]) from None
    lines: dict[Path_, int] = {}
    if node is None:
        return Located(file, None, lines)
    return Located(file, _convert(node, (), lines, loader), lines)


def load_file(path: Path, display: str) -> Located:
    """Read a YAML file as strict UTF-8; `display` is the name errors use (relative to the project)."""
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_FILE_BYTES + 1)  # never more than the limit, whatever the file's size
    except FileNotFoundError:
        raise InputError([Problem(display, "file not found")]) from None
    except OSError as exc:
        raise InputError([Problem(display, f"cannot be read: {exc.strerror}")]) from None
    if len(raw) > MAX_FILE_BYTES:
        raise InputError([Problem(display, f"is larger than {MAX_FILE_BYTES // 1024} KiB, the limit for a models or "
                                           "stack file (a thousand models take about 300 KiB)")])
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise InputError([Problem(display, f"is not UTF-8 text (byte {exc.start}); save it as UTF-8", line)]) from None
    return load_text(text, display)
