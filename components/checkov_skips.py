"""The checkov findings this program accepts, each with its reason, as annotations on the objects they concern."""

from __future__ import annotations

from collections.abc import Iterable

# checkov reads `checkov.io/skip<N>: <CHECK_ID>=<reason>` from the object's own metadata.annotations and splits the
# value at "=", so a reason must not contain one (tests/test_validate.py checks this table and every annotation).
REASONS: dict[str, str] = {
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
}

# Checks a pod fails while any of its images is pinned by tag rather than by digest.
TAG_PINNED = ("CKV_K8S_43", "CKV_K8S_15")


def annotations(*check_ids: str) -> dict[str, str]:
    """metadata.annotations making checkov skip these checks on the object, with the table's reasons."""
    return {f"checkov.io/skip{i}": f"{check_id}={REASONS[check_id]}" for i, check_id in enumerate(check_ids, 1)}


def workload(images: Iterable[str], gpu: bool = False) -> dict[str, str]:
    """Skip annotations for a Deployment or Job whose pods run these images (gpu: GPU pods without a CPU limit)."""
    by_tag = any("@sha256:" not in image for image in images)
    return annotations(*(("CKV_K8S_11",) if gpu else ()), *(TAG_PINNED if by_tag else ()))
