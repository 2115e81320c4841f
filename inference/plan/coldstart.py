"""Cold start: how fast the cache reads, how long a replica takes to serve, and the prefetch Job's timing."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping

from ..catalog import InstanceType
from ..engines import ENGINES
from ..settings import ModelSpec, StackCfg
from .records import ColdStart, Prefetch
from .units import clamp

IMAGE_PULL_GIBPS = 0.1  # containerd pull + unpack of a multi-GB serving image, per node (GiB/s)
HOST_TO_GPU_GIBPS = 10.0  # copying weights into GPU memory, per pod (GiB/s)
PVC_PER_CLIENT_MIBPS = 250  # unknown RWX storage class: assume an NFS-class per-client read rate ...
PVC_AGGREGATE_MIBPS = 1024  # ... and aggregate
# EFS elastic throughput: 1500 MiB/s per client, reads of 20-60 GiB/s per file system (lower bound taken); AWS docs,
# "Amazon EFS performance specifications".
EFS_PER_CLIENT_MIBPS = 1500
EFS_AGGREGATE_MIBPS = 20 * 1024
DOWNLOAD_MIBPS = {"hf": 100, "s3": 250}  # prefetch source rate per Job
BUDGET_FACTOR = 2  # startup budget = 2 x estimate ...
BUDGET_MIN_S, BUDGET_MAX_S = 300, 3 * 3600  # ... bounded so small models still fail fast and huge ones stay finite
AWAIT_MARGIN_S = 600

# Prefetch Jobs: downloads are network-bound; the hub client and the AWS CLI use a few threads and buffer in memory.
PREFETCH_CPU, PREFETCH_CPU_LIMIT = "1", "4"
PREFETCH_MEMORY_GIB = 4  # request = limit
PREFETCH_TMP_GIB = 1  # pip's install target and client state; the weights go straight to the cache
PREFETCH_BACKOFF_LIMIT = 3
# Small official images pinned by tag. python-slim has no hub client: the Job installs huggingface_hub at a pinned
# version into /tmp when it has something to fetch (the root file system is read-only).
HF_IMAGE = "python:3.12.10-slim-bookworm"
HF_HUB_VERSION = "2.4.0"
S3_IMAGE = "amazon/aws-cli:2.27.50"


def cache_rates(stack: StackCfg) -> tuple[int, int, int | None]:
    """(aggregate MiB/s, per-client MiB/s or 0 for 'the node's network', capacity GiB or None)."""
    cache = stack.cache
    if cache.kind == "fsx-lustre":
        # MB/s per TiB x TiB, in MiB/s; per client the node's network is the limit (0 = use it).
        return int(cache.throughput_per_tib * cache.storage_gib / 1024 * 1e6 / 2**20), 0, cache.storage_gib
    if cache.kind == "efs":
        return EFS_AGGREGATE_MIBPS, EFS_PER_CLIENT_MIBPS, None
    return PVC_AGGREGATE_MIBPS, PVC_PER_CLIENT_MIBPS, cache.size_gib


def cold_start(spec: ModelSpec, it: InstanceType, aggregate: int, per_client: int, nodes: int = 1) -> ColdStart:
    """image pull + weight read + engine start, each from its path's limit; the budget is twice that, bounded.

    A replica over `nodes` nodes pulls the image on each node at once and each node reads the whole checkpoint: vLLM
    and SGLang ranks iterate over every safetensors file and keep the tensors of their shard (an assumption on the
    safe side for pipeline stages); each pod copies its share into its GPUs."""
    engine = ENGINES[spec.engine]
    node_mibps = int(it.network_gbps * 1000 / 8 * 1000 / 1024)  # Gbit/s -> MiB/s
    client = min(per_client or node_mibps, node_mibps)
    # A model's replicas start together on first deploy and on scale-up bursts; other models are not counted,
    # so adding a model never changes another model's budgets (their sum is reported as `all_start_s`).
    read_mibps = max(1, int(min(client, aggregate / (spec.max_replicas * nodes))))
    pull = engine.image_gib / min(IMAGE_PULL_GIBPS, it.network_gbps / 8)
    read = spec.size_gib * 1024 / read_mibps
    start = engine.start_seconds + spec.size_gib / nodes / HOST_TO_GPU_GIBPS
    estimate = math.ceil(pull) + math.ceil(read) + math.ceil(start)
    return ColdStart(math.ceil(pull), math.ceil(read), math.ceil(start), estimate,
                     clamp(BUDGET_FACTOR * estimate, BUDGET_MIN_S, BUDGET_MAX_S), read_mibps)


def all_start_s(models: tuple[ModelSpec, ...], aggregate: int, per_client: int,
                nodes: Mapping[str, int] | None = None) -> int:
    """Every model's max replicas reading their weights at once (every node of a multi-node replica, by model name
    in `nodes`)."""
    readers = {s.name: s.max_replicas * (nodes or {}).get(s.name, 1) for s in models}
    total_mib = sum(s.size_gib * 1024 * readers[s.name] for s in models)
    clients = sum(readers.values())
    return math.ceil(total_mib / min(aggregate, (per_client or aggregate) * clients))


def prefetch(spec: ModelSpec, read_client_mibps: int, mount: str) -> Prefetch:
    """One Job per (model, source, revision): named by a hash of source and revision, sized from the download."""
    scheme, _, repo = spec.source.partition("://")
    digest = hashlib.sha256(f"{spec.source}@{spec.revision}".encode()).hexdigest()[:8]
    estimate = math.ceil(spec.size_gib * 1024 / min(DOWNLOAD_MIBPS[scheme], read_client_mibps))
    deadline = clamp(3 * estimate + AWAIT_MARGIN_S, 1800, 24 * 3600)
    return Prefetch(
        job_name=f"{spec.name}-fetch-{digest}", scheme=scheme, repo=repo, revision=spec.revision,
        directory=f"{mount}/{spec.name}/{spec.revision}", partial=f"{mount}/{spec.name}/.{spec.revision}.partial",
        marker=f"{mount}/{spec.name}/{spec.revision}.complete",
        image=HF_IMAGE if scheme == "hf" else S3_IMAGE, hub_version=HF_HUB_VERSION,
        service_account=f"{spec.name}-fetch" if scheme == "s3" else None,
        estimate_s=estimate, active_deadline_s=deadline, timeout_s=deadline + AWAIT_MARGIN_S,
        backoff_limit=PREFETCH_BACKOFF_LIMIT, cpu_request=PREFETCH_CPU, cpu_limit=PREFETCH_CPU_LIMIT,
        memory_gib=PREFETCH_MEMORY_GIB, tmp_gib=PREFETCH_TMP_GIB)
