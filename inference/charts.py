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
}
