"""What AWS would refuse: two EFS mount targets in one Availability Zone."""

from conftest import PROD, model, stack_config

from offline.mockrun import subnet_zone

SAME_ZONE = ["subnet-0a1b2c3d4e5f60001", "subnet-0a1b2c3d4e5f60004", "subnet-0a1b2c3d4e5f60002"]


def test_mock_zones():
    assert subnet_zone(SAME_ZONE[0]) == subnet_zone(SAME_ZONE[1]) == "us-east-1b" != subnet_zone(SAME_ZONE[2])


def test_efs_refuses_two_cluster_subnets_in_one_zone(project):
    cfg = stack_config(PROD, cache={"kind": "efs"}, cluster={"name": "ml-prod", "subnetIds": SAME_ZONE})
    message, run = project.rejected(config=cfg, models=[model()])
    assert ("field 'inference:cluster.subnetIds': cache efs puts a mount target in each cluster subnet, and EFS "
            "allows one per Availability Zone, but subnet-0a1b2c3d4e5f60001, subnet-0a1b2c3d4e5f60004 are all in "
            "us-east-1b") in message
    assert not [r for r in run.resources if r.custom]


def test_efs_looks_the_subnets_up_once_whatever_the_models(project):
    run = project.run(config=stack_config(PROD, cache={"kind": "efs"}),
                      models=[model(), model(name="m2"), model(name="m3")])
    lookups = [args["id"] for token, args in run.invokes if token == "aws:ec2/getSubnet:getSubnet"]
    assert sorted(lookups) == sorted(PROD["inference:cluster"]["subnetIds"])
    assert len(run.of_type("aws:efs/mountTarget:MountTarget")) == 2


def test_other_caches_need_no_subnet_lookup(prod_run):
    assert not [t for t, _ in prod_run.invokes if t == "aws:ec2/getSubnet:getSubnet"]
