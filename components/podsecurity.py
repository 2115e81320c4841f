"""Pod Security "restricted" settings shared by every pod template the program writes (model pods, prefetch Jobs)."""

from __future__ import annotations

from typing import Any

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

# Small utility image for the init check, pinned by tag.
UTILITY_IMAGE = "busybox:1.37.0"


def labels(name: str, component: str) -> dict[str, str]:
    """Standard labels; the first two also form the selector."""
    return {"app.kubernetes.io/name": name, "app.kubernetes.io/component": component,
            "app.kubernetes.io/part-of": "inference", "app.kubernetes.io/managed-by": "pulumi"}


def selector(name: str, component: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": name, "app.kubernetes.io/component": component}
