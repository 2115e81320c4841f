"""GPU node pools on an existing EKS cluster: one managed node group per planned pool, sharing one node IAM role."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from inference.plan.records import ClusterPlan, PoolPlan

from .conventions import GPU_TAINT_KEY
from .provider import ClusterInfo

# The device plugin chart's default node affinity selects on this label; the EKS GPU AMIs do not set it.
GPU_PRESENT_LABEL = {"nvidia.com/gpu.present": "true"}

# The volume that holds container images: the root volume on AL2023, the separate data volume on Bottlerocket
# (Bottlerocket's /dev/xvda is a small OS volume). Source: EKS and Bottlerocket launch template docs.
IMAGE_VOLUME_DEVICE = {"AL2023_x86_64_NVIDIA": "/dev/xvda", "BOTTLEROCKET_x86_64_NVIDIA": "/dev/xvdb"}

NODE_POLICIES = {
    "worker": "arn:aws:iam::aws:policy/AmazonEKSWorkerNodePolicy",
    "cni": "arn:aws:iam::aws:policy/AmazonEKS_CNI_Policy",
    "ecr": "arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly",
}


class NodeRole(pulumi.ComponentResource):
    """The IAM role GPU nodes run as, with the standard EKS worker, CNI and ECR read-only policies."""

    def __init__(self, name: str, opts: pulumi.ResourceOptions | None = None):
        super().__init__("inference:node_pool:NodeRole", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        trust = {"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
        self.role = aws.iam.Role(f"{name}-role", assume_role_policy=json.dumps(trust),
                                 description="GPU nodes of the inference platform", opts=child)
        self.attachments = [aws.iam.RolePolicyAttachment(f"{name}-{key}", role=self.role.name, policy_arn=arn,
                                                         opts=child)
                            for key, arn in NODE_POLICIES.items()]
        self.arn = self.role.arn
        self.register_outputs({"arn": self.arn})


@dataclass(frozen=True)
class GpuNodePoolArgs:
    pool: PoolPlan
    cluster_name: str
    subnet_ids: tuple[str, ...]
    node_role_arn: pulumi.Input[str]
    # Extra node security groups; when given, the cluster security group must be listed too (EKS then omits it).
    security_group_ids: list[pulumi.Input[str]] = field(default_factory=list)
    depends_on: list[pulumi.Resource] = field(default_factory=list)
    # The cluster security group and the extra ones: EFA interfaces name their groups themselves. The cluster group
    # admits all traffic between its members, as EFA requires (EC2 user guide, "Prepare an EFA-enabled security group").
    efa_security_group_ids: list[pulumi.Input[str]] = field(default_factory=list)


class GpuNodePool(pulumi.ComponentResource):
    """One pool: an EKS managed node group of one GPU instance type, tainted for GPU pods, with its launch template."""

    def __init__(self, name: str, args: GpuNodePoolArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("inference:node_pool:GpuNodePool", name, None, opts)
        p = args.pool
        child = pulumi.ResourceOptions(parent=self)
        self.placement_group: aws.ec2.PlacementGroup | None = None
        network: dict[str, object] = {"vpc_security_group_ids": args.security_group_ids or None}
        if p.efa is not None:
            # Nodes of multi-node replicas close together on the network: a cluster placement group ...
            self.placement_group = aws.ec2.PlacementGroup(f"{name}-placement", strategy="cluster", opts=child)
            # ... and one EFA per network card: device index 0 on card 0, 1 on the others (EC2 user guide,
            # "Maximize network bandwidth on accelerated instances with EFA").
            network = {"network_interfaces": [aws.ec2.LaunchTemplateNetworkInterfaceArgs(
                device_index=0 if card == 0 else 1, network_card_index=card, interface_type="efa",
                security_groups=args.efa_security_group_ids, delete_on_termination="true")
                for card in range(p.efa.interfaces)],
                "placement": aws.ec2.LaunchTemplatePlacementArgs(group_name=self.placement_group.name)}
        self.launch_template = aws.ec2.LaunchTemplate(
            f"{name}-launch-template",
            description=f"GPU pool {p.name}: {p.instance_type}",
            block_device_mappings=[aws.ec2.LaunchTemplateBlockDeviceMappingArgs(
                device_name=IMAGE_VOLUME_DEVICE[p.ami_type],
                ebs=aws.ec2.LaunchTemplateBlockDeviceMappingEbsArgs(
                    volume_size=p.disk_gib, volume_type="gp3", encrypted="true", delete_on_termination="true"))],
            # IMDSv2 only, and one hop so pods cannot reach the node role's credentials.
            metadata_options=aws.ec2.LaunchTemplateMetadataOptionsArgs(
                http_endpoint="enabled", http_tokens="required", http_put_response_hop_limit=1),
            **network,
            opts=child)
        # Node group name left to auto-naming: a replacement (new instance type) is created before the old is deleted.
        self.node_group = aws.eks.NodeGroup(
            f"{name}-gpu-nodes",
            cluster_name=args.cluster_name,
            node_role_arn=args.node_role_arn,
            subnet_ids=list(p.efa.subnet_ids if p.efa else args.subnet_ids),
            ami_type=p.ami_type,
            instance_types=[p.instance_type],
            capacity_type=p.capacity_type,
            scaling_config=aws.eks.NodeGroupScalingConfigArgs(
                min_size=p.min_nodes, max_size=p.max_nodes,
                desired_size=p.min_nodes if p.desired_nodes is None else p.desired_nodes),
            labels={**p.labels, **GPU_PRESENT_LABEL},
            taints=[aws.eks.NodeGroupTaintArgs(key=GPU_TAINT_KEY, value="true", effect="NO_SCHEDULE")],
            launch_template=aws.eks.NodeGroupLaunchTemplateArgs(
                id=self.launch_template.id, version=self.launch_template.latest_version.apply(str)),
            update_config=aws.eks.NodeGroupUpdateConfigArgs(max_unavailable=1),
            # The cluster autoscaler owns the node count between min and max after creation.
            opts=pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(
                ignore_changes=["scalingConfig.desiredSize"] if p.desired_nodes is None else [],
                depends_on=args.depends_on)))
        self.register_outputs({"nodeGroup": self.node_group.node_group_name})


def gpu_node_pools(pools: tuple[PoolPlan, ...], cluster: ClusterPlan, info: ClusterInfo) -> dict[str, GpuNodePool]:
    """One GpuNodePool per planned pool; the node role is created once unless `cluster.nodeRoleArn` names one."""
    depends_on: list[pulumi.Resource] = []
    if cluster.node_role_arn is not None:
        role_arn: pulumi.Input[str] = cluster.node_role_arn
    else:
        role = NodeRole("gpu-node")
        # Policies attach before the node groups and detach after them, or EKS cannot clean up nodes on delete.
        role_arn, depends_on = role.arn, role.attachments
    security_groups = [info.security_group_id, *cluster.security_group_ids] if cluster.security_group_ids else []
    efa_groups = [info.security_group_id, *cluster.security_group_ids]
    return {p.name: GpuNodePool(p.name, GpuNodePoolArgs(p, cluster.name, cluster.subnet_ids, role_arn,
                                                        security_groups, depends_on, efa_groups))
            for p in pools}
