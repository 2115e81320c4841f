"""Fuzzing bad input: generated broken models files and stack configs are each rejected before any resource.

Every example starts from a valid input and breaks one known thing (a field's type or range, a key, a name, the
encoding, the YAML itself), so the test knows which file, model and field the message must name. The real
__main__.py runs under mocks for each example and must stop with pulumi.RunError (no traceback, no other
exception type) having registered nothing. Hypothesis runs derandomized without a database: CI sees the same
examples on every run.
"""

from __future__ import annotations

import json
import re
import string
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import DEV, PROD, Project, stack_config
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from inference.catalog import GPU_TYPES, INSTANCE_TYPES
from inference.charts import CHARTS
from inference.engines import ENGINES, PLATFORM_ENV
from inference.errors import quote
from inference.grammar import BUCKET_PREFIXES, BUCKET_SUFFIXES
from inference.settings import STACK_KEYS
from offline import render

STACK = "test"
STACK_FILE = f"Pulumi.{STACK}.yaml"
MODELS_FILE = "models.yaml"
NAMES = ("llama-8b", "qwen-14b", "mistral-7b")  # valid, and none a prefix of another
L40S_POOL = 0  # index of BASE's l40s pool (g6e.2xlarge: one 48 GiB GPU per node, maxNodes 10)
# The largest weights one L40S holds with any room for a KV cache: vLLM 48 x 0.92 - 1.5 GiB; SGLang less.
MAX_L40S_GIB = 42.66
EXAMPLES: dict[str, int] = {}  # examples run per test, checked against each test's floor
# Where every models example runs, stated here so that edits to Pulumi.dev.yaml cannot make a bad example valid.
BASE = stack_config(DEV, target="render", nodePools=[
    {"name": "l40s", "instanceType": "g6e.2xlarge", "minNodes": 0, "maxNodes": 10},
    {"name": "h100", "instanceType": "p5.48xlarge", "minNodes": 0, "maxNodes": 2}],
    cache={"kind": "pvc", "storageClass": "efs-sc", "sizeGiB": 500})


def cfg(base: dict[str, Any] | None = None, **changes: Any) -> dict[str, Any]:
    """The fuzz stack (or `base`) with some keys changed; None deletes a key."""
    return stack_config(BASE if base is None else base, **changes)


@dataclass(frozen=True)
class Bad:
    """One broken input and what the error message must name: the file, and strings of one problem line."""

    needles: tuple[str, ...]
    file: str = MODELS_FILE
    models: Any = None  # models list or document (YAML-dumped), text, or raw bytes; None: a valid default
    config: Any = None  # stack config dict (YAML-dumped), text, or raw bytes; None: BASE


def _bytes(value: Any, wrap: str) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode()
    if wrap == "models" and isinstance(value, list):
        value = {"models": value}
    if wrap == "config":
        value = {"config": value}
    return yaml.safe_dump(value, sort_keys=False, allow_unicode=True).encode()


def write(root: Path, bad: Bad) -> None:
    (root / STACK_FILE).write_bytes(_bytes(cfg() if bad.config is None else bad.config, "config"))
    (root / MODELS_FILE).write_bytes(_bytes(VALID if bad.models is None else bad.models, "models"))


def problems(message: str) -> list[str]:
    head, _, body = message.partition("\n  - ")
    assert re.fullmatch(r"invalid input:|\d+ problems in the input:", head), message
    return body.split("\n  - ")


def assert_names(message: str, bad: Bad) -> None:
    """One problem line starts with the file (and line, if known) and holds every needle; no traceback."""
    assert "Traceback" not in message and 'File "' not in message, message
    assert not [c for c in message if not c.isprintable() and c != "\n"], f"raw control character in {message!r}"
    lines = problems(message)
    ours = [p for p in lines if re.match(rf"{re.escape(bad.file)}(:\d+)?: ", p)
            and all(n in p for n in bad.needles)]
    assert ours, f"no problem names {bad.file} and {bad.needles}:\n{message}"


def check(project: Project, bad: Bad) -> None:
    write(project.root, bad)
    message, run = project.rejected(STACK)
    assert_names(message, bad)
    assert run.resources == [], [r.name for r in run.resources]


# ----------------------------------------------------------------- valid starting points

VALID = [{"name": "llama-8b", "source": "hf://org/model", "revision": "0" * 40, "sizeGiB": 16,
          "gpu": {"type": "l40s", "count": 1}, "replicas": 2}]


@st.composite
def valid_models(draw: st.DrawFn) -> list[dict[str, Any]]:
    """One to three valid models on BASE's L40S pool (6 nodes at most, 9 with their surge replicas, of its 10),
    each leaving room for a 32768-token Llama-3.1-8B KV cache (4 GiB) on either engine."""
    out = []
    for name in NAMES[: draw(st.integers(1, 3))]:
        m: dict[str, Any] = {
            "name": name,
            "source": draw(st.sampled_from(["hf://meta-llama/Llama-3.1-8B", "s3://weights-bucket/llama/8b"])),
            "revision": draw(st.sampled_from(["main", "0e9e39f249a16976918f6564b8830bc894c89659", "v1.0"])),
            "sizeGiB": draw(st.integers(1, 30)),
            "engine": draw(st.sampled_from(["vllm", "sglang"])),
            "gpu": {"type": "l40s", "count": 1},
        }
        if draw(st.booleans()):
            m["replicas"] = draw(st.integers(1, 2))
        else:
            m["autoscaling"] = {"minReplicas": 1, "maxReplicas": 2,
                                "metric": draw(st.sampled_from(["queue", "running"])), "target": 5}
        if draw(st.booleans()):
            m["contextWindow"] = draw(st.sampled_from([4096, 8192, 32768]))
            m["batchSize"] = draw(st.integers(1, 256))
        out.append(m)
    return out


def label(m: dict[str, Any], index: int) -> str:
    """How messages name a model: its name when it is a string, else its position."""
    return f"model '{m['name']}'" if isinstance(m.get("name"), str) else f"model 'models[{index}]'"


def put(m: dict[str, Any], path: str, value: Any) -> None:
    *parents, leaf = path.split(".")
    for p in parents:
        m = m.setdefault(p, {})
    m[leaf] = value


def drop(m: dict[str, Any], path: str) -> None:
    *parents, leaf = path.split(".")
    for p in parents:
        m = m[p]
    m.pop(leaf)


def autoscaled(m: dict[str, Any]) -> None:
    m.pop("replicas", None)
    m.setdefault("autoscaling", {"minReplicas": 1, "maxReplicas": 2, "metric": "queue", "target": 5})


@st.composite
def one_model(draw: st.DrawFn) -> tuple[list[dict[str, Any]], int, dict[str, Any]]:
    models = draw(valid_models())
    i = draw(st.integers(0, len(models) - 1))
    return models, i, models[i]


# ----------------------------------------------------------------- bad values by kind

NOT_STR = st.one_of(st.integers(), st.floats(allow_nan=False), st.booleans(), st.lists(st.integers(), max_size=2),
                    st.dictionaries(st.sampled_from("abc"), st.integers(), max_size=2))
NOT_INT = st.one_of(st.text(string.digits, min_size=1, max_size=4), st.floats(allow_nan=False), st.booleans(),
                    st.lists(st.integers(1, 9), min_size=1, max_size=2))
NOT_NUMBER = st.one_of(st.text(string.digits + ".", min_size=1, max_size=5), st.booleans(),
                       st.lists(st.integers(), min_size=1, max_size=2), st.just({"value": 1}))
NOT_MAPPING = st.one_of(st.text(max_size=8), st.integers(), st.lists(st.integers(), max_size=2))
NOT_LIST = st.one_of(st.text(max_size=8), st.integers(), st.dictionaries(st.sampled_from("ab"), st.text(max_size=3),
                                                                          min_size=1))
KEY = st.text(string.ascii_letters + string.digits + "_-", min_size=1, max_size=16)
SNAKE = st.sampled_from(["size_gib", "context_window", "batch_size", "engine_args", "min_replicas", "max_replicas",
                         "node_pools", "instance_type", "storage_class", "models_file"])


def outside(low: float, high: float) -> st.SearchStrategy[int]:
    return st.one_of(st.integers(max_value=int(low) - 1), st.integers(min_value=int(high) + 1))


WRONG_TYPE_FIELDS: list[tuple[str, st.SearchStrategy[Any]]] = [
    ("source", NOT_STR), ("revision", NOT_STR), ("engine", NOT_STR), ("image", NOT_STR),
    ("sizeGiB", NOT_NUMBER), ("gpu", NOT_MAPPING), ("gpu.type", NOT_STR), ("gpu.count", NOT_INT),
    ("replicas", NOT_INT), ("contextWindow", NOT_INT), ("batchSize", NOT_INT), ("engineArgs", NOT_LIST),
    ("env", st.one_of(st.text(max_size=8), st.integers(), st.lists(st.text(max_size=3), max_size=2))),
]
AUTOSCALING_WRONG_TYPE: list[tuple[str, st.SearchStrategy[Any]]] = [
    ("autoscaling", NOT_MAPPING), ("autoscaling.minReplicas", NOT_INT), ("autoscaling.maxReplicas", NOT_INT),
    ("autoscaling.metric", NOT_STR), ("autoscaling.target", NOT_NUMBER),
]


@st.composite
def wrong_type(draw: st.DrawFn) -> Bad:
    models, i, m = draw(one_model())
    path, values = draw(st.sampled_from(WRONG_TYPE_FIELDS + AUTOSCALING_WRONG_TYPE))
    if path.startswith("autoscaling"):
        autoscaled(m)
    elif path == "replicas":
        m.pop("autoscaling", None)
    put(m, path, draw(values))
    return Bad((label(m, i), f"field '{path}'"), models=models)


@st.composite
def wrong_type_in_list_or_map(draw: st.DrawFn) -> Bad:
    models, i, m = draw(one_model())
    if draw(st.booleans()):
        m["engineArgs"] = ["--enable-prefix-caching", draw(NOT_STR.filter(lambda v: v is not None))]
        field = "engineArgs[1]"
    else:
        key = draw(st.sampled_from(["NCCL_DEBUG", "VLLM_LOGGING_LEVEL", "X"]))
        m["env"] = {key: draw(st.one_of(st.integers(), st.booleans(), st.lists(st.integers(), max_size=2)))}
        field = f"env.{key}"
    return Bad((label(m, i), f"field '{field}'"), models=models)


@st.composite
def wrong_name_type(draw: st.DrawFn) -> Bad:
    models, i, m = draw(one_model())
    m["name"] = draw(NOT_STR)
    return Bad((f"model 'models[{i}]'", "field 'name'"), models=models)


@st.composite
def unknown_key(draw: st.DrawFn) -> Bad:
    """An unknown key (or a Python field name instead of the camelCase key) in a model, gpu or autoscaling."""
    models, i, m = draw(one_model())
    key = draw(st.one_of(SNAKE, KEY))
    where = draw(st.sampled_from(["", "gpu", "autoscaling"]))
    if where == "autoscaling":
        autoscaled(m)
    target = m[where] if where else m
    if key in target or key in ("name", "source", "revision", "sizeGiB", "engine", "image", "gpu", "replicas",
                                "autoscaling", "contextWindow", "batchSize", "engineArgs", "env", "type", "count",
                                "minReplicas", "maxReplicas", "metric", "target"):
        key = f"x-{key}"
    target[key] = draw(st.integers(1, 9))
    return Bad((label(m, i), f"field '{where + '.' if where else ''}{key}'", f"unknown key '{key}'"), models=models)


@st.composite
def unknown_top_level_key(draw: st.DrawFn) -> Bad:
    key = draw(KEY.filter(lambda k: k not in ("models", "defaults")))
    return Bad((f"unknown key '{key}'", "allowed keys: defaults, models"),
               models={"models": draw(valid_models()), key: draw(st.integers())})


@st.composite
def unknown_key_in_defaults(draw: st.DrawFn) -> Bad:
    """A typo in `defaults:` is reported once per model that inherits it, naming the model."""
    models = draw(valid_models())
    key = draw(st.one_of(SNAKE, st.sampled_from(["replica", "gpus", "sizeGB", "engin", "contextLength"])))
    return Bad(("model 'llama-8b'", f"field '{key}'", f"unknown key '{key}'"),
               models={"defaults": {key: 1}, "models": models})


@st.composite
def duplicate_model_name(draw: st.DrawFn) -> Bad:
    models = draw(valid_models())
    original = draw(st.sampled_from(models))
    copy = json.loads(json.dumps(original))
    copy["sizeGiB"] = draw(st.integers(1, 40))
    models.insert(draw(st.integers(models.index(original) + 1, len(models))), copy)
    return Bad((f"model '{original['name']}'", "field 'name'", "duplicate model name"), models=models)


def emit(models: list[dict[str, Any]]) -> list[str]:
    """Block-style models.yaml lines, one key per line (values as JSON, which is YAML)."""
    lines = ["models:"]
    for m in models:
        for n, (key, value) in enumerate(m.items()):
            lines.append(f"{'  - ' if n == 0 else '    '}{key}: {json.dumps(value)}")
    return lines


@st.composite
def duplicate_yaml_key(draw: st.DrawFn) -> Bad:
    """A key repeated in the same mapping (YAML loaders silently keep the last one; this program refuses)."""
    models = draw(valid_models())
    lines = emit(models)
    where = draw(st.sampled_from(["models", "defaults", "model", "gpu"]))
    if where == "models":  # the whole list twice
        key, first, line = "models", 1, len(lines) + 1
        lines += lines
    elif where == "defaults":
        key, first = "defaults", 1
        lines = ["defaults: {}", *lines, "defaults: {engine: vllm}"]
        line = len(lines)
    else:
        i = draw(st.integers(0, len(models) - 1))
        starts = [n for n, text in enumerate(lines) if text.startswith("  - ")] + [len(lines)]
        block = range(starts[i], starts[i + 1])
        if where == "gpu":  # inside a flow mapping: one line holds both
            key = draw(st.sampled_from(["type", "count"]))
            n = next(n for n in block if lines[n].endswith('"count": 1}'))
            lines[n] = lines[n][:-1] + f', "{key}": 1}}'
            first = line = n + 1
        else:
            key = draw(st.sampled_from(list(models[i])))
            first = next(n for n in block if lines[n].lstrip(" -").startswith(f"{key}:")) + 1
            lines.insert(block.stop, f"    {key}: {json.dumps(models[i][key])}")
            line = block.stop + 1
    return Bad((f"{MODELS_FILE}:{line}: ", f"duplicate key '{key}' (first set on line {first})"),
               models="\n".join(lines) + "\n")


OUT_OF_RANGE: list[tuple[str, st.SearchStrategy[Any], Callable[[dict[str, Any]], None] | None]] = [
    ("sizeGiB", st.one_of(st.floats(max_value=0), st.floats(min_value=4096, exclude_min=True),
                          st.sampled_from([float("nan"), float("inf"), -float("inf")])), None),
    ("gpu.count", st.integers().filter(lambda n: n not in (1, 2, 4, 8) and not 8 < n <= 1024), None),
    ("replicas", outside(1, 1000), lambda m: m.pop("autoscaling", None)),
    ("contextWindow", outside(128, 10_000_000), None),
    ("batchSize", outside(1, 65_536), None),
    ("autoscaling.minReplicas", outside(1, 1000), autoscaled),
    ("autoscaling.maxReplicas", outside(1, 1000), autoscaled),
    ("autoscaling.target", st.one_of(st.floats(max_value=0), st.sampled_from([float("nan"), float("inf")])),
     autoscaled),
]


@st.composite
def out_of_range(draw: st.DrawFn) -> Bad:
    models, i, m = draw(one_model())
    path, values, setup = draw(st.sampled_from(OUT_OF_RANGE))
    if setup:
        setup(m)
    put(m, path, draw(values))
    return Bad((label(m, i), f"field '{path}'"), models=models)


@st.composite
def inconsistent_autoscaling(draw: st.DrawFn) -> Bad:
    """maxReplicas below minReplicas, or a kvCache target above 1 (a fraction)."""
    models, i, m = draw(one_model())
    autoscaled(m)
    if draw(st.booleans()):
        low = draw(st.integers(2, 1000))
        m["autoscaling"].update(minReplicas=low, maxReplicas=draw(st.integers(1, low - 1)))
        return Bad((label(m, i), "field 'autoscaling'", "maxReplicas", "minReplicas"), models=models)
    m["autoscaling"].update(metric="kvCache", target=draw(st.floats(min_value=1, exclude_min=True,
                                                                     allow_infinity=False)))
    return Bad((label(m, i), "field 'autoscaling'", "kvCache", "between 0 and 1"), models=models)


@st.composite
def bad_source(draw: st.DrawFn) -> Bad:
    """Sources that are neither hf://ORG/REPO nor s3://BUCKET/PREFIX, each invalid by construction."""
    part = st.text(string.ascii_letters + string.digits + "_.-", min_size=1, max_size=12).filter(
        lambda s: s[0].isalnum())
    bucket = st.text(string.ascii_lowercase + string.digits, min_size=3, max_size=20)
    source = draw(st.one_of(
        st.builds("{}://{}/{}".format, st.sampled_from(["http", "https", "gs", "file", "HF", "S3", "hff", "az"]),
                  part, part),
        st.builds("hf://{}".format, part),  # no repository
        st.builds("hf://{}/{}/{}".format, part, part, part),  # a path inside a repository
        st.builds("hf://{}/{}".format, st.sampled_from(["-x", "_x", ".x", ""]), part),  # bad organisation
        st.builds("hf://{} {}/{}".format, part, part, part),  # whitespace
        st.builds("s3://{}".format, bucket),  # no prefix
        st.builds("s3://{}/".format, bucket),
        st.builds("s3://{}/{}".format, st.text(string.ascii_uppercase, min_size=3, max_size=10), part),
        st.builds("s3://{}/{}".format, st.text(string.ascii_lowercase, min_size=1, max_size=2), part),
        st.builds("s3://{}/{}".format, st.text(string.ascii_lowercase, min_size=64, max_size=70), part),
        st.builds("s3://{}/{} {}".format, bucket, part, part),
        st.builds("hf://{}/{}".format, part, st.text(string.ascii_lowercase, min_size=520, max_size=530)),
        st.text(string.ascii_letters + string.digits + "/._-", max_size=30),  # no scheme at all
    ))
    models, i, m = draw(one_model())
    m["source"] = source
    return Bad((label(m, i), "field 'source'"), models=models)


@st.composite
def empty_or_shapeless_models_file(draw: st.DrawFn) -> Bad:
    text = draw(st.sampled_from([
        "", " ", "\n\n", "# only a comment\n", "---\n", "--- \n...\n", "null\n", "~\n", "models:\n", "models: []\n",
        "models: {}\n", "models: null\n", "models: 3\n", "models: llama\n", "[]\n", "- models\n", "42\n",
        "defaults: {}\n", "defaults: {engine: vllm}\n", "models: [[]]\n", "models: [3]\n", "models: [null]\n",
        "'models'\n", "models: [{}, null]\n",
    ]))
    return Bad(("models",), models=text)


INVALID_UTF8 = [b"\xff", b"\xfe\xff", b"\xc0\xaf", b"\x80", b"\xed\xa0\x80", b"\xe9t\xe9", b"\xf8\x88\x80\x80\x80",
                b"\xc3"]


@st.composite
def non_utf8_models_file(draw: st.DrawFn) -> Bad:
    models = _bytes(draw(valid_models()), "models")
    at = draw(st.integers(0, len(models)))
    line = models[:at].count(b"\n") + 1
    return Bad((f"{MODELS_FILE}:{line}: is not UTF-8 text",),
               models=models[:at] + draw(st.sampled_from(INVALID_UTF8)) + models[at:])


@st.composite
def bad_gpu_type(draw: st.DrawFn) -> Bad:
    """Types the catalog does not know (near misses included), and known types no dev pool provides."""
    models, i, m = draw(one_model())
    unknown = st.one_of(st.sampled_from(["L40S", "l40", "a100", "A10G", "h100 ", "t4", "v100", "mi300x", "gb200"]),
                        st.text(max_size=12)).filter(lambda t: t not in GPU_TYPES)
    if draw(st.booleans()):
        m["gpu"]["type"] = draw(unknown)
        return Bad((label(m, i), "field 'gpu.type'"), models=models)
    m["gpu"]["type"] = draw(st.sampled_from([t for t in GPU_TYPES if t not in ("l40s", "h100")]))
    return Bad((label(m, i), "field 'gpu.type'", "no node pool provides"), models=models)


@st.composite
def bad_tensor_parallel(draw: st.DrawFn) -> Bad:
    """A size the engines cannot shard to within a node, or more GPUs than a node that are not whole nodes."""
    models, i, m = draw(one_model())
    if draw(st.booleans()):
        m["gpu"] = {"type": draw(st.sampled_from(["l40s", "h100"])),
                    "count": draw(st.one_of(st.integers(-4, 8).filter(lambda n: n not in (1, 2, 4, 8)),
                                            st.integers(1025, 4096)))}
        return Bad((label(m, i), "field 'gpu.count'", "GPUs per replica must be one of"), models=models)
    # the dev h100 pool has eight GPUs per node: more than eight must be whole nodes
    m["gpu"] = {"type": "h100", "count": draw(st.integers(9, 1024).filter(lambda n: n % 8))}
    return Bad((label(m, i), "field 'gpu.count'", "is not a multiple of a node's GPUs"), models=models)


REQUIRED = ["name", "source", "sizeGiB", "gpu", "gpu.type"]
AUTOSCALING_REQUIRED = ["autoscaling.minReplicas", "autoscaling.maxReplicas", "autoscaling.metric",
                        "autoscaling.target"]


@st.composite
def missing_field(draw: st.DrawFn) -> Bad:
    models, i, m = draw(one_model())
    path = draw(st.sampled_from(REQUIRED + AUTOSCALING_REQUIRED))
    if path.startswith("autoscaling"):
        autoscaled(m)
    who = label(m, i) if path != "name" else f"model 'models[{i}]'"
    drop(m, path)
    return Bad((who, f"field '{path}'", "required field is missing"), models=models)


@st.composite
def replicas_and_autoscaling(draw: st.DrawFn) -> Bad:
    """Both a fixed count and an autoscaler, or neither (also as explicit nulls)."""
    models, i, m = draw(one_model())
    if draw(st.booleans()):
        m["replicas"] = draw(st.integers(1, 2))
        m["autoscaling"] = {"minReplicas": 1, "maxReplicas": 2, "metric": "queue", "target": 5}
    else:
        m.pop("replicas", None)
        m.pop("autoscaling", None)
        for key in draw(st.sets(st.sampled_from(["replicas", "autoscaling"]))):
            m[key] = None
    return Bad((label(m, i), "replicas", "autoscaling", "set exactly one"), models=models)


@st.composite
def bad_name(draw: st.DrawFn) -> Bad:
    name = draw(st.one_of(
        st.text(string.ascii_letters + string.digits + "-_.", min_size=1, max_size=20).filter(
            lambda s: re.fullmatch(r"[a-z]([-a-z0-9]*[a-z0-9])?", s) is None),
        st.builds("{}{}".format, st.sampled_from(["a", "model-"]), st.text("abc-9", min_size=40, max_size=50)),
    ))
    models, _, m = draw(one_model())
    m["name"] = name
    return Bad((f"model '{name}'", "field 'name'"), models=models)


@st.composite
def bad_string_field(draw: st.DrawFn) -> Bad:
    """Revisions, images, env names and engine flags the program refuses."""
    models, i, m = draw(one_model())
    kind = draw(st.sampled_from(["revision", "image", "env", "engineArgs", "engine"]))
    if kind == "revision":
        m["revision"] = draw(st.one_of(st.just(""), st.builds("{}{}".format, st.sampled_from("-._/ "), st.text(
            string.ascii_letters, max_size=8)), st.builds("{}/{}".format, st.text("abc", min_size=1, max_size=5),
                                                           st.text("abc", min_size=1, max_size=5)),
            st.text("abc123", min_size=129, max_size=140)))
        return Bad((label(m, i), "field 'revision'"), models=models)
    if kind == "image":
        repo = st.text(string.ascii_lowercase + "/.-", min_size=1, max_size=20)  # no ':' or '@': unpinned
        m["image"] = draw(st.one_of(repo, st.builds("{}:latest".format, repo),
                                    st.builds("{}:v1 x".format, repo)))
        return Bad((label(m, i), "field 'image'"), models=models)
    if kind == "env":
        name = draw(st.one_of(st.sampled_from(PLATFORM_ENV), st.builds("{}{}".format, st.sampled_from(
            ["1", "-", ".", " ", "A-", "A.", "A B"]), st.text(string.ascii_uppercase, max_size=5))))
        m["env"] = {name: "1"}
        return Bad((label(m, i), f"field 'env.{name}'"), models=models)
    if kind == "engine":
        m["engine"] = draw(st.text(max_size=10).filter(lambda e: e not in ENGINES))
        return Bad((label(m, i), "field 'engine'"), models=models)
    engine = m.get("engine", "vllm")
    flag = draw(st.sampled_from(ENGINES[engine].managed_flags))
    m["engineArgs"] = [draw(st.sampled_from([flag, f"{flag}=1"]))]
    return Bad((label(m, i), "engineArgs may not set", flag), models=models)


@st.composite
def metric_the_engine_lacks(draw: st.DrawFn) -> Bad:
    models, i, m = draw(one_model())
    autoscaled(m)
    m["engine"], m["autoscaling"]["metric"] = draw(st.sampled_from(
        [("tgi", "kvCache"), ("trtllm", "queue"), ("trtllm", "running"), ("trtllm", "kvCache")]))
    m["autoscaling"]["target"] = 0.5
    m["image"] = "registry.example.com/engine:1.0"  # TGI has no usable default image
    return Bad((label(m, i), f"engine {m['engine']} exposes no", "metric"), models=models)


@st.composite
def bad_defaults(draw: st.DrawFn) -> Bad:
    """`defaults:` that is not a mapping, names a model, or carries a bad field every model inherits."""
    models = draw(valid_models())
    kind = draw(st.integers(0, 2))
    if kind == 0:
        return Bad(("'defaults' must be a mapping",), models={"defaults": draw(st.one_of(st.sampled_from(
            [0, False, "", []]), st.integers(), st.lists(st.integers(), max_size=2), st.text(max_size=5))),
            "models": models})
    if kind == 1:
        return Bad(("field 'defaults.name'",), models={"defaults": {"name": draw(st.sampled_from(NAMES))},
                                                         "models": models})
    for m in models:
        m.pop("gpu")
    return Bad(("model 'llama-8b'", "field 'gpu.type'"),
               models={"defaults": {"gpu": {"type": draw(st.sampled_from(["l40", "L40S", "x"]))}}, "models": models})


BROKEN_YAML = [  # (text, what the message says)
    *[(text, "not valid YAML") for text in [
        "models: [\n", "models:\n  - {name: a\n", "models:\n\t- name: a\n", "models: - a\n", "models: 'a\n",
        "models:\n  - name: a\n   source: b\n", "a: b: c\n", "models: [}\n", "models: *nothing\n",
        "models:\n  - name: !!int abc\n", "models:\n  - sizeGiB: !!float big\n", "models:\n  - name: !custom x\n",
        "models:\n  - name: !!timestamp soon\n", "models:\n  - name: !!python/object:os.system x\n",
        "models:\n  - name: \x07\n", "models: []\n---\nmodels: []\n", "%YAML 9.9\n---\nmodels: []\n"]],
    *[(text, "mapping keys must be plain strings") for text in [
        "models:\n  - ? [a]\n    : b\n", "models:\n  - name: a\n    1: x\n", "models:\n  - name: a\n    true: x\n",
        "models:\n  - name: a\n    ~: x\n", "1.5: x\nmodels: []\n"]],
    ("models:\n  - &m {name: a}\n  - <<: *m\n", "merge keys (<<) are not supported"),
    ("models: &a [*a]\n", "too deeply nested"),
    ("a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{b}: &{b} [{', '.join(['*' + a] * 10)}]\n" for a, b in zip("abcdef", "bcdefg", strict=True)),
     "too deeply nested or too large"),
]


@st.composite
def broken_yaml(draw: st.DrawFn) -> Bad:
    """Text that is not one YAML document of plain data: syntax, tabs, tags, odd keys, merge keys, alias bombs."""
    text, says = draw(st.sampled_from(BROKEN_YAML))
    return Bad((says,), models=text)


@st.composite
def over_capacity(draw: st.DrawFn) -> Bad:
    """Well-formed models the stack cannot serve: too big for the GPU, too many replicas, too little cache."""
    models, i, m = draw(one_model())
    kind = draw(st.integers(0, 2))
    if kind == 0:
        m["sizeGiB"] = draw(st.floats(min_value=MAX_L40S_GIB + 0.1, max_value=4096))
        return Bad((label(m, i), "field 'sizeGiB'", "do not fit"), models=models)
    if kind == 1:
        m.pop("autoscaling", None)
        m["replicas"] = draw(st.integers(11, 1000))  # one GPU per node, maxNodes 10
        return Bad((f"field 'inference:nodePools[{L40S_POOL}].maxNodes'", m["name"]), file=STACK_FILE,
                   models=models)
    need = sum(x["sizeGiB"] for x in models) + max(x["sizeGiB"] for x in models)
    small = cfg(cache={"kind": "pvc", "storageClass": "efs-sc", "sizeGiB": draw(st.integers(1, need - 1))})
    return Bad(("field 'inference:cache'", "weight cache holds"), file=STACK_FILE, models=models, config=small)


# ----------------------------------------------------------------- hostile input (issues 15, 16)

CONTROL = st.sampled_from(["\n", "\r", "\t", "\x1b[2J", "\x1b]0;x\x07", "\x00", "\x7f", "\u202e", "\x08", "\u2028"])


@st.composite
def hostile_nesting(draw: st.DrawFn) -> Bad:
    """Flow or block nesting past the limit, thousands of levels deep, in a model or the stack file."""
    flow = draw(st.booleans())
    depth = draw(st.integers(33, 5000 if flow else 800))  # block nesting grows the file quadratically: under 1 MiB
    nested = "[" * depth + "]" * depth if flow else "\n" + "".join("  " * (i + 2) + "-\n" for i in range(depth))
    if draw(st.booleans()):
        field = draw(st.sampled_from(["engineArgs", "env", "gpu"]))
        text = "\n".join(emit(VALID)) + f"\n    {field}: {nested}\n"
        return Bad(("nested more than 32 levels deep, the limit",), models=text)
    config = _bytes(cfg(), "config").decode() + f"  inference:nodePools: {nested}\n"
    return Bad(("nested more than 32 levels deep, the limit",), file=STACK_FILE, config=config)


@st.composite
def over_a_limit(draw: st.DrawFn) -> Bad:
    """A file, one value, a list, one model's text or the number of models past its limit."""
    kind = draw(st.integers(0, 4))
    models = [dict(VALID[0])]
    if kind == 0:
        padding = b"#" * draw(st.integers(1024 * 1024, 3 * 1024 * 1024)) + b"\n"
        which = draw(st.sampled_from([MODELS_FILE, STACK_FILE]))
        if which == MODELS_FILE:
            return Bad(("is larger than 1024 KiB, the limit",), models=padding + _bytes(models, "models"))
        return Bad(("is larger than 1024 KiB, the limit",), file=STACK_FILE, config=padding + _bytes(cfg(), "config"))
    if kind == 1:
        field = draw(st.sampled_from(["source", "revision", "image", "env.A", "engineArgs"]))
        value = "x" * draw(st.integers(64 * 1024 + 1, 200_000))
        put(models[0], field, [value] if field == "engineArgs" else value)
        return Bad(("over the limit of 65536 for one value", f"field 'models[0].{field}".replace(".engineArgs",
                                                                                                ".engineArgs[0]")),
                   models=models)
    if kind == 2:
        field = draw(st.sampled_from(["engineArgs", "env"]))
        n = draw(st.integers(257, 900))  # beyond 1000 entries the 2000-values limit for one model answers first
        models[0][field] = [f"--x{i}" for i in range(n)] if field == "engineArgs" else {f"A{i}": "1" for i in range(n)}
        return Bad((label(models[0], 0), f"field '{field}'", "at most 256 items"), models=models)
    if kind == 3:
        field = draw(st.sampled_from(["engineArgs", "env"]))
        size = draw(st.integers(5, 40))
        chunk = "y" * 60_000  # written once, repeated by aliases: the file stays small, the model does not
        items = [f'&c "{chunk}"', *["*c"] * (size - 1)]
        value = f"[{', '.join(items)}]" if field == "engineArgs" else \
            "{" + ", ".join(f"A{i}: {item}" for i, item in enumerate(items)) + "}"
        text = "\n".join(emit(models)) + f"\n    {field}: {value}\n"
        return Bad((label(models[0], 0), f"field '{field}'", "256 KiB of text", "the limit"), models=text)
    n = draw(st.integers(1001, 1500))
    line = '  - {"name": "m", "source": "hf://o/r", "sizeGiB": 1, "gpu": {"type": "l40s"}, "replicas": 1}\n'
    return Bad((f"lists {n} models, over the limit of 1000",), models="models:\n" + line * n)


@st.composite
def control_characters(draw: st.DrawFn) -> Bad:
    """Whitespace, terminal escapes and bidi controls inside values that become names, labels, paths or env names."""
    models, i, m = draw(one_model())
    field = draw(st.sampled_from(["name", "source", "revision", "image", "env"]))
    base = {"name": m["name"], "source": m["source"], "revision": m["revision"], "image": "vllm/vllm-openai:v0.31.0",
            "env": "NCCL_DEBUG"}[field]
    at = draw(st.integers(0, len(base)))
    value = base[:at] + draw(CONTROL) + base[at:]
    if field == "env":
        m["env"] = {value: "1"}
        return Bad((label(m, i), "field 'env.", "environment variable name"), models=models)
    m[field] = value
    who = f"model {quote(value)}" if field == "name" else label(m, i)  # messages escape what they echo
    return Bad((who, f"field '{field}'"), models=models)


@st.composite
def collection_tag(draw: st.DrawFn) -> Bad:
    """A tag on a mapping, a sequence or a scalar, anywhere: tags are refused everywhere."""
    tag = draw(st.sampled_from(["!!map", "!!seq", "!!omap", "!!set", "!!python/object:os.system", "!!python/tuple",
                                "!custom", "!", "!!str", "!!binary", "!<tag:yaml.org,2002:map>"]))
    where = draw(st.sampled_from(["models", "model", "gpu", "env", "engineArgs", "stack"]))
    if where == "stack":
        return Bad(("not valid YAML here: tag", "YAML tags"), file=STACK_FILE,
                   config=f"config: {tag} {{inference:target: render}}\n")
    lines = emit(VALID)
    if where == "models":
        text = f"models: {tag} " + json.dumps(VALID) + "\n"
    elif where == "model":
        text = f"models:\n  - {tag} " + json.dumps(VALID[0]) + "\n"
    else:
        value = {"gpu": '{"type": "l40s"}', "env": '{"A": "1"}', "engineArgs": '["--x"]'}[where]
        text = "\n".join(line for line in lines if not line.lstrip(" -").startswith(f"{where}:")) + \
            f"\n    {where}: {tag} {value}\n"
    return Bad(("not valid YAML here: tag", "YAML tags"), models=text)


@st.composite
def bad_image_reference(draw: st.DrawFn) -> Bad:
    """References outside the OCI grammar: spaces, an empty or long tag, upper-case paths, bad digests, ports."""
    repo = draw(st.sampled_from(["vllm/vllm-openai", "ghcr.io/org/engine", "registry.local:5000/team/img", "img"]))
    image = draw(st.one_of(
        st.builds("{}:".format, st.just(repo)),
        st.builds("{}:{}".format, st.just(repo), st.text(string.ascii_letters, min_size=129, max_size=140)),
        st.builds("{}:{}".format, st.just(repo), st.sampled_from(["-v1", ".v1", "v 1", "v1/x", "v1!"])),
        st.builds("{}/{}:v1".format, st.just(repo), st.sampled_from(["Engine", "a..b", "a-", "_a", "a__-b", ""])),
        st.builds("{}@{}".format, st.just(repo), st.sampled_from(["sha256:abc", "md5:" + "0" * 32, "sha256:" + "G" * 64,
                                                                 "sha256", "sha512:" + "0" * 64])),
        st.builds("host:{}/{}:v1".format, st.sampled_from(["x", "80a", ""]), st.just("img")),
        st.builds("{}/{}:v1".format, st.sampled_from(["-bad.io", "bad_.io", "a..io"]), st.just("img")),
    ))
    models, i, m = draw(one_model())
    m["image"] = image
    return Bad((label(m, i), "field 'image'", "is not an OCI image reference"), models=models)


@st.composite
def bad_bucket_or_prefix(draw: st.DrawFn) -> Bad:
    """s3:// sources S3 or IAM would misread: bucket names S3 never permits, glob characters in the prefix."""
    bucket = draw(st.one_of(
        st.builds("{}..{}".format, st.sampled_from(["a", "ab"]), st.sampled_from(["b", "bc"])),
        st.builds("{}.-{}".format, st.sampled_from(["ab", "a"]), st.sampled_from(["b", "cd"])),
        st.builds("{}-.{}".format, st.sampled_from(["ab", "a"]), st.sampled_from(["b", "cd"])),
        st.builds("{}.{}.{}.{}".format, *[st.integers(0, 255)] * 4),
        st.builds("{}{}".format, st.sampled_from(BUCKET_PREFIXES), st.text(string.ascii_lowercase, min_size=3,
                                                                           max_size=8)),
        st.builds("{}{}".format, st.text(string.ascii_lowercase, min_size=3, max_size=8),
                  st.sampled_from(BUCKET_SUFFIXES)),
    ))
    models, i, m = draw(one_model())
    if draw(st.booleans()):
        m["source"] = f"s3://{bucket}/llama/8b"
        return Bad((label(m, i), "field 'source'", "bucket"), models=models)
    glob = draw(st.sampled_from(["*", "?", "llama/*", "ll?ma", "a*/b", "[ab]", "a b", "a\\b", "a{1}"]))
    m["source"] = f"s3://weights-bucket/{glob}"
    return Bad((label(m, i), "field 'source'", "prefix character"), models=models)


@st.composite
def cache_layout_revision(draw: st.DrawFn) -> Bad:
    """Revisions that are another revision's completion marker (or its temporary file)."""
    models, i, m = draw(one_model())
    base = draw(st.sampled_from(["main", "v1.0", "0e9e39f249a16976918f6564b8830bc894c89659"]))
    suffix = draw(st.sampled_from([".complete", ".complete.tmp"]))
    m["revision"] = base + suffix
    return Bad((label(m, i), "field 'revision'", "completion marker"), models=models)


MODELS_CASES: dict[str, tuple[st.SearchStrategy[Bad], int]] = {
    "wrong_type": (wrong_type(), 40),
    "wrong_type_in_list_or_map": (wrong_type_in_list_or_map(), 10),
    "wrong_name_type": (wrong_name_type(), 8),
    "unknown_key": (unknown_key(), 20),
    "unknown_top_level_key": (unknown_top_level_key(), 8),
    "unknown_key_in_defaults": (unknown_key_in_defaults(), 8),
    "duplicate_model_name": (duplicate_model_name(), 10),
    "duplicate_yaml_key": (duplicate_yaml_key(), 20),
    "out_of_range": (out_of_range(), 40),
    "inconsistent_autoscaling": (inconsistent_autoscaling(), 10),
    "bad_source": (bad_source(), 30),
    "empty_or_shapeless": (empty_or_shapeless_models_file(), 24),
    "non_utf8": (non_utf8_models_file(), 15),
    "bad_gpu_type": (bad_gpu_type(), 15),
    "bad_tensor_parallel": (bad_tensor_parallel(), 15),
    "missing_field": (missing_field(), 15),
    "replicas_and_autoscaling": (replicas_and_autoscaling(), 10),
    "bad_name": (bad_name(), 15),
    "bad_string_field": (bad_string_field(), 30),
    "metric_the_engine_lacks": (metric_the_engine_lacks(), 8),
    "bad_defaults": (bad_defaults(), 10),
    "broken_yaml": (broken_yaml(), len(BROKEN_YAML)),
    "over_capacity": (over_capacity(), 15),
    "hostile_nesting": (hostile_nesting(), 12),
    "over_a_limit": (over_a_limit(), 15),
    "control_characters": (control_characters(), 25),
    "collection_tag": (collection_tag(), 20),
    "bad_image_reference": (bad_image_reference(), 25),
    "bad_bucket_or_prefix": (bad_bucket_or_prefix(), 20),
    "cache_layout_revision": (cache_layout_revision(), 8),
}


# ----------------------------------------------------------------- stack configs

POOL = {"name": "l40s", "instanceType": "g6e.2xlarge", "minNodes": 2, "maxNodes": 8}
FSX = {"kind": "fsx-lustre", "storageGiB": 2400, "throughputPerTiB": 500, "subnetId": "subnet-0a1b2c3d4e5f60001"}


def stack_bad(key: str, values: st.SearchStrategy[Any], base: dict[str, Any] | None = None) -> st.SearchStrategy[Bad]:
    """The fuzz (or given) stack with one key set to a drawn bad value; the message names the key (or an item)."""
    return values.map(lambda v: Bad((f"field 'inference:{key}",), file=STACK_FILE, config=cfg(base, **{key: v})))


@st.composite
def bad_node_pool(draw: st.DrawFn) -> Bad:
    pool = dict(POOL)
    field, value = draw(st.sampled_from([
        ("name", st.text(string.ascii_letters + "_. ", min_size=1, max_size=10).filter(
            lambda s: re.fullmatch(r"[a-z]([-a-z0-9]*[a-z0-9])?", s) is None)),
        ("instanceType", st.one_of(st.sampled_from(["m5.large", "g6e.huge", "p5.48XLARGE", "g5", "t3.micro"]),
                                   st.text(max_size=10)).filter(lambda t: t not in INSTANCE_TYPES)),
        ("instanceType", NOT_STR),
        ("minNodes", st.one_of(st.integers(max_value=-1), NOT_INT)),
        ("maxNodes", st.one_of(outside(1, 1000), NOT_INT)),
        ("capacityType", st.text(max_size=10).filter(lambda t: t not in ("ON_DEMAND", "SPOT"))),
        ("amiType", st.sampled_from(["AL2_x86_64_GPU", "al2023_x86_64_nvidia", "BOTTLEROCKET_ARM_64_NVIDIA", ""])),
        ("diskGiB", st.one_of(st.integers(max_value=49), st.integers(min_value=16_385), NOT_INT)),
        ("hourlyPrice", st.one_of(st.floats(max_value=0), st.floats(min_value=1000, exclude_min=True), NOT_NUMBER)),
    ]))
    pool[field] = draw(value)
    pools = [dict(POOL, name="h100", instanceType="p5.48xlarge", minNodes=0, maxNodes=2)]
    at = draw(st.integers(0, 1))
    pools.insert(at, pool)
    return Bad((f"field 'inference:nodePools[{at}].{field}'",), file=STACK_FILE, config=cfg(nodePools=pools))


@st.composite
def node_pools_shape(draw: st.DrawFn) -> Bad:
    """No pools, a pool missing a field or with an unknown key, min above max, repeated pool names."""
    kind = draw(st.integers(0, 4))
    if kind == 0:
        return Bad(("field 'inference:nodePools'",), file=STACK_FILE, config=cfg(
            nodePools=draw(st.one_of(st.just([]), st.integers(), st.dictionaries(KEY, st.integers(), max_size=2),
                                     st.text(string.ascii_letters, min_size=1, max_size=6)))))
    if kind == 1:
        missing = draw(st.sampled_from(["name", "instanceType", "minNodes", "maxNodes"]))
        pool = {k: v for k, v in POOL.items() if k != missing}
        return Bad((f"field 'inference:nodePools[0].{missing}'", "required field is missing"), file=STACK_FILE,
                   config=cfg(nodePools=[pool]))
    if kind == 2:
        key = draw(st.one_of(SNAKE, KEY).filter(lambda k: k not in (*POOL, "capacityType", "amiType", "diskGiB",
                                                                      "hourlyPrice")))
        return Bad((f"field 'inference:nodePools[0].{key}'", f"unknown key '{key}'"), file=STACK_FILE,
                   config=cfg(nodePools=[dict(POOL, **{key: 1})]))
    if kind == 3:
        low = draw(st.integers(2, 1000))
        pool = dict(POOL, minNodes=low, maxNodes=draw(st.integers(1, low - 1)))
        return Bad(("field 'inference:nodePools[0]'", "maxNodes", "minNodes"), file=STACK_FILE,
                   config=cfg(nodePools=[pool]))
    return Bad(("field 'inference:nodePools'", "unique", "l40s"), file=STACK_FILE,
               config=cfg(nodePools=[POOL, dict(POOL, instanceType=draw(st.sampled_from(
                   ["g6e.2xlarge", "p5.48xlarge", "g6e.12xlarge"])))]))


@st.composite
def bad_cluster(draw: st.DrawFn) -> Bad:
    """The prod (eks) stack without a usable cluster: missing, wrong shape or bad IDs."""
    cluster = {"name": "ml-prod", "subnetIds": ["subnet-0a1b2c3d4e5f60001"]}
    field, value = draw(st.sampled_from([
        ("", st.one_of(st.just(None), st.integers(), st.lists(st.integers(), min_size=1, max_size=2))),
        ("name", st.one_of(NOT_STR, st.sampled_from(["", "-prod", "ml prod", "a" * 101, "ml/prod"]))),
        ("subnetIds", st.one_of(st.just([]), st.text(string.ascii_letters, min_size=1, max_size=5))),
        ("subnetIds[0]", st.one_of(st.sampled_from(["subnet-xyz", "sg-0a1b2c3d", "subnet-0A1B2C3D", "subnet-123"]),
                                   st.integers())),
        ("securityGroupIds[0]", st.sampled_from(["sg-12", "subnet-0a1b2c3d4e5f6", "SG-0a1b2c3d"])),
        ("nodeRoleArn", st.sampled_from(["role/x", "arn:aws:iam::12:role/x", "arn:aws:iam::123456789012:user/x"])),
        ("regionName", st.integers()),
    ]))
    v = draw(value)
    if field == "":
        return Bad(("field 'inference:cluster'",), file=STACK_FILE, config=cfg(PROD, cluster=v))
    if field.endswith("[0]"):
        cluster[field[:-3]] = [v]
    else:
        cluster[field] = v
    return Bad((f"field 'inference:cluster.{field}'",), file=STACK_FILE, config=cfg(PROD, cluster=cluster))


@st.composite
def bad_cache(draw: st.DrawFn) -> Bad:
    kind = draw(st.integers(0, 5))
    if kind == 0:
        cache = draw(st.one_of(NOT_MAPPING, st.just({}), st.builds(dict, kind=st.text(max_size=8).filter(
            lambda k: k not in ("fsx-lustre", "efs", "pvc")))))
        return Bad(("field 'inference:cache'",), file=STACK_FILE, config=cfg(cache=cache))
    if kind == 1:
        field, value = draw(st.sampled_from([
            ("storageClass", st.one_of(NOT_STR, st.sampled_from(["", "EFS", "efs_sc", "-x", "a b"]))),
            ("sizeGiB", st.one_of(outside(1, 1_000_000), NOT_INT)),
        ]))
        cache = {"kind": "pvc", "storageClass": "efs-sc", "sizeGiB": 500, field: draw(value)}
        return Bad((f"field 'inference:cache.{field}'",), file=STACK_FILE, config=cfg(cache=cache))
    if kind == 2:
        field, value = draw(st.sampled_from([
            ("storageGiB", st.one_of(st.integers(max_value=2399).filter(lambda n: n != 1200),
                                     st.integers(2401, 100_000).filter(lambda n: n % 2400), NOT_INT)),
            ("throughputPerTiB", st.one_of(st.integers().filter(lambda n: n not in (125, 250, 500, 1000)), NOT_INT)),
            ("subnetId", st.one_of(NOT_STR, st.sampled_from(["subnet-1", "subnet-0A1B2C3D4E", "vpc-0a1b2c3d"]))),
            ("s3ImportPath", st.sampled_from(["s3://", "s3://B/x", "http://bucket/x", "bucket/x", "s3://a/x"])),
        ]))
        cache = dict(FSX, **{field: draw(value)})
        return Bad((f"field 'inference:cache.{field}'",), file=STACK_FILE, config=cfg(PROD, cache=cache))
    if kind == 3:
        missing = draw(st.sampled_from(["storageGiB", "throughputPerTiB", "subnetId"]))
        cache = {k: v for k, v in FSX.items() if k != missing}
        return Bad((f"field 'inference:cache.{missing}'", "required field is missing"), file=STACK_FILE,
                   config=cfg(PROD, cache=cache))
    if kind == 4:
        key = draw(st.one_of(SNAKE, KEY).filter(lambda k: k not in ("kind", "storageClass", "sizeGiB")))
        return Bad((f"field 'inference:cache.{key}'", f"unknown key '{key}'"), file=STACK_FILE,
                   config=cfg(cache={"kind": "pvc", "storageClass": "efs-sc", "sizeGiB": 500, key: 1}))
    return Bad(("field 'inference:cache'", "needs target eks"), file=STACK_FILE,
               config=cfg(cache=draw(st.sampled_from([FSX, {"kind": "efs"}]))))


def not_in(*allowed: str) -> st.SearchStrategy[str]:
    return st.one_of(st.text(max_size=12), st.sampled_from([a.upper() for a in allowed] + [f" {allowed[0]}"])).filter(
        lambda s: s not in allowed)


@st.composite
def unknown_stack_key(draw: st.DrawFn) -> Bad:
    key = draw(st.one_of(SNAKE, KEY, st.sampled_from(["nodepools", "Target", "model_file", "hf_token"])).filter(
        lambda k: k not in STACK_KEYS))
    return Bad((f"unknown config key 'inference:{key}'",), file=STACK_FILE,
               config=cfg(**{key: draw(st.one_of(st.integers(), st.text(max_size=5)))}))


@st.composite
def bad_nested_stack_value(draw: st.DrawFn) -> Bad:
    key, field, value = draw(st.sampled_from([
        ("monitoring", "prometheusUrl", st.one_of(NOT_STR, st.sampled_from(
            ["prometheus:9090", "ftp://x", "http://", "http://a b", ""]))),
        ("monitoring", "podMonitor", st.one_of(st.sampled_from(["yes", "true", "on"]), st.integers())),
        ("monitoring", "scrapeInterval", st.integers()),
        ("addons", "devicePlugin", st.one_of(st.sampled_from(["yes", "true", "false"]), st.integers(0, 1))),
        ("addons", "keda", st.one_of(st.sampled_from(["no", "True"]), st.integers())),
        ("addons", "dcgm_exporter", st.booleans()),
        ("addons", "karpenter", st.booleans()),
    ]))
    v = draw(value)
    return Bad((f"field 'inference:{key}.{field}'",), file=STACK_FILE, config=cfg(**{key: {field: v}}))


@st.composite
def broken_stack_file(draw: st.DrawFn) -> Bad:
    """The stack file itself: not UTF-8, a repeated key, not YAML, not a mapping, empty, missing required keys."""
    kind = draw(st.integers(0, 4))
    text = _bytes(cfg(), "config")
    if kind == 0:
        at = draw(st.integers(0, len(text)))
        line = text[:at].count(b"\n") + 1
        return Bad((f"{STACK_FILE}:{line}: is not UTF-8 text",), file=STACK_FILE,
                   config=text[:at] + draw(st.sampled_from(INVALID_UTF8)) + text[at:])
    if kind == 1:
        key = draw(st.sampled_from(["inference:target", "inference:namespace", "inference:autoscaler"]))
        lines = text.decode().splitlines()
        first = next(n for n, t in enumerate(lines) if t.startswith(f"  {key}:")) + 1
        lines.append(f"  {key}: {draw(st.sampled_from(['render', 'eks', 'inference', 'keda']))}")
        return Bad((f"{STACK_FILE}:{len(lines)}: ", f"field 'config.{key}'",
                    f"duplicate key '{key}' (first set on line {first})"),
                   file=STACK_FILE, config="\n".join(lines) + "\n")
    if kind == 2:
        return Bad(("not valid YAML",), file=STACK_FILE, config=draw(st.sampled_from([
            "config:\n  inference:target: [\n", "config: {\n", "config:\n\tinference:target: render\n",
            "config:\n  inference:target: render\n   inference:namespace: x\n", "config: !!int x\n"])))
    if kind == 3:
        return Bad(("field 'config'", "must be a mapping"), file=STACK_FILE, config=draw(st.sampled_from([
            "config: 5\n", "config: [a, b]\n", "config: render\n", "- config\n", "42\n"])))
    missing = draw(st.sampled_from(["target", "nodePools"]))
    text = draw(st.sampled_from(["", "config:\n", "config: {}\n", None]))
    return Bad((f"field 'inference:{missing}'", "required field is missing"), file=STACK_FILE,
               config=cfg(**{missing: None}) if text is None else text)


@st.composite
def namespace_not_ours(draw: st.DrawFn) -> Bad:
    """A model namespace that Kubernetes or an add-on chart owns."""
    ns = draw(st.sampled_from(["default", "kube-system", "kube-public", "kube-node-lease",
                               *(c.namespace for c in CHARTS.values())]))
    return Bad(("field 'inference:namespace'", f"'{ns}' is"), file=STACK_FILE, config=cfg(namespace=ns))


@st.composite
def lists_that_never_deploy(draw: st.DrawFn) -> Bad:
    """An empty client list (a NetworkPolicy the API server refuses) or a repeated subnet, group or namespace."""
    kind = draw(st.integers(0, 2))
    if kind == 0:
        return Bad(("field 'inference:allowedClientNamespaces'", "empty list"), file=STACK_FILE,
                   config=cfg(allowedClientNamespaces=[]))
    if kind == 1:
        ns = draw(st.sampled_from(["gateway", "inference", "apps"]))
        return Bad(("field 'inference:allowedClientNamespaces'", f"repeated: '{ns}'"), file=STACK_FILE,
                   config=cfg(allowedClientNamespaces=["a", ns, "b", ns]))
    key = draw(st.sampled_from(["subnetIds", "securityGroupIds"]))
    item = "subnet-0a1b2c3d4e5f60001" if key == "subnetIds" else "sg-0a1b2c3d4e5f60001"
    cluster = {"name": "ml-prod", "subnetIds": ["subnet-0a1b2c3d4e5f60002"], key: [item, item]}
    return Bad((f"field 'inference:cluster.{key}'", f"repeated: '{item}'"), file=STACK_FILE,
               config=cfg(PROD, cluster=cluster))


@st.composite
def odd_stack_scalar(draw: st.DrawFn) -> Bad:
    """Stack values YAML reads as dates, or with control characters: errors naming the key, never a traceback."""
    key = draw(st.sampled_from(["target", "namespace", "autoscaler", "kubernetesVersion"]))
    value = draw(st.one_of(st.sampled_from(["2020-01-01", "2001-12-14t21:59:43.10-05:00"]),
                           st.builds("{}{}".format, st.sampled_from(["render", "keda", "x"]), CONTROL)))
    text = _bytes(cfg(**{key: None}), "config").decode() + f"  inference:{key}: {json.dumps(value)}\n"
    if value[0].isdigit():
        text = text.replace(json.dumps(value), value)
    return Bad((f"field 'inference:{key}'",), file=STACK_FILE, config=text)


STACK_CASES: dict[str, tuple[st.SearchStrategy[Bad], int]] = {
    "target": (stack_bad("target", not_in("render", "eks")), 12),
    "namespace": (stack_bad("namespace", st.one_of(st.text(string.ascii_letters + "_-.", min_size=1, max_size=12),
                                                   st.text("abc", min_size=64, max_size=70)).filter(
        lambda s: re.fullmatch(r"[a-z]([-a-z0-9]*[a-z0-9])?", s) is None or len(s) > 63)), 10),
    "autoscaler": (stack_bad("autoscaler", not_in("keda", "hpa")), 8),
    "kubernetes_version": (stack_bad("kubernetesVersion", st.one_of(
        st.sampled_from(["1.3", "1.320", "v1.32", "2.32", "1", "1.32.0", "latest", "", "1.32\n", "1.\u0663\u0662"]),
        st.text(max_size=6)).filter(lambda v: re.fullmatch(r"1\.[0-9]{2}", v) is None)), 12),
    "allowed_client_namespaces": (stack_bad("allowedClientNamespaces", st.one_of(
        st.lists(st.sampled_from(["Gateway", "a_b", "-x", "x-", ""]), min_size=1, max_size=2).map(
            lambda v: ["inference", *v]),
        st.integers(), st.dictionaries(KEY, st.integers(), min_size=1, max_size=1))), 10),
    "models_file": (stack_bad("modelsFile", st.sampled_from(["", "a\x00b"])), 2),
    "unknown_stack_key": (unknown_stack_key(), 12),
    "structured_key_wrong_type": (st.sampled_from(["cluster", "nodePools", "cache", "monitoring", "addons"]).flatmap(
        lambda key: stack_bad(key, st.one_of(st.integers(), st.booleans(), st.text(string.ascii_letters, min_size=1,
                                                                                     max_size=6)),
                              base=PROD if key == "cluster" else None)), 15),
    "bad_node_pool": (bad_node_pool(), 30),
    "node_pools_shape": (node_pools_shape(), 20),
    "bad_cluster": (bad_cluster(), 20),
    "bad_cache": (bad_cache(), 30),
    "bad_nested_stack_value": (bad_nested_stack_value(), 14),
    "broken_stack_file": (broken_stack_file(), 20),
    "namespace_not_ours": (namespace_not_ours(), 7),
    "lists_that_never_deploy": (lists_that_never_deploy(), 6),
    "odd_stack_scalar": (odd_stack_scalar(), 12),
}

FUZZ = settings(deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])


def fuzz(project: Project, name: str, strategy: st.SearchStrategy[Bad], examples: int) -> None:
    seen: list[Bad] = []

    @settings(FUZZ, max_examples=examples)
    @given(strategy)
    def one(bad: Bad) -> None:
        seen.append(bad)
        check(project, bad)

    one()
    EXAMPLES[name] = len(seen)
    # Hypothesis stops early only when a strategy's space runs out; a big shortfall means broken generators.
    assert len(seen) >= examples * 0.8, f"{name}: only {len(seen)} of {examples} examples generated"


@pytest.mark.parametrize("name", sorted(MODELS_CASES))
def test_broken_models_file_is_rejected(project, name):
    strategy, examples = MODELS_CASES[name]
    fuzz(project, name, strategy, examples)


@pytest.mark.parametrize("name", sorted(STACK_CASES))
def test_broken_stack_config_is_rejected(project, name):
    strategy, examples = STACK_CASES[name]
    fuzz(project, name, strategy, examples)


def test_generators_start_from_valid_input(project):
    """The mutations are the only thing wrong: the models they start from deploy on BASE."""

    @settings(FUZZ, max_examples=8)
    @given(valid_models())
    def one(models: list[dict[str, Any]]) -> None:
        run = project.run(STACK, config=cfg(), models=models)
        deployments = {r.inputs["metadata"]["name"] for r in run.k8s_objects() if r.inputs.get("kind") == "Deployment"}
        assert deployments == {m["name"] for m in models}

    one()


# Categories whose examples are wrong whatever the dev stack's pools and cache: the CLI renders Pulumi.dev.yaml.
@pytest.mark.parametrize("name", ["wrong_type", "bad_source", "duplicate_yaml_key", "non_utf8", "missing_field",
                                  "broken_yaml", "empty_or_shapeless"])
def test_render_cli_exits_2_and_writes_nothing(tmp_path, capsys, name):
    """The offline render on a broken --models file: exit 2, the message on stderr, no output directory."""
    strategy, _ = MODELS_CASES[name]
    models_path = tmp_path / "broken.yaml"
    out = tmp_path / "build"

    @settings(FUZZ, max_examples=4)
    @given(strategy)
    def one(bad: Bad) -> None:
        assert bad.config is None and bad.file == MODELS_FILE
        models_path.write_bytes(_bytes(bad.models, "models"))
        capsys.readouterr()
        assert render.main(["--stack", "dev", "--models", str(models_path), "--out", str(out)]) == 2
        captured = capsys.readouterr()
        assert captured.out == ""
        message = captured.err.removeprefix("error: ")
        file = str(models_path.resolve())  # the CLI names the models file by the absolute path it was given
        needles = tuple(n.replace(f"{MODELS_FILE}:", f"{file}:") for n in bad.needles)
        assert_names(message.rstrip("\n"), Bad(needles, file=file))
        assert not out.exists()

    one()
