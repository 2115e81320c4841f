"""Autoscaling: the engine's Prometheus series for one model's pods, and a scale-down that respects cold starts."""

from __future__ import annotations

from typing import Any

from ..engines import ENGINES
from ..settings import ModelSpec
from .records import Autoscale, Scaling
from .units import clamp, number, quantity

POLLING_INTERVAL_S = 15  # KEDA's query period
# Three failed polls (45 s) before the fallback: one lost scrape or a Prometheus restart does not trigger it.
FALLBACK_FAILURES = 3


def scaling(spec: ModelSpec, kind: str, namespace: str, prometheus_url: str, estimate_s: int) -> Scaling:
    auto = None if spec.autoscaling is None else _autoscale(spec, kind, namespace, prometheus_url, estimate_s)
    return Scaling(None if spec.autoscaling else spec.replicas, spec.min_replicas, spec.max_replicas, auto)


def _autoscale(spec: ModelSpec, kind: str, namespace: str, prometheus_url: str, estimate_s: int) -> Autoscale:
    a = spec.autoscaling
    assert a is not None
    series = ENGINES[spec.engine].metrics[a.metric]
    # Deployment pods are named <name>-<template hash>-<suffix>: this matches this model's pods and no other's.
    query = f'sum({series}{{namespace="{namespace}",pod=~"{spec.name}-[a-z0-9]+-[a-z0-9]+"}})'
    # Scale down only after a cold start's worth of calm: a replica removed too early costs minutes to bring back.
    behavior: dict[str, Any] = {
        "scaleUp": {"stabilizationWindowSeconds": 0,
                    "policies": [{"type": "Pods", "value": 2, "periodSeconds": 60}]},
        "scaleDown": {"stabilizationWindowSeconds": clamp(2 * estimate_s, 300, 3600),
                      "policies": [{"type": "Pods", "value": 1, "periodSeconds": 300}]},
    }
    return Autoscale(kind, a.metric, series, query, series.replace(":", "_"), number(a.target), quantity(a.target),
                     prometheus_url, POLLING_INTERVAL_S, behavior, FALLBACK_FAILURES, a.min_replicas)
