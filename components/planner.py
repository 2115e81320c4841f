"""The planner: every decision and number (fit, capacity, cache, cold start, rollout, cost) from validated settings.

Pure Python, no Pulumi. `plan(settings)` returns an immutable Plan or raises PlanError listing every problem.
Components translate the Plan into resources and never re-derive a number it holds.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import asdict, dataclass, field
from typing import Any

from .catalog import INSTANCE_TYPES, PRICES_AS_OF, InstanceType
from .config import ModelSpec, NodePoolCfg, Settings
from .engines import ENGINES, EngineInputs
from .errors import PlanError, Problem

# --- assumptions, each used in one place below --------------------------------------------------------------
GPU_MEMORY_UTILIZATION = 0.9  # vLLM's default share of GPU memory for weights + KV cache (FACTS.md)
SYSTEM_RESERVED_FRACTION = 0.1  # kubelet, OS and daemonsets keep this share of a node's CPU and RAM ...
SYSTEM_RESERVED_CPU = 0.5  # ... plus this many cores ...
SYSTEM_RESERVED_GIB = 2  # ... and this much RAM
IMAGE_PULL_GIBPS = 0.1  # containerd pull + unpack of a multi-GB serving image, per node (GiB/s)
HOST_TO_GPU_GIBPS = 10.0  # copying weights into GPU memory, per pod (GiB/s)
PVC_PER_CLIENT_MIBPS = 250  # unknown RWX storage class: assume an NFS-class per-client read rate ...
PVC_AGGREGATE_MIBPS = 1024  # ... and aggregate
EFS_PER_CLIENT_MIBPS = 1500  # elastic throughput, per client (FACTS.md)
EFS_AGGREGATE_MIBPS = 20 * 1024  # elastic throughput, reads per file system, lower bound (FACTS.md)
DOWNLOAD_MIBPS = {"hf": 100, "s3": 250}  # prefetch source rate per Job
PREFETCH_CPU, PREFETCH_CPU_LIMIT = "1", "4"  # downloads are network-bound; the hub client and AWS CLI use a few threads
PREFETCH_MEMORY_GIB = 4  # request = limit: the download buffers of the hub client or the AWS CLI
BUDGET_FACTOR = 2  # startup budget = 2 x estimate ...
BUDGET_MIN_S, BUDGET_MAX_S = 300, 3 * 3600  # ... bounded so small models still fail fast and huge ones stay finite
PROBE_PERIOD_S = 10
REQUEST_TIMEOUT_S = 300  # longest request an engine serves before the gateway gives up
PRESTOP_SLEEP_S = 15  # lets endpoint removal reach every proxy before the engine stops accepting requests
AWAIT_MARGIN_S = 600
HOURS_PER_MONTH = 730
CACHE_MOUNT = "/models"

NODE_LABEL_POOL = "inference/pool"
NODE_LABEL_GPU = "inference/gpu-type"
GPU_TAINT_KEY = "nvidia.com/gpu"


@dataclass(frozen=True)
class ColdStart:
    image_pull_s: int
    weight_read_s: int
    engine_start_s: int
    estimate_s: int
    budget_s: int
    read_mibps: int  # the read rate the estimate assumes for one replica


@dataclass(frozen=True)
class Autoscale:
    metric: str  # queue | running | kvCache
    series: str  # the engine's Prometheus series
    query: str  # PromQL for this model's pods only
    hpa_metric: str  # the same series as prometheus-adapter serves it (':' is not allowed in API names)
    target: str  # KEDA threshold (per replica)
    target_quantity: str  # HPA averageValue (Kubernetes quantity)
    min_replicas: int
    max_replicas: int
    behavior: dict[str, Any]  # autoscaling/v2 behavior, shared by HPA and KEDA


@dataclass(frozen=True)
class Prefetch:
    job_name: str
    scheme: str  # hf | s3
    repo: str  # ORG/REPO or BUCKET/PREFIX
    revision: str
    directory: str  # the revision's directory inside the cache
    marker: str  # written after the atomic rename; its presence means the weights are complete
    estimate_s: int
    active_deadline_s: int
    timeout_s: int
    backoff_limit: int
    cpu_request: str = PREFETCH_CPU
    cpu_limit: str = PREFETCH_CPU_LIMIT
    memory_gib: int = PREFETCH_MEMORY_GIB


@dataclass(frozen=True)
class ModelPlan:
    name: str
    engine: str
    image: str
    command: tuple[str, ...]
    args: tuple[str, ...]
    env: tuple[tuple[str, str], ...]
    port: int
    health_path: str
    metrics_path: str
    pool: str
    gpu_type: str
    gpus: int
    replicas: int | None  # None when an autoscaler owns the count
    min_replicas: int
    max_replicas: int
    replicas_per_node: int
    nodes_at_min: int
    nodes_at_max: int
    weights_gib: float
    gpu_memory_gib: float
    kv_headroom_gib: float
    cpu_request: str
    memory_gib: int
    shm_gib: int
    model_path: str
    node_selector: dict[str, str]
    cold_start: ColdStart
    startup_failure_threshold: int
    probe_period_s: int
    progress_deadline_s: int
    create_timeout_s: int
    update_timeout_s: int
    prestop_sleep_s: int
    termination_grace_s: int
    max_surge: int
    max_unavailable: int
    pdb_max_unavailable: int
    autoscale: Autoscale | None
    prefetch: Prefetch
    monthly_usd_min: float
    monthly_usd_max: float


@dataclass(frozen=True)
class PoolPlan:
    name: str
    instance_type: str
    gpu_type: str
    gpus_per_node: int
    min_nodes: int
    max_nodes: int
    capacity_type: str
    ami_type: str
    disk_gib: int
    labels: dict[str, str]
    nodes_at_min: int
    nodes_at_max: int
    gpus_at_min: int
    gpus_at_max: int
    hourly_usd: float
    monthly_usd_min: float  # the pool's configured floor, minNodes running all month
    monthly_usd_max: float  # maxNodes running all month
    models: tuple[str, ...]


@dataclass(frozen=True)
class CachePlan:
    kind: str
    capacity_gib: int | None  # None: elastic (EFS)
    weights_gib: float
    aggregate_mibps: int
    per_client_mibps: int
    all_start_s: int  # every model's max replicas reading at once


@dataclass(frozen=True)
class NetworkPlan:
    client_namespaces: tuple[str, ...]  # may call the model Services
    metrics_namespace: str  # where Prometheus runs: it scrapes the model pods
    imds_cidr: str = "169.254.169.254/32"
    pod_identity_cidr: str = "169.254.170.23/32"


@dataclass(frozen=True)
class Plan:
    stack_target: str
    namespace: str
    models: tuple[ModelPlan, ...]
    pools: tuple[PoolPlan, ...]
    cache: CachePlan
    network: NetworkPlan
    warnings: tuple[str, ...]
    prices_as_of: str = PRICES_AS_OF
    device_plugin: bool = field(default=True)

    def summary(self) -> dict[str, Any]:
        """The plan as plain data: the stack output `plan` and the render's plan.json."""
        return {
            "namespace": self.namespace,
            "pricesAsOf": self.prices_as_of,
            "models": [_model_summary(m) for m in self.models],
            "pools": [asdict(p) for p in self.pools],
            "cache": asdict(self.cache),
            "warnings": list(self.warnings),
        }


def _model_summary(m: ModelPlan) -> dict[str, Any]:
    return {
        "name": m.name, "engine": m.engine, "image": m.image, "pool": m.pool, "gpuType": m.gpu_type, "gpus": m.gpus,
        "minReplicas": m.min_replicas, "maxReplicas": m.max_replicas, "replicasPerNode": m.replicas_per_node,
        "nodesAtMin": m.nodes_at_min, "nodesAtMax": m.nodes_at_max, "weightsGiB": m.weights_gib,
        "kvHeadroomGiB": m.kv_headroom_gib, "coldStart": asdict(m.cold_start),
        "startupFailureThreshold": m.startup_failure_threshold, "progressDeadlineSeconds": m.progress_deadline_s,
        "rollout": {"maxSurge": m.max_surge, "maxUnavailable": m.max_unavailable},
        "prefetchJob": m.prefetch.job_name, "monthlyUsdMin": m.monthly_usd_min, "monthlyUsdMax": m.monthly_usd_max,
    }


# --- helpers ---------------------------------------------------------------------------------------------

def pack_nodes(items: list[int], gpus_per_node: int) -> int:
    """Nodes needed to place replicas needing `items` GPUs each (first-fit decreasing; replicas never span nodes)."""
    full = 0  # nodes with no GPU left are counted, not scanned again: linear in items, not items x nodes
    free: list[int] = []
    for need in sorted(items, reverse=True):
        for i, room in enumerate(free):
            if room >= need:
                free[i] -= need
                if not free[i]:
                    full += 1
                    del free[i]
                break
        else:
            if gpus_per_node == need:
                full += 1
            else:
                free.append(gpus_per_node - need)
    return full + len(free)


def clamp(value: float, low: int, high: int) -> int:
    return int(min(max(math.ceil(value), low), high))


def quantity(value: float) -> str:
    """A number as a Kubernetes quantity: integers as-is, fractions in milli-units."""
    return str(int(value)) if float(value).is_integer() else f"{round(value * 1000)}m"


def number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def nodes(count: int) -> str:
    return f"{count} node" if count == 1 else f"{count} nodes"


def is_pinned(spec: ModelSpec) -> bool:
    """An HF revision is pinned when it is a full commit hash; S3 prefixes are versioned by the user's naming."""
    if spec.source.startswith("hf://"):
        return len(spec.revision) == 40 and all(c in "0123456789abcdef" for c in spec.revision)
    return spec.revision != "main"


@dataclass
class _Ctx:
    settings: Settings
    problems: list[Problem] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def model_problem(self, index: int, spec: ModelSpec, field_: str, message: str) -> None:
        self.problems.append(Problem(self.settings.models_src.file, message, self.settings.model_line(index, field_),
                                     spec.name, field_))

    def pool_problem(self, pool_index: int, field_: str, message: str) -> None:
        src = self.settings.stack_file
        line = None
        if self.settings.stack_src is not None:
            line = self.settings.stack_src.line(("config", "inference:nodePools", pool_index, field_))
        self.problems.append(Problem(src, message, line, None, f"inference:nodePools[{pool_index}].{field_}"))


# --- the plan --------------------------------------------------------------------------------------------

def _choose_pool(ctx: _Ctx, index: int, spec: ModelSpec) -> tuple[NodePoolCfg, InstanceType] | None:
    pools = ctx.settings.stack.node_pools
    typed = [(p, INSTANCE_TYPES[p.instance_type]) for p in pools if INSTANCE_TYPES[p.instance_type].gpu_type
             == spec.gpu.type]
    if not typed:
        offered = sorted({INSTANCE_TYPES[p.instance_type].gpu_type for p in pools})
        ctx.model_problem(index, spec, "gpu.type", f"no node pool provides GPU type '{spec.gpu.type}'; "
                          f"pools provide: {', '.join(offered)} (add a pool in {ctx.settings.stack_file})")
        return None
    for pool, it in typed:
        if it.gpus >= spec.gpu.count:
            return pool, it
    biggest = max(it.gpus for _, it in typed)
    ctx.model_problem(index, spec, "gpu.count", f"tensor-parallel size {spec.gpu.count} exceeds the GPUs of one "
                      f"node ({biggest} in the largest '{spec.gpu.type}' pool); allowed: at most {biggest}, "
                      "or add a pool with a larger instance type")
    return None


def _cache_rates(ctx: _Ctx) -> tuple[int, int, int | None]:
    """(aggregate MiB/s, per-client MiB/s or 0 for 'the node's network', capacity GiB or None)."""
    cache = ctx.settings.stack.cache
    if cache.kind == "fsx-lustre":
        # MB/s per TiB x TiB, in MiB/s; per client the node's network is the limit (0 = use it).
        return int(cache.throughput_per_tib * cache.storage_gib / 1024 * 1e6 / 2**20), 0, cache.storage_gib
    if cache.kind == "efs":
        return EFS_AGGREGATE_MIBPS, EFS_PER_CLIENT_MIBPS, None
    return PVC_AGGREGATE_MIBPS, PVC_PER_CLIENT_MIBPS, cache.size_gib


def _cold_start(spec: ModelSpec, it: InstanceType, aggregate: int, per_client: int) -> ColdStart:
    engine = ENGINES[spec.engine]
    node_mibps = int(it.network_gbps * 1000 / 8 * 1000 / 1024)  # Gbit/s -> MiB/s
    client = min(per_client or node_mibps, node_mibps)
    # A model's replicas start together on first deploy and on scale-up bursts; other models are not counted,
    # so adding a model never changes another model's budgets (their sum is reported as `all_start_s`).
    read_mibps = max(1, int(min(client, aggregate / spec.max_replicas)))
    pull = engine.image_gib / min(IMAGE_PULL_GIBPS, it.network_gbps / 8)
    read = spec.size_gib * 1024 / read_mibps
    start = engine.start_seconds + spec.size_gib / HOST_TO_GPU_GIBPS
    estimate = math.ceil(pull) + math.ceil(read) + math.ceil(start)
    return ColdStart(math.ceil(pull), math.ceil(read), math.ceil(start), estimate,
                     clamp(BUDGET_FACTOR * estimate, BUDGET_MIN_S, BUDGET_MAX_S), read_mibps)


def _autoscale(spec: ModelSpec, namespace: str, estimate_s: int) -> Autoscale | None:
    if spec.autoscaling is None:
        return None
    a = spec.autoscaling
    series = ENGINES[spec.engine].metrics[a.metric]
    # Deployment pods are named <name>-<template hash>-<suffix>: this matches this model's pods and no other's.
    query = f'sum({series}{{namespace="{namespace}",pod=~"{spec.name}-[a-z0-9]+-[a-z0-9]+"}})'
    # Scale down only after a cold start's worth of calm: a replica removed too early costs minutes to bring back.
    behavior = {
        "scaleUp": {"stabilizationWindowSeconds": 0,
                    "policies": [{"type": "Pods", "value": 2, "periodSeconds": 60}]},
        "scaleDown": {"stabilizationWindowSeconds": clamp(2 * estimate_s, 300, 3600),
                      "policies": [{"type": "Pods", "value": 1, "periodSeconds": 300}]},
    }
    return Autoscale(a.metric, series, query, series.replace(":", "_"), number(a.target), quantity(a.target),
                     a.min_replicas, a.max_replicas, behavior)


def _prefetch(spec: ModelSpec, read_client_mibps: int) -> Prefetch:
    scheme, _, repo = spec.source.partition("://")
    digest = hashlib.sha256(f"{spec.source}@{spec.revision}".encode()).hexdigest()[:8]
    estimate = math.ceil(spec.size_gib * 1024 / min(DOWNLOAD_MIBPS[scheme], read_client_mibps))
    deadline = clamp(3 * estimate + AWAIT_MARGIN_S, 1800, 24 * 3600)
    return Prefetch(f"{spec.name}-fetch-{digest}", scheme, repo, spec.revision, f"{spec.name}/{spec.revision}",
                    f"{spec.name}/{spec.revision}.complete", estimate, deadline, deadline + AWAIT_MARGIN_S, 3)


def _resources(spec: ModelSpec, it: InstanceType) -> tuple[str, int, int]:
    """CPU request, memory (request = limit) in GiB and /dev/shm GiB: the node's allocatable share per GPU."""
    cpu_per_gpu = (it.vcpu * (1 - SYSTEM_RESERVED_FRACTION) - SYSTEM_RESERVED_CPU) / it.gpus
    mem_per_gpu = (it.ram_gib * (1 - SYSTEM_RESERVED_FRACTION) - SYSTEM_RESERVED_GIB) / it.gpus
    milli = int(cpu_per_gpu * spec.gpu.count * 10) * 100
    memory = int(mem_per_gpu * spec.gpu.count)
    # NCCL moves tensor-parallel activations through /dev/shm; a memory-backed volume counts against the limit.
    shm = 1 if spec.gpu.count == 1 else min(4 * spec.gpu.count, memory // 4)
    return f"{milli}m", memory, shm


def plan(settings: Settings) -> Plan:
    """Decide everything, or raise PlanError with every problem found."""
    ctx = _Ctx(settings)
    stack = settings.stack
    aggregate, per_client, capacity = _cache_rates(ctx)
    chosen: list[tuple[int, ModelSpec, NodePoolCfg, InstanceType]] = []
    for index, spec in enumerate(settings.models):
        picked = _choose_pool(ctx, index, spec)
        if picked is None:
            continue
        pool, it = picked
        usable = spec.gpu.count * it.gpu_memory_gib * GPU_MEMORY_UTILIZATION
        if spec.size_gib > usable:
            ctx.model_problem(index, spec, "sizeGiB", f"weights of {number(spec.size_gib)} GiB do not fit "
                              f"{spec.gpu.count} x {spec.gpu.type} ({number(it.gpu_memory_gib)} GiB each, "
                              f"{GPU_MEMORY_UTILIZATION:.0%} usable = {usable:.1f} GiB); allowed: at most "
                              f"{usable:.1f} GiB, or raise gpu.count or pick a larger GPU")
            continue
        chosen.append((index, spec, pool, it))

    pool_items: dict[str, tuple[list[int], list[int]]] = {p.name: ([], []) for p in stack.node_pools}
    for _, spec, pool, _ in chosen:
        pool_items[pool.name][0].extend([spec.gpu.count] * spec.min_replicas)
        pool_items[pool.name][1].extend([spec.gpu.count] * spec.max_replicas)

    pools: list[PoolPlan] = []
    for pool_index, pool in enumerate(stack.node_pools):
        it = INSTANCE_TYPES[pool.instance_type]
        at_min, at_max = pool_items[pool.name]
        nodes_min, nodes_max = pack_nodes(at_min, it.gpus), pack_nodes(at_max, it.gpus)
        users = [(s, p) for _, s, p, _ in chosen if p.name == pool.name]
        if nodes_max > pool.max_nodes:
            who = ", ".join(f"{s.name} {s.max_replicas}x{s.gpu.count} GPUs" for s, _ in users)
            ctx.pool_problem(pool_index, "maxNodes", f"pool {pool.name} needs {nodes_max} nodes "
                             f"({it.gpus} GPUs each) at max replicas, allows {pool.max_nodes}: {who}; "
                             f"short by {nodes_max - pool.max_nodes} node(s): raise maxNodes or lower maxReplicas")
        elif nodes_min > pool.min_nodes:
            ctx.warnings.append(f"pool {pool.name}: min replicas need {nodes(nodes_min)} but minNodes is "
                                f"{pool.min_nodes}; pods wait for the cluster autoscaler on first deploy")
        price = pool.hourly_price or it.hourly_usd
        pools.append(PoolPlan(
            pool.name, pool.instance_type, it.gpu_type, it.gpus, pool.min_nodes, pool.max_nodes,
            pool.capacity_type, pool.ami_type, pool.disk_gib, {NODE_LABEL_POOL: pool.name, NODE_LABEL_GPU: it.gpu_type},
            nodes_min, nodes_max, sum(at_min), sum(at_max), price,
            round(price * pool.min_nodes * HOURS_PER_MONTH, 2), round(price * pool.max_nodes * HOURS_PER_MONTH, 2),
            tuple(s.name for s, _ in users)))

    weights = sum(spec.size_gib for spec in settings.models)
    biggest = max((spec.size_gib for spec in settings.models), default=0)
    if capacity is not None and weights + biggest > capacity:
        ctx.problems.append(Problem(settings.stack_file,
                                    f"the weight cache holds {capacity} GiB but the models need {number(weights)} GiB "
                                    f"plus {number(biggest)} GiB of room to fetch a new revision of the largest one; "
                                    f"allowed: at least {math.ceil(weights + biggest)} GiB",
                                    _stack_line(settings, "cache"), None, "inference:cache"))
    if ctx.problems:
        raise PlanError(ctx.problems)

    # Surge when one more replica still fits the pool at everyone's max: once per (pool, GPU count), not per model.
    room: dict[tuple[str, int], bool] = {}
    for _, spec, pool, it in chosen:
        key = (pool.name, spec.gpu.count)
        if key not in room:
            room[key] = pack_nodes([*pool_items[pool.name][1], spec.gpu.count], it.gpus) <= pool.max_nodes
    models = [_model_plan(ctx, spec, pool, it, aggregate, per_client, room[(pool.name, spec.gpu.count)])
              for _, spec, pool, it in chosen]
    total_bytes_mib = sum(s.size_gib * 1024 * s.max_replicas for s in settings.models)
    clients = sum(s.max_replicas for s in settings.models)
    all_start = math.ceil(total_bytes_mib / min(aggregate, (per_client or aggregate) * clients))
    if stack.cache.kind == "efs":
        ctx.warnings.append(f"cache efs: each client reads at most {EFS_PER_CLIENT_MIBPS} MiB/s "
                            "(1.5 GiB/s): large models start slowly; fsx-lustre scales with throughputPerTiB")
    cache = CachePlan(stack.cache.kind, capacity, round(weights, 1), aggregate, per_client, all_start)
    network = NetworkPlan(tuple(stack.client_namespaces), _service_namespace(stack.monitoring.prometheus_url,
                                                                             stack.namespace))
    return Plan(stack.target, stack.namespace, tuple(models), tuple(pools), cache, network, tuple(ctx.warnings),
                device_plugin=_needs_device_plugin(settings))


def _service_namespace(url: str, default: str) -> str:
    """The namespace of an in-cluster Service URL (http://NAME.NAMESPACE.svc...), else the model namespace."""
    host = url.split("://", 1)[-1].split("/", 1)[0].split(":", 1)[0]
    labels = host.split(".")
    return labels[1] if len(labels) >= 3 and labels[2] == "svc" else default


def _needs_device_plugin(settings: Settings) -> bool:
    # Bottlerocket NVIDIA AMIs bundle the device plugin; AL2023 NVIDIA AMIs ship only the driver (FACTS.md).
    stack = settings.stack
    return stack.addons.device_plugin and any(p.ami_type != "BOTTLEROCKET_x86_64_NVIDIA" for p in stack.node_pools)


def _stack_line(settings: Settings, key: str) -> int | None:
    return settings.stack_src.line(("config", f"inference:{key}")) if settings.stack_src else None


def _model_plan(ctx: _Ctx, spec: ModelSpec, pool: NodePoolCfg, it: InstanceType, aggregate: int, per_client: int,
                surge: bool) -> ModelPlan:
    engine = ENGINES[spec.engine]
    namespace = ctx.settings.stack.namespace
    cold = _cold_start(spec, it, aggregate, per_client)
    prefetch = _prefetch(spec, cold.read_mibps)
    model_path = f"{CACHE_MOUNT}/{prefetch.directory}"
    args = engine.build_args(EngineInputs(model_path, spec.name, spec.gpu.count, engine.port, spec.context_window,
                                          spec.batch_size))
    rpn = it.gpus // spec.gpu.count
    if not surge:
        ctx.warnings.append(f"model {spec.name}: pool {pool.name} has no room for an extra replica at max, so "
                            "updates replace one replica at a time (maxSurge 0, maxUnavailable 1): capacity dips")
    if not is_pinned(spec):
        ctx.warnings.append(f"model {spec.name}: revision '{spec.revision}' is not a pinned commit; its weights are "
                            "fetched once and never refreshed by themselves: pin a commit for production")
    cpu, memory, shm = _resources(spec, it)
    if memory < spec.size_gib / spec.gpu.count:
        ctx.warnings.append(f"model {spec.name}: {memory} GiB of host memory per replica is less than one shard of "
                            f"the weights ({spec.size_gib / spec.gpu.count:.0f} GiB): eager loading may run out of "
                            "memory; use a larger instance size")
    waves = spec.max_replicas  # rolling updates replace one replica per wave
    gpu_price = (pool.hourly_price or it.hourly_usd) / it.gpus * HOURS_PER_MONTH
    kv = spec.gpu.count * it.gpu_memory_gib * GPU_MEMORY_UTILIZATION - spec.size_gib
    return ModelPlan(
        name=spec.name, engine=spec.engine, image=spec.image or engine.image, command=engine.command,
        args=(*args, *spec.engine_args),
        env=(("HF_HUB_OFFLINE", "1"), ("HOME", "/tmp"), ("HF_HOME", "/tmp/hf"), ("MODEL_PATH", model_path),
             *sorted(spec.env.items())),
        port=engine.port, health_path=engine.health_path, metrics_path=engine.metrics_path,
        pool=pool.name, gpu_type=it.gpu_type, gpus=spec.gpu.count,
        replicas=None if spec.autoscaling else spec.replicas,
        min_replicas=spec.min_replicas, max_replicas=spec.max_replicas, replicas_per_node=rpn,
        nodes_at_min=math.ceil(spec.min_replicas / rpn), nodes_at_max=math.ceil(spec.max_replicas / rpn),
        weights_gib=spec.size_gib, gpu_memory_gib=spec.gpu.count * it.gpu_memory_gib, kv_headroom_gib=round(kv, 1),
        cpu_request=cpu, memory_gib=memory, shm_gib=shm, model_path=model_path,
        node_selector={NODE_LABEL_POOL: pool.name, NODE_LABEL_GPU: it.gpu_type},
        cold_start=cold, startup_failure_threshold=math.ceil(cold.budget_s / PROBE_PERIOD_S),
        probe_period_s=PROBE_PERIOD_S, progress_deadline_s=cold.budget_s + AWAIT_MARGIN_S,
        create_timeout_s=cold.budget_s + AWAIT_MARGIN_S,
        update_timeout_s=min(cold.budget_s + cold.estimate_s * (waves - 1) + AWAIT_MARGIN_S, 12 * 3600),
        prestop_sleep_s=PRESTOP_SLEEP_S, termination_grace_s=PRESTOP_SLEEP_S + REQUEST_TIMEOUT_S,
        max_surge=1 if surge else 0, max_unavailable=0 if surge else 1, pdb_max_unavailable=1,
        autoscale=_autoscale(spec, namespace, cold.estimate_s), prefetch=prefetch,
        monthly_usd_min=round(gpu_price * spec.gpu.count * spec.min_replicas, 2),
        monthly_usd_max=round(gpu_price * spec.gpu.count * spec.max_replicas, 2),
    )
