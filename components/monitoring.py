"""Monitoring: one PodMonitor per engine in use, scraping every model pod of that engine on its metrics path."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from inference.plan.records import EngineMonitor

from .conventions import MODEL_SERVER, PART_OF, PORT_NAME


@dataclass(frozen=True)
class MonitoringArgs:
    namespace: str
    monitors: tuple[EngineMonitor, ...]


class Monitoring(pulumi.ComponentResource):
    """PodMonitors for the Prometheus Operator; adding a model of an engine already in use adds nothing here."""

    def __init__(self, name: str, args: MonitoringArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("inference:monitoring:Monitoring", name, None, opts)
        self.pod_monitors = [
            k8s.apiextensions.CustomResource(
                f"{name}-{mon.engine}", api_version="monitoring.coreos.com/v1", kind="PodMonitor",
                metadata={"name": f"{MODEL_SERVER}-{mon.engine}", "namespace": args.namespace,
                          "labels": {**PART_OF, "app.kubernetes.io/component": MODEL_SERVER}},
                spec={"selector": {"matchLabels": {"app.kubernetes.io/component": MODEL_SERVER,
                                                   "inference/engine": mon.engine}},
                      "podMetricsEndpoints": [{"port": PORT_NAME, "path": mon.metrics_path,
                                               "interval": mon.interval}]},
                opts=pulumi.ResourceOptions(parent=self))
            for mon in args.monitors]
        self.register_outputs({"podMonitors": [f"{MODEL_SERVER}-{mon.engine}" for mon in args.monitors]})
