"""Kubernetes conventions the components share: labels and selectors, Pod Security settings and labels, the GPU
taint and toleration, the port name, the checkov findings the program accepts (with their reasons), and KubeObject,
the one way per-model objects register."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pulumi
from pulumi_kubernetes import _utilities as k8s_utilities

PART_OF = {"app.kubernetes.io/part-of": "inference"}
MANAGED = {**PART_OF, "app.kubernetes.io/managed-by": "pulumi"}

# Component label values: what kind of pod a label selector picks.
MODEL_SERVER = "model-server"
PREFETCH = "prefetch"
CACHE = "cache"

PORT_NAME = "http"  # the engine's port, named so Services, probes, policies and monitors refer to it alike
SERVICE_PORT = 80

GPU_TAINT_KEY = "nvidia.com/gpu"
GPU_TOLERATION = {"key": GPU_TAINT_KEY, "operator": "Exists", "effect": "NoSchedule"}

PSS_MODES = ("enforce", "audit", "warn")

# A high, fixed UID: not root, not a host user; the prefetch Job writes weights as it and model pods read them.
RUN_AS_UID = 10001

POD_SECURITY_CONTEXT: dict[str, Any] = {
    "runAsNonRoot": True,
    "runAsUser": RUN_AS_UID,
    "runAsGroup": RUN_AS_UID,
    "seccompProfile": {"type": "RuntimeDefault"},
}

CONTAINER_SECURITY_CONTEXT: dict[str, Any] = {
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "privileged": False,
    "readOnlyRootFilesystem": True,
    "runAsNonRoot": True,
    "runAsUser": RUN_AS_UID,
    "seccompProfile": {"type": "RuntimeDefault"},
}


def labels(name: str, component: str) -> dict[str, str]:
    """Standard labels; the first two also form the selector."""
    return {"app.kubernetes.io/name": name, "app.kubernetes.io/component": component, **MANAGED}


def selector(name: str, component: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": name, "app.kubernetes.io/component": component}


def pod_security_labels(level: str, version: str, report: str | None = None) -> dict[str, str]:
    """Namespace labels for Pod Security `level` enforced (audited and warned at `report`, if given)."""
    out = {}
    for mode in PSS_MODES:
        out[f"pod-security.kubernetes.io/{mode}"] = level if mode == "enforce" else report or level
        out[f"pod-security.kubernetes.io/{mode}-version"] = f"v{version}"
    return out


# checkov reads `checkov.io/skip<N>: <CHECK_ID>=<reason>` from the object's own metadata.annotations and splits the
# value at "=", so a reason must not contain one (tests/test_validate.py checks this table and every annotation).
CHECKOV_REASONS: dict[str, str] = {
    "CKV_K8S_11": (
        "GPU serving pod: no CPU limit, because CFS throttling of the engine's scheduler thread stalls the GPU; "
        "CPU is requested and the memory request equals the limit"),
    "CKV_K8S_43": (
        "images are pinned by exact release tags (models.yaml rejects latest and untagged images); upstream "
        "digests are not verified here and a wrong one fails every pull; pinning all of the pod's images by digest "
        "removes this skip"),
    "CKV_K8S_15": (
        "tag-pinned images are pulled IfNotPresent: Always would make every pod start, scale-up and Job retry "
        "depend on the registry being reachable; pinning all of the pod's images by digest removes this skip"),
    "CKV_K8S_8": (
        "a pod that serves nothing to probe: an image pre-pull pod (only pause runs; its pull is done when its init "
        "container exits) or a LeaderWorkerSet worker (a headless engine rank; the leader is probed, a failed rank "
        "stalls it, and restartPolicy RecreateGroupOnPodRestart recreates every pod of the group)"),
    "CKV_K8S_9": (
        "a pod that serves no traffic a readiness probe could gate: an image pre-pull pod (pause) or a "
        "LeaderWorkerSet worker (the Service selects leaders only, worker-index 0)"),
}

# Checks a pod fails while any of its images is pinned by tag rather than by digest.
TAG_PINNED = ("CKV_K8S_43", "CKV_K8S_15")


def checkov_skips(*check_ids: str) -> dict[str, str]:
    """metadata.annotations making checkov skip these checks on the object, with the table's reasons."""
    return {f"checkov.io/skip{i}": f"{check_id}={CHECKOV_REASONS[check_id]}" for i, check_id in enumerate(check_ids, 1)}


def workload_skips(images: Iterable[str], gpu: bool = False, unprobed: bool = False) -> dict[str, str]:
    """Skip annotations for a workload whose pods run these images (gpu: GPU pods without a CPU limit; unprobed:
    pods that serve nothing to probe: image pre-pull pods, LeaderWorkerSet workers)."""
    by_tag = any("@sha256:" not in image for image in images)
    return checkov_skips(*(("CKV_K8S_11",) if gpu else ()), *(("CKV_K8S_8", "CKV_K8S_9") if unprobed else ()),
                         *(TAG_PINNED if by_tag else ()))


class KubeObject(pulumi.CustomResource):
    """A Kubernetes object registered as pulumi-kubernetes' own class registers it: the type token the typed class
    uses (kubernetes:core/v1:Service, kubernetes:apps/v1:Deployment, kubernetes:keda.sh/v1alpha1:ScaledObject), the
    same inputs (apiVersion, kind and the fields given) and the package's version and download URL, without the
    typed classes' conversion of every input and output value through their generated types."""

    def __init__(self, name: str, api_version: str, kind: str, opts: pulumi.ResourceOptions, **fields: Any):
        group, _, version = api_version.rpartition("/")
        super().__init__(f"kubernetes:{group or 'core'}/{version}:{kind}", name,
                         {"apiVersion": api_version, "kind": kind, **fields},
                         pulumi.ResourceOptions.merge(_K8S_DEFAULTS, opts))


_K8S_DEFAULTS = k8s_utilities.get_resource_opts_defaults()
