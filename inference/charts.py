"""Cluster add-ons as data: the official Helm charts the program installs, pinned, and the namespace of each."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ChartPin:
    chart: str
    version: str
    repo: str
    namespace: str


# Official charts, pinned: the newest versions seen in install commands when this table was written (2026).
CHARTS: dict[str, ChartPin] = {
    # NVIDIA/k8s-device-plugin deployments/helm/nvidia-device-plugin
    "device-plugin": ChartPin("nvidia-device-plugin", "0.20.1", "https://nvidia.github.io/k8s-device-plugin",
                              "nvidia-device-plugin"),
    # kedacore/charts keda
    "keda": ChartPin("keda", "2.21.0", "https://kedacore.github.io/charts", "keda"),
    # NVIDIA/dcgm-exporter deployment
    "dcgm-exporter": ChartPin("dcgm-exporter", "4.8.3", "https://nvidia.github.io/dcgm-exporter/helm-charts",
                              "gpu-monitoring"),
    # kubernetes-sigs/lws charts/lws, published only as an OCI chart (site docs/installation: CHART_VERSION=0.10.0);
    # the chart's source tree renders image tag `main`, the published one carries the release tag.
    "leader-worker-set": ChartPin("lws", "0.10.0", "oci://registry.k8s.io/lws/charts", "lws-system"),
    # aws/eks-charts stable/aws-efa-k8s-device-plugin (index.yaml: v0.5.30, app v0.5.20); advertises
    # vpc.amazonaws.com/efa
    "efa-device-plugin": ChartPin("aws-efa-k8s-device-plugin", "v0.5.30", "https://aws.github.io/eks-charts",
                                  "aws-efa"),
}
