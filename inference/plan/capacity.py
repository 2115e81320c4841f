"""Capacity: every pool must hold all its models at max replicas; what each pool demands at min and max."""

from __future__ import annotations

from ..catalog import INSTANCE_TYPES, InstanceType
from ..errors import Problem
from ..settings import ModelSpec, NodePoolCfg, Settings
from .cost import pool_monthly
from .multinode import efa, nodes_per_replica, replica_items
from .placement import NODE_LABEL_GPU, NODE_LABEL_POOL, pack_nodes
from .records import PoolPlan
from .units import nodes

Chosen = tuple[int, ModelSpec, NodePoolCfg, InstanceType]


def demand(chosen: list[Chosen], pools: list[NodePoolCfg]) -> dict[str, tuple[list[int], list[int]]]:
    """Per pool: the GPUs every replica takes on each of its nodes, at min and at max replicas."""
    items: dict[str, tuple[list[int], list[int]]] = {p.name: ([], []) for p in pools}
    for _, spec, pool, it in chosen:
        items[pool.name][0].extend(replica_items(spec, it) * spec.min_replicas)
        items[pool.name][1].extend(replica_items(spec, it) * spec.max_replicas)
    return items


def pool_plans(settings: Settings, chosen: list[Chosen], items: dict[str, tuple[list[int], list[int]]],
               problems: list[Problem], warnings: list[str], node_sizes: dict[str, int]) -> list[PoolPlan]:
    out = []
    for pool_index, pool in enumerate(settings.stack.node_pools):
        it = INSTANCE_TYPES[pool.instance_type]
        at_min, at_max = items[pool.name]
        nodes_min, nodes_max = pack_nodes(at_min, it.gpus), pack_nodes(at_max, it.gpus)
        users = [s for _, s, p, _ in chosen if p.name == pool.name]
        # Every surge model may update at once (one `pulumi up` rolls all changed Deployments in parallel), each
        # starting one extra replica (all the nodes of a multi-node one) before it stops an old one: the pool keeps
        # room for all of them.
        surging = [s for s in users if s.rollout == "surge"]
        nodes_update = pack_nodes([*at_max, *(n for s in surging for n in replica_items(s, it))], it.gpus)
        if nodes_max > pool.max_nodes:
            who = ", ".join(f"{s.name} {s.max_replicas}x{s.gpu.count} GPUs" + (
                f" ({nodes_per_replica(s, it)} nodes per replica)" if nodes_per_replica(s, it) > 1 else "")
                for s in users)
            problems.append(settings.stack_problem(
                ("nodePools", pool_index, "maxNodes"), f"pool {pool.name} needs {nodes_max} nodes ({it.gpus} GPUs "
                f"each) at max replicas, allows {pool.max_nodes}: {who}; short by {nodes_max - pool.max_nodes} "
                "node(s): raise maxNodes or lower maxReplicas"))
        elif nodes_update > pool.max_nodes:
            problems.append(settings.stack_problem(
                ("nodePools", pool_index, "maxNodes"), f"pool {pool.name} holds its models at max replicas "
                f"({nodes(nodes_max)}) but not the extra replica each model with rollout surge starts during an "
                f"update ({', '.join(s.name for s in surging)}): that needs {nodes_update} nodes, maxNodes is "
                f"{pool.max_nodes}; allowed: maxNodes {nodes_update} or more, or `rollout: replace` on some of these "
                "models in the models file (an update then stops one replica before starting its successor)"))
        elif nodes_min > pool.min_nodes:
            warnings.append(f"pool {pool.name}: min replicas need {nodes(nodes_min)} but minNodes is "
                            f"{pool.min_nodes}; pods wait for the cluster autoscaler on first deploy")
        hourly, month_min, month_max = pool_monthly(pool, it, nodes_min, nodes_max)
        out.append(PoolPlan(
            name=pool.name, instance_type=pool.instance_type, gpu_type=it.gpu_type, gpus_per_node=it.gpus,
            min_nodes=pool.min_nodes, max_nodes=pool.max_nodes, capacity_type=pool.capacity_type,
            ami_type=pool.ami_type, disk_gib=pool.disk_gib,
            labels={NODE_LABEL_POOL: pool.name, NODE_LABEL_GPU: it.gpu_type},
            nodes_at_min=nodes_min, nodes_at_max=nodes_max, nodes_for_updates=nodes_update,
            gpus_at_min=sum(at_min), gpus_at_max=sum(at_max),
            hourly_usd=hourly, monthly_usd_min=month_min, monthly_usd_max=month_max,
            models=tuple(s.name for s in users), efa=efa(settings, pool, it, users),
            desired_nodes=desired_nodes(pool, node_sizes.get(pool.name))))
    return out


def desired_nodes(pool: NodePoolCfg, current: int | None) -> int | None:
    """The node group's desired size to send, or None to leave it to the cluster autoscaler: only when the existing
    group's size lies outside the new minNodes-maxNodes (EKS refuses a desired size outside min and max, and the
    autoscaler owns the size otherwise)."""
    if current is None:
        return None
    return min(max(current, pool.min_nodes), pool.max_nodes) if not pool.min_nodes <= current <= pool.max_nodes \
        else None

