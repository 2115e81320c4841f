"""Default-deny networking in the model namespace, with the few allows serving needs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from inference.plan.records import NetworkPlan

from .conventions import MODEL_SERVER, PART_OF, PORT_NAME, PREFETCH

MODEL_PODS = {"matchLabels": {"app.kubernetes.io/component": MODEL_SERVER}}
PREFETCH_PODS = {"matchLabels": {"app.kubernetes.io/component": PREFETCH}}


@dataclass(frozen=True)
class NetworkPoliciesArgs:
    namespace: str
    network: NetworkPlan


def _namespaces(names: tuple[str, ...]) -> dict[str, Any]:
    return {"namespaceSelector": {"matchExpressions": [
        {"key": "kubernetes.io/metadata.name", "operator": "In", "values": list(names)}]}}


class NetworkPolicies(pulumi.ComponentResource):
    """Deny all traffic, then allow: DNS; clients -> model port; Prometheus -> metrics; prefetch Jobs -> sources."""

    def __init__(self, name: str, args: NetworkPoliciesArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("inference:network:NetworkPolicies", name, None, opts)
        net = args.network
        dns_ports = [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]
        policies: dict[str, dict[str, Any]] = {
            "default-deny": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]},
            "allow-dns": {"podSelector": {}, "policyTypes": ["Egress"],
                          "egress": [{"to": [_namespaces(("kube-system",))], "ports": dns_ports}]},
            "allow-model-clients": {"podSelector": MODEL_PODS, "policyTypes": ["Ingress"],
                                    "ingress": [{"from": [_namespaces(net.client_namespaces)],
                                                 "ports": [{"protocol": "TCP", "port": PORT_NAME}]}]},
            "allow-metrics-scrape": {"podSelector": MODEL_PODS, "policyTypes": ["Ingress"],
                                     "ingress": [{"from": [_namespaces((net.metrics_namespace,))],
                                                  "ports": [{"protocol": "TCP", "port": PORT_NAME}]}]},
            "allow-prefetch-egress": {"podSelector": PREFETCH_PODS, "policyTypes": ["Egress"], "egress": [
                # Model sources over HTTPS, but never the node's instance metadata service.
                {"to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": [f"{net.imds_cidr}"]}}],
                 "ports": [{"protocol": "TCP", "port": 443}]},
                # The EKS Pod Identity agent, which hands S3 credentials to the prefetch Job.
                {"to": [{"ipBlock": {"cidr": net.pod_identity_cidr}}], "ports": [{"protocol": "TCP", "port": 80}]},
            ]},
        }
        self.policies = [
            k8s.networking.v1.NetworkPolicy(
                f"{name}-{policy}", metadata={"name": policy, "namespace": args.namespace,
                                              "labels": PART_OF},
                spec=spec, opts=pulumi.ResourceOptions(parent=self))
            for policy, spec in policies.items()
        ]
        self.register_outputs({"names": list(policies)})
