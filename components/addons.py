"""Cluster add-ons from official Helm charts, pinned in the plan: the NVIDIA device plugin, KEDA, DCGM exporter,
the LeaderWorkerSet controller and the EFA device plugin."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from inference.plan.records import AddonsPlan, Chart

from .conventions import GPU_TOLERATION, MANAGED, pod_security_labels


@dataclass(frozen=True)
class ClusterAddonsArgs:
    addons: AddonsPlan
    kubernetes_version: str
    gpu_nodes: list[pulumi.Resource] = field(default_factory=list)  # node groups the GPU DaemonSets roll out on


class ClusterAddons(pulumi.ComponentResource):
    """Installs the planned charts, each in its own namespace; exposes what model workloads must wait for."""

    def __init__(self, name: str, args: ClusterAddonsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("inference:addons:ClusterAddons", name, None, opts)
        self._name = name
        self._version = args.kubernetes_version
        a = args.addons
        # Only nodes of our GPU pools carry the GPU-type label: the DaemonSets stay off CPU nodes.
        gpu_nodes = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [{"matchExpressions": [{"key": a.gpu_node_label, "operator": "Exists"}]}]}}}
        self.device_plugin: k8s.helm.v4.Chart | None = None
        self.keda: k8s.helm.v4.Chart | None = None
        self.dcgm_exporter: k8s.helm.v4.Chart | None = None
        if a.device_plugin:
            # The plugin mounts the kubelet's device-plugins hostPath: only Pod Security "privileged" admits it.
            self.device_plugin = self._chart(a.device_plugin, "privileged", {
                "tolerations": [GPU_TOLERATION], "affinity": gpu_nodes,
                "priorityClassName": "system-node-critical"}, args.gpu_nodes)
        if a.keda:
            # KEDA needs no host access; "restricted" is audited and warned, not enforced, as the chart's
            # default security context is not guaranteed to meet it.
            self.keda = self._chart(a.keda, "baseline", {}, [], report="restricted")
        if a.dcgm_exporter:
            # The exporter reads GPU counters as root with SYS_ADMIN.
            self.dcgm_exporter = self._chart(a.dcgm_exporter, "privileged", {
                "tolerations": [GPU_TOLERATION], "affinity": gpu_nodes,
                # honorLabels keeps `pod`/`namespace` naming the pod that holds the GPU (else Prometheus renames
                # them exported_*), so GPU series join to models; additionalLabels: the Prometheus selector's.
                "serviceMonitor": {"enabled": a.dcgm_service_monitor, "honorLabels": True,
                                   "additionalLabels": dict(a.selector_labels)}}, args.gpu_nodes)
        self.leader_worker_set: k8s.helm.v4.Chart | None = None
        self.efa_device_plugin: k8s.helm.v4.Chart | None = None
        if a.leader_worker_set:
            # The controller runs as non-root with dropped capabilities; like KEDA, "restricted" is audited and
            # warned, as the chart sets no seccomp profile.
            self.leader_worker_set = self._chart(a.leader_worker_set, "baseline", {}, [], report="restricted")
        if a.efa_device_plugin:
            # The EFA plugin runs privileged on the host network with hostPath mounts; its chart fixes affinity (EFA
            # instance types) and priority class, and appends these tolerations to its own.
            self.efa_device_plugin = self._chart(a.efa_device_plugin, "privileged", {"tolerations": [GPU_TOLERATION]},
                                                 args.gpu_nodes)
        # Multi-node models wait for the LeaderWorkerSet CRD and the EFA devices they request.
        self.multinode_dependencies: list[pulumi.Resource] = [
            c for c in (self.leader_worker_set, self.efa_device_plugin) if c is not None]
        # Model Deployments wait for the plugin so a first deploy does not race the GPUs being advertised.
        self.deployment_dependencies: list[pulumi.Resource] = [c for c in (self.device_plugin,) if c is not None]
        # The KEDA chart brings the ScaledObject CRD the models' autoscalers are made of.
        self.crd_dependencies: list[pulumi.Resource] = [c for c in (self.keda,) if c is not None]
        self.device_plugin_version = a.device_plugin.version if a.device_plugin else None
        self.register_outputs({"devicePluginChart": self.device_plugin_version})

    def _chart(self, chart: Chart, level: str, values: dict[str, Any], depends_on: list[pulumi.Resource],
               report: str | None = None) -> k8s.helm.v4.Chart:
        """A chart in a namespace of its own, labelled for Pod Security `level` (audit/warn at `report` if given)."""
        labels = {**MANAGED, **pod_security_labels(level, self._version, report)}
        ns = k8s.core.v1.Namespace(f"{self._name}-{chart.key}-ns",
                                   metadata={"name": chart.namespace, "labels": labels},
                                   opts=pulumi.ResourceOptions(parent=self))
        # An OCI registry is part of the chart reference; a classic repository is given as repository options.
        oci = chart.repo.startswith("oci://")
        return k8s.helm.v4.Chart(
            f"{self._name}-{chart.key}", chart=f"{chart.repo}/{chart.chart}" if oci else chart.chart,
            version=chart.version, repository_opts=None if oci else k8s.helm.v4.RepositoryOptsArgs(repo=chart.repo),
            name=chart.chart, namespace=chart.namespace, values=values,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[ns, *depends_on]))
