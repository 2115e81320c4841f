"""ModelCache: the shared ReadWriteMany weight cache and one prefetch Job per model revision."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from .config import CacheCfg
from .planner import Plan

CLAIM_NAME = "model-weights"


@dataclass(frozen=True)
class ModelCacheArgs:
    cache: CacheCfg
    plan: Plan
    namespace: str


class ModelCache(pulumi.ComponentResource):
    """The weight cache volume claim (kind pvc: an existing RWX storage class)."""

    def __init__(self, name: str, args: ModelCacheArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("inference:cache:ModelCache", name, None, opts)
        keep = pulumi.ResourceOptions(parent=self, protect=True, retain_on_delete=True)
        self.claim = k8s.core.v1.PersistentVolumeClaim(
            f"{name}-pvc",
            metadata={"name": CLAIM_NAME, "namespace": args.namespace,
                      "labels": {"app.kubernetes.io/part-of": "inference", "app.kubernetes.io/component": "cache"}},
            spec={"accessModes": ["ReadWriteMany"], "storageClassName": args.cache.storage_class,
                  "resources": {"requests": {"storage": f"{args.cache.size_gib}Gi"}}},
            opts=keep)
        self.claim_name = CLAIM_NAME
        self.jobs: dict[str, pulumi.Resource] = {}
        self.register_outputs({"claimName": self.claim_name})
