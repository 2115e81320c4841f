"""Placement: which pool serves a model, whether its weights fit the GPUs, node packing and each pod's resources."""

from __future__ import annotations

from ..architectures import Architecture, known
from ..catalog import INSTANCE_TYPES, InstanceType
from ..engines import ENGINES
from ..errors import Problem
from ..settings import ModelSpec, NodePoolCfg, Settings
from . import kvcache, multinode
from .records import Fit
from .units import number

SYSTEM_RESERVED_FRACTION = 0.1  # kubelet, OS and daemonsets keep this share of a node's CPU and RAM ...
SYSTEM_RESERVED_CPU = 0.5  # ... plus this many cores ...
SYSTEM_RESERVED_GIB = 2  # ... and this much RAM
TMP_GIB = 10  # engine compile caches (torch, triton, CUDA graphs) under HOME=/tmp

# Node labels the pools carry and model pods select on.
NODE_LABEL_POOL = "inference/pool"
NODE_LABEL_GPU = "inference/gpu-type"


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


def choose_pool(settings: Settings, index: int, spec: ModelSpec,
                problems: list[Problem]) -> tuple[NodePoolCfg, InstanceType] | None:
    """The first pool (in config order) with the model's GPU type and enough GPUs per node for one replica; else the
    first whose GPUs per node divide the replica's count (a replica over several nodes)."""
    pools = settings.stack.node_pools
    typed = [(p, INSTANCE_TYPES[p.instance_type]) for p in pools
             if INSTANCE_TYPES[p.instance_type].gpu_type == spec.gpu.type]
    if not typed:
        offered = sorted({INSTANCE_TYPES[p.instance_type].gpu_type for p in pools})
        problems.append(settings.model_problem(
            index, "gpu.type", f"no node pool provides GPU type '{spec.gpu.type}'; pools provide: "
            f"{', '.join(offered)} (add a pool in {settings.stack_file})"))
        return None
    for pool, it in typed:
        if it.gpus >= spec.gpu.count:
            return pool, it
    for pool, it in typed:
        if spec.gpu.count % it.gpus == 0:
            return (pool, it) if multinode.spans(settings, index, spec, pool, it, problems) else None
    problems.append(multinode.uneven(settings, index, spec, typed))
    return None


def architecture(spec: ModelSpec) -> Architecture | None:
    """The model's KV-cache facts: its own `architecture:`, else the catalog's for its source."""
    a = spec.architecture
    if a is None:
        return known(spec.source)
    return Architecture(a.layers, a.kv_heads or 0, a.head_dim or 0, a.kv_lora_rank or 0, a.qk_rope_head_dim or 0)


def kv_budget_gib(spec: ModelSpec, it: InstanceType, weights_per_gpu: float, tp: int) -> float:
    return ENGINES[spec.engine].kv_budget_gib(it.gpu_memory_gib, weights_per_gpu, tp)


def check_fit(settings: Settings, index: int, spec: ModelSpec, it: InstanceType, problems: list[Problem],
              warnings: list[str]) -> Fit | None:
    """Weights and one full-context sequence must fit each GPU after the engine's reserve, else a problem.

    Every GPU holds 1/count of the weights; of the KV cache, each GPU holds its tensor-parallel share of the layers
    of its pipeline stage for every token."""
    gpus, gpu = spec.gpu.count, f"{spec.gpu.count} x {spec.gpu.type} ({number(it.gpu_memory_gib)} GiB each)"
    tp, pp = multinode.parallelism(spec, it)
    weights = spec.size_gib / gpus
    kv_gib = kv_budget_gib(spec, it, weights, tp)
    if kv_gib <= 0:
        # The KV budget falls by `slope` GiB per GiB of weights (1, or TensorRT-LLM's free-memory fraction).
        slope = kv_budget_gib(spec, it, 0, tp) - kv_budget_gib(spec, it, 1, tp)
        allowed = gpus * kv_budget_gib(spec, it, 0, tp) / slope
        problems.append(settings.model_problem(
            index, "sizeGiB", f"weights of {number(spec.size_gib)} GiB ({weights:.1f} GiB per GPU) do not fit {gpu} "
            f"with room for a KV cache after engine {spec.engine}'s memory share and reserve; allowed: at most "
            f"{allowed:.1f} GiB, or raise gpu.count or pick a larger GPU"))
        return None
    arch = architecture(spec)
    base = {"weights_gib": spec.size_gib, "gpu_memory_gib": gpus * it.gpu_memory_gib,
            "kv_cache_gib": round(kv_gib * gpus, 1), "kv_cache_dtype": spec.kv_cache_dtype,
            "batch_size": spec.batch_size}
    context = spec.context_window or (arch.max_context if arch else None)
    if arch is None or context is None:
        why = "its source is not in the architecture catalog" if arch is None else "contextWindow is not set"
        warnings.append(f"model {spec.name}: KV-cache fit not checked: {why}; set `architecture: {{layers, kvHeads, "
                        "headDim}` from its config.json" + (" and contextWindow" if arch is None else ""))
        return Fit(**base, architecture=None if arch is None else arch.source, context_window=context,
                   kv_bytes_per_token=None, kv_tokens=None, full_context_sequences=None)
    budget = kv_gib * kvcache.GIB
    need = kvcache.sequence_bytes(arch, tp, spec.kv_cache_dtype, context, pp)
    if need > budget:
        largest = kvcache.largest_context(arch, tp, spec.kv_cache_dtype, budget, pp)
        what = "contextWindow" if spec.context_window else "contextWindow (unset: the model's default)"
        fixes = [f"contextWindow at most {largest}", "raise gpu.count"]
        if spec.kv_cache_dtype == "auto" and ENGINES[spec.engine].kv_cache_fp8:
            fixes.append(f"kvCacheDtype: fp8 (fits {kvcache.largest_context(arch, tp, 'fp8', budget, pp)} tokens)")
        problems.append(settings.model_problem(
            index, "contextWindow", f"{what} {context}: one full-length sequence needs {need / kvcache.GIB:.2f} GiB "
            f"of KV cache per GPU, but {gpu} leave {kv_gib:.2f} GiB per GPU for it after {weights:.1f} GiB of "
            f"weights and engine {spec.engine}'s reserve; allowed: {'; or '.join(fixes)}"))
        return None
    sequences = int(budget // need)
    tokens = int(budget * context // need)
    if spec.batch_size is not None and sequences < spec.batch_size:
        warnings.append(f"model {spec.name}: the KV cache holds {sequences} full-context sequences ({tokens} tokens) "
                        f"but batchSize is {spec.batch_size}: at full length the engine queues or preempts the rest")
    return Fit(**base, architecture=arch.source, context_window=context,
               kv_bytes_per_token=need * gpus // context, kv_tokens=tokens, full_context_sequences=sequences)


def resources(spec: ModelSpec, it: InstanceType) -> tuple[str, int, int]:
    """CPU request, memory (request = limit) in GiB and /dev/shm GiB of one pod: the node's allocatable share per
    GPU (a replica over several nodes has one pod per node, with all of its GPUs)."""
    gpus = min(spec.gpu.count, it.gpus)
    cpu_per_gpu = (it.vcpu * (1 - SYSTEM_RESERVED_FRACTION) - SYSTEM_RESERVED_CPU) / it.gpus
    mem_per_gpu = (it.ram_gib * (1 - SYSTEM_RESERVED_FRACTION) - SYSTEM_RESERVED_GIB) / it.gpus
    milli = int(cpu_per_gpu * gpus * 10) * 100
    memory = int(mem_per_gpu * gpus)
    # NCCL moves tensor-parallel activations through /dev/shm; a memory-backed volume counts against the limit.
    shm = 1 if gpus == 1 else min(4 * gpus, memory // 4)
    return f"{milli}m", memory, shm


def node_selector(pool: NodePoolCfg, it: InstanceType) -> dict[str, str]:
    return {NODE_LABEL_POOL: pool.name, NODE_LABEL_GPU: it.gpu_type}
