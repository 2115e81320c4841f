"""ImagePrepull: per GPU pool and engine image, a DaemonSet that pulls the image onto every node as it joins."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from inference.plan.records import Prepull

from .conventions import (
    CONTAINER_SECURITY_CONTEXT,
    GPU_TOLERATION,
    POD_SECURITY_CONTEXT,
    labels,
    selector,
    workload_skips,
)

COMPONENT = "image-prepull"


@dataclass(frozen=True)
class ImagePrepullArgs:
    namespace: str
    pools: tuple[Prepull, ...]


class ImagePrepull(pulumi.ComponentResource):
    """Takes the image pull off a model pod's critical path on every node but a fresh one's first pod: the engine
    image runs once as an init container (exiting at once), then a pause container holds the pod."""

    def __init__(self, name: str, args: ImagePrepullArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("inference:prepull:ImagePrepull", name, None, opts)
        self.daemon_sets = [self._daemon_set(name, p, args.namespace) for p in args.pools]
        self.register_outputs({"daemonSets": [p.name for p in args.pools]})

    def _daemon_set(self, name: str, p: Prepull, namespace: str) -> k8s.apps.v1.DaemonSet:
        app = p.name
        small = {"requests": {"cpu": p.cpu, "memory": p.memory}, "limits": {"cpu": p.cpu, "memory": p.memory}}
        pull = {"name": "pull", "image": p.image, "command": ["sh", "-c", "exit 0"], "resources": small,
                "securityContext": CONTAINER_SECURITY_CONTEXT}
        return k8s.apps.v1.DaemonSet(
            f"{name}-{p.name.removeprefix('prepull-')}",
            metadata={"name": app, "namespace": namespace, "labels": labels(app, COMPONENT),
                      "annotations": {"inference/image": p.image,
                                      **workload_skips([p.image, p.pause_image], unprobed=True)}},
            spec={"selector": {"matchLabels": selector(app, COMPONENT)},
                  "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "10%"}},
                  "template": {
                      "metadata": {"labels": labels(app, COMPONENT)},
                      "spec": {
                          "automountServiceAccountToken": False,
                          "enableServiceLinks": False,
                          "securityContext": POD_SECURITY_CONTEXT,
                          "nodeSelector": dict(p.node_selector),
                          "tolerations": [GPU_TOLERATION],
                          "initContainers": [pull],
                          "containers": [{"name": "pause", "image": p.pause_image, "resources": small,
                                          "securityContext": CONTAINER_SECURITY_CONTEXT}],
                      }}},
            opts=pulumi.ResourceOptions(parent=self))
