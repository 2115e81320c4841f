"""Capacity: every pool must hold all its models at max replicas; what each pool demands at min and max."""

from __future__ import annotations

from ..catalog import INSTANCE_TYPES, InstanceType
from ..errors import Problem
from ..settings import ModelSpec, NodePoolCfg, Settings
from .cost import hourly, pool_monthly
from .placement import NODE_LABEL_GPU, NODE_LABEL_POOL, pack_nodes
from .records import PoolPlan
from .units import nodes

Chosen = tuple[int, ModelSpec, NodePoolCfg, InstanceType]


def demand(chosen: list[Chosen], pools: list[NodePoolCfg]) -> dict[str, tuple[list[int], list[int]]]:
    """Per pool: the GPUs of every replica at min and at max replicas."""
    items: dict[str, tuple[list[int], list[int]]] = {p.name: ([], []) for p in pools}
    for _, spec, pool, _ in chosen:
        items[pool.name][0].extend([spec.gpu.count] * spec.min_replicas)
        items[pool.name][1].extend([spec.gpu.count] * spec.max_replicas)
    return items


def pool_plans(settings: Settings, chosen: list[Chosen], items: dict[str, tuple[list[int], list[int]]],
               problems: list[Problem], warnings: list[str]) -> list[PoolPlan]:
    out = []
    for pool_index, pool in enumerate(settings.stack.node_pools):
        it = INSTANCE_TYPES[pool.instance_type]
        at_min, at_max = items[pool.name]
        nodes_min, nodes_max = pack_nodes(at_min, it.gpus), pack_nodes(at_max, it.gpus)
        users = [s for _, s, p, _ in chosen if p.name == pool.name]
        if nodes_max > pool.max_nodes:
            who = ", ".join(f"{s.name} {s.max_replicas}x{s.gpu.count} GPUs" for s in users)
            problems.append(settings.stack_problem(
                ("nodePools", pool_index, "maxNodes"), f"pool {pool.name} needs {nodes_max} nodes ({it.gpus} GPUs "
                f"each) at max replicas, allows {pool.max_nodes}: {who}; short by {nodes_max - pool.max_nodes} "
                "node(s): raise maxNodes or lower maxReplicas"))
        elif nodes_min > pool.min_nodes:
            warnings.append(f"pool {pool.name}: min replicas need {nodes(nodes_min)} but minNodes is "
                            f"{pool.min_nodes}; pods wait for the cluster autoscaler on first deploy")
        month_min, month_max = pool_monthly(pool, it)
        out.append(PoolPlan(
            name=pool.name, instance_type=pool.instance_type, gpu_type=it.gpu_type, gpus_per_node=it.gpus,
            min_nodes=pool.min_nodes, max_nodes=pool.max_nodes, capacity_type=pool.capacity_type,
            ami_type=pool.ami_type, disk_gib=pool.disk_gib,
            labels={NODE_LABEL_POOL: pool.name, NODE_LABEL_GPU: it.gpu_type},
            nodes_at_min=nodes_min, nodes_at_max=nodes_max, gpus_at_min=sum(at_min), gpus_at_max=sum(at_max),
            hourly_usd=hourly(pool, it), monthly_usd_min=month_min, monthly_usd_max=month_max,
            models=tuple(s.name for s in users)))
    return out


def surge_room(chosen: list[Chosen], items: dict[str, tuple[list[int], list[int]]]) -> dict[tuple[str, int], bool]:
    """Whether one more replica still fits the pool at everyone's max: once per (pool, GPU count), not per model."""
    room: dict[tuple[str, int], bool] = {}
    for _, spec, pool, it in chosen:
        key = (pool.name, spec.gpu.count)
        if key not in room:
            room[key] = pack_nodes([*items[pool.name][1], spec.gpu.count], it.gpus) <= pool.max_nodes
    return room
