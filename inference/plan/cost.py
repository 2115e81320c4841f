"""Cost: dated prices (EC2 on-demand or the pool's hourlyPrice; FSx and EFS storage), per pool, model and stack.

A pool costs the nodes its models demand (bin-packed, at least minNodes) at min and at max replicas; a model costs
its share of its pool's demanded nodes, by GPUs; the stack adds the cache.
"""

from __future__ import annotations

from ..catalog import EFS_GB_MONTH_USD, FSX_GB_MONTH_USD, InstanceType
from ..settings import ModelSpec, NodePoolCfg, StackCfg
from .records import Cost, PoolPlan

HOURS_PER_MONTH = 730


def pool_monthly(pool: NodePoolCfg, it: InstanceType, nodes_min: int, nodes_max: int) -> tuple[float, float, float]:
    """(USD per node-hour, per month at min replicas, per month at max replicas): demanded nodes, at least minNodes."""
    price = pool.hourly_price or it.hourly_usd
    month = price * HOURS_PER_MONTH
    return price, round(month * max(nodes_min, pool.min_nodes), 2), round(month * max(nodes_max, pool.min_nodes), 2)


def model_cost(spec: ModelSpec, pool: PoolPlan) -> Cost:
    """The model's share of the nodes its pool's models demand, by the GPUs its replicas take, at min and max."""
    month = pool.hourly_usd * HOURS_PER_MONTH

    def share(replicas: int, pool_gpus: int, pool_nodes: int) -> float:
        return round(month * pool_nodes * spec.gpu.count * replicas / pool_gpus, 2) if pool_gpus else 0.0

    return Cost(share(spec.min_replicas, pool.gpus_at_min, pool.nodes_at_min),
                share(spec.max_replicas, pool.gpus_at_max, pool.nodes_at_max))


def cache_monthly(stack: StackCfg, weights_gib: float) -> float | None:
    """FSx for Lustre by provisioned capacity and throughput tier; EFS by the GiB stored; a storage class: unknown."""
    cache = stack.cache
    if cache.kind == "fsx-lustre":
        return round(cache.storage_gib * FSX_GB_MONTH_USD[cache.throughput_per_tib], 2)
    if cache.kind == "efs":
        return round(weights_gib * EFS_GB_MONTH_USD, 2)
    return None
