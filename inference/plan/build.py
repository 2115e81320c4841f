"""plan(settings): every decision and number, or a PlanError listing every problem found."""

from __future__ import annotations

import hashlib
import math
import re

from ..catalog import PRICES_AS_OF, InstanceType
from ..charts import CHARTS, outside_range
from ..engines import ENGINES, EngineInputs, platform_env
from ..errors import PlanError, Problem
from ..settings import ModelSpec, NodePoolCfg, Settings, StackCfg
from . import autoscaling, capacity, coldstart, multinode, observe, placement, rollout
from .cost import cache_monthly, model_cost
from .records import (
    AddonsPlan,
    CachePlan,
    CacheTarget,
    Chart,
    ClusterPlan,
    Container,
    EngineConfig,
    EngineMonitor,
    Fit,
    ModelPlan,
    MonitoringPlan,
    NetworkPlan,
    Placement,
    Plan,
    PoolPlan,
    Prepull,
    Resources,
    Scaling,
    StackCost,
    Volumes,
    WeightsCheck,
)
from .units import number

CACHE_MOUNT = "/models"
# The cache's compile directory, written by model pods (the weights stay read-only): created by every prefetch Job,
# owned by the pods' user. Not a model name (DNS labels start with a letter), so no model directory can be it.
COMPILE_SUBPATH = ".compile"
COMPILE_MOUNT = "/compile-cache"
PAUSE_IMAGE = "registry.k8s.io/pause:3.10"  # the pre-pull DaemonSet's container once its init containers pulled
CLAIM_NAME = "model-weights"
UTILITY_IMAGE = "busybox:1.37.0"  # the weights check; small, pinned by tag
SCRAPE_INTERVAL = "15s"
IMDS_CIDR = "169.254.169.254/32"  # EC2 instance metadata service
POD_IDENTITY_CIDR = "169.254.170.23/32"  # EKS Pod Identity agent (EKS user guide, "Pod Identity")


def plan(settings: Settings, subnet_zones: dict[str, str] | None = None,
         node_sizes: dict[str, int] | None = None) -> Plan:
    """Decide everything, or raise PlanError with every problem found. `subnet_zones` (eks): each cluster subnet's
    Availability Zone; `node_sizes` (eks): each pool's existing node group's desired size; both from one lookup
    before planning."""
    stack = settings.stack
    problems: list[Problem] = []
    warnings: list[str] = []
    if stack.cache.kind == "efs" and stack.cluster is not None and subnet_zones:
        _one_subnet_per_zone(settings, stack.cluster.subnet_ids, subnet_zones, problems)
    aggregate, per_client, capacity_gib = coldstart.cache_rates(stack)
    chosen: list[capacity.Chosen] = []
    fits: dict[int, Fit] = {}
    for index, spec in enumerate(settings.models):
        picked = placement.choose_pool(settings, index, spec, problems)
        fit = None if picked is None else placement.check_fit(settings, index, spec, picked[1], problems, warnings)
        if picked is not None and fit is not None:
            chosen.append((index, spec, *picked))
            fits[index] = fit

    items = capacity.demand(chosen, stack.node_pools)
    pools = capacity.pool_plans(settings, chosen, items, problems, warnings, node_sizes or {})
    weights = sum(spec.size_gib for spec in settings.models)
    biggest = max((spec.size_gib for spec in settings.models), default=0)
    if capacity_gib is not None and weights + biggest > capacity_gib:
        problems.append(settings.stack_problem(
            ("cache",), f"the weight cache holds {capacity_gib} GiB but the models need {number(weights)} GiB plus "
            f"{number(biggest)} GiB of room to fetch a new revision of the largest one; allowed: at least "
            f"{math.ceil(weights + biggest)} GiB"))
    spanning = {spec.name: multinode.nodes_per_replica(spec, it) for _, spec, _, it in chosen}
    target, impossible = coldstart.cache_target(stack, [(spec, it, spanning[spec.name]) for _, spec, _, it in chosen],
                                                weights + biggest, per_client)
    if target is not None:
        _check_target(settings, target, impossible, aggregate, problems)
    if problems:
        raise PlanError(problems)

    by_name = {p.name: p for p in pools}
    models = [_model_plan(stack, spec, pool, it, by_name[pool.name], fits[index], aggregate, per_client, warnings)
              for index, spec, pool, it in chosen]
    if stack.cache.kind == "efs":
        warnings.append(f"cache efs: each client reads at most {coldstart.EFS_PER_CLIENT_MIBPS} MiB/s "
                        "(1.5 GiB/s): large models start slowly; fsx-lustre scales with throughputPerTiB")
    addons = _addons_plan(stack, pools)
    for chart in (addons.device_plugin, addons.keda, addons.dcgm_exporter):
        pin = CHARTS[chart.key] if chart else None
        if pin and outside_range(pin, stack.kubernetes_version):
            warnings.append(f"add-on {pin.chart} {pin.version} supports Kubernetes {pin.kubernetes_min or 'any'}-"
                            f"{pin.kubernetes_max or 'any'} ({pin.range_source}); kubernetesVersion is "
                            f"{stack.kubernetes_version}: it may misbehave there")
    if any(n > 1 for n in spanning.values()) and not stack.addons.leader_worker_set:
        warnings.append("models span several nodes (" + ", ".join(n for n, k in spanning.items() if k > 1) + ") as "
                        "LeaderWorkerSets, but addons.leaderWorkerSet is off: the LWS controller must already run in "
                        "the cluster (or set addons.leaderWorkerSet: true)")
    cache = _cache_plan(stack, capacity_gib, weights, aggregate, per_client,
                        coldstart.all_start_s(settings.models, aggregate, per_client, spanning), target)
    store = cache.monthly_usd or 0.0
    total = StackCost(round(sum(p.monthly_usd_min for p in pools) + store, 2),
                      round(sum(p.monthly_usd_max for p in pools) + store, 2), PRICES_AS_OF)
    return Plan(
        target=stack.target, stack=settings.stack_name, namespace=stack.namespace,
        kubernetes_version=stack.kubernetes_version, models=tuple(models), pools=tuple(pools),
        prepull=_prepull(pools, models), cache=cache,
        cluster=_cluster_plan(stack), network=_network_plan(stack), addons=addons,
        monitoring=_monitoring_plan(settings.stack_name, stack, {m.engine for m in models}),
        hf_token=stack.hf_token, warnings=tuple(warnings), cost=total)


def _check_target(settings: Settings, target: CacheTarget, impossible: list[str], aggregate: int,
                  problems: list[Problem]) -> None:
    """The configured cache must read what cache.coldStartTarget needs; say which cache would."""
    cache = settings.stack.cache
    when = f"cache.coldStartTarget {cache.cold_start_target}"
    if impossible:
        problems.append(settings.stack_problem(
            ("cache", "coldStartTarget"), f"{when} cannot be met whatever the cache: {'; '.join(impossible)}; "
            "allowed: a longer target, loader: runai-streamer in the models file (vLLM), or a node with a faster "
            "network"))
    if target.needed_mibps > aggregate:
        fsx = (f"storageGiB {target.storage_gib} with throughputPerTiB {target.throughput_per_tib} "
               f"(${target.monthly_usd:,.0f}/month)")
        fix = f"set {fsx}" if cache.kind == "fsx-lustre" else f"cache kind fsx-lustre with {fsx}"
        problems.append(settings.stack_problem(
            ("cache", "coldStartTarget"), f"{when}: model {target.model}'s replicas starting together must read "
            f"{target.needed_mibps} MiB/s from the cache, which reads {aggregate} MiB/s; allowed: {fix}, or a "
            "longer target"))


def _prepull(pools: list[PoolPlan], models: list[ModelPlan]) -> tuple[Prepull, ...]:
    """Per pool and engine image its models use, what its nodes pull as they join, before a model pod needs it."""
    out = []
    for pool in pools:
        for image in sorted({m.container.image for m in models if m.placement.pool == pool.name}):
            digest = hashlib.sha256(image.encode()).hexdigest()[:8]
            out.append(Prepull(f"prepull-{pool.name}-{digest}", pool.name, image, dict(pool.labels), PAUSE_IMAGE,
                               "10m", "16Mi"))
    return tuple(out)


def _one_subnet_per_zone(settings: Settings, subnets: list[str], zones: dict[str, str],
                         problems: list[Problem]) -> None:
    """EFS takes one mount target per Availability Zone, and the cache puts one in each cluster subnet."""
    by_zone: dict[str, list[str]] = {}
    for subnet in subnets:
        by_zone.setdefault(zones.get(subnet, "?"), []).append(subnet)
    for zone, shared in sorted(by_zone.items()):
        if len(shared) > 1:
            problems.append(settings.stack_problem(
                ("cluster", "subnetIds"), f"cache efs puts a mount target in each cluster subnet, and EFS allows one "
                f"per Availability Zone, but {', '.join(shared)} are all in {zone}; allowed: at most one subnet per "
                "zone (a mount target serves every subnet of its zone), or cache kind fsx-lustre or pvc"))


def is_pinned(spec: ModelSpec) -> bool:
    """An HF revision is pinned when it is a full commit hash; S3 prefixes are versioned by the user's naming."""
    if spec.source.startswith("hf://"):
        return len(spec.revision) == 40 and all(c in "0123456789abcdef" for c in spec.revision)
    return spec.revision != "main"


def _model_plan(stack: StackCfg, spec: ModelSpec, pool: NodePoolCfg, it: InstanceType, pool_plan: PoolPlan, fit: Fit,
                aggregate: int, per_client: int, warnings: list[str]) -> ModelPlan:
    engine = ENGINES[spec.engine]
    nodes = multinode.nodes_per_replica(spec, it)
    cold = coldstart.cold_start(spec, it, aggregate, per_client, nodes)
    fetch = coldstart.prefetch(spec, cold.read_mibps, CACHE_MOUNT, stack.prefetch,
                               f"{CACHE_MOUNT}/{COMPILE_SUBPATH}" if engine.compile_cache_env else None)
    tp, _ = multinode.parallelism(spec, it)
    base = engine.build_args(EngineInputs(fetch.directory, spec.name, tp, engine.port,
                                          spec.context_window, spec.batch_size, spec.kv_cache_dtype == "fp8",
                                          cold.streamer_concurrency))
    multi = multinode.multinode(spec, it, pool_plan.efa is not None, base)
    image = spec.image or engine.image
    assert image is not None  # validated: a model of an engine without a usable image sets its own
    rpn = it.gpus // spec.gpu.count  # 0 for a replica over several nodes
    nodes_min, nodes_max = ((spec.min_replicas * nodes, spec.max_replicas * nodes) if multi else
                            (math.ceil(spec.min_replicas / rpn), math.ceil(spec.max_replicas / rpn)))
    alternative = multinode.single_node_alternative(spec) if multi else None
    if alternative:
        warnings.append(f"model {spec.name}: one replica spans {nodes} nodes of pool {pool.name} "
                        f"({pool.instance_type}), talking over the network; {alternative} holds its {spec.gpu.count} "
                        "GPUs on one node")
    if spec.rollout == "replace" and spec.min_replicas == 1:
        warnings.append(f"model {spec.name}: rollout replace with one replica stops it before its successor starts: "
                        "every update is an outage of a cold start; use rollout surge or two replicas")
    if not is_pinned(spec):
        warnings.append(f"model {spec.name}: revision '{spec.revision}' is not a pinned commit; its weights are "
                        "fetched once and never refreshed by themselves: pin a commit for production")
    cpu, memory, shm = placement.resources(spec, it)
    if memory < spec.size_gib / spec.gpu.count:
        warnings.append(f"model {spec.name}: {memory} GiB of host memory per replica is less than one shard of "
                        f"the weights ({spec.size_gib / spec.gpu.count:.0f} GiB): eager loading may run out of "
                        "memory; use a larger instance size")
    # The engine's compile cache: shared on the RWX cache, one directory per revision and engine image.
    compile_dir = None
    if engine.compile_cache_env:
        tag = re.sub(r"[^A-Za-z0-9._-]", "_", image.rsplit("/", 1)[-1])
        compile_dir = f"{COMPILE_MOUNT}/{spec.name}/{spec.revision}/{tag}"
    return ModelPlan(
        name=spec.name, engine=spec.engine,
        container=Container(
            image=image, command=engine.command, args=multinode.args(spec, it, base, leader=True),
            env=(*platform_env(fetch.directory, engine.compile_cache_env, compile_dir), *sorted(spec.env.items())),
            port=engine.port,
            health_path=engine.health_path, metrics_path=engine.metrics_path,
            config=EngineConfig(f"{spec.name}-engine-config", engine.config_dir, engine.config_files)
            if engine.config_dir else None),
        placement=Placement(
            pool=pool.name, gpu_type=it.gpu_type, gpus=spec.gpu.count, replicas_per_node=rpn,
            nodes_at_min=nodes_min, nodes_at_max=nodes_max,
            node_selector=placement.node_selector(pool, it)),
        resources=Resources(cpu_request=cpu, memory_gib=memory, shm_gib=shm, tmp_gib=placement.TMP_GIB),
        volumes=Volumes(claim=CLAIM_NAME, mount_path=CACHE_MOUNT, model_path=fetch.directory,
                        marker_path=fetch.marker, compile_subpath=COMPILE_SUBPATH if compile_dir else None,
                        compile_mount=COMPILE_MOUNT if compile_dir else None),
        probes=rollout.probes(engine.health_path, engine.health_timeout_s, cold),
        scaling=_scaling(spec, stack, cold.estimate_s, multi is not None),
        rollout=rollout.rollout(cold, spec.max_replicas, spec.rollout == "surge"),
        fit=fit, cold_start=cold, cost=model_cost(spec, pool_plan),
        weights_check=WeightsCheck(image=UTILITY_IMAGE, cpu_request="10m", cpu_limit="100m", memory="16Mi"),
        prefetch=fetch, multinode=multi)


def _scaling(spec: ModelSpec, stack: StackCfg, estimate_s: int, leaders: bool) -> Scaling:
    out = autoscaling.scaling(spec, stack.autoscaler, stack.namespace, stack.monitoring.prometheus_url, estimate_s)
    return multinode.leader_scaling(out, spec.name, stack.namespace) if leaders else out


def _cache_plan(stack: StackCfg, capacity_gib: int | None, weights: float, aggregate: int, per_client: int,
                all_start: int, target: CacheTarget | None) -> CachePlan:
    c = stack.cache
    s3 = getattr(c, "s3_import_path", None)
    return CachePlan(
        kind=c.kind, claim_name=CLAIM_NAME, capacity_gib=capacity_gib,
        storage_class=getattr(c, "storage_class", None), throughput_per_tib=getattr(c, "throughput_per_tib", None),
        subnet_id=getattr(c, "subnet_id", None), s3_import_path=None if s3 is None else s3.rstrip("/") + "/",
        weights_gib=round(weights, 1), aggregate_mibps=aggregate, per_client_mibps=per_client,
        all_start_s=all_start, monthly_usd=cache_monthly(stack, weights), target=target)


def _cluster_plan(stack: StackCfg) -> ClusterPlan | None:
    c = stack.cluster
    if stack.target != "eks" or c is None:
        return None
    return ClusterPlan(c.name, tuple(c.subnet_ids), tuple(c.security_group_ids), c.node_role_arn)


def _network_plan(stack: StackCfg) -> NetworkPlan:
    return NetworkPlan(tuple(stack.client_namespaces),
                       _service_namespace(stack.monitoring.prometheus_url, stack.namespace),
                       IMDS_CIDR, POD_IDENTITY_CIDR)


def _monitoring_plan(stack_name: str, stack: StackCfg, engines: set[str]) -> MonitoringPlan:
    mon = stack.monitoring
    monitors = tuple(EngineMonitor(name, ENGINES[name].metrics_path, SCRAPE_INTERVAL, observe.POD_TARGET_LABELS)
                     for name in sorted(engines)) if mon.pod_monitor else ()
    return MonitoringPlan(
        selector_labels=dict(mon.selector_labels), monitors=monitors,
        alerts=observe.alert_groups(stack.namespace, coldstart.JOB_NAME_PATTERN) if mon.alerts else (),
        dashboard=observe.dashboard(stack_name, stack.namespace) if mon.dashboards else None)


def _addons_plan(stack: StackCfg, pools: list[PoolPlan]) -> AddonsPlan:
    def chart(key: str, on: bool) -> Chart | None:
        pin = CHARTS[key]
        return Chart(key, pin.chart, pin.version, pin.repo, pin.namespace) if on else None

    # Bottlerocket NVIDIA AMIs bundle the device plugin; AL2023 NVIDIA AMIs ship only the driver (EKS user guide,
    # "Amazon EKS optimized accelerated AMIs").
    plugin = stack.addons.device_plugin and any(p.ami_type != "BOTTLEROCKET_x86_64_NVIDIA" for p in stack.node_pools)
    # GPUs are the platform's cost: on EKS the exporter is on unless the stack turns it off.
    dcgm = stack.addons.dcgm_exporter if stack.addons.dcgm_exporter is not None else stack.target == "eks"
    return AddonsPlan(device_plugin=chart("device-plugin", plugin), keda=chart("keda", stack.addons.keda),
                      dcgm_exporter=chart("dcgm-exporter", dcgm),
                      dcgm_service_monitor=stack.monitoring.pod_monitor,
                      selector_labels=dict(stack.monitoring.selector_labels), gpu_node_label=placement.NODE_LABEL_GPU,
                      leader_worker_set=chart("leader-worker-set", stack.addons.leader_worker_set),
                      efa_device_plugin=chart("efa-device-plugin", any(p.efa for p in pools)))


def _service_namespace(url: str, default: str) -> str:
    """The namespace of an in-cluster Service URL (http://NAME.NAMESPACE.svc...), else the model namespace."""
    host = url.split("://", 1)[-1].split("/", 1)[0].split(":", 1)[0]
    labels = host.split(".")
    return labels[1] if len(labels) >= 3 and labels[2] == "svc" else default
