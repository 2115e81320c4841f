"""LeaderWorkerService: one model whose replica spans several nodes, as a LeaderWorkerSet (kubernetes-sigs/lws v1).

Each replica is a group of one pod per node: the leader (rank 0, serves the API) and workers. The pods are the
single-node model pod (components/model_service.py pod_template) with the engine's multi-node command line, all
GPUs of the node, the node's EFA devices, and probes on the leader only.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import pulumi

from inference.plan.records import ModelPlan

from .conventions import MODEL_SERVER, PORT_NAME, SERVICE_PORT, KubeObject, labels, selector, workload_skips
from .model_service import autoscaler, pod_template

LWS_API_VERSION = "leaderworkerset.x-k8s.io/v1"
# Labels the LWS controller puts on every pod of a group (api/leaderworkerset/v1/leaderworkerset_types.go,
# SetNameLabelKey and WorkerIndexLabelKey); the leader is worker 0.
LWS_NAME_LABEL = "leaderworkerset.sigs.k8s.io/name"
LWS_WORKER_INDEX_LABEL = "leaderworkerset.sigs.k8s.io/worker-index"
EFA_RESOURCE = "vpc.amazonaws.com/efa"  # advertised by the aws-efa-k8s-device-plugin chart


@dataclass(frozen=True)
class LeaderWorkerServiceArgs:
    model: ModelPlan
    namespace: str
    depends_on: list[pulumi.Resource] = field(default_factory=list)  # its Job, device plugins, the LWS controller


def group_pod(m: ModelPlan, leader: bool) -> dict[str, Any]:
    """The leader's or a worker's pod template."""
    mn = m.multinode
    assert mn is not None
    pod = copy.deepcopy(pod_template(m))
    spec = pod["spec"]
    # The pods of a group take whole nodes of one pool; spreading them over zones would put ranks of one replica
    # apart, so only the pool's placement (and its placement group, with EFA) decides where they go.
    del spec["topologySpreadConstraints"]
    engine = spec["containers"][0]
    engine["args"] = list(m.container.args if leader else mn.worker_args)
    devices = {"nvidia.com/gpu": str(mn.gpus_per_pod)}
    if mn.efa_devices:
        devices[EFA_RESOURCE] = str(mn.efa_devices)
    engine["resources"]["requests"].update(devices)
    engine["resources"]["limits"].update(devices)
    if not leader:
        # Workers serve no HTTP (vLLM --headless, SGLang rank > 0): no port for Services or monitors, no probes;
        # a failed worker restarts the whole group (restartPolicy RecreateGroupOnPodRestart).
        for key in ("ports", "startupProbe", "readinessProbe", "livenessProbe"):
            del engine[key]
    return pod


class LeaderWorkerService(pulumi.ComponentResource):
    """Serves one multi-node model: LeaderWorkerSet, Service on the leaders, PDB, autoscaler, in-group traffic."""

    def __init__(self, name: str, args: LeaderWorkerServiceArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("inference:model:LeaderWorkerService", name, None, opts)
        m, mn = args.model, args.model.multinode
        assert mn is not None
        child = pulumi.ResourceOptions(parent=self)
        meta = {"name": m.name, "namespace": args.namespace, "labels": labels(m.name, MODEL_SERVER)}
        spec: dict[str, Any] = {
            "rolloutStrategy": {"type": "RollingUpdate", "rollingUpdateConfiguration": {
                "maxSurge": m.rollout.max_surge, "maxUnavailable": m.rollout.max_unavailable}},
            "leaderWorkerTemplate": {
                "size": mn.nodes_per_replica, "restartPolicy": mn.restart_policy,
                "leaderTemplate": group_pod(m, leader=True), "workerTemplate": group_pod(m, leader=False)},
        }
        if m.scaling.replicas is not None:  # under an autoscaler the field is left to it
            spec["replicas"] = m.scaling.replicas
        images = [m.container.image, m.weights_check.image]
        self.leader_worker_set = KubeObject(
            f"{name}-lws", LWS_API_VERSION, "LeaderWorkerSet",
            metadata={**meta, "annotations": workload_skips(images, gpu=True, unprobed=True)}, spec=spec,
            opts=pulumi.ResourceOptions(parent=self, depends_on=args.depends_on))
        self.service = KubeObject(
            f"{name}-svc", "v1", "Service", metadata=meta,
            spec={"type": "ClusterIP", "selector": {**selector(m.name, MODEL_SERVER), LWS_NAME_LABEL: m.name,
                                                    LWS_WORKER_INDEX_LABEL: "0"},
                  "ports": [{"name": PORT_NAME, "port": SERVICE_PORT, "targetPort": PORT_NAME, "protocol": "TCP"}]},
            opts=child)
        # One pod down takes its whole group down: at most pdb_max_unavailable pods means that many replicas.
        self.pdb = KubeObject(
            f"{name}-pdb", "policy/v1", "PodDisruptionBudget", metadata=meta,
            spec={"maxUnavailable": m.rollout.pdb_max_unavailable,
                  "selector": {"matchLabels": selector(m.name, MODEL_SERVER)}},
            opts=child)
        # The namespace denies all traffic by default; the ranks of a group talk to each other on ports the engine
        # and NCCL choose (torch distributed rendezvous, NCCL sockets), so the group's pods may reach each other.
        group = {"podSelector": {"matchLabels": {LWS_NAME_LABEL: m.name}}}
        self.group_policy = KubeObject(
            f"{name}-group", "networking.k8s.io/v1", "NetworkPolicy", metadata={**meta, "name": f"{m.name}-group"},
            spec={**group, "policyTypes": ["Ingress", "Egress"], "ingress": [{"from": [group]}],
                  "egress": [{"to": [group]}]},
            opts=child)
        self.autoscaler = autoscaler(name, m, meta, child, {"apiVersion": LWS_API_VERSION, "kind": "LeaderWorkerSet",
                                                            "name": m.name})
        self.url = f"http://{m.name}.{args.namespace}.svc.cluster.local:{SERVICE_PORT}"
        self.register_outputs({"url": self.url, "leaderWorkerSet": m.name})
