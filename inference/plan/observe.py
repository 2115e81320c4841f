"""What the stack watches: Prometheus alert rules and a Grafana dashboard, the same whatever the models.

Every expression selects by the stack's namespace and the platform's labels and names, never by a model, so adding
or removing a model changes neither (blast radius). Series come from the engine table (every engine, used or not),
the DCGM exporter and kube-state-metrics (part of kube-prometheus-stack).
"""

from __future__ import annotations

from ..engines import ENGINES
from .records import AlertRule, Dashboard, Panel, RuleGroup

# GPUs allocated but idle: under 5% busy for an hour is a replica nobody uses, billed by the hour. DCGM_FI_DEV_GPU_UTIL
# is busy time (NVIDIA DCGM field docs), so a low value is conclusive even if a high one is not.
GPU_IDLE_PERCENT, GPU_IDLE_FOR = 5, "1h"
KV_FULL_FRACTION, KV_FULL_FOR = 0.95, "10m"  # past this the engine preempts or queues requests
QUEUE_GROWING_WINDOW, QUEUE_GROWING_FOR = "10m", "10m"
PREFETCH_FAILED_FOR = "0m"
RESTART_WINDOW = "30m"
DASHBOARD_CONFIG_MAP = "inference-dashboard"

# Target labels PodMonitors copy from the model pods onto every engine series (podTargetLabels), sanitised by
# Prometheus ('/' and '.' become '_'): the model's name and its pool.
MODEL_LABEL, POOL_LABEL = "app.kubernetes.io/name", "inference/pool"
POD_TARGET_LABELS = (MODEL_LABEL, POOL_LABEL)


def prom_label(label: str) -> str:
    """A Kubernetes label as Prometheus names it after target relabelling."""
    return "".join(c if c.isalnum() or c == "_" else "_" for c in label)


MODEL, POOL = prom_label(MODEL_LABEL), prom_label(POOL_LABEL)


def _series(metric: str, namespace: str) -> str:
    """One engine metric of every engine that has it, in the namespace, as one union."""
    names = sorted({e.metrics[metric] for e in ENGINES.values() if metric in e.metrics})
    return " or ".join(f'{{__name__="{n}",namespace="{namespace}"}}' for n in names)


def _by_model(expr: str) -> str:
    return f"sum by ({MODEL}, {POOL}) ({expr})"


def _gpu(field: str, namespace: str, agg: str) -> str:
    """A DCGM per-GPU field for the model pods, labelled with their model and pool through the pods' `up` series.

    DCGM labels each GPU with the pod that holds it (`pod`, `namespace`; the chart's ServiceMonitor must honour
    them: honorLabels); `up` of the PodMonitor targets carries the pods' model and pool labels."""
    pods = f'max by (namespace, pod, {MODEL}, {POOL}) (up{{namespace="{namespace}",{POOL}!=""}})'
    return (f'{agg} by ({MODEL}, {POOL}) ({field}{{namespace="{namespace}",pod!=""}} '
            f"* on (namespace, pod) group_left ({MODEL}, {POOL}) {pods})")


def alert_groups(namespace: str, prefetch_job_pattern: str) -> tuple[RuleGroup, ...]:
    """The stack's alerts: idle GPUs, KV cache near full, queue growing, not Ready past the startup budget, prefetch
    failed."""
    queue = f"max by (namespace, pod) ({_series('queue', namespace)})"
    kv = f"max by (namespace, pod) ({_series('kvCache', namespace)})"
    gpus = [
        AlertRule(
            "InferenceGpuIdle", _gpu("DCGM_FI_DEV_GPU_UTIL", namespace, "avg") + f" < {GPU_IDLE_PERCENT}",
            GPU_IDLE_FOR, "warning",
            f"GPUs of model {{{{ $labels.{MODEL} }}}} (pool {{{{ $labels.{POOL} }}}}) are allocated but idle",
            f"Under {GPU_IDLE_PERCENT}% busy for {GPU_IDLE_FOR}: lower its replicas or minReplicas in models.yaml."),
    ]
    serving = [
        AlertRule(
            "InferenceKvCacheNearlyFull", f"{kv} > {KV_FULL_FRACTION}", KV_FULL_FOR, "warning",
            "KV cache of pod {{ $labels.pod }} is over " + f"{KV_FULL_FRACTION:.0%} full",
            "Requests queue or are preempted: add replicas, or lower batchSize or contextWindow."),
        AlertRule(
            "InferenceQueueGrowing",
            f"({queue} > 0) and (deriv(({queue})[{QUEUE_GROWING_WINDOW}:1m]) > 0)", QUEUE_GROWING_FOR, "warning",
            "Request queue of pod {{ $labels.pod }} keeps growing",
            "Waiting requests rose for " + QUEUE_GROWING_FOR + ": the model is at capacity (check maxReplicas and "
            "the pool's maxNodes) or its autoscaler gets no metrics."),
        AlertRule(
            # progressDeadlineSeconds is the planned startup budget plus margin: Kubernetes sets Progressing=False
            # once new pods miss it.
            "InferenceModelNotReady",
            f'kube_deployment_status_condition{{namespace="{namespace}",condition="Progressing",status="false"}} == 1',
            "0m", "critical",
            "Deployment {{ $labels.deployment }} is not Ready past its startup budget",
            "Its pods did not become Ready within progressDeadlineSeconds (the planned cold-start budget plus "
            "margin): see the pods' events and the engine's log."),
        AlertRule(
            # The startup probe allows exactly the budget: a restart of the engine is a pod that spent it (or a
            # crash after start).
            "InferenceEngineRestarted",
            f'increase(kube_pod_container_status_restarts_total{{namespace="{namespace}",container="engine"}}'
            f"[{RESTART_WINDOW}]) > 0",
            "0m", "warning",
            "Engine of pod {{ $labels.pod }} restarted",
            "Killed by its startup probe past the planned budget, by its liveness probe, or it crashed."),
    ]
    prefetch = [
        AlertRule(
            "InferencePrefetchFailed",
            f'kube_job_failed{{namespace="{namespace}",condition="true",job_name=~"{prefetch_job_pattern}"}} == 1',
            PREFETCH_FAILED_FOR, "critical",
            "Prefetch Job {{ $labels.job_name }} failed",
            "The model's weights are not in the cache and its pods will not start: read the Job's log (wrong "
            "source, missing access, size outside sizeGiB's tolerance), fix models.yaml and run pulumi up."),
    ]
    return (RuleGroup("inference-gpus", tuple(gpus)), RuleGroup("inference-serving", tuple(serving)),
            RuleGroup("inference-prefetch", tuple(prefetch)))


def dashboard(stack: str, namespace: str) -> Dashboard:
    """GPU utilisation and memory by model and pool, queue, running, KV use, replicas against min/max, cold starts."""
    deployments = hpa = f'namespace="{namespace}"'
    # Only pods running an engine container (model pods, not prefetch Jobs).
    engine_pods = ("* on (namespace, pod) group_left () max by (namespace, pod) "
                   f'(kube_pod_container_info{{namespace="{namespace}",container="engine"}})')
    panels = (
        Panel("GPU utilisation by model and pool", "percent",
              ((f"{{{{{MODEL}}}}} / {{{{{POOL}}}}}", _gpu("DCGM_FI_DEV_GPU_UTIL", namespace, "avg")),)),
        Panel("GPU memory used by model and pool", "decmbytes",
              ((f"{{{{{MODEL}}}}} / {{{{{POOL}}}}}", _gpu("DCGM_FI_DEV_FB_USED", namespace, "sum")),)),
        Panel("Requests waiting", "short", ((f"{{{{{MODEL}}}}}", _by_model(_series("queue", namespace))),)),
        Panel("Requests running", "short", ((f"{{{{{MODEL}}}}}", _by_model(_series("running", namespace))),)),
        Panel("KV cache use (highest pod)", "percentunit",
              ((f"{{{{{MODEL}}}}}", f"max by ({MODEL}, {POOL}) ({_series('kvCache', namespace)})"),)),
        Panel("Replicas against min and max", "short", (
            ("{{deployment}} available", f"kube_deployment_status_replicas_available{{{deployments}}}"),
            ("{{deployment}} wanted", f"kube_deployment_spec_replicas{{{deployments}}}"),
            ("{{horizontalpodautoscaler}} min", f"kube_horizontalpodautoscaler_spec_min_replicas{{{hpa}}}"),
            ("{{horizontalpodautoscaler}} max", f"kube_horizontalpodautoscaler_spec_max_replicas{{{hpa}}}"))),
        Panel("Cold starts: model pods not Ready, and model pods created in the last hour", "short", (
            ("not ready", f'sum(kube_pod_status_ready{{namespace="{namespace}",condition="false"}} {engine_pods})'),
            ("created", f"count((kube_pod_created{{namespace=\"{namespace}\"}} {engine_pods}) > (time() - 3600))"))),
    )
    return Dashboard(uid=f"inference-{namespace}"[:40], title=f"Inference: {namespace} (stack {stack})",
                     config_map=DASHBOARD_CONFIG_MAP, panels=panels)
