"""Monitoring: one PodMonitor per engine in use, the stack's PrometheusRule and its Grafana dashboard ConfigMap."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from inference.plan.records import Dashboard, MonitoringPlan, RuleGroup

from .conventions import MODEL_SERVER, PART_OF, PORT_NAME

# The Grafana sidecar of kube-prometheus-stack loads ConfigMaps with this label, in any namespace
# (grafana.sidecar.dashboards.label / labelValue / searchNamespace defaults).
GRAFANA_DASHBOARD_LABEL = {"grafana_dashboard": "1"}
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}


@dataclass(frozen=True)
class MonitoringArgs:
    namespace: str
    monitoring: MonitoringPlan


def rule_groups(groups: tuple[RuleGroup, ...]) -> list[dict[str, Any]]:
    """Prometheus rule groups as a PrometheusRule's spec.groups (the same shape promtool checks)."""
    return [{"name": g.name, "rules": [
        {"alert": r.alert, "expr": r.expr, "for": r.for_, "labels": {"severity": r.severity},
         "annotations": {"summary": r.summary, "description": r.description}} for r in g.rules]}
        for g in groups]


def dashboard_json(d: Dashboard) -> str:
    """A Grafana dashboard (schemaVersion 39): one time-series panel per planned panel, two per row."""
    panels = [{
        "id": i + 1, "type": "timeseries", "title": p.title, "datasource": DATASOURCE,
        "gridPos": {"h": 8, "w": 12, "x": 12 * (i % 2), "y": 8 * (i // 2)},
        "fieldConfig": {"defaults": {"unit": p.unit}, "overrides": []},
        "targets": [{"refId": chr(ord("A") + j), "datasource": DATASOURCE, "expr": expr, "legendFormat": legend}
                    for j, (legend, expr) in enumerate(p.targets)],
    } for i, p in enumerate(d.panels)]
    return json.dumps({
        "uid": d.uid, "title": d.title, "schemaVersion": 39, "editable": False, "tags": ["inference"],
        "time": {"from": "now-6h", "to": "now"}, "refresh": "30s",
        "templating": {"list": [{"name": "datasource", "type": "datasource", "query": "prometheus"}]},
        "panels": panels,
    }, indent=1, sort_keys=True)


class Monitoring(pulumi.ComponentResource):
    """PodMonitors, alerts and the dashboard; none of them depends on which models exist beyond their engines."""

    def __init__(self, name: str, args: MonitoringArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("inference:monitoring:Monitoring", name, None, opts)
        mon = args.monitoring
        child = pulumi.ResourceOptions(parent=self)
        selected = {**PART_OF, "app.kubernetes.io/component": MODEL_SERVER, **mon.selector_labels}
        self.pod_monitors = [
            k8s.apiextensions.CustomResource(
                f"{name}-{m.engine}", api_version="monitoring.coreos.com/v1", kind="PodMonitor",
                metadata={"name": f"{MODEL_SERVER}-{m.engine}", "namespace": args.namespace, "labels": selected},
                spec={"selector": {"matchLabels": {"app.kubernetes.io/component": MODEL_SERVER,
                                                   "inference/engine": m.engine}},
                      "podTargetLabels": list(m.pod_target_labels),
                      "podMetricsEndpoints": [{"port": PORT_NAME, "path": m.metrics_path, "interval": m.interval}]},
                opts=child)
            for m in mon.monitors]
        self.rules: pulumi.CustomResource | None = None
        if mon.alerts:
            self.rules = k8s.apiextensions.CustomResource(
                f"{name}-rules", api_version="monitoring.coreos.com/v1", kind="PrometheusRule",
                metadata={"name": "inference-alerts", "namespace": args.namespace,
                          "labels": {**PART_OF, **mon.selector_labels}},
                spec={"groups": rule_groups(mon.alerts)}, opts=child)
        self.dashboard: k8s.core.v1.ConfigMap | None = None
        if mon.dashboard is not None:
            self.dashboard = k8s.core.v1.ConfigMap(
                f"{name}-dashboard",
                metadata={"name": mon.dashboard.config_map, "namespace": args.namespace,
                          "labels": {**PART_OF, **GRAFANA_DASHBOARD_LABEL}},
                data={f"{mon.dashboard.uid}.json": dashboard_json(mon.dashboard)}, opts=child)
        self.register_outputs({"podMonitors": [f"{MODEL_SERVER}-{m.engine}" for m in mon.monitors],
                               "alerts": "inference-alerts" if mon.alerts else None,
                               "dashboard": mon.dashboard.config_map if mon.dashboard else None})
