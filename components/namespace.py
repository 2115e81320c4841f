"""The model namespace, labelled for Pod Security "restricted" in enforce, audit and warn."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from .conventions import MANAGED, pod_security_labels


@dataclass(frozen=True)
class ModelNamespaceArgs:
    name: str
    kubernetes_version: str


class ModelNamespace(pulumi.ComponentResource):
    """Namespace for model workloads and prefetch Jobs."""

    def __init__(self, name: str, args: ModelNamespaceArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("inference:namespace:ModelNamespace", name, None, opts)
        labels = {**MANAGED, **pod_security_labels("restricted", args.kubernetes_version)}
        self.namespace = k8s.core.v1.Namespace(f"{name}-ns", metadata={"name": args.name, "labels": labels},
                                               opts=pulumi.ResourceOptions(parent=self))
        self.name = args.name
        self.register_outputs({"name": self.name})
