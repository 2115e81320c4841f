"""Probes, rolling updates and timeouts, all derived from the model's cold-start budget."""

from __future__ import annotations

import math

from .coldstart import AWAIT_MARGIN_S
from .records import ColdStart, Probe, Probes, Rollout

PROBE_PERIOD_S = 10  # startup and readiness
READINESS_FAILURES, PROBE_TIMEOUT_S = 3, 5
LIVENESS_PERIOD_S, LIVENESS_FAILURES, LIVENESS_TIMEOUT_S = 30, 5, 10
REQUEST_TIMEOUT_S = 300  # longest request an engine serves before the gateway gives up
PRESTOP_SLEEP_S = 15  # lets endpoint removal reach every proxy before the engine stops accepting requests
REVISION_HISTORY = 3
MAX_UPDATE_S = 12 * 3600


def probes(health_path: str, health_timeout_s: int, cold: ColdStart) -> Probes:
    """The startup probe allows the whole budget; readiness and liveness are fixed, short, after it. Each waits at
    least as long as one health check of the engine takes, and probes no more often than that."""
    timeout = max(PROBE_TIMEOUT_S, health_timeout_s)
    period = max(PROBE_PERIOD_S, timeout)
    return Probes(
        startup=Probe(health_path, period, math.ceil(cold.budget_s / period), timeout),
        readiness=Probe(health_path, period, READINESS_FAILURES, timeout),
        liveness=Probe(health_path, max(LIVENESS_PERIOD_S, timeout), LIVENESS_FAILURES,
                       max(LIVENESS_TIMEOUT_S, health_timeout_s)))


def rollout(cold: ColdStart, max_replicas: int, surge: bool) -> Rollout:
    """Surge one replica when there is room, else replace one; await one cold start per replica on update."""
    waves = max_replicas  # rolling updates replace one replica per wave
    # The image is pulled before the startup probe runs: the Deployment and Pulumi wait for both.
    first = cold.image_pull_s + cold.budget_s + AWAIT_MARGIN_S
    return Rollout(
        max_surge=1 if surge else 0, max_unavailable=0 if surge else 1, pdb_max_unavailable=1,
        revision_history_limit=REVISION_HISTORY, progress_deadline_s=first, create_timeout_s=first,
        update_timeout_s=min(first + cold.estimate_s * (waves - 1), MAX_UPDATE_S),
        prestop_sleep_s=PRESTOP_SLEEP_S, termination_grace_s=PRESTOP_SLEEP_S + REQUEST_TIMEOUT_S)
