"""The plan as plain data, in camelCase throughout: the stack output `plan`, the render's plan.json, the report."""

from __future__ import annotations

import dataclasses
from typing import Any

from .records import ModelPlan

# Unit suffixes keep their usual spelling (sizeGiB like models.yaml; seconds spelled out like Kubernetes' fields).
UNITS = {"gib": "GiB", "tib": "TiB", "mibps": "MiBps", "usd": "Usd", "s": "Seconds"}

# What the plan shows of each model: the figures it promises. How they become objects (command line, probes,
# volumes, the prefetch script) is in the rendered manifests, not repeated here.
MODEL_FIELDS = ("name", "engine", "placement", "rollout", "fit", "cold_start", "cost")


def camel(name: str) -> str:
    """Python field name -> camelCase key: `budget_s` -> `budgetSeconds`, `weights_gib` -> `weightsGiB`."""
    head, *rest = name.split("_")
    return head + "".join(UNITS.get(part, part[:1].upper() + part[1:]) for part in rest)


def to_data(value: Any) -> Any:
    """Records become mappings with camelCase keys; mappings keep their keys (labels, selectors); tuples lists."""
    if isinstance(value, ModelPlan):
        out = {camel(f): to_data(getattr(value, f)) for f in MODEL_FIELDS}
        out["image"], out["prefetchJob"] = value.container.image, value.prefetch.job_name
        sc, auto = value.scaling, value.scaling.autoscale
        out["scaling"] = {"replicas": sc.replicas, "minReplicas": sc.min_replicas, "maxReplicas": sc.max_replicas,
                          "metric": auto and auto.metric, "target": auto and auto.target}
        out["startupProbe"] = to_data(value.probes.startup)
        if value.multinode is not None:  # single-node models keep their data as it was
            out["multinode"] = {k: v for k, v in to_data(value.multinode).items() if k != "workerArgs"}
        return out
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {camel(f.name): to_data(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {k: to_data(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_data(v) for v in value]
    return value

