"""Cold start: how fast the cache reads, how long a replica takes to serve, and the prefetch Job's timing."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping

from ..catalog import FSX_GB_MONTH_USD, InstanceType
from ..engines import ENGINES
from ..settings import ModelSpec, PrefetchCfg, StackCfg
from .records import CacheTarget, ColdStart, Prefetch
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
# A single reader (the default loaders: one safetensors file after another) reached 312 MB/s where the Run:ai Model
# Streamer reached the device's 1000 MB/s: Llama-3-8B, 15 GB, 48.0 s vs 14.3 s on gp3 (run-ai/runai-model-streamer
# docs/src/benchmarks.md).
SINGLE_READER_MIBPS = 298
# One TCP flow carries at most 5 Gbit/s outside a cluster placement group (EC2 user guide, "Amazon EC2 instance
# network bandwidth"): the streamer's parallel reads are what fill a faster path.
STREAM_MIBPS = 596
STREAMER_MIN_CONCURRENCY, STREAMER_MAX_CONCURRENCY = 16, 64  # 16: the streamer's own default for file reads
# FSx for Lustre PERSISTENT_2 capacities: 1200, 2400, then steps of 2400 GiB (FSx for Lustre user guide).
FSX_STEPS_GIB, FSX_STEP_GIB = (1200, 2400), 2400
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
# Before marking a download complete, the Job checks that it holds between SIZE_LOW x sizeGiB and
# SIZE_HIGH x sizeGiB + SIZE_SLACK_GIB. Below: nothing or part of the model came (a mistyped prefix syncs nothing and
# exits 0). Above: the source holds more than the model (a parent prefix, sibling revisions) and would overrun the
# cache sized from sizeGiB. The band is wide because sizeGiB is often written in GB (7% off) and hub repositories
# may carry a second copy of the weights (meta-llama's original/*.pth about doubles the download).
SIZE_LOW, SIZE_HIGH, SIZE_SLACK_GIB = 0.5, 2.0, 1


def cache_rates(stack: StackCfg) -> tuple[int, int, int | None]:
    """(aggregate MiB/s, per-client MiB/s or 0 for 'the node's network', capacity GiB or None)."""
    cache = stack.cache
    if cache.kind == "fsx-lustre":
        # MB/s per TiB x TiB, in MiB/s; per client the node's network is the limit (0 = use it).
        return int(cache.throughput_per_tib * cache.storage_gib / 1024 * 1e6 / 2**20), 0, cache.storage_gib
    if cache.kind == "efs":
        return EFS_AGGREGATE_MIBPS, EFS_PER_CLIENT_MIBPS, None
    return PVC_AGGREGATE_MIBPS, PVC_PER_CLIENT_MIBPS, cache.size_gib


def read_path(spec: ModelSpec, it: InstanceType, aggregate: int, per_client: int,
              nodes: int = 1) -> tuple[str, int]:
    """The tightest link between the cache and one pod's GPUs, and its rate in MiB/s: the node's network, the
    cache's per-client limit, the pod's share of the cache's aggregate (its model's replicas start together, every
    node of a multi-node replica reading), or copying into GPU memory."""
    links = {
        "node network": int(it.network_gbps * 1000 / 8 * 1000 / 1024),  # Gbit/s -> MiB/s
        "cache per client": per_client or 10**9,  # 0: no per-client limit below the node's network
        # A model's replicas start together on first deploy and on scale-up bursts; other models are not counted,
        # so adding a model never changes another model's budgets (their sum is reported as `all_start_s`).
        "cache aggregate share": int(aggregate / (spec.max_replicas * nodes)),
        "host to GPU": int(HOST_TO_GPU_GIBPS * 1024),
    }
    link = min(links, key=lambda k: links[k])
    return link, max(1, links[link])


def cold_start(spec: ModelSpec, it: InstanceType, aggregate: int, per_client: int, nodes: int = 1) -> ColdStart:
    """image pull + weight read + engine start (+ compile on an empty cache), each from its path's limit.

    A replica over `nodes` nodes pulls the image on each node at once and each node reads the whole checkpoint: vLLM
    and SGLang ranks iterate over every safetensors file and keep the tensors of their shard (an assumption on the
    safe side for pipeline stages); each pod copies its share into its GPUs."""
    engine = ENGINES[spec.engine]
    link, limit = read_path(spec, it, aggregate, per_client, nodes)
    if spec.loader == "runai-streamer":
        # Enough parallel reads to fill the path, one TCP flow each; the streams land straight in GPU memory.
        concurrency = clamp(limit / STREAM_MIBPS, STREAMER_MIN_CONCURRENCY, STREAMER_MAX_CONCURRENCY)
        read_mibps = min(limit, concurrency * STREAM_MIBPS)
        load = 0.0
    else:
        # One reader, then the copy into GPU memory.
        concurrency, read_mibps = None, min(limit, SINGLE_READER_MIBPS)
        load = spec.size_gib / nodes / HOST_TO_GPU_GIBPS
    pull = math.ceil(engine.image_gib / min(IMAGE_PULL_GIBPS, it.network_gbps / 8))
    read = math.ceil(spec.size_gib * 1024 / read_mibps)
    start = math.ceil(engine.start_seconds + load)
    return ColdStart(
        loader=spec.loader, image_pull_s=pull, weight_read_s=read, engine_start_s=start, compile_s=engine.compile_s,
        estimate_s=pull + read + start + engine.compile_s, warm_s=read + start,
        budget_s=clamp(BUDGET_FACTOR * (read + start + engine.compile_s), BUDGET_MIN_S, BUDGET_MAX_S),
        read_mibps=read_mibps, limit_link=link, limit_mibps=limit,
        limit_s=(limit_s := math.ceil(spec.size_gib * 1024 / limit)), floor_s=limit_s + engine.start_seconds,
        warm_ratio=round((read + start) / (limit_s + engine.start_seconds), 2), streamer_concurrency=concurrency)


def cheapest_fsx(needed_mibps: int, capacity_gib: float) -> tuple[int, int, float]:
    """The cheapest FSx for Lustre PERSISTENT_2 (storageGiB, throughputPerTiB, USD/month) holding `capacity_gib`
    and reading `needed_mibps` in aggregate (throughput = tier MB/s per TiB x TiB)."""
    best: tuple[float, int, int] | None = None
    for tier, price in FSX_GB_MONTH_USD.items():
        tib = needed_mibps * 2**20 / 1e6 / tier  # TiB this tier needs for the throughput
        size = max(math.ceil(tib * 1024), math.ceil(capacity_gib), FSX_STEPS_GIB[0])
        size = next((s for s in FSX_STEPS_GIB if s >= size), math.ceil(size / FSX_STEP_GIB) * FSX_STEP_GIB)
        cost = round(size * price, 2)
        if best is None or cost < best[0]:
            best = (cost, size, tier)
    assert best is not None
    return best[1], best[2], best[0]


def cache_target(stack: StackCfg, models: list[tuple[ModelSpec, InstanceType, int]], capacity_gib: float,
                 per_client: int) -> tuple[CacheTarget | None, list[str]]:
    """cache.coldStartTarget: the aggregate read rate every model's replicas need to start on warm nodes within it
    (weights over the time its engine start leaves), the cheapest FSx for Lustre that reads it, and the models
    whose own path (one replica's link, or its engine start) cannot meet it whatever the cache."""
    target = stack.cache.cold_start_target_s
    if target is None or not models:
        return None, []
    needs, impossible = [], []
    for spec, it, nodes in models:  # nodes: of one replica; each of them reads the whole checkpoint
        start = ENGINES[spec.engine].start_seconds + (0 if spec.loader == "runai-streamer"
                                                      else spec.size_gib / nodes / HOST_TO_GPU_GIBPS)
        left = target - start
        per_replica = spec.size_gib * 1024 / left if left > 0 else math.inf
        # What one replica can take: its node's network, the cache per client, its loader's reader.
        link, limit = read_path(spec, it, 10**9, per_client)
        reader = limit if spec.loader == "runai-streamer" else min(limit, SINGLE_READER_MIBPS)
        if per_replica > reader:
            need = f"{math.ceil(per_replica)} MiB/s per replica" if left > 0 else "more time than the target"
            by = link if reader == limit else "one reader, loader default"
            impossible.append(f"model {spec.name} needs {need}; its path reads at most {reader} MiB/s ({by}) and "
                              f"its engine starts in {math.ceil(start)}s")
        needs.append((math.ceil(per_replica * spec.max_replicas * nodes) if left > 0 else 0, spec.name))
    needed, name = max(needs)
    size, tier, price = cheapest_fsx(needed, capacity_gib)
    return CacheTarget(target, needed, name, size, tier, price), impossible


def all_start_s(models: tuple[ModelSpec, ...], aggregate: int, per_client: int,
                nodes: Mapping[str, int] | None = None) -> int:
    """Every model's max replicas reading their weights at once (every node of a multi-node replica, by model name
    in `nodes`)."""
    readers = {s.name: s.max_replicas * (nodes or {}).get(s.name, 1) for s in models}
    total_mib = sum(s.size_gib * 1024 * readers[s.name] for s in models)
    clients = sum(readers.values())
    return math.ceil(total_mib / min(aggregate, (per_client or aggregate) * clients))


JOB_NAME = "{name}-fetch-{digest}"
JOB_NAME_PATTERN = ".+-fetch-[0-9a-f]{8}"  # every prefetch Job's name, for alerts


def prefetch(spec: ModelSpec, read_client_mibps: int, mount: str, cfg: PrefetchCfg,
             compile_dir: str | None) -> Prefetch:
    """One Job per (model, source, revision): named by a hash of source and revision, sized from the download."""
    scheme, _, repo = spec.source.partition("://")
    digest = hashlib.sha256(f"{spec.source}@{spec.revision}".encode()).hexdigest()[:8]
    estimate = math.ceil(spec.size_gib * 1024 / min(DOWNLOAD_MIBPS[scheme], read_client_mibps))
    deadline = clamp(3 * estimate + AWAIT_MARGIN_S, 1800, 24 * 3600)
    return Prefetch(
        job_name=JOB_NAME.format(name=spec.name, digest=digest), scheme=scheme, repo=repo, revision=spec.revision,
        directory=f"{mount}/{spec.name}/{spec.revision}", partial=f"{mount}/{spec.name}/.{spec.revision}.partial",
        marker=f"{mount}/{spec.name}/{spec.revision}.complete", compile_dir=compile_dir,
        image=(cfg.hf_image or HF_IMAGE) if scheme == "hf" else (cfg.s3_image or S3_IMAGE),
        hub_version=HF_HUB_VERSION if scheme == "hf" and cfg.hf_image is None else None,
        hf_endpoint=cfg.hf_endpoint if scheme == "hf" else None,
        min_kib=math.floor(SIZE_LOW * spec.size_gib * 2**20),
        max_kib=math.ceil((SIZE_HIGH * spec.size_gib + SIZE_SLACK_GIB) * 2**20),
        service_account=f"{spec.name}-fetch" if scheme == "s3" else None,
        estimate_s=estimate, active_deadline_s=deadline, timeout_s=deadline + AWAIT_MARGIN_S,
        backoff_limit=PREFETCH_BACKOFF_LIMIT, cpu_request=PREFETCH_CPU, cpu_limit=PREFETCH_CPU_LIMIT,
        memory_gib=PREFETCH_MEMORY_GIB, tmp_gib=PREFETCH_TMP_GIB)
