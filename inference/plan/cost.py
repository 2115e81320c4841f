"""Cost: dated on-demand prices (or the pool's hourlyPrice), per pool and per model, per month."""

from __future__ import annotations

from ..catalog import InstanceType
from ..settings import ModelSpec, NodePoolCfg
from .records import Cost

HOURS_PER_MONTH = 730


def hourly(pool: NodePoolCfg, it: InstanceType) -> float:
    return pool.hourly_price or it.hourly_usd


def pool_monthly(pool: NodePoolCfg, it: InstanceType) -> tuple[float, float]:
    """The pool's configured floor and ceiling: minNodes and maxNodes running all month."""
    price = hourly(pool, it)
    return round(price * pool.min_nodes * HOURS_PER_MONTH, 2), round(price * pool.max_nodes * HOURS_PER_MONTH, 2)


def model_cost(spec: ModelSpec, pool: NodePoolCfg, it: InstanceType) -> Cost:
    """The model's GPUs at the pool's price per GPU, at min and max replicas."""
    gpu_month = hourly(pool, it) / it.gpus * HOURS_PER_MONTH
    return Cost(round(gpu_month * spec.gpu.count * spec.min_replicas, 2),
                round(gpu_month * spec.gpu.count * spec.max_replicas, 2))
