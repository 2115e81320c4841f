"""Cluster access: the one explicit Kubernetes provider (render-only or an EKS cluster looked up once by name)."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from inference.plan.records import ClusterPlan


@dataclass(frozen=True)
class ClusterInfo:
    """What the AWS components need to know about an existing EKS cluster (absent in render mode)."""

    name: str
    security_group_id: pulumi.Output[str]
    vpc_id: pulumi.Output[str]


def _kubeconfig(name: str, endpoint: pulumi.Output[str], ca_data: pulumi.Output[str],
                arn: pulumi.Output[str]) -> pulumi.Output[str]:
    def build(args: list[str]) -> str:
        server, ca, cluster_arn = args
        # The CLI's own default region may differ from the stack's: take the cluster's from its ARN.
        region = cluster_arn.split(":")[3]
        user = {"exec": {"apiVersion": "client.authentication.k8s.io/v1beta1", "command": "aws",
                         "args": ["eks", "get-token", "--cluster-name", name, "--region", region,
                                  "--output", "json"],
                         "interactiveMode": "Never"}}
        return json.dumps({
            "apiVersion": "v1", "kind": "Config", "current-context": name,
            "clusters": [{"name": name, "cluster": {"server": server, "certificate-authority-data": ca}}],
            "contexts": [{"name": name, "context": {"cluster": name, "user": name}}],
            "users": [{"name": name, "user": user}],
        })

    return pulumi.Output.all(endpoint, ca_data, arn).apply(build)


def subnet_zones(subnet_ids: list[str]) -> dict[str, str]:
    """Each subnet's Availability Zone: one synchronous lookup per configured subnet, before planning (eks only)."""
    import pulumi_aws as aws

    return {subnet: aws.ec2.get_subnet(id=subnet).availability_zone for subnet in subnet_ids}


def node_group_sizes(cluster_name: str, pool_label: str) -> dict[str, int]:
    """The current desired size of each pool's existing node group, by the pool label its nodes carry: one listing
    of the cluster's node groups and one description of each, before planning (eks only)."""
    import pulumi_aws as aws

    sizes = {}
    for name in aws.eks.get_node_groups(cluster_name=cluster_name).names:
        group = aws.eks.get_node_group(cluster_name=cluster_name, node_group_name=name)
        pool = (group.labels or {}).get(pool_label)
        if pool is not None and group.scaling_configs:
            sizes[pool] = group.scaling_configs[0].desired_size
    return sizes


def connect(stack: str, cluster_plan: ClusterPlan | None) -> tuple[k8s.Provider, ClusterInfo | None]:
    """Create the program's only Kubernetes provider: render-only without a cluster; for EKS, one cluster lookup
    whatever the number of models."""
    if cluster_plan is None:
        return k8s.Provider("k8s", render_yaml_to_directory=f"rendered/{stack}"), None
    import pulumi_aws as aws  # only the eks target touches AWS

    name = cluster_plan.name
    cluster = aws.eks.get_cluster_output(name=name)
    kubeconfig = _kubeconfig(name, cluster.endpoint, cluster.certificate_authorities[0].data, cluster.arn)
    provider = k8s.Provider("k8s", kubeconfig=pulumi.Output.secret(kubeconfig), enable_server_side_apply=True)
    return provider, ClusterInfo(name, cluster.vpc_config.cluster_security_group_id, cluster.vpc_config.vpc_id)
