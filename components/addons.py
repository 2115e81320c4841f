"""Cluster add-ons from official Helm charts, pinned: the NVIDIA device plugin, optionally KEDA and DCGM exporter."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from .namespace import PSS_LEVELS
from .planner import GPU_TAINT_KEY, NODE_LABEL_GPU


@dataclass(frozen=True)
class HelmChart:
    chart: str
    version: str
    repo: str


# Official charts, pinned: the newest versions seen in install commands when this table was written (2026).
CHARTS: dict[str, HelmChart] = {
    # NVIDIA/k8s-device-plugin deployments/helm/nvidia-device-plugin
    "device-plugin": HelmChart("nvidia-device-plugin", "0.20.1", "https://nvidia.github.io/k8s-device-plugin"),
    # kedacore/charts keda
    "keda": HelmChart("keda", "2.21.0", "https://kedacore.github.io/charts"),
    # NVIDIA/dcgm-exporter deployment
    "dcgm-exporter": HelmChart("dcgm-exporter", "4.8.3", "https://nvidia.github.io/dcgm-exporter/helm-charts"),
}

DEVICE_PLUGIN_NAMESPACE = "nvidia-device-plugin"
KEDA_NAMESPACE = "keda"
DCGM_NAMESPACE = "gpu-monitoring"

GPU_TOLERATIONS = [{"key": GPU_TAINT_KEY, "operator": "Exists", "effect": "NoSchedule"}]
# Only nodes of our GPU pools carry the GPU-type label: the DaemonSets stay off CPU nodes.
GPU_NODE_AFFINITY = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
    "nodeSelectorTerms": [{"matchExpressions": [{"key": NODE_LABEL_GPU, "operator": "Exists"}]}]}}}


@dataclass(frozen=True)
class ClusterAddonsArgs:
    device_plugin: bool  # plan.device_plugin: off when every pool runs Bottlerocket, which bundles it
    keda: bool
    dcgm_exporter: bool
    service_monitor: bool  # monitoring.podMonitor: the DCGM exporter's ServiceMonitor follows it
    kubernetes_version: str
    gpu_nodes: list[pulumi.Resource] = field(default_factory=list)  # node groups the GPU DaemonSets roll out on


class ClusterAddons(pulumi.ComponentResource):
    """Installs the enabled charts, each in its own namespace; exposes what model workloads must wait for."""

    def __init__(self, name: str, args: ClusterAddonsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("inference:addons:ClusterAddons", name, None, opts)
        self._name = name
        self._version = args.kubernetes_version
        self.device_plugin: k8s.helm.v4.Chart | None = None
        self.keda: k8s.helm.v4.Chart | None = None
        self.dcgm_exporter: k8s.helm.v4.Chart | None = None
        if args.device_plugin:
            # The plugin mounts the kubelet's device-plugins hostPath: only Pod Security "privileged" admits it.
            self.device_plugin = self._chart("device-plugin", DEVICE_PLUGIN_NAMESPACE, "privileged", {
                "tolerations": GPU_TOLERATIONS, "affinity": GPU_NODE_AFFINITY,
                "priorityClassName": "system-node-critical"}, args.gpu_nodes)
        if args.keda:
            # KEDA needs no host access; "restricted" is audited and warned, not enforced, as the chart's
            # default security context is not guaranteed to meet it.
            self.keda = self._chart("keda", KEDA_NAMESPACE, "baseline", {}, [], report="restricted")
        if args.dcgm_exporter:
            # The exporter reads GPU counters as root with SYS_ADMIN.
            self.dcgm_exporter = self._chart("dcgm-exporter", DCGM_NAMESPACE, "privileged", {
                "tolerations": GPU_TOLERATIONS, "affinity": GPU_NODE_AFFINITY,
                "serviceMonitor": {"enabled": args.service_monitor}}, args.gpu_nodes)
        # Model Deployments wait for the plugin so a first deploy does not race the GPUs being advertised.
        self.deployment_dependencies: list[pulumi.Resource] = [c for c in (self.device_plugin,) if c is not None]
        # The KEDA chart brings the ScaledObject CRD the models' autoscalers are made of.
        self.crd_dependencies: list[pulumi.Resource] = [c for c in (self.keda,) if c is not None]
        self.device_plugin_version = CHARTS["device-plugin"].version if self.device_plugin is not None else None
        self.register_outputs({"devicePluginChart": self.device_plugin_version})

    def _chart(self, key: str, namespace: str, level: str, values: dict[str, Any],
               depends_on: list[pulumi.Resource], report: str | None = None) -> k8s.helm.v4.Chart:
        """A chart in a namespace of its own, labelled for Pod Security `level` (audit/warn at `report` if given)."""
        chart = CHARTS[key]
        labels = {"app.kubernetes.io/part-of": "inference", "app.kubernetes.io/managed-by": "pulumi"}
        for mode in PSS_LEVELS:
            labels[f"pod-security.kubernetes.io/{mode}"] = level if mode == "enforce" else report or level
            labels[f"pod-security.kubernetes.io/{mode}-version"] = f"v{self._version}"
        ns = k8s.core.v1.Namespace(f"{self._name}-{key}-ns", metadata={"name": namespace, "labels": labels},
                                   opts=pulumi.ResourceOptions(parent=self))
        return k8s.helm.v4.Chart(
            f"{self._name}-{key}", chart=chart.chart, version=chart.version,
            repository_opts=k8s.helm.v4.RepositoryOptsArgs(repo=chart.repo),
            name=chart.chart, namespace=namespace, values=values,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[ns, *depends_on]))
