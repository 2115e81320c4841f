"""The planner: fit, capacity, cache, cold start, rollout, autoscaling and cost, decided once from the settings.

Pure Python, no Pulumi. `plan(settings)` returns an immutable Plan (records.py) or raises PlanError listing every
problem; components translate the Plan into resources and never re-derive a number it holds.
"""

from .build import plan
from .records import Plan

__all__ = ["Plan", "plan"]
