"""Typed, validated settings from the stack config and models.yaml; every error names file, line, model and field."""

from __future__ import annotations

import json
import re
from pathlib import Path
from types import UnionType
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator
from pydantic.alias_generators import to_camel

from .catalog import GPU_TYPES, INSTANCE_TYPES
from .engines import ENGINES, PLATFORM_ENV
from .errors import InputError, Problem
from .yaml_loader import Located, load_file

DNS_LABEL = r"^[a-z]([-a-z0-9]*[a-z0-9])?$"
HF_SOURCE = r"^hf://[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*$"
S3_SOURCE = r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]/[^\s]+$"
REVISION = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"
ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"
TP_SIZES = (1, 2, 4, 8)  # GPUs of a replica within one node; above this a replica spans whole nodes
MAX_GPUS = 1024

GpuType = Literal["a10g", "l4", "l40s", "a100-40gb", "a100-80gb", "h100", "h200"]
EngineName = Literal["vllm", "sglang", "tgi", "trtllm"]
assert get_args(GpuType) == GPU_TYPES and set(get_args(EngineName)) == set(ENGINES)


class Strict(BaseModel):
    """camelCase keys, unknown keys rejected, no silent type coercion, immutable."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, alias_generator=to_camel,
                              populate_by_name=True)


# ---------------------------------------------------------------- models.yaml

class GpuSpec(Strict):
    type: GpuType
    count: int = 1

    @field_validator("count")
    @classmethod
    def _tp(cls, v: int) -> int:
        # A larger count is a multi-node replica: the planner checks it is a multiple of the pool's GPUs per node.
        if v not in TP_SIZES and not max(TP_SIZES) < v <= MAX_GPUS:
            raise ValueError(f"GPUs per replica must be one of {', '.join(map(str, TP_SIZES))} (one node), or a "
                             f"multiple of a node's GPUs up to {MAX_GPUS} (a replica over several nodes), got {v}")
        return v


class Autoscaling(Strict):
    min_replicas: Annotated[int, Field(ge=1, le=1000)]
    max_replicas: Annotated[int, Field(ge=1, le=1000)]
    metric: Literal["queue", "running", "kvCache"]
    # A floor keeps the HPA's milli-unit quantity from rounding a tiny target down to zero.
    target: Annotated[float, Field(ge=0.001, allow_inf_nan=False)]

    @model_validator(mode="after")
    def _check(self) -> Autoscaling:
        if self.max_replicas < self.min_replicas:
            raise ValueError(f"maxReplicas ({self.max_replicas}) must be at least minReplicas ({self.min_replicas})")
        if self.metric == "kvCache" and self.target > 1:
            raise ValueError(f"target for metric kvCache is a fraction of the KV cache, between 0 and 1; "
                             f"got {self.target}")
        return self


class ArchitectureSpec(Strict):
    """KV-cache facts of a model the catalog does not know: standard attention (kvHeads, headDim) or multi-head
    latent attention (kvLoraRank, qkRopeHeadDim), as in its config.json."""

    layers: Annotated[int, Field(ge=1, le=1000)]
    kv_heads: Annotated[int, Field(ge=1, le=1024)] | None = None
    head_dim: Annotated[int, Field(ge=1, le=4096)] | None = None
    kv_lora_rank: Annotated[int, Field(ge=1, le=65536)] | None = None
    qk_rope_head_dim: Annotated[int, Field(ge=0, le=4096)] | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> ArchitectureSpec:
        standard = self.kv_heads is not None and self.head_dim is not None
        mla = self.kv_lora_rank is not None and self.qk_rope_head_dim is not None
        partial = any(v is not None for v in (self.kv_heads, self.head_dim, self.kv_lora_rank, self.qk_rope_head_dim))
        if standard == mla or (partial and not (standard or mla)):
            raise ValueError("set either kvHeads and headDim (standard attention) or kvLoraRank and qkRopeHeadDim "
                             "(multi-head latent attention), as in the model's config.json")
        return self


class ModelSpec(Strict):
    name: Annotated[str, Field(pattern=DNS_LABEL, max_length=40)]
    source: Annotated[str, Field(max_length=512)]
    revision: Annotated[str, Field(pattern=REVISION)] = "main"
    size_gib: Annotated[float, Field(gt=0, le=4096, allow_inf_nan=False, alias="sizeGiB")]
    engine: EngineName = "vllm"
    image: str | None = None
    gpu: GpuSpec
    replicas: Annotated[int, Field(ge=1, le=1000)] | None = None
    autoscaling: Autoscaling | None = None
    context_window: Annotated[int, Field(ge=128, le=10_000_000)] | None = None
    batch_size: Annotated[int, Field(ge=1, le=65_536)] | None = None
    architecture: ArchitectureSpec | None = None
    kv_cache_dtype: Literal["auto", "fp8"] = "auto"
    rollout: Literal["surge", "replace"] = "surge"
    engine_args: list[str] = []
    env: dict[str, str] = {}

    @field_validator("source")
    @classmethod
    def _source(cls, v: str) -> str:
        if not (re.match(HF_SOURCE, v) or re.match(S3_SOURCE, v)):
            raise ValueError(f"'{v}' is not a model source; allowed: hf://ORG/REPO or s3://BUCKET/PREFIX")
        return v

    @field_validator("image")
    @classmethod
    def _image(cls, v: str | None) -> str | None:
        if v is None:
            return v
        last = v.rsplit("/", 1)[-1]
        if re.search(r"\s", v) or not ("@sha256:" in last or ":" in last):
            raise ValueError(f"image '{v}' must be pinned: REPOSITORY:TAG or REPOSITORY@sha256:DIGEST")
        if last.split("@")[0].endswith(":latest"):
            raise ValueError(f"image '{v}' uses the moving tag 'latest'; pin a version tag or digest")
        return v

    @field_validator("env")
    @classmethod
    def _env(cls, v: dict[str, str]) -> dict[str, str]:
        for key in v:
            if not re.match(ENV_NAME, key):
                raise ValueError(f"'{key}' is not an environment variable name (letters, digits, _; not a digit first)")
            if key in PLATFORM_ENV:
                raise ValueError(f"'{key}' is set by the platform and cannot be overridden; reserved: "
                                 + ", ".join(PLATFORM_ENV))
        return v

    @model_validator(mode="after")
    def _check(self) -> ModelSpec:
        if (self.replicas is None) == (self.autoscaling is None):
            raise ValueError("set exactly one of 'replicas' (a fixed count) or 'autoscaling'")
        engine = ENGINES[self.engine]
        for arg in self.engine_args:
            flag = arg.split("=", 1)[0]
            if flag in engine.managed_flags:
                raise ValueError(f"engineArgs may not set '{flag}': it comes from the model's fields "
                                 "(gpu.count, contextWindow, batchSize, name); managed flags: "
                                 + ", ".join(engine.managed_flags))
        if self.kv_cache_dtype == "fp8" and not engine.kv_cache_fp8:
            raise ValueError(f"kvCacheDtype fp8: engine {self.engine} takes its KV-cache dtype from a config file, "
                             "not a flag this program sets; allowed with kvCacheDtype fp8: "
                             + ", ".join(n for n, e in ENGINES.items() if e.kv_cache_fp8))
        if self.autoscaling and self.autoscaling.metric not in engine.metrics:
            offered = ", ".join(engine.metrics) or "none (use a fixed 'replicas')"
            raise ValueError(f"engine {self.engine} exposes no '{self.autoscaling.metric}' metric; "
                             f"metrics it offers: {offered}")
        return self

    @property
    def min_replicas(self) -> int:
        return self.autoscaling.min_replicas if self.autoscaling else self.replicas  # type: ignore[return-value]

    @property
    def max_replicas(self) -> int:
        return self.autoscaling.max_replicas if self.autoscaling else self.replicas  # type: ignore[return-value]


# ---------------------------------------------------------------- stack config

class ClusterCfg(Strict):
    name: Annotated[str, Field(pattern=r"^[0-9A-Za-z][A-Za-z0-9_-]{0,99}$")]
    subnet_ids: Annotated[list[Annotated[str, Field(pattern=r"^subnet-[0-9a-f]{8,17}$")]], Field(min_length=1)]
    security_group_ids: list[Annotated[str, Field(pattern=r"^sg-[0-9a-f]{8,17}$")]] = []
    node_role_arn: Annotated[str, Field(pattern=r"^arn:aws[a-z-]*:iam::[0-9]{12}:role/.+$")] | None = None


class NodePoolCfg(Strict):
    name: Annotated[str, Field(pattern=DNS_LABEL, max_length=40)]
    instance_type: str
    min_nodes: Annotated[int, Field(ge=0, le=1000)]
    max_nodes: Annotated[int, Field(ge=1, le=1000)]
    capacity_type: Literal["ON_DEMAND", "SPOT"] = "ON_DEMAND"
    ami_type: Literal["AL2023_x86_64_NVIDIA", "BOTTLEROCKET_x86_64_NVIDIA"] = "AL2023_x86_64_NVIDIA"
    # Serving images are 12-29 GB compressed and unpack to about twice that; keep room for two engines.
    disk_gib: Annotated[int, Field(ge=50, le=16_384, alias="diskGiB")] = 200
    hourly_price: Annotated[float, Field(gt=0, le=1000)] | None = None  # USD; overrides the catalog's price
    # Elastic Fabric Adapter for multi-node replicas on instance types that have it; false turns it off.
    efa: bool = True

    @field_validator("instance_type")
    @classmethod
    def _known(cls, v: str) -> str:
        if v not in INSTANCE_TYPES:
            raise ValueError(f"'{v}' is not a GPU instance type in the catalog; allowed: {', '.join(INSTANCE_TYPES)}")
        return v

    @model_validator(mode="after")
    def _range(self) -> NodePoolCfg:
        if self.max_nodes < self.min_nodes:
            raise ValueError(f"maxNodes ({self.max_nodes}) must be at least minNodes ({self.min_nodes})")
        return self


class FsxCache(Strict):
    kind: Literal["fsx-lustre"]
    storage_gib: Annotated[int, Field(alias="storageGiB")]
    throughput_per_tib: Literal[125, 250, 500, 1000] = Field(alias="throughputPerTiB")
    subnet_id: Annotated[str, Field(pattern=r"^subnet-[0-9a-f]{8,17}$")]
    s3_import_path: Annotated[str, Field(pattern=r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/.*)?$")] | None = None

    @field_validator("storage_gib")
    @classmethod
    def _steps(cls, v: int) -> int:
        if v not in (1200, 2400) and (v < 2400 or v % 2400):
            raise ValueError(f"FSx for Lustre PERSISTENT_2 capacity is 1200, 2400 or a multiple of 2400 GiB; got {v}")
        return v


class EfsCache(Strict):
    kind: Literal["efs"]


class PvcCache(Strict):
    kind: Literal["pvc"]
    storage_class: Annotated[str, Field(pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$", max_length=253)]
    size_gib: Annotated[int, Field(ge=1, le=1_000_000, alias="sizeGiB")]


CacheCfg = Annotated[FsxCache | EfsCache | PvcCache, Field(discriminator="kind")]
CACHE_KINDS = ("fsx-lustre", "efs", "pvc")


class MonitoringCfg(Strict):
    prometheus_url: Annotated[str, Field(pattern=r"^https?://[^\s/]+(:\d+)?(/[^\s]*)?$")] = (
        "http://prometheus-operated.monitoring.svc:9090")
    pod_monitor: bool = True


class AddonsCfg(Strict):
    device_plugin: bool = True
    keda: bool = False
    dcgm_exporter: bool = False
    leader_worker_set: bool = False  # the LeaderWorkerSet controller that models over several nodes run under


class StackCfg(Strict):
    target: Literal["render", "eks"]
    models_file: Annotated[str, Field(pattern=r"^[^\x00]+$")] = "models.yaml"  # a path: not empty, no NUL
    namespace: Annotated[str, Field(pattern=DNS_LABEL, max_length=63)] = "inference"
    cluster: Annotated[ClusterCfg | None, Field(validate_default=True)] = None
    node_pools: Annotated[list[NodePoolCfg], Field(min_length=1)]
    cache: CacheCfg = PvcCache(kind="pvc", storage_class="standard", size_gib=1000)
    autoscaler: Literal["keda", "hpa"] = "keda"
    monitoring: MonitoringCfg = MonitoringCfg()
    addons: AddonsCfg = AddonsCfg()
    kubernetes_version: Annotated[str, Field(pattern=r"^1\.[0-9]{2}$")] = "1.32"  # [0-9]: \d matches any script
    allowed_client_namespaces: list[Annotated[str, Field(pattern=DNS_LABEL, max_length=63)]] | None = None
    hf_token: bool = False  # whether the secret is set; its value stays an Output in __main__.py

    # Field validators rather than one model validator, so each error names its key (fields validate in order).
    @field_validator("cluster")
    @classmethod
    def _cluster(cls, v: ClusterCfg | None, info: ValidationInfo) -> ClusterCfg | None:
        if v is None and info.data.get("target") == "eks":
            raise ValueError("target eks needs 'cluster' ({name, subnetIds})")
        return v

    @field_validator("node_pools")
    @classmethod
    def _unique(cls, v: list[NodePoolCfg]) -> list[NodePoolCfg]:
        names = [p.name for p in v]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"node pool names must be unique; repeated: {', '.join(dup)}")
        return v

    @field_validator("cache")
    @classmethod
    def _cache_target(cls, v: FsxCache | EfsCache | PvcCache, info: ValidationInfo) -> FsxCache | EfsCache | PvcCache:
        if info.data.get("target") == "render" and v.kind != "pvc":
            raise ValueError(f"cache kind '{v.kind}' creates AWS resources and needs target eks; "
                             "the render target allows cache kind 'pvc'")
        return v

    @property
    def client_namespaces(self) -> list[str]:
        return self.allowed_client_namespaces if self.allowed_client_namespaces is not None else [self.namespace]


# Stack config keys read from Pulumi config, and whether each holds structured (JSON) data.
STACK_KEYS: dict[str, bool] = {
    "target": False, "modelsFile": False, "namespace": False, "cluster": True, "nodePools": True, "cache": True,
    "autoscaler": False, "monitoring": True, "addons": True, "kubernetesVersion": False,
    "allowedClientNamespaces": True, "hfToken": False,
}
SECRET_KEYS = ("hfToken",)


# ---------------------------------------------------------------- loading


class Settings(BaseModel):
    """Everything the planner needs: the stack config, the models, and where each came from."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    stack_name: str
    stack: StackCfg
    models: tuple[ModelSpec, ...]
    models_src: Located
    stack_file: str
    stack_src: Located | None

    def locate(self, path: tuple[Any, ...]) -> tuple[str, int | None]:
        """File and line of a field: ("models", index, "gpu", "count") in the models file, anything else a stack key
        (("nodePools", 1, "maxNodes") is `inference:nodePools[1].maxNodes`)."""
        if path[:1] == ("models",) and len(path) >= 2:
            return self.models_src.file, model_line(self.models_src, path[1], tuple(path[2:]))
        return self.stack_file, _stack_lines(self.stack_src, path)

    def model_problem(self, index: int, field: str, message: str) -> Problem:
        """A problem with a model's field (dotted, as in models.yaml), at that field's line."""
        file, line = self.locate(("models", index, *field.split(".")))
        return Problem(file, message, line, self.models[index].name, field)

    def stack_problem(self, path: tuple[Any, ...], message: str) -> Problem:
        """A problem with a stack key (path below `inference:`), at its line in the stack file."""
        file, line = self.locate(path)
        field = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".")
        return Problem(file, message, line, None, f"inference:{field}")


def model_line(src: Located, index: int, path: tuple[Any, ...]) -> int | None:
    """Line of a model's field, falling back to the same field under `defaults:` and then to the model's entry."""
    if path and not src.has(("models", index, *path)) and src.has(("defaults", *path)):
        return src.line(("defaults", *path))
    return src.line(("models", index, *path))


def _members(tp: Any) -> list[Any]:
    """The alternatives of an annotation, with Annotated and None stripped."""
    while get_origin(tp) is Annotated:
        tp = get_args(tp)[0]
    if get_origin(tp) in (Union, UnionType):
        return [m for a in get_args(tp) if a is not type(None) for m in _members(a)]
    return [tp]


def _is_model(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, BaseModel)


def _step(tp: Any, part: Any) -> Any:
    """The annotation reached from `tp` by one error-location step (a key, a list index or a union tag)."""
    members = _members(tp)
    if isinstance(part, int):
        lists = [m for m in members if get_origin(m) is list]
        return get_args(lists[0])[0] if lists else None
    models = [m for m in members if _is_model(m)]
    tagged = [m for m in models if "kind" in m.model_fields and get_args(m.model_fields["kind"].annotation) == (part,)]
    if tagged:
        return tagged[0]
    for model in models:
        for name, info in model.model_fields.items():
            if (info.alias or name) == part:
                return info.annotation
    return None


def _allowed_keys(cls: Any, loc: tuple[Any, ...]) -> list[str] | None:
    """The keys allowed where an unknown key was found, by walking the model classes along its location."""
    tp = cls
    for part in loc[:-1]:
        tp = _step(tp, part)
        if tp is None:
            return None
    models = [m for m in _members(tp) if _is_model(m)]
    return _aliases(models[0]) if len(models) == 1 else None


def _aliases(cls: type[BaseModel]) -> list[str]:
    return [f.alias or n for n, f in cls.model_fields.items() if n != "hf_token"]


def _problems(exc: ValidationError, cls: type[BaseModel], file: str, line_of, model: str | None,
              prefix: tuple[Any, ...] = ()) -> list[Problem]:
    out = []
    for err in exc.errors(include_url=False):
        full = err["loc"]
        loc = tuple(p for p in full if p not in CACHE_KINDS)
        field = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in (*prefix, *loc)).lstrip(".")
        field = field.replace(":.", ":")
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            allowed = _allowed_keys(cls, full)
            msg = f"unknown key '{loc[-1]}'" + (f"; allowed keys: {', '.join(allowed)}" if allowed else "")
        elif err["type"] == "missing":
            msg = "required field is missing"
        elif err["type"] in ("int_type", "float_type", "string_type", "bool_type", "list_type", "dict_type",
                             "model_type"):
            msg = f"{msg}, got {type(err['input']).__name__} {err['input']!r}"[:300]
        out.append(Problem(file, msg, line_of(loc), model, field or None))
    return out


def _stack_lines(stack_src: Located | None, loc: tuple[Any, ...]) -> int | None:
    if stack_src is None or not loc:
        return stack_src.line(("config",)) if stack_src else None
    return stack_src.line(("config", f"inference:{loc[0]}", *loc[1:]))


def load_stack(raw: dict[str, Any], stack_file: str, stack_src: Located | None) -> StackCfg:
    """Validate the `inference:` stack config (values already JSON-decoded)."""
    problems = []
    if stack_src is not None and stack_src.data is not None and not (
            isinstance(stack_src.data, dict) and isinstance(stack_src.data.get("config") or {}, dict)):
        raise InputError([Problem(stack_file, "must be a mapping whose 'config:' is a mapping of keys to values",
                                  stack_src.line(("config",)), field="config")])
    if stack_src is not None and isinstance(stack_src.data, dict) and isinstance(stack_src.data.get("config"), dict):
        for key in stack_src.data["config"]:
            ns, _, name = str(key).partition(":")
            if ns == "inference" and name not in STACK_KEYS:
                problems.append(Problem(stack_file, f"unknown config key '{key}'; allowed: "
                                        + ", ".join(f"inference:{k}" for k in STACK_KEYS),
                                        stack_src.line(("config", key))))
    if problems:
        raise InputError(problems)
    try:
        # by_name=False: only the documented camelCase keys, never the Python field names.
        return StackCfg.model_validate(raw, by_name=False)
    except ValidationError as exc:
        raise InputError(_problems(exc, StackCfg, stack_file, lambda loc: _stack_lines(stack_src, loc), None,
                                   ("inference:",))) from None


def _merge(base: dict[str, Any], own: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in own.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def load_models(src: Located) -> tuple[ModelSpec, ...]:
    """Validate models.yaml: top-level shape, `defaults:` merging, each model, unique names."""
    file = src.file
    data = src.data
    if data is None:
        raise InputError([Problem(file, "is empty; it needs a 'models:' list")])
    if not isinstance(data, dict):
        raise InputError([Problem(file, "must be a mapping with 'models:' (and optional 'defaults:')", 1)])
    unknown = [k for k in data if k not in ("defaults", "models")]
    if unknown:
        raise InputError([Problem(file, f"unknown key '{k}'; allowed keys: defaults, models", src.line((k,)))
                          for k in unknown])
    defaults = {} if data.get("defaults") is None else data["defaults"]  # `defaults:` alone is empty; 0 or [] is not
    models = data.get("models")
    if not isinstance(defaults, dict):
        raise InputError([Problem(file, "'defaults' must be a mapping of model fields", src.line(("defaults",)))])
    if "name" in defaults:
        raise InputError([Problem(file, "'defaults' may not set 'name': every model names itself",
                                  src.line(("defaults", "name")), field="defaults.name")])
    if not isinstance(models, list) or not models:
        raise InputError([Problem(file, "'models' must be a non-empty list of models", src.line(("models",)))])

    problems: list[Problem] = []
    specs: list[ModelSpec] = []
    for i, entry in enumerate(models):
        if not isinstance(entry, dict):
            problems.append(Problem(file, "each model must be a mapping with name, source, sizeGiB, gpu, ...",
                                    src.line(("models", i)), field=f"models[{i}]"))
            continue
        base = dict(defaults)
        if "replicas" in entry or "autoscaling" in entry:  # a model's own sizing replaces the default's
            base.pop("replicas", None)
            base.pop("autoscaling", None)
        merged = _merge(base, entry)
        name = entry.get("name") if isinstance(entry.get("name"), str) else f"models[{i}]"

        try:
            specs.append(ModelSpec.model_validate(merged, by_name=False))
        except ValidationError as exc:
            problems.extend(_problems(exc, ModelSpec, file, lambda loc, i=i: model_line(src, i, loc), name))
    first: dict[str, int] = {}
    for i, entry in enumerate(models):
        name = entry.get("name") if isinstance(entry, dict) else None
        if not isinstance(name, str):
            continue
        line = src.line(("models", i, "name"))
        if name in first:
            problems.append(Problem(file, f"duplicate model name (first on line {first[name]}); names must be unique",
                                    line, name, "name"))
        else:
            first[name] = line or 0
    if problems:
        raise InputError(problems)
    return tuple(specs)


def decode_config(values: dict[str, str | None], stack_file: str, stack_src: Located | None) -> dict[str, Any]:
    """Turn Pulumi config strings into Python values: JSON for structured keys, strings for the rest."""
    raw: dict[str, Any] = {}
    for key, structured in STACK_KEYS.items():
        value = values.get(key)
        if value is None:
            continue
        if structured:
            try:
                raw[key] = json.loads(value)
            except json.JSONDecodeError:
                raise InputError([Problem(stack_file, "must be a YAML mapping or list, not a plain string",
                                          _stack_lines(stack_src, (key,)), field=f"inference:{key}")]) from None
        else:
            raw[key] = value
    if "hfToken" in raw:
        raw["hfToken"] = True
    return raw


def load_settings(values: dict[str, str | None], stack: str, root: Path) -> Settings:
    """Validate the stack config and the models file it names. Raises InputError listing every problem."""
    stack_file = f"Pulumi.{stack}.yaml"
    stack_path = root / stack_file
    stack_src = load_file(stack_path, stack_file) if stack_path.exists() else None
    cfg = load_stack(decode_config(values, stack_file, stack_src), stack_file, stack_src)
    models_path = Path(cfg.models_file) if Path(cfg.models_file).is_absolute() else root / cfg.models_file
    if not models_path.is_file():
        raise InputError([Problem(stack_file, f"models file '{cfg.models_file}' not found (a path relative to the "
                                  "project directory)", _stack_lines(stack_src, ("modelsFile",)),
                                  field="inference:modelsFile")])
    models_src = load_file(models_path, cfg.models_file)
    return Settings(stack_name=stack, stack=cfg, models=load_models(models_src), models_src=models_src,
                    stack_file=stack_file, stack_src=stack_src)
