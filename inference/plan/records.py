"""The plan as immutable records: what every component needs, decided once, grouped by concern.

Components read these and nothing else; `serialize.to_data` turns them into the camelCase data of the stack output
`plan`, the render's plan.json and the report.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Probe:
    path: str
    period_s: int
    failure_threshold: int
    timeout_s: int


@dataclass(frozen=True)
class Probes:
    startup: Probe
    readiness: Probe
    liveness: Probe


@dataclass(frozen=True)
class EngineConfig:
    """Options files the engine reads: a ConfigMap of the model's own, mounted read-only."""

    config_map: str
    mount_path: str
    files: tuple[tuple[str, str], ...]  # (file name, content)


@dataclass(frozen=True)
class Container:
    """The engine container: image, command line, environment, port and the engine's HTTP paths."""

    image: str
    command: tuple[str, ...]
    args: tuple[str, ...]
    env: tuple[tuple[str, str], ...]
    port: int
    health_path: str
    metrics_path: str
    config: EngineConfig | None  # None: the engine reads no options file


@dataclass(frozen=True)
class Placement:
    pool: str
    gpu_type: str
    gpus: int  # per replica
    replicas_per_node: int
    nodes_at_min: int  # nodes the model needs alone
    nodes_at_max: int
    node_selector: dict[str, str]


@dataclass(frozen=True)
class Resources:
    cpu_request: str
    memory_gib: int  # request = limit
    shm_gib: int
    tmp_gib: int  # engine compile caches (torch, triton, CUDA graphs) under HOME=/tmp


@dataclass(frozen=True)
class Volumes:
    """Where the weight cache is mounted and the revision the engine reads."""

    claim: str
    mount_path: str
    model_path: str
    marker_path: str  # the revision's completion marker, as the model pods see it
    compile_subpath: str | None  # the cache's shared, writable compile directory (engines that compile) ...
    compile_mount: str | None  # ... mounted here; the engine's cache root is below it, per revision and image


@dataclass(frozen=True)
class Autoscale:
    kind: str  # keda | hpa
    metric: str  # queue | running | kvCache
    series: str  # the engine's Prometheus series
    query: str  # PromQL for this model's pods only
    hpa_metric: str  # the same series as prometheus-adapter serves it (':' is not allowed in API names)
    target: str  # KEDA threshold (per replica)
    target_quantity: str  # HPA averageValue (Kubernetes quantity)
    prometheus_url: str
    polling_interval_s: int
    behavior: dict[str, Any]  # autoscaling/v2 behavior, shared by HPA and KEDA
    # KEDA: after this many failed queries in a row (an empty result counts), hold the larger of the current count
    # and `fallback_replicas`, instead of reading the failure as zero load.
    fallback_failures: int
    fallback_replicas: int


@dataclass(frozen=True)
class Scaling:
    replicas: int | None  # None when an autoscaler owns the count
    min_replicas: int
    max_replicas: int
    autoscale: Autoscale | None


@dataclass(frozen=True)
class Rollout:
    max_surge: int
    max_unavailable: int
    pdb_max_unavailable: int
    revision_history_limit: int
    progress_deadline_s: int
    create_timeout_s: int
    update_timeout_s: int
    prestop_sleep_s: int
    termination_grace_s: int


@dataclass(frozen=True)
class Fit:
    """Weights and KV cache on one replica's GPUs (figures per replica, all its GPUs together)."""

    weights_gib: float
    gpu_memory_gib: float
    kv_cache_gib: float  # what the engine leaves for the KV cache after weights and its reserve
    kv_cache_dtype: str  # auto | fp8
    architecture: str | None  # where the KV-cache facts come from; None: unknown, so the fit is not checked
    context_window: int | None  # the sequence length checked: contextWindow, else the model's own maximum
    kv_bytes_per_token: int | None  # of a full-context sequence, averaged over its tokens
    kv_tokens: int | None  # tokens of full-context sequences the cache holds
    full_context_sequences: int | None
    batch_size: int | None


@dataclass(frozen=True)
class ColdStart:
    """How long a replica takes to serve: on a fresh node (the first pod of a new revision on a node that has not
    pulled the engine image) and on a warm one (image pre-pulled, compile cache filled), beside the physical
    limit of its weights' path."""

    loader: str  # default | runai-streamer
    image_pull_s: int  # fresh nodes only: the pool's pre-pull DaemonSet fills every node that joins
    weight_read_s: int
    engine_start_s: int  # with a warm compile cache
    compile_s: int  # what an empty compile cache adds (the first start of a revision and engine version)
    estimate_s: int  # fresh: pull + read + start + compile
    warm_s: int  # warm: read + start
    budget_s: int  # the startup probe: 2 x (read + start + compile), bounded; the pull happens before it runs
    read_mibps: int  # the read rate the estimate assumes for one replica
    limit_link: str  # the tightest link between the weights and the GPUs ...
    limit_mibps: int  # ... its rate for one replica ...
    limit_s: int  # ... and the weights over it: no loader reads faster
    floor_s: int  # limit_s plus the engine's own start: the fastest a warm start can be on this path
    warm_ratio: float  # warm_s / floor_s, two decimals: how close a warm start comes to that floor
    streamer_concurrency: int | None  # runai-streamer: parallel reads


@dataclass(frozen=True)
class Cost:
    monthly_usd_min: float
    monthly_usd_max: float


@dataclass(frozen=True)
class WeightsCheck:
    """The model pod's init container that refuses to start the engine before the revision is cached."""

    image: str
    cpu_request: str
    cpu_limit: str
    memory: str


@dataclass(frozen=True)
class Prefetch:
    job_name: str
    scheme: str  # hf | s3
    repo: str  # ORG/REPO or BUCKET/PREFIX
    revision: str
    directory: str  # the revision's directory, absolute, as the Job sees the cache
    partial: str  # the download in progress, renamed to `directory` when complete
    marker: str  # written after the rename; its presence means the weights are complete
    compile_dir: str | None  # the cache's compile directory, created (owned by the pods' user) for model pods
    image: str
    hub_version: str | None  # huggingface_hub installed by hf:// Jobs; None: the image has it (or an s3 source)
    hf_endpoint: str | None  # HF_ENDPOINT for hf:// Jobs (a mirror); None: the public hub
    min_kib: int  # the download must hold at least this much ...
    max_kib: int  # ... and at most this much, or the Job fails before marking it complete
    service_account: str | None  # s3 sources: the account EKS Pod Identity gives the bucket role
    estimate_s: int
    active_deadline_s: int
    timeout_s: int
    backoff_limit: int
    cpu_request: str
    cpu_limit: str
    memory_gib: int
    tmp_gib: int


@dataclass(frozen=True)
class MultiNode:
    """A replica larger than one node: a LeaderWorkerSet group of one pod per node, restarted as a whole."""

    nodes_per_replica: int  # LeaderWorkerSet size: the leader and nodes_per_replica - 1 workers
    gpus_per_pod: int  # all GPUs of a node
    tensor_parallel: int
    pipeline_parallel: int
    worker_args: tuple[str, ...]  # the leader's are the container's args
    restart_policy: str  # LeaderWorkerSet leaderWorkerTemplate.restartPolicy
    efa_devices: int  # vpc.amazonaws.com/efa per pod; 0 without EFA
    launch: str  # where the engine's multi-node launch comes from


@dataclass(frozen=True)
class ModelPlan:
    name: str
    engine: str
    container: Container
    placement: Placement
    resources: Resources
    volumes: Volumes
    probes: Probes
    scaling: Scaling
    rollout: Rollout
    fit: Fit
    cold_start: ColdStart
    cost: Cost
    weights_check: WeightsCheck
    prefetch: Prefetch
    multinode: MultiNode | None = None  # None: one replica fits one node and is a Deployment's pod


@dataclass(frozen=True)
class Efa:
    """Elastic Fabric Adapter on a pool serving multi-node replicas, in one cluster placement group."""

    interfaces: int  # one EFA per network card
    subnet_ids: tuple[str, ...]  # one subnet: a cluster placement group lies in one Availability Zone


@dataclass(frozen=True)
class Prepull:
    """A DaemonSet per pool and engine image that pulls the image onto every node of the pool as it joins. One per
    image, named by it, so a model never changes another image's DaemonSet: the first model of an image on a pool
    adds it, the last one removes it."""

    name: str
    pool: str
    image: str
    node_selector: dict[str, str]
    pause_image: str  # what the DaemonSet's pod runs once the images are pulled
    cpu: str
    memory: str


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
    nodes_for_updates: int  # at max replicas plus one extra replica per model with rollout surge
    gpus_at_min: int
    gpus_at_max: int
    hourly_usd: float
    monthly_usd_min: float  # the nodes demanded at min replicas (at least minNodes) running all month
    monthly_usd_max: float  # the same at max replicas
    models: tuple[str, ...]
    # The existing node group's size is outside minNodes-maxNodes (minNodes raised, maxNodes lowered): send this
    # desired size once; None: the cluster autoscaler owns it (desiredSize ignored after creation).
    desired_nodes: int | None
    efa: Efa | None = None  # None: no model spans nodes here, or the instance type has no EFA, or `efa: false`


@dataclass(frozen=True)
class CachePlan:
    kind: str  # fsx-lustre | efs | pvc
    claim_name: str
    capacity_gib: int | None  # None: elastic (EFS)
    storage_class: str | None  # pvc
    throughput_per_tib: int | None  # fsx-lustre
    subnet_id: str | None  # fsx-lustre
    s3_import_path: str | None  # fsx-lustre, with a trailing '/'
    weights_gib: float
    aggregate_mibps: int
    per_client_mibps: int  # 0: the node's network is the limit
    all_start_s: int  # every model's max replicas reading at once
    monthly_usd: float | None  # None: a storage class of unknown price
    target: CacheTarget | None  # cache.coldStartTarget, when set


@dataclass(frozen=True)
class CacheTarget:
    """cache.coldStartTarget: what the cache must read for every model's replicas to start (warm) within it."""

    target_s: int
    needed_mibps: int  # aggregate, for the most demanding model's replicas starting together
    model: str  # that model
    storage_gib: int | None  # the cheapest FSx for Lustre that meets it: capacity ...
    throughput_per_tib: int | None  # ... and throughput tier ...
    monthly_usd: float | None  # ... and its price


@dataclass(frozen=True)
class ClusterPlan:
    """The existing EKS cluster (target eks only)."""

    name: str
    subnet_ids: tuple[str, ...]
    security_group_ids: tuple[str, ...]  # extra node security groups, besides the cluster's own
    node_role_arn: str | None  # None: the program creates the node role


@dataclass(frozen=True)
class NetworkPlan:
    client_namespaces: tuple[str, ...]  # may call the model Services
    metrics_namespace: str  # where Prometheus runs: it scrapes the model pods
    imds_cidr: str
    pod_identity_cidr: str


@dataclass(frozen=True)
class Chart:
    key: str
    chart: str
    version: str
    repo: str
    namespace: str


@dataclass(frozen=True)
class AddonsPlan:
    device_plugin: Chart | None  # off when disabled or every pool runs Bottlerocket, which bundles it
    keda: Chart | None
    dcgm_exporter: Chart | None
    dcgm_service_monitor: bool
    selector_labels: dict[str, str]  # on the DCGM exporter's ServiceMonitor
    gpu_node_label: str  # only nodes of the GPU pools carry it
    leader_worker_set: Chart | None = None  # the LeaderWorkerSet controller, for multi-node models
    efa_device_plugin: Chart | None = None  # when any pool uses EFA


@dataclass(frozen=True)
class EngineMonitor:
    """One PodMonitor per engine in use: every model pod of the engine serves metrics at the same path."""

    engine: str
    metrics_path: str
    interval: str
    pod_target_labels: tuple[str, ...]  # pod labels copied onto every series (model, pool)


@dataclass(frozen=True)
class AlertRule:
    alert: str
    expr: str
    for_: str
    severity: str
    summary: str
    description: str


@dataclass(frozen=True)
class RuleGroup:
    name: str
    rules: tuple[AlertRule, ...]


@dataclass(frozen=True)
class Panel:
    title: str
    unit: str  # Grafana unit id
    targets: tuple[tuple[str, str], ...]  # (legend, PromQL)


@dataclass(frozen=True)
class Dashboard:
    uid: str
    title: str
    config_map: str
    panels: tuple[Panel, ...]


@dataclass(frozen=True)
class MonitoringPlan:
    """What Prometheus scrapes and evaluates and what Grafana shows; every monitoring object carries the labels."""

    selector_labels: dict[str, str]
    monitors: tuple[EngineMonitor, ...]  # empty when monitoring.podMonitor is off
    alerts: tuple[RuleGroup, ...]  # empty when monitoring.alerts is off
    dashboard: Dashboard | None


@dataclass(frozen=True)
class StackCost:
    """The whole stack per month: every pool's demanded nodes plus the cache, at min and at max replicas."""

    monthly_usd_min: float
    monthly_usd_max: float
    prices_as_of: str


@dataclass(frozen=True)
class Plan:
    target: str  # render | eks
    stack: str
    namespace: str
    kubernetes_version: str
    models: tuple[ModelPlan, ...]
    pools: tuple[PoolPlan, ...]
    prepull: tuple[Prepull, ...]
    cache: CachePlan
    cluster: ClusterPlan | None
    network: NetworkPlan
    addons: AddonsPlan
    monitoring: MonitoringPlan
    hf_token: bool  # whether the stack sets inference:hfToken (its value never reaches the plan)
    warnings: tuple[str, ...]
    cost: StackCost
