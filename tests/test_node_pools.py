"""GPU node pools and cluster access on the eks target, and the render target touching no AWS."""

import json

import pytest
from conftest import PROD, Project, model, stack_config

from offline.mockrun import FAKE_CLUSTER, Run, Secret, reveal, run_program

NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"
LAUNCH_TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
ROLE = "aws:iam/role:Role"
ATTACHMENT = "aws:iam/rolePolicyAttachment:RolePolicyAttachment"
GET_CLUSTER = "aws:eks/getCluster:getCluster"

# A cache kind that creates no AWS resource keeps these runs about node pools only.
PVC_CACHE = {"kind": "pvc", "storageClass": "efs-sc", "sizeGiB": 2000}
POOLS = [
    {"name": "l40s", "instanceType": "g6e.2xlarge", "minNodes": 2, "maxNodes": 10, "capacityType": "SPOT",
     "diskGiB": 300},
    {"name": "h100", "instanceType": "p5.48xlarge", "minNodes": 0, "maxNodes": 2,
     "amiType": "BOTTLEROCKET_x86_64_NVIDIA"},
]


def prod(**changes):
    return stack_config(PROD, **{"cache": PVC_CACHE, "nodePools": POOLS, **changes})


@pytest.fixture(scope="module")
def eks_run(tmp_path_factory) -> Run:
    return Project(tmp_path_factory.mktemp("eks")).run(config=prod(), models=[model()])


def test_node_group_translates_the_pool(eks_run):
    ng = eks_run.one(NODE_GROUP, "l40s-gpu-nodes")
    lt = eks_run.one(LAUNCH_TEMPLATE, "l40s-launch-template")
    i = ng.inputs
    assert i["clusterName"] == "ml-prod"
    assert i["subnetIds"] == ["subnet-0a1b2c3d4e5f60001", "subnet-0a1b2c3d4e5f60002"]
    assert i["amiType"] == "AL2023_x86_64_NVIDIA"
    assert i["instanceTypes"] == ["g6e.2xlarge"]
    assert i["capacityType"] == "SPOT"
    assert i["scalingConfig"] == {"minSize": 2, "maxSize": 10, "desiredSize": 2}
    assert ng.ignore_changes == ["scalingConfig.desiredSize"]
    assert i["labels"] == {"inference/pool": "l40s", "inference/gpu-type": "l40s", "nvidia.com/gpu.present": "true"}
    assert i["taints"] == [{"key": "nvidia.com/gpu", "value": "true", "effect": "NO_SCHEDULE"}]
    assert i["updateConfig"] == {"maxUnavailable": 1}
    assert i["launchTemplate"] == {"id": "l40s-launch-template-id", "version": "1"}
    assert lt.urn in ng.depends_on
    assert "diskSize" not in i  # the launch template owns the disk


def test_launch_template_requires_imdsv2_and_sizes_the_image_disk(eks_run):
    lt = eks_run.one(LAUNCH_TEMPLATE, "l40s-launch-template").inputs
    assert lt["metadataOptions"] == {"httpEndpoint": "enabled", "httpTokens": "required",
                                     "httpPutResponseHopLimit": 1}
    assert lt["blockDeviceMappings"] == [{"deviceName": "/dev/xvda", "ebs": {
        "volumeSize": 300, "volumeType": "gp3", "encrypted": "true", "deleteOnTermination": "true"}}]
    assert "vpcSecurityGroupIds" not in lt  # EKS then attaches the cluster security group itself


def test_bottlerocket_pool_sizes_its_data_volume(eks_run):
    ng = eks_run.one(NODE_GROUP, "h100-gpu-nodes").inputs
    assert ng["amiType"] == "BOTTLEROCKET_x86_64_NVIDIA"
    assert ng["scalingConfig"] == {"minSize": 0, "maxSize": 2, "desiredSize": 0}
    assert ng["capacityType"] == "ON_DEMAND"
    lt = eks_run.one(LAUNCH_TEMPLATE, "h100-launch-template").inputs
    assert lt["blockDeviceMappings"][0]["deviceName"] == "/dev/xvdb"
    assert lt["blockDeviceMappings"][0]["ebs"]["volumeSize"] == 200


def test_one_node_role_with_the_three_worker_policies(eks_run):
    (role,) = eks_run.of_type(ROLE)
    trust = json.loads(role.inputs["assumeRolePolicy"])
    assert trust["Statement"] == [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"},
                                   "Action": "sts:AssumeRole"}]
    attachments = eks_run.of_type(ATTACHMENT)
    assert sorted(a.inputs["policyArn"] for a in attachments) == [
        "arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly",
        "arn:aws:iam::aws:policy/AmazonEKSWorkerNodePolicy",
        "arn:aws:iam::aws:policy/AmazonEKS_CNI_Policy",
    ]
    assert {a.inputs["role"] for a in attachments} == {"gpu-node-role-0123abc"}
    for ng in eks_run.of_type(NODE_GROUP):
        assert ng.inputs["nodeRoleArn"] == "arn:aws:mock:us-east-1:123456789012:role/gpu-node-role"
        # Policies stay attached until the node group is gone, or EKS cannot drain and delete the nodes.
        assert {a.urn for a in attachments} <= set(ng.depends_on)


def test_given_node_role_is_used_and_none_created(project):
    arn = "arn:aws:iam::123456789012:role/existing-gpu-nodes"
    run = project.run(config=prod(cluster={**PROD["inference:cluster"], "nodeRoleArn": arn}))
    assert not run.of_type(ROLE) and not run.of_type(ATTACHMENT)
    assert [ng.inputs["nodeRoleArn"] for ng in run.of_type(NODE_GROUP)] == [arn, arn]


def test_extra_security_groups_keep_the_cluster_security_group(project):
    cluster = {**PROD["inference:cluster"], "securityGroupIds": ["sg-0123456789abcdef0"]}
    run = project.run(config=prod(cluster=cluster))
    for lt in run.of_type(LAUNCH_TEMPLATE):
        assert lt.inputs["vpcSecurityGroupIds"] == [FAKE_CLUSTER["vpcConfig"]["clusterSecurityGroupId"],
                                                    "sg-0123456789abcdef0"]


@pytest.mark.parametrize("count", [1, 20])
def test_cluster_is_looked_up_once_whatever_the_number_of_models(project, count):
    pools = [{**POOLS[0], "maxNodes": 40}, POOLS[1]]
    run = project.run(config=prod(nodePools=pools), models=[model(name=f"m{i}", replicas=1) for i in range(count)])
    assert len([r for r in run.resources if r.type == "kubernetes:apps/v1:Deployment"]) == count
    # the cluster, and the list of its node groups (none yet): never per model
    assert run.invokes == [("aws:eks/getNodeGroups:getNodeGroups", {"clusterName": "ml-prod"}),
                           (GET_CLUSTER, {"name": "ml-prod"})]


def test_provider_authenticates_through_aws_eks_get_token(eks_run):
    (provider,) = eks_run.of_type("pulumi:providers:kubernetes")
    assert isinstance(provider.inputs["kubeconfig"], Secret)
    kubeconfig = json.loads(reveal(provider.inputs["kubeconfig"], placeholder=False))
    ca = FAKE_CLUSTER["certificateAuthorities"][0]["data"]
    assert kubeconfig["clusters"][0]["cluster"] == {"server": FAKE_CLUSTER["endpoint"],
                                                    "certificate-authority-data": ca}
    assert kubeconfig["users"][0]["user"]["exec"]["command"] == "aws"
    assert kubeconfig["users"][0]["user"]["exec"]["args"] == [
        "eks", "get-token", "--cluster-name", "ml-prod", "--region", "us-east-1", "--output", "json"]
    assert "renderYamlToDirectory" not in provider.inputs


def test_pools_output(eks_run):
    assert eks_run.outputs["pools"] == {
        "l40s": {"gpuType": "l40s", "gpusPerNode": 1, "minNodes": 2, "maxNodes": 10, "instanceType": "g6e.2xlarge",
                 "amiType": "AL2023_x86_64_NVIDIA"},
        "h100": {"gpuType": "h100", "gpusPerNode": 8, "minNodes": 0, "maxNodes": 2, "instanceType": "p5.48xlarge",
                 "amiType": "BOTTLEROCKET_x86_64_NVIDIA"},
    }


def test_render_target_touches_no_aws(dev_run):
    assert not [r for r in dev_run.resources if r.type.startswith("aws:") or r.type.startswith("inference:node_pool")]
    assert dev_run.invokes == []
    (provider,) = dev_run.of_type("pulumi:providers:kubernetes")
    assert provider.inputs == {"renderYamlToDirectory": "rendered/dev"}
    assert set(dev_run.outputs["pools"]) == {"l40s", "h100"}


# ----------------------------------------------------------------- changing minNodes and maxNodes later

def resized(project, current: int, **pool):
    """The l40s node group when the cluster already has it at `current` nodes and the pool now says `pool`."""
    pools = [{**POOLS[0], **pool}, POOLS[1]]
    project.write(config=prod(nodePools=pools), models=[model()])
    run = run_program("test", project.root, node_groups={"l40s-gpu-nodes-20261201": ("l40s", current),
                                                         "other-team-nodes": ("cpu", 3)})
    return run.one(NODE_GROUP, "l40s-gpu-nodes"), run


def test_raising_min_nodes_above_the_current_size_sends_a_desired_size_once(project):
    # EKS refuses a desired size below min: with the size ignored, Pulumi would send the old desired (2) with min 4.
    group, run = resized(project, current=2, minNodes=4)
    scaling = group.inputs["scalingConfig"]
    assert (scaling["minSize"], scaling["desiredSize"]) == (4, 4) and group.ignore_changes == []
    assert [t for t, _ in run.invokes].count("aws:eks/getNodeGroup:getNodeGroup") == 2  # one per existing group


def test_lowering_max_nodes_below_the_current_size_sends_the_new_max(project):
    group, _ = resized(project, current=9, maxNodes=6)
    assert (group.inputs["scalingConfig"]["maxSize"], group.inputs["scalingConfig"]["desiredSize"]) == (6, 6)
    assert group.ignore_changes == []


def test_a_size_inside_the_range_stays_the_autoscalers(project):
    group, _ = resized(project, current=7, minNodes=4)
    assert group.ignore_changes == ["scalingConfig.desiredSize"]
    assert group.inputs["scalingConfig"]["desiredSize"] == 4  # ignored on update: the state keeps 7


def test_the_lookup_is_per_node_group_never_per_model(project):
    for count in (1, 4):
        project.write(config=prod(), models=[model(name=f"m{i}", replicas=1) for i in range(count)])
        run = run_program("test", project.root, node_groups={"a": ("l40s", 2), "b": ("h100", 0)})
        tokens = [t for t, _ in run.invokes]
        assert tokens.count("aws:eks/getNodeGroups:getNodeGroups") == 1
        assert tokens.count("aws:eks/getNodeGroup:getNodeGroup") == 2
