"""plan(settings): every decision and number, or a PlanError listing every problem found."""

from __future__ import annotations

import math

from ..catalog import PRICES_AS_OF, InstanceType
from ..charts import CHARTS
from ..engines import ENGINES, EngineInputs, platform_env
from ..errors import PlanError, Problem
from ..settings import ModelSpec, NodePoolCfg, Settings, StackCfg
from . import autoscaling, capacity, coldstart, multinode, placement, rollout
from .cost import cache_monthly, model_cost
from .records import (
    AddonsPlan,
    CachePlan,
    Chart,
    ClusterPlan,
    Container,
    EngineMonitor,
    Fit,
    ModelPlan,
    NetworkPlan,
    Placement,
    Plan,
    PoolPlan,
    Resources,
    Scaling,
    StackCost,
    Volumes,
    WeightsCheck,
)
from .units import number

CACHE_MOUNT = "/models"
CLAIM_NAME = "model-weights"
UTILITY_IMAGE = "busybox:1.37.0"  # the weights check; small, pinned by tag
SCRAPE_INTERVAL = "15s"
IMDS_CIDR = "169.254.169.254/32"  # EC2 instance metadata service
POD_IDENTITY_CIDR = "169.254.170.23/32"  # EKS Pod Identity agent (EKS user guide, "Pod Identity")


def plan(settings: Settings) -> Plan:
    """Decide everything, or raise PlanError with every problem found."""
    stack = settings.stack
    problems: list[Problem] = []
    warnings: list[str] = []
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
    pools = capacity.pool_plans(settings, chosen, items, problems, warnings)
    weights = sum(spec.size_gib for spec in settings.models)
    biggest = max((spec.size_gib for spec in settings.models), default=0)
    if capacity_gib is not None and weights + biggest > capacity_gib:
        problems.append(settings.stack_problem(
            ("cache",), f"the weight cache holds {capacity_gib} GiB but the models need {number(weights)} GiB plus "
            f"{number(biggest)} GiB of room to fetch a new revision of the largest one; allowed: at least "
            f"{math.ceil(weights + biggest)} GiB"))
    if problems:
        raise PlanError(problems)

    by_name = {p.name: p for p in pools}
    models = [_model_plan(stack, spec, pool, it, by_name[pool.name], fits[index], aggregate, per_client, warnings)
              for index, spec, pool, it in chosen]
    if stack.cache.kind == "efs":
        warnings.append(f"cache efs: each client reads at most {coldstart.EFS_PER_CLIENT_MIBPS} MiB/s "
                        "(1.5 GiB/s): large models start slowly; fsx-lustre scales with throughputPerTiB")
    spanning = {spec.name: multinode.nodes_per_replica(spec, it) for _, spec, _, it in chosen}
    if any(n > 1 for n in spanning.values()) and not stack.addons.leader_worker_set:
        warnings.append("models span several nodes (" + ", ".join(n for n, k in spanning.items() if k > 1) + ") as "
                        "LeaderWorkerSets, but addons.leaderWorkerSet is off: the LWS controller must already run in "
                        "the cluster (or set addons.leaderWorkerSet: true)")
    cache = _cache_plan(stack, capacity_gib, weights, aggregate, per_client,
                        coldstart.all_start_s(settings.models, aggregate, per_client, spanning))
    store = cache.monthly_usd or 0.0
    total = StackCost(round(sum(p.monthly_usd_min for p in pools) + store, 2),
                      round(sum(p.monthly_usd_max for p in pools) + store, 2), PRICES_AS_OF)
    return Plan(
        target=stack.target, stack=settings.stack_name, namespace=stack.namespace,
        kubernetes_version=stack.kubernetes_version, models=tuple(models), pools=tuple(pools), cache=cache,
        cluster=_cluster_plan(stack), network=_network_plan(stack), addons=_addons_plan(stack, pools),
        monitors=tuple(EngineMonitor(name, ENGINES[name].metrics_path, SCRAPE_INTERVAL)
                       for name in sorted({m.engine for m in models})) if stack.monitoring.pod_monitor else (),
        hf_token=stack.hf_token, warnings=tuple(warnings), cost=total)


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
    fetch = coldstart.prefetch(spec, cold.read_mibps, CACHE_MOUNT)
    tp, _ = multinode.parallelism(spec, it)
    base = engine.build_args(EngineInputs(fetch.directory, spec.name, tp, engine.port,
                                          spec.context_window, spec.batch_size, spec.kv_cache_dtype == "fp8"))
    multi = multinode.multinode(spec, it, pool_plan.efa is not None, base)
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
    return ModelPlan(
        name=spec.name, engine=spec.engine,
        container=Container(
            image=spec.image or engine.image, command=engine.command, args=multinode.args(spec, it, base, leader=True),
            env=(*platform_env(fetch.directory), *sorted(spec.env.items())), port=engine.port,
            health_path=engine.health_path, metrics_path=engine.metrics_path),
        placement=Placement(
            pool=pool.name, gpu_type=it.gpu_type, gpus=spec.gpu.count, replicas_per_node=rpn,
            nodes_at_min=nodes_min, nodes_at_max=nodes_max,
            node_selector=placement.node_selector(pool, it)),
        resources=Resources(cpu_request=cpu, memory_gib=memory, shm_gib=shm, tmp_gib=placement.TMP_GIB),
        volumes=Volumes(claim=CLAIM_NAME, mount_path=CACHE_MOUNT, model_path=fetch.directory,
                        marker_path=fetch.marker),
        probes=rollout.probes(engine.health_path, cold),
        scaling=_scaling(spec, stack, cold.estimate_s, multi is not None),
        rollout=rollout.rollout(cold, spec.max_replicas, spec.rollout == "surge"),
        fit=fit, cold_start=cold, cost=model_cost(spec, pool_plan),
        weights_check=WeightsCheck(image=UTILITY_IMAGE, cpu_request="10m", cpu_limit="100m", memory="16Mi"),
        prefetch=fetch, multinode=multi)


def _scaling(spec: ModelSpec, stack: StackCfg, estimate_s: int, leaders: bool) -> Scaling:
    out = autoscaling.scaling(spec, stack.autoscaler, stack.namespace, stack.monitoring.prometheus_url, estimate_s)
    return multinode.leader_scaling(out, spec.name, stack.namespace) if leaders else out


def _cache_plan(stack: StackCfg, capacity_gib: int | None, weights: float, aggregate: int, per_client: int,
                all_start: int) -> CachePlan:
    c = stack.cache
    s3 = getattr(c, "s3_import_path", None)
    return CachePlan(
        kind=c.kind, claim_name=CLAIM_NAME, capacity_gib=capacity_gib,
        storage_class=getattr(c, "storage_class", None), throughput_per_tib=getattr(c, "throughput_per_tib", None),
        subnet_id=getattr(c, "subnet_id", None), s3_import_path=None if s3 is None else s3.rstrip("/") + "/",
        weights_gib=round(weights, 1), aggregate_mibps=aggregate, per_client_mibps=per_client,
        all_start_s=all_start, monthly_usd=cache_monthly(stack, weights))


def _cluster_plan(stack: StackCfg) -> ClusterPlan | None:
    c = stack.cluster
    if stack.target != "eks" or c is None:
        return None
    return ClusterPlan(c.name, tuple(c.subnet_ids), tuple(c.security_group_ids), c.node_role_arn)


def _network_plan(stack: StackCfg) -> NetworkPlan:
    return NetworkPlan(tuple(stack.client_namespaces),
                       _service_namespace(stack.monitoring.prometheus_url, stack.namespace),
                       IMDS_CIDR, POD_IDENTITY_CIDR)


def _addons_plan(stack: StackCfg, pools: list[PoolPlan]) -> AddonsPlan:
    def chart(key: str, on: bool) -> Chart | None:
        pin = CHARTS[key]
        return Chart(key, pin.chart, pin.version, pin.repo, pin.namespace) if on else None

    # Bottlerocket NVIDIA AMIs bundle the device plugin; AL2023 NVIDIA AMIs ship only the driver (EKS user guide,
    # "Amazon EKS optimized accelerated AMIs").
    plugin = stack.addons.device_plugin and any(p.ami_type != "BOTTLEROCKET_x86_64_NVIDIA" for p in stack.node_pools)
    return AddonsPlan(device_plugin=chart("device-plugin", plugin), keda=chart("keda", stack.addons.keda),
                      dcgm_exporter=chart("dcgm-exporter", stack.addons.dcgm_exporter),
                      dcgm_service_monitor=stack.monitoring.pod_monitor, gpu_node_label=placement.NODE_LABEL_GPU,
                      leader_worker_set=chart("leader-worker-set", stack.addons.leader_worker_set),
                      efa_device_plugin=chart("efa-device-plugin", any(p.efa for p in pools)))


def _service_namespace(url: str, default: str) -> str:
    """The namespace of an in-cluster Service URL (http://NAME.NAMESPACE.svc...), else the model namespace."""
    host = url.split("://", 1)[-1].split("/", 1)[0].split(":", 1)[0]
    labels = host.split(".")
    return labels[1] if len(labels) >= 3 and labels[2] == "svc" else default
