"""ModelService: one model's Deployment, Service, PodDisruptionBudget, autoscaler and PodMonitor, from its ModelPlan."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from . import checkov_skips
from .planner import CACHE_MOUNT, GPU_TAINT_KEY, ModelPlan
from .podsecurity import CONTAINER_SECURITY_CONTEXT, POD_SECURITY_CONTEXT, UTILITY_IMAGE, labels, selector

COMPONENT = "model-server"
SERVICE_PORT = 80
TMP_SIZE = "10Gi"  # engine compile caches (torch, triton, CUDA graphs) under HOME=/tmp


@dataclass(frozen=True)
class ModelServiceArgs:
    model: ModelPlan
    namespace: str
    cache_claim: pulumi.Input[str]
    autoscaler: str  # keda | hpa
    prometheus_url: str
    pod_monitor: bool
    depends_on: list[pulumi.Resource] = field(default_factory=list)


def _probe(m: ModelPlan, period: int, failures: int, timeout: int) -> dict[str, Any]:
    return {"httpGet": {"path": m.health_path, "port": "http"}, "periodSeconds": period,
            "failureThreshold": failures, "timeoutSeconds": timeout}


def _weights_check(m: ModelPlan) -> dict[str, Any]:
    """Init container: fail fast, with the fix in the message, when the revision's weights are not cached."""
    marker = f"{CACHE_MOUNT}/{m.prefetch.marker}"
    message = (f"weights for model {m.name} revision {m.prefetch.revision} are not in the cache ({marker} missing); "
               f"the prefetch Job {m.prefetch.job_name} must complete first: run 'pulumi up' or check that Job")
    return {
        "name": "check-weights", "image": UTILITY_IMAGE,
        "command": ["sh", "-c", f'test -f "{marker}" || {{ echo "{message}" >&2; exit 1; }}'],
        "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}, "limits": {"cpu": "100m", "memory": "16Mi"}},
        "securityContext": CONTAINER_SECURITY_CONTEXT,
        "volumeMounts": [{"name": "weights", "mountPath": CACHE_MOUNT, "readOnly": True}],
    }


def pod_template(m: ModelPlan, claim: str) -> dict[str, Any]:
    """The model's pod template: engine container, GPU placement, cache mount, probes, restricted security."""
    memory = f"{m.memory_gib}Gi"
    engine = {
        "name": "engine", "image": m.image, "command": list(m.command), "args": list(m.args),
        "env": [{"name": k, "value": v} for k, v in m.env],
        "ports": [{"name": "http", "containerPort": m.port, "protocol": "TCP"}],
        # No CPU limit: throttling the engine's scheduler thread stalls the GPU. Memory request = limit.
        "resources": {"requests": {"cpu": m.cpu_request, "memory": memory, "nvidia.com/gpu": str(m.gpus)},
                      "limits": {"memory": memory, "nvidia.com/gpu": str(m.gpus)}},
        "startupProbe": _probe(m, m.probe_period_s, m.startup_failure_threshold, 5),
        "readinessProbe": _probe(m, 10, 3, 5),
        "livenessProbe": _probe(m, 30, 5, 10),
        "lifecycle": {"preStop": {"sleep": {"seconds": m.prestop_sleep_s}}},
        "securityContext": CONTAINER_SECURITY_CONTEXT,
        "volumeMounts": [{"name": "weights", "mountPath": CACHE_MOUNT, "readOnly": True},
                         {"name": "shm", "mountPath": "/dev/shm"}, {"name": "tmp", "mountPath": "/tmp"}],
    }
    spread = [{"maxSkew": 1, "topologyKey": key, "whenUnsatisfiable": "ScheduleAnyway",
               "labelSelector": {"matchLabels": selector(m.name, COMPONENT)}}
              for key in ("topology.kubernetes.io/zone", "kubernetes.io/hostname")]
    return {
        "metadata": {"labels": {**labels(m.name, COMPONENT), "inference/engine": m.engine},
                     "annotations": {"inference/revision": m.prefetch.revision}},
        "spec": {
            "automountServiceAccountToken": False,
            "enableServiceLinks": False,
            "securityContext": POD_SECURITY_CONTEXT,
            "nodeSelector": dict(m.node_selector),
            "tolerations": [{"key": GPU_TAINT_KEY, "operator": "Exists", "effect": "NoSchedule"}],
            "topologySpreadConstraints": spread,
            "terminationGracePeriodSeconds": m.termination_grace_s,
            "initContainers": [_weights_check(m)],
            "containers": [engine],
            "volumes": [
                {"name": "weights", "persistentVolumeClaim": {"claimName": claim, "readOnly": True}},
                {"name": "shm", "emptyDir": {"medium": "Memory", "sizeLimit": f"{m.shm_gib}Gi"}},
                {"name": "tmp", "emptyDir": {"sizeLimit": TMP_SIZE}},
            ],
        },
    }


class ModelService(pulumi.ComponentResource):
    """Serves one model: Deployment, Service, PDB, KEDA ScaledObject or HPA, optional PodMonitor."""

    def __init__(self, name: str, args: ModelServiceArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("inference:model:ModelService", name, None, opts)
        m = args.model
        child = pulumi.ResourceOptions(parent=self)
        meta = {"name": m.name, "namespace": args.namespace, "labels": labels(m.name, COMPONENT)}
        match = {"matchLabels": selector(m.name, COMPONENT)}

        spec: dict[str, Any] = {
            "selector": match,
            "revisionHistoryLimit": 3,
            "progressDeadlineSeconds": m.progress_deadline_s,
            "strategy": {"type": "RollingUpdate",
                         "rollingUpdate": {"maxSurge": m.max_surge, "maxUnavailable": m.max_unavailable}},
            "template": pulumi.Output.from_input(args.cache_claim).apply(lambda claim: pod_template(m, claim)),
        }
        if m.replicas is not None:  # under an autoscaler the field is left to it
            spec["replicas"] = m.replicas
        timeouts = pulumi.CustomTimeouts(create=f"{m.create_timeout_s}s", update=f"{m.update_timeout_s}s")
        self.deployment = k8s.apps.v1.Deployment(
            f"{name}-deploy", spec=spec,
            metadata={**meta, "annotations": checkov_skips.workload([m.image, UTILITY_IMAGE], gpu=True)},
            opts=pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(custom_timeouts=timeouts,
                                                                            depends_on=args.depends_on)))
        self.service = k8s.core.v1.Service(
            f"{name}-svc", metadata=meta,
            spec={"type": "ClusterIP", "selector": selector(m.name, COMPONENT),
                  "ports": [{"name": "http", "port": SERVICE_PORT, "targetPort": "http", "protocol": "TCP"}]},
            opts=child)
        self.pdb = k8s.policy.v1.PodDisruptionBudget(
            f"{name}-pdb", metadata=meta, spec={"maxUnavailable": m.pdb_max_unavailable, "selector": match},
            opts=child)
        self.autoscaler = self._autoscaler(name, m, args, meta, child)
        self.pod_monitor = None
        if args.pod_monitor:
            self.pod_monitor = k8s.apiextensions.CustomResource(
                f"{name}-podmonitor", api_version="monitoring.coreos.com/v1", kind="PodMonitor", metadata=meta,
                spec={"selector": match,
                      "podMetricsEndpoints": [{"port": "http", "path": m.metrics_path, "interval": "15s"}]},
                opts=child)
        self.url = f"http://{m.name}.{args.namespace}.svc.cluster.local:{SERVICE_PORT}"
        self.register_outputs({"url": self.url, "deployment": self.deployment.metadata["name"]})

    @staticmethod
    def _autoscaler(name: str, m: ModelPlan, args: ModelServiceArgs, meta: dict[str, Any],
                    child: pulumi.ResourceOptions) -> pulumi.CustomResource | None:
        a = m.autoscale
        if a is None:
            return None
        target = {"apiVersion": "apps/v1", "kind": "Deployment", "name": m.name}
        if args.autoscaler == "hpa":
            return k8s.autoscaling.v2.HorizontalPodAutoscaler(
                f"{name}-hpa", metadata=meta,
                spec={"scaleTargetRef": target, "minReplicas": a.min_replicas, "maxReplicas": a.max_replicas,
                      "metrics": [{"type": "Pods", "pods": {
                          "metric": {"name": a.hpa_metric},
                          "target": {"type": "AverageValue", "averageValue": a.target_quantity}}}],
                      "behavior": a.behavior},
                opts=child)
        return k8s.apiextensions.CustomResource(
            f"{name}-scaledobject", api_version="keda.sh/v1alpha1", kind="ScaledObject", metadata=meta,
            spec={"scaleTargetRef": target, "minReplicaCount": a.min_replicas, "maxReplicaCount": a.max_replicas,
                  "pollingInterval": 15,
                  "advanced": {"horizontalPodAutoscalerConfig": {"behavior": a.behavior}},
                  "triggers": [{"type": "prometheus", "metadata": {
                      "serverAddress": args.prometheus_url, "query": a.query, "threshold": a.target}}]},
            opts=child)
