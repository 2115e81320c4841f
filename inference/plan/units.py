"""Small conversions the planner's figures share: bounds, Kubernetes quantities, plain numbers, node counts."""

from __future__ import annotations

import math


def clamp(value: float, low: int, high: int) -> int:
    """`value` rounded up, then bounded to [low, high]."""
    return int(min(max(math.ceil(value), low), high))


def quantity(value: float) -> str:
    """A number as a Kubernetes quantity: integers as-is, fractions in milli-units."""
    return str(int(value)) if float(value).is_integer() else f"{round(value * 1000)}m"


def number(value: float) -> str:
    """A number as people write it: 16, not 16.0."""
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def nodes(count: int) -> str:
    return f"{count} node" if count == 1 else f"{count} nodes"
