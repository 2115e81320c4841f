"""Placement: which pool serves a model, whether its weights fit the GPUs, node packing and each pod's resources."""

from __future__ import annotations

from ..catalog import INSTANCE_TYPES, InstanceType
from ..errors import Problem
from ..settings import ModelSpec, NodePoolCfg, Settings
from .units import number

# vLLM's default share of GPU memory for weights + KV cache (vllm/config.py, CacheConfig.gpu_memory_utilization).
GPU_MEMORY_UTILIZATION = 0.9
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
    """The first pool (in config order) with the model's GPU type and enough GPUs per node for one replica."""
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
    biggest = max(it.gpus for _, it in typed)
    problems.append(settings.model_problem(
        index, "gpu.count", f"tensor-parallel size {spec.gpu.count} exceeds the GPUs of one node ({biggest} in the "
        f"largest '{spec.gpu.type}' pool); allowed: at most {biggest}, or add a pool with a larger instance type"))
    return None


def check_fit(settings: Settings, index: int, spec: ModelSpec, it: InstanceType, problems: list[Problem]) -> bool:
    usable = spec.gpu.count * it.gpu_memory_gib * GPU_MEMORY_UTILIZATION
    if spec.size_gib <= usable:
        return True
    problems.append(settings.model_problem(
        index, "sizeGiB", f"weights of {number(spec.size_gib)} GiB do not fit {spec.gpu.count} x {spec.gpu.type} "
        f"({number(it.gpu_memory_gib)} GiB each, {GPU_MEMORY_UTILIZATION:.0%} usable = {usable:.1f} GiB); allowed: "
        f"at most {usable:.1f} GiB, or raise gpu.count or pick a larger GPU"))
    return False


def kv_headroom_gib(spec: ModelSpec, it: InstanceType) -> float:
    return spec.gpu.count * it.gpu_memory_gib * GPU_MEMORY_UTILIZATION - spec.size_gib


def resources(spec: ModelSpec, it: InstanceType) -> tuple[str, int, int]:
    """CPU request, memory (request = limit) in GiB and /dev/shm GiB: the node's allocatable share per GPU."""
    cpu_per_gpu = (it.vcpu * (1 - SYSTEM_RESERVED_FRACTION) - SYSTEM_RESERVED_CPU) / it.gpus
    mem_per_gpu = (it.ram_gib * (1 - SYSTEM_RESERVED_FRACTION) - SYSTEM_RESERVED_GIB) / it.gpus
    milli = int(cpu_per_gpu * spec.gpu.count * 10) * 100
    memory = int(mem_per_gpu * spec.gpu.count)
    # NCCL moves tensor-parallel activations through /dev/shm; a memory-backed volume counts against the limit.
    shm = 1 if spec.gpu.count == 1 else min(4 * spec.gpu.count, memory // 4)
    return f"{milli}m", memory, shm


def node_selector(pool: NodePoolCfg, it: InstanceType) -> dict[str, str]:
    return {NODE_LABEL_POOL: pool.name, NODE_LABEL_GPU: it.gpu_type}
