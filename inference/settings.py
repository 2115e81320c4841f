"""Typed, validated settings from the stack config and models.yaml; every error names file, line, model and field."""

from __future__ import annotations

import difflib
import json
import re
from pathlib import Path
from types import UnionType
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from . import grammar
from .catalog import GPU_TYPES, INSTANCE_TYPES
from .charts import CHARTS
from .engines import ENGINES, PLATFORM_ENV, managed_flag
from .errors import FieldError, InputError, Problem, quote
from .yaml_loader import Located, load_file

REVISION = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"
SUBNET_ID = r"^subnet-[0-9a-f]{8,17}$"
# A duration: seconds, minutes or hours ("300s", "5m", "1h").
DURATION = r"^[1-9][0-9]{0,4}[smh]$"
DURATION_SECONDS = {"s": 1, "m": 60, "h": 3600}
TP_SIZES = (1, 2, 4, 8)  # GPUs of a replica within one node; above this a replica spans whole nodes
MAX_GPUS = 1024
# The weight cache keeps <rev>/ beside <rev>.complete (and its <rev>.complete.tmp) and .<rev>.partial: a revision
# may not start with '.' (REVISION) nor end like a marker, so no revision's directory is another one's marker.
MARKER_SUFFIXES = (".complete", ".complete.tmp")
# Namespaces the model namespace may not be: Kubernetes' own (the program would relabel them restricted and deny
# their traffic) and those the add-on charts install into (two programs would own one Namespace).
SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")

# Limits on what one models file may ask for, far above real use (the benchmark's largest file has 500 models).
MAX_MODELS = 1000
MAX_LIST_ITEMS = 256  # engineArgs, env entries, pools, subnets, client namespaces
# A model's strings all land in its Deployment; etcd stores at most 1.5 MiB per request by default (etcd docs,
# "System limits": --max-request-bytes), so one model's input stays far below, leaving room for the rest.
MAX_MODEL_INPUT_BYTES = 256 * 1024
MAX_MODEL_VALUES = 2000  # values in one model after `defaults:` merging; a real model has about 30

# Patterns in plain words, for the errors that quote them.
PATTERN_WORDS = {
    REVISION: "a revision (commit, tag or branch) is 1 to 128 letters, digits, '.', '_' and '-', starting with a "
              "letter or digit",
    SUBNET_ID: "a subnet ID is 'subnet-' and 8 to 17 lower-case hex digits",
    r"^sg-[0-9a-f]{8,17}$": "a security group ID is 'sg-' and 8 to 17 lower-case hex digits",
    r"^[0-9A-Za-z][A-Za-z0-9_-]{0,99}$": "an EKS cluster name is 1 to 100 letters, digits, '-' and '_', starting with "
                                         "a letter or digit",
    r"^arn:aws[a-z-]*:iam::[0-9]{12}:role/.+$": "an IAM role ARN is arn:aws:iam::ACCOUNT:role/NAME (12-digit account)",
    r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$": "a storage class name is lower-case letters, digits, '-' and '.', starting "
                                         "and ending with a letter or digit",
    r"^https?://[^\s/]+(:\d+)?(/[^\s]*)?$": "a Prometheus URL is http://HOST[:PORT][/PATH] or https://...",
    r"^1\.[0-9]{2}$": "a Kubernetes minor version is like \"1.32\"",
    DURATION: "a duration is a whole number of seconds, minutes or hours: \"90s\", \"5m\", \"1h\"",
    r"^[^\x00]+$": "a file path: not empty, no NUL character",
    r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/.*)?$": "an import path is s3://BUCKET or s3://BUCKET/PREFIX",
}


def _dns(max_len: int) -> AfterValidator:
    def check(v: str) -> str:
        problem = grammar.dns_label(v, max_len)
        if problem:
            raise ValueError(f"{quote(v)} {problem}")
        return v
    return AfterValidator(check)


def _env_key(v: str) -> str:
    problem = grammar.env_name(v)
    if problem:
        raise ValueError(f"{quote(v)} is not an environment variable name: {problem}")
    if v in PLATFORM_ENV:
        raise ValueError(f"{quote(v)} is set by the platform and cannot be overridden; reserved: "
                         + ", ".join(PLATFORM_ENV))
    return v


def _engine_arg(v: str, info: ValidationInfo) -> str:
    engine = ENGINES.get(info.data.get("engine", ""))
    flag = None if engine is None else managed_flag(engine, v)
    if engine is not None and flag is not None:
        raise ValueError(f"engineArgs may not set {quote(v.split('=', 1)[0])}: {engine.name} reads it as "
                         f"{quote(flag)}, which comes from the model's fields (gpu.count, contextWindow, batchSize, "
                         "kvCacheDtype, name); managed flags, in any spelling: " + ", ".join(engine.managed_flags))
    return v


def _unique(v: list[str]) -> list[str]:
    dup = sorted({x for x in v if v.count(x) > 1})
    if dup:
        raise ValueError(f"each entry may appear once; repeated: {', '.join(map(quote, dup))}")
    return v


Unique = AfterValidator(_unique)

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
    name: Annotated[str, _dns(40)]
    source: Annotated[str, Field(max_length=512)]
    revision: Annotated[str, Field(pattern=REVISION)] = "main"
    size_gib: Annotated[float, Field(gt=0, le=4096, allow_inf_nan=False, alias="sizeGiB")]
    engine: EngineName = "vllm"
    image: Annotated[str | None, Field(validate_default=True)] = None
    gpu: GpuSpec
    replicas: Annotated[int, Field(ge=1, le=1000)] | None = None
    autoscaling: Autoscaling | None = None
    context_window: Annotated[int, Field(ge=128, le=10_000_000)] | None = None
    batch_size: Annotated[int, Field(ge=1, le=65_536)] | None = None
    architecture: ArchitectureSpec | None = None
    kv_cache_dtype: Literal["auto", "fp8"] = "auto"
    rollout: Literal["surge", "replace"] = "surge"
    loader: Literal["default", "runai-streamer"] = "default"
    # Validated item by item (engineArgs[i], env.NAME), so each error points at its own line, all at once.
    engine_args: Annotated[list[Annotated[str, AfterValidator(_engine_arg)]], Field(max_length=MAX_LIST_ITEMS)] = []
    env: Annotated[dict[Annotated[str, AfterValidator(_env_key)], str], Field(max_length=MAX_LIST_ITEMS)] = {}

    @field_validator("source")
    @classmethod
    def _source(cls, v: str) -> str:
        problem = grammar.model_source(v)
        if problem:
            raise ValueError(f"{quote(v)}: {problem}")
        return v

    @field_validator("revision")
    @classmethod
    def _revision(cls, v: str) -> str:
        suffix = next((s for s in MARKER_SUFFIXES if v.endswith(s)), None)
        if suffix:
            raise ValueError(f"{quote(v)} ends with {quote(suffix)}, the weight cache's completion marker for "
                             f"revision {quote(v.removesuffix(suffix))}: the two would collide; rename the revision")
        return v

    @field_validator("image")
    @classmethod
    def _image(cls, v: str | None) -> str | None:
        if v is None:
            return v
        problem = grammar.image_reference(v)
        if problem:
            raise ValueError(f"image {quote(v)} is not an OCI image reference: {problem}")
        last = v.rsplit("/", 1)[-1]
        if not ("@" in last or ":" in last):
            raise ValueError(f"image {quote(v)} must be pinned: REPOSITORY:TAG or REPOSITORY@sha256:DIGEST")
        if last.split("@")[0].endswith(":latest"):
            raise ValueError(f"image {quote(v)} uses the moving tag 'latest'; pin a version tag or digest")
        return v

    @field_validator("image")
    @classmethod
    def _engine_image(cls, v: str | None, info: ValidationInfo) -> str | None:
        engine = ENGINES.get(info.data.get("engine", ""))
        if v is None and engine is not None and engine.image is None:
            raise ValueError(f"engine {engine.name} needs 'image': {engine.image_note}")
        return v

    @field_validator("loader", "kv_cache_dtype")
    @classmethod
    def _engine_option(cls, v: str, info: ValidationInfo) -> str:
        """loader runai-streamer and kvCacheDtype fp8 need an engine that has the option."""
        key, value, attr, why = {
            "loader": ("loader", "runai-streamer", "streamer", "has no Run:ai Model Streamer loader"),
            "kv_cache_dtype": ("kvCacheDtype", "fp8", "kv_cache_fp8",
                               "takes its KV-cache dtype from its options file, not a flag this program sets"),
        }[info.field_name]
        engine = ENGINES.get(info.data.get("engine", ""))
        if v == value and engine is not None and not getattr(engine, attr):
            raise ValueError(f"engine {engine.name} {why}; engines with {key} {value}: "
                             + ", ".join(n for n, e in ENGINES.items() if getattr(e, attr)))
        return v

    @field_validator("autoscaling")
    @classmethod
    def _metric(cls, v: Autoscaling | None, info: ValidationInfo) -> Autoscaling | None:
        engine = ENGINES.get(info.data.get("engine", ""))
        if v is not None and engine is not None and v.metric not in engine.metrics:
            offered = ", ".join(engine.metrics) or "none (use a fixed 'replicas')"
            raise FieldError(("metric",), f"engine {engine.name} exposes no {quote(v.metric)} metric; "
                                          f"metrics it offers: {offered}")
        return v

    @model_validator(mode="after")
    def _check(self) -> ModelSpec:
        if (self.replicas is None) == (self.autoscaling is None):
            raise ValueError("set exactly one of 'replicas' (a fixed count) or 'autoscaling'")
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
    # Each subnet gets one EFS mount target named by it: a repeated subnet would be two resources with one name.
    subnet_ids: Annotated[list[Annotated[str, Field(pattern=SUBNET_ID)]],
                          Field(min_length=1, max_length=MAX_LIST_ITEMS), Unique]
    security_group_ids: Annotated[list[Annotated[str, Field(pattern=r"^sg-[0-9a-f]{8,17}$")]],
                                  Field(max_length=MAX_LIST_ITEMS), Unique] = []
    node_role_arn: Annotated[str, Field(pattern=r"^arn:aws[a-z-]*:iam::[0-9]{12}:role/.+$")] | None = None


class NodePoolCfg(Strict):
    name: Annotated[str, _dns(40)]
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


class CacheBase(Strict):
    # Every model's replicas starting together on warm nodes must serve within this: the planner sizes FSx for it.
    cold_start_target: Annotated[str, Field(pattern=DURATION)] | None = None

    @property
    def cold_start_target_s(self) -> int | None:
        t = self.cold_start_target
        return None if t is None else int(t[:-1]) * DURATION_SECONDS[t[-1]]


class FsxCache(CacheBase):
    kind: Literal["fsx-lustre"]
    storage_gib: Annotated[int, Field(alias="storageGiB")]
    throughput_per_tib: Literal[125, 250, 500, 1000] = Field(alias="throughputPerTiB")
    subnet_id: Annotated[str, Field(pattern=SUBNET_ID)]
    s3_import_path: Annotated[str, Field(pattern=r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/.*)?$")] | None = None

    @field_validator("s3_import_path")
    @classmethod
    def _bucket(cls, v: str | None) -> str | None:
        problem = None if v is None else grammar.s3_bucket(v.removeprefix("s3://").split("/", 1)[0])
        if problem:
            raise ValueError(f"{quote(v)}: {problem}")
        return v

    @field_validator("storage_gib")
    @classmethod
    def _steps(cls, v: int) -> int:
        if v not in (1200, 2400) and (v < 2400 or v % 2400):
            raise ValueError(f"FSx for Lustre PERSISTENT_2 capacity is 1200, 2400 or a multiple of 2400 GiB; got {v}")
        return v


class EfsCache(CacheBase):
    kind: Literal["efs"]


class PvcCache(CacheBase):
    kind: Literal["pvc"]
    storage_class: Annotated[str, Field(pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$", max_length=253)]
    size_gib: Annotated[int, Field(ge=1, le=1_000_000, alias="sizeGiB")]


CacheCfg = Annotated[FsxCache | EfsCache | PvcCache, Field(discriminator="kind")]
CACHE_KINDS = ("fsx-lustre", "efs", "pvc")


LABEL_NAME = r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?"
# A label key: an optional DNS-subdomain prefix and '/', then a name (Kubernetes "Labels and Selectors").
LABEL_KEY = rf"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?{LABEL_NAME}$"
LABEL_VALUE = rf"^({LABEL_NAME})?$"


class MonitoringCfg(Strict):
    prometheus_url: Annotated[str, Field(pattern=r"^https?://[^\s/]+(:\d+)?(/[^\s]*)?$")] = (
        "http://prometheus-operated.monitoring.svc:9090")
    pod_monitor: bool = True
    # Labels on every PodMonitor, ServiceMonitor and PrometheusRule, so that a Prometheus with a selector picks them
    # up (kube-prometheus-stack selects `release: <its release name>`).
    selector_labels: dict[str, str] = {}
    alerts: bool = True  # a PrometheusRule with the stack's alerts
    dashboards: bool = True  # a Grafana dashboard ConfigMap for the sidecar

    @field_validator("selector_labels")
    @classmethod
    def _labels(cls, v: dict[str, str]) -> dict[str, str]:
        for key, value in v.items():
            if len(key) > 317 or not re.fullmatch(LABEL_KEY, key) or len(key.rsplit("/", 1)[0]) > 253:
                raise ValueError(f"{key!r} is not a Kubernetes label key ([prefix/]name: name of at most 63 letters, "
                                 "digits, '-', '_', '.', alphanumeric at both ends; prefix a DNS subdomain)")
            if not re.fullmatch(LABEL_VALUE, value):
                raise ValueError(f"label {key}: {value!r} is not a Kubernetes label value (at most 63 letters, "
                                 "digits, '-', '_', '.', alphanumeric at both ends, or empty)")
        return v


class AddonsCfg(Strict):
    device_plugin: bool = True
    keda: bool = False
    dcgm_exporter: bool | None = None  # None: on for target eks (GPUs must be watched), off for render
    leader_worker_set: bool = False  # the LeaderWorkerSet controller that models over several nodes run under


IMAGE_REF = r"^[a-z0-9][a-z0-9._/:-]*[a-z0-9](:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}|@sha256:[0-9a-f]{64})$"


class PrefetchCfg(Strict):
    """What prefetch Jobs run and where hf:// Jobs download from (air-gapped clusters: a mirror and own images)."""

    # An image with huggingface_hub installed; without it the Job installs a pinned huggingface_hub from PyPI.
    hf_image: Annotated[str, Field(pattern=IMAGE_REF, max_length=512)] | None = None
    # A Hugging Face Hub endpoint or mirror (HF_ENDPOINT), e.g. an internal proxy.
    hf_endpoint: Annotated[str, Field(pattern=r"^https?://[^\s/]+(:\d+)?(/[^\s]*)?$", max_length=512)] | None = None
    s3_image: Annotated[str, Field(pattern=IMAGE_REF, max_length=512)] | None = None  # with the AWS CLI v2


class StackCfg(Strict):
    target: Literal["render", "eks"]
    models_file: Annotated[str, Field(pattern=r"^[^\x00]+$")] = "models.yaml"  # a path: not empty, no NUL
    namespace: Annotated[str, _dns(63)] = "inference"
    cluster: Annotated[ClusterCfg | None, Field(validate_default=True)] = None
    node_pools: Annotated[list[NodePoolCfg], Field(min_length=1, max_length=MAX_LIST_ITEMS)]
    cache: CacheCfg = PvcCache(kind="pvc", storage_class="standard", size_gib=1000)
    autoscaler: Literal["keda", "hpa"] = "keda"
    monitoring: MonitoringCfg = MonitoringCfg()
    addons: AddonsCfg = AddonsCfg()
    prefetch: PrefetchCfg = PrefetchCfg()
    kubernetes_version: Annotated[str, Field(pattern=r"^1\.[0-9]{2}$")] = "1.32"  # [0-9]: \d matches any script
    # An empty list would render a NetworkPolicy selector `values: []`, which the API server refuses.
    allowed_client_namespaces: Annotated[list[Annotated[str, _dns(63)]],
                                         Field(max_length=MAX_LIST_ITEMS), Unique] | None = None
    hf_token: bool = False  # whether the secret is set; its value stays an Output in __main__.py

    # Field validators rather than one model validator, so each error names its key (fields validate in order).
    @field_validator("namespace")
    @classmethod
    def _namespace(cls, v: str) -> str:
        if v in SYSTEM_NAMESPACES:
            raise ValueError(f"{quote(v)} is a Kubernetes system namespace: the program would label it restricted "
                             "and deny its traffic by default; choose a namespace of its own, like 'inference'")
        addon = next((key for key, chart in CHARTS.items() if chart.namespace == v), None)
        if addon:
            raise ValueError(f"{quote(v)} is the namespace of the {addon} add-on's chart; the models need a "
                             "namespace of their own, like 'inference'")
        return v

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

    @field_validator("allowed_client_namespaces")
    @classmethod
    def _some_clients(cls, v: list[str] | None) -> list[str] | None:
        if v == []:
            raise ValueError("is an empty list, which would render a NetworkPolicy the API server refuses (an 'In' "
                             "selector with no values); list the client namespaces, or leave the key out to allow "
                             "only the models' own namespace")
        return v

    @property
    def client_namespaces(self) -> list[str]:
        return self.allowed_client_namespaces if self.allowed_client_namespaces is not None else [self.namespace]


# Stack config keys read from Pulumi config, and whether each holds structured (JSON) data.
STACK_KEYS: dict[str, bool] = {
    "target": False, "modelsFile": False, "namespace": False, "cluster": True, "nodePools": True, "cache": True,
    "autoscaler": False, "monitoring": True, "addons": True, "prefetch": True, "kubernetesVersion": False,
    "allowedClientNamespaces": True, "hfToken": False,
}
SECRET_KEYS = ("hfToken",)
MAX_CONFIG_CHARS = 256 * 1024  # one stack value as the Pulumi CLI passes it (JSON for structured keys)


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


def _annotation(cls: Any, loc: tuple[Any, ...]) -> Any:
    """The annotation at an error location (None when it cannot be followed)."""
    tp = cls
    for part in loc:
        tp = _step(tp, part)
        if tp is None:
            return None
    return tp


def _near(value: Any, allowed: list[str]) -> str:
    """'; did you mean X?' for a near miss (case, a typo, a dropped character), else ''."""
    if not isinstance(value, str):
        return ""
    folded = {a.lower(): a for a in allowed}
    hit = folded.get(value.strip().lower()) or next(iter(difflib.get_close_matches(value, allowed, n=1, cutoff=0.8)),
                                                    None)
    return f"; did you mean {quote(hit)}?" if hit else ""


def _got(value: Any, typed: bool = False) -> str:
    if isinstance(value, list | dict):
        return f"got a {type(value).__name__} of {len(value)} items"
    return f"got {type(value).__name__} {quote(value)}" if typed and isinstance(value, str) else f"got {quote(value)}"


def _message(err: dict[str, Any], cls: type[BaseModel], full: tuple[Any, ...], loc: tuple[Any, ...]) -> str:
    """An error in plain words: what was given, what is allowed, and a near miss when there is one."""
    kind, value, ctx = err["type"], err.get("input"), err.get("ctx") or {}
    msg = err["msg"].removeprefix("Value error, ")
    if kind == "extra_forbidden":
        allowed = _allowed_keys(cls, full)
        return f"unknown key {quote(loc[-1])}" + (f"; allowed keys: {', '.join(allowed)}{_near(loc[-1], allowed)}"
                                                   if allowed else "")
    if kind == "missing":
        return "required field is missing"
    if kind in ("int_type", "float_type", "string_type", "bool_type", "list_type", "dict_type", "model_type"):
        return f"{msg}, {_got(value, typed=True)}"
    if kind == "literal_error":
        allowed = re.findall(r"'([^']*)'", ctx.get("expected", ""))
        return f"{_got(value)}; allowed: {', '.join(allowed)}{_near(value, allowed)}"
    if kind == "union_tag_invalid":
        allowed = re.findall(r"'([^']*)'", ctx.get("expected_tags", ""))
        return f"{ctx.get('discriminator', 'kind')} {_got(ctx.get('tag'))}; allowed: {', '.join(allowed)}" + _near(
            ctx.get("tag"), allowed)
    if kind == "string_pattern_mismatch":
        return f"{PATTERN_WORDS.get(ctx.get('pattern'), msg)}; {_got(value)}"
    if kind in ("too_long", "too_short", "string_too_long", "string_too_short") or kind.startswith(
            ("greater_than", "less_than", "finite_number")):
        return f"{msg}; {_got(value)}"
    return msg


def _problems(exc: ValidationError, cls: type[BaseModel], file: str, line_of, model: str | None,
              prefix: tuple[Any, ...] = ()) -> list[Problem]:
    out = []
    for err in exc.errors(include_url=False):
        full = err["loc"]
        loc = tuple(p for p in full if p not in CACHE_KINDS)
        msg = _message(err, cls, full, loc)
        if loc[-1:] == ("[key]",):  # a mapping key's own error (env names): at the key, like its value's error
            loc = loc[:-1]
        error = (err.get("ctx") or {}).get("error")
        if isinstance(error, FieldError):
            loc = (*loc, *error.at)
        field = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in (*prefix, *loc)).lstrip(".")
        field = field.replace(":.", ":")
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
                problems.append(Problem(stack_file, f"unknown config key {quote(key)}; allowed: "
                                        + ", ".join(f"inference:{k}" for k in STACK_KEYS)
                                        + _near(name, list(STACK_KEYS)).replace("'", "'inference:", 1),
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


def _over_budget(model: dict[str, Any]) -> tuple[str, str] | None:
    """(field, message) when one model's input is over MAX_MODEL_INPUT_BYTES or MAX_MODEL_VALUES; stops early."""
    sizes: dict[str, int] = {}
    count = 0
    for key, value in model.items():
        stack, size = [value], 0
        while stack:
            item = stack.pop()
            count += 1
            if count > MAX_MODEL_VALUES:
                return key, (f"holds more than {MAX_MODEL_VALUES} values (with its defaults), the limit for one model")
            if isinstance(item, dict):
                stack.extend(item.keys())
                stack.extend(item.values())
            elif isinstance(item, list):
                stack.extend(item)
            else:
                size += len(item.encode("utf-8", "replace")) if isinstance(item, str) else 8
            if size > MAX_MODEL_INPUT_BYTES:
                return key, (f"holds more than {MAX_MODEL_INPUT_BYTES // 1024} KiB of text (with its defaults), the "
                             "limit for one model: its Deployment must stay far below the 1.5 MiB the Kubernetes API "
                             "server's etcd stores per object")
        sizes[key] = size
    total = sum(sizes.values())
    if total > MAX_MODEL_INPUT_BYTES:
        key = max(sizes, key=lambda k: sizes[k])
        return key, (f"the model holds {total // 1024} KiB of text (with its defaults), over the limit of "
                     f"{MAX_MODEL_INPUT_BYTES // 1024} KiB for one model ({key} holds {sizes[key] // 1024} KiB): its "
                     "Deployment must stay far below the 1.5 MiB the Kubernetes API server's etcd stores per object")
    return None


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
    if len(models) > MAX_MODELS:
        raise InputError([Problem(file, f"lists {len(models)} models, over the limit of {MAX_MODELS} for one stack; "
                                        "split them across stacks", src.line(("models",)), field="models")])

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
        too_big = _over_budget(merged)
        if too_big:
            problems.append(Problem(file, too_big[1], model_line(src, i, (too_big[0],)), name, too_big[0]))
            continue

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
        if len(value) > MAX_CONFIG_CHARS:
            raise InputError([Problem(stack_file, f"is {len(value)} characters long, over the limit of "
                                      f"{MAX_CONFIG_CHARS} for one stack value", _stack_lines(stack_src, (key,)),
                                      field=f"inference:{key}")])
        if structured:
            try:
                raw[key] = json.loads(value)
            except json.JSONDecodeError:
                raise InputError([Problem(stack_file, "must be a YAML mapping or list, not a plain string",
                                          _stack_lines(stack_src, (key,)), field=f"inference:{key}")]) from None
            except RecursionError:  # the CLI passes what the stack file holds: nesting no real value has
                raise InputError([Problem(stack_file, "is nested too deeply", _stack_lines(stack_src, (key,)),
                                          field=f"inference:{key}")]) from None
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
