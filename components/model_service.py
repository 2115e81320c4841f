"""ModelService: one model's Deployment, Service, PodDisruptionBudget and autoscaler, from its ModelPlan."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pulumi

from inference.plan.records import ModelPlan, Probe

from .conventions import (
    CONTAINER_SECURITY_CONTEXT,
    GPU_TOLERATION,
    MODEL_SERVER,
    POD_SECURITY_CONTEXT,
    PORT_NAME,
    SERVICE_PORT,
    KubeObject,
    labels,
    selector,
    workload_skips,
)


@dataclass(frozen=True)
class ModelServiceArgs:
    model: ModelPlan
    namespace: str
    depends_on: list[pulumi.Resource] = field(default_factory=list)  # what the Deployment waits for (its Job, ...)


def _probe(p: Probe) -> dict[str, Any]:
    return {"httpGet": {"path": p.path, "port": PORT_NAME}, "periodSeconds": p.period_s,
            "failureThreshold": p.failure_threshold, "timeoutSeconds": p.timeout_s}


def _weights_check(m: ModelPlan) -> dict[str, Any]:
    """Init container: fail fast, with the fix in the message, when the revision's weights are not cached."""
    marker, check = m.volumes.marker_path, m.weights_check
    message = (f"weights for model {m.name} revision {m.prefetch.revision} are not in the cache ({marker} missing); "
               f"the prefetch Job {m.prefetch.job_name} must complete first: run 'pulumi up' or check that Job")
    return {
        "name": "check-weights", "image": check.image,
        "command": ["sh", "-c", f'test -f "{marker}" || {{ echo "{message}" >&2; exit 1; }}'],
        "resources": {"requests": {"cpu": check.cpu_request, "memory": check.memory},
                      "limits": {"cpu": check.cpu_limit, "memory": check.memory}},
        "securityContext": CONTAINER_SECURITY_CONTEXT,
        "volumeMounts": [{"name": "weights", "mountPath": m.volumes.mount_path, "readOnly": True}],
    }


def pod_template(m: ModelPlan) -> dict[str, Any]:
    """The model's pod template: engine container, GPU placement, cache mount, probes, restricted security."""
    c, r, gpus = m.container, m.resources, str(m.placement.gpus)
    memory = f"{r.memory_gib}Gi"
    engine = {
        "name": "engine", "image": c.image, "command": list(c.command), "args": list(c.args),
        "env": [{"name": k, "value": v} for k, v in c.env],
        "ports": [{"name": PORT_NAME, "containerPort": c.port, "protocol": "TCP"}],
        # No CPU limit: throttling the engine's scheduler thread stalls the GPU. Memory request = limit.
        "resources": {"requests": {"cpu": r.cpu_request, "memory": memory, "nvidia.com/gpu": gpus},
                      "limits": {"memory": memory, "nvidia.com/gpu": gpus}},
        "startupProbe": _probe(m.probes.startup),
        "readinessProbe": _probe(m.probes.readiness),
        "livenessProbe": _probe(m.probes.liveness),
        "lifecycle": {"preStop": {"sleep": {"seconds": m.rollout.prestop_sleep_s}}},
        "securityContext": CONTAINER_SECURITY_CONTEXT,
        "volumeMounts": [{"name": "weights", "mountPath": m.volumes.mount_path, "readOnly": True},
                         {"name": "shm", "mountPath": "/dev/shm"}, {"name": "tmp", "mountPath": "/tmp"}],
    }
    volumes: list[dict[str, Any]] = [
        {"name": "weights", "persistentVolumeClaim": {"claimName": m.volumes.claim, "readOnly": True}},
        {"name": "shm", "emptyDir": {"medium": "Memory", "sizeLimit": f"{r.shm_gib}Gi"}},
        {"name": "tmp", "emptyDir": {"sizeLimit": f"{r.tmp_gib}Gi"}},
    ]
    if c.config is not None:
        engine["volumeMounts"].append({"name": "engine-config", "mountPath": c.config.mount_path, "readOnly": True})
        volumes.append({"name": "engine-config", "configMap": {"name": c.config.config_map}})
    if m.volumes.compile_subpath is not None:
        # The same claim again, writable, for the engine's compile cache only: the weights stay read-only.
        engine["volumeMounts"].append({"name": "compile-cache", "mountPath": m.volumes.compile_mount,
                                       "subPath": m.volumes.compile_subpath})
        volumes.append({"name": "compile-cache", "persistentVolumeClaim": {"claimName": m.volumes.claim}})
    spread = [{"maxSkew": 1, "topologyKey": key, "whenUnsatisfiable": "ScheduleAnyway",
               "labelSelector": {"matchLabels": selector(m.name, MODEL_SERVER)}}
              for key in ("topology.kubernetes.io/zone", "kubernetes.io/hostname")]
    return {
        "metadata": {"labels": {**labels(m.name, MODEL_SERVER), "inference/engine": m.engine,
                                "inference/pool": m.placement.pool},
                     "annotations": {"inference/revision": m.prefetch.revision}},
        "spec": {
            "automountServiceAccountToken": False,
            "enableServiceLinks": False,
            "securityContext": POD_SECURITY_CONTEXT,
            "nodeSelector": dict(m.placement.node_selector),
            "tolerations": [GPU_TOLERATION],
            "topologySpreadConstraints": spread,
            "terminationGracePeriodSeconds": m.rollout.termination_grace_s,
            "initContainers": [_weights_check(m)],
            "containers": [engine],
            "volumes": volumes,
        },
    }


class ModelService(pulumi.ComponentResource):
    """Serves one model: Deployment, Service, PDB, and a KEDA ScaledObject or HPA when it autoscales."""

    def __init__(self, name: str, args: ModelServiceArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("inference:model:ModelService", name, None, opts)
        m = args.model
        child = pulumi.ResourceOptions(parent=self)
        meta = {"name": m.name, "namespace": args.namespace, "labels": labels(m.name, MODEL_SERVER)}
        match = {"matchLabels": selector(m.name, MODEL_SERVER)}

        spec: dict[str, Any] = {
            "selector": match,
            "revisionHistoryLimit": m.rollout.revision_history_limit,
            "progressDeadlineSeconds": m.rollout.progress_deadline_s,
            "strategy": {"type": "RollingUpdate",
                         "rollingUpdate": {"maxSurge": m.rollout.max_surge,
                                           "maxUnavailable": m.rollout.max_unavailable}},
            "template": pod_template(m),
        }
        if m.scaling.replicas is not None:  # under an autoscaler the field is left to it
            spec["replicas"] = m.scaling.replicas
        timeouts = pulumi.CustomTimeouts(create=f"{m.rollout.create_timeout_s}s",
                                         update=f"{m.rollout.update_timeout_s}s")
        depends_on = list(args.depends_on)
        self.config_map: KubeObject | None = None
        if m.container.config is not None:
            self.config_map = KubeObject(
                f"{name}-engine-config", "v1", "ConfigMap",
                metadata={**meta, "name": m.container.config.config_map},
                data=dict(m.container.config.files), opts=child)
            depends_on.append(self.config_map)
        self.deployment = KubeObject(
            f"{name}-deploy", "apps/v1", "Deployment", spec=spec,
            metadata={**meta, "annotations": workload_skips([m.container.image, m.weights_check.image], gpu=True)},
            opts=pulumi.ResourceOptions(parent=self, custom_timeouts=timeouts, depends_on=depends_on))
        self.service = KubeObject(
            f"{name}-svc", "v1", "Service", metadata=meta,
            spec={"type": "ClusterIP", "selector": selector(m.name, MODEL_SERVER),
                  "ports": [{"name": PORT_NAME, "port": SERVICE_PORT, "targetPort": PORT_NAME, "protocol": "TCP"}]},
            opts=child)
        self.pdb = KubeObject(
            f"{name}-pdb", "policy/v1", "PodDisruptionBudget", metadata=meta,
            spec={"maxUnavailable": m.rollout.pdb_max_unavailable, "selector": match},
            opts=child)
        self.autoscaler = autoscaler(name, m, meta, child, {"apiVersion": "apps/v1", "kind": "Deployment",
                                                            "name": m.name})
        self.url = f"http://{m.name}.{args.namespace}.svc.cluster.local:{SERVICE_PORT}"
        self.register_outputs({"url": self.url, "deployment": m.name})


def autoscaler(name: str, m: ModelPlan, meta: dict[str, Any], child: pulumi.ResourceOptions,
               target: dict[str, str]) -> pulumi.CustomResource | None:
    """The model's KEDA ScaledObject or HPA on `target` (any kind with a scale subresource), when it autoscales."""
    a, s = m.scaling.autoscale, m.scaling
    if a is None:
        return None
    if a.kind == "hpa":
        return KubeObject(
            f"{name}-hpa", "autoscaling/v2", "HorizontalPodAutoscaler", metadata=meta,
            spec={"scaleTargetRef": target, "minReplicas": s.min_replicas, "maxReplicas": s.max_replicas,
                  "metrics": [{"type": "Pods", "pods": {
                      "metric": {"name": a.hpa_metric},
                      "target": {"type": "AverageValue", "averageValue": a.target_quantity}}}],
                  "behavior": a.behavior},
            opts=child)
    return KubeObject(
        f"{name}-scaledobject", "keda.sh/v1alpha1", "ScaledObject", metadata=meta,
        spec={"scaleTargetRef": target, "minReplicaCount": s.min_replicas, "maxReplicaCount": s.max_replicas,
              "pollingInterval": a.polling_interval_s,
              "advanced": {"horizontalPodAutoscalerConfig": {"behavior": a.behavior}},
              # A failing or empty query is a broken metrics path, not zero load: hold capacity.
              "fallback": {"failureThreshold": a.fallback_failures, "replicas": a.fallback_replicas,
                           "behavior": "currentReplicasIfHigher"},
              "triggers": [{"type": "prometheus", "metadata": {
                  "serverAddress": a.prometheus_url, "query": a.query, "threshold": a.target,
                  # KEDA's default (true) reads an empty result as 0 and scales to minReplicas.
                  "ignoreNullValues": "false"}}]},
        opts=child)
