"""Cluster add-ons as data: the official Helm charts the program installs, pinned, the namespace of each, and the
Kubernetes minor versions each release supports."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ChartPin:
    chart: str
    version: str
    repo: str
    namespace: str
    # Kubernetes minors the release declares it supports, inclusive; None: no bound on that side.
    kubernetes_min: str | None = None
    kubernetes_max: str | None = None
    range_source: str = ""


# Official charts, pinned to the newest release whose chart (Chart.yaml, values.yaml, templates) and, for KEDA, CRDs
# could be read at its tag. Newer versions were announced (KEDA 2.21, device plugin 0.20.1, dcgm-exporter 4.8.3) but
# their sources could not be checked here, so they are not pinned.
CHARTS: dict[str, ChartPin] = {
    # NVIDIA/k8s-device-plugin v0.20.0 deployments/helm/nvidia-device-plugin: kubeVersion ">= 1.10.0-0".
    "device-plugin": ChartPin("nvidia-device-plugin", "0.20.0", "https://nvidia.github.io/k8s-device-plugin",
                              "nvidia-device-plugin", "1.10", None, "Chart.yaml kubeVersion"),
    # kedacore/charts v2.20.2 keda (kubeVersion ">=v1.23.0-0"); the operator itself is tested on 1.33-1.35 only and
    # warns outside them: kedacore/keda v2.20.2 pkg/util/welcome.go minSupportedVersion 33, maxSupportedVersion 35.
    "keda": ChartPin("keda", "2.20.2", "https://kedacore.github.io/charts", "keda", "1.33", "1.35",
                     "kedacore/keda v2.20.2 pkg/util/welcome.go"),
    # NVIDIA/dcgm-exporter 4.5.3-4.8.2 deployment (chart 4.8.2): kubeVersion ">= 1.19.0-0".
    "dcgm-exporter": ChartPin("dcgm-exporter", "4.8.2", "https://nvidia.github.io/dcgm-exporter/helm-charts",
                              "gpu-monitoring", "1.19", None, "Chart.yaml kubeVersion"),
    # kubernetes-sigs/lws charts/lws, published only as an OCI chart (site docs/installation: CHART_VERSION=0.10.0);
    # the chart's source tree renders image tag `main`, the published one carries the release tag.
    "leader-worker-set": ChartPin("lws", "0.10.0", "oci://registry.k8s.io/lws/charts", "lws-system"),
    # aws/eks-charts stable/aws-efa-k8s-device-plugin (index.yaml: v0.5.30, app v0.5.20); advertises
    # vpc.amazonaws.com/efa
    "efa-device-plugin": ChartPin("aws-efa-k8s-device-plugin", "v0.5.30", "https://aws.github.io/eks-charts",
                                  "aws-efa"),
}


def minor(version: str) -> int:
    """'1.33' -> 33: Kubernetes 1.x minors compare as integers."""
    return int(version.split(".")[1])


def outside_range(pin: ChartPin, kubernetes_version: str) -> bool:
    """Whether `kubernetes_version` lies outside the versions the pinned release supports."""
    v = minor(kubernetes_version)
    return ((pin.kubernetes_min is not None and v < minor(pin.kubernetes_min))
            or (pin.kubernetes_max is not None and v > minor(pin.kubernetes_max)))
