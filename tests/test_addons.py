"""Cluster add-ons: the NVIDIA device plugin chart, optional KEDA and DCGM exporter, and what models wait for."""

import pytest
from conftest import PROD, Project, k8s, model, stack_config

from offline.mockrun import Run

CHART = "kubernetes:helm.sh/v4:Chart"
GPU_TOLERATION = [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
GPU_AFFINITY = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
    "nodeSelectorTerms": [{"matchExpressions": [{"key": "inference/gpu-type", "operator": "Exists"}]}]}}}
PVC_CACHE = {"kind": "pvc", "storageClass": "efs-sc", "sizeGiB": 2000}
ALL_ADDONS = {"devicePlugin": True, "keda": True, "dcgmExporter": True}


def charts(run: Run) -> dict[str, dict]:
    return {r.name: r.inputs for r in run.of_type(CHART)}


def pss(namespace: dict) -> dict[str, str]:
    return {k.removeprefix("pod-security.kubernetes.io/"): v for k, v in namespace["metadata"]["labels"].items()
            if k.startswith("pod-security.kubernetes.io/") and not k.endswith("-version")}


@pytest.fixture(scope="module")
def eks_run(tmp_path_factory) -> Run:
    cfg = stack_config(PROD, cache=PVC_CACHE, addons=ALL_ADDONS)
    return Project(tmp_path_factory.mktemp("addons")).run(config=cfg, models=[model(name="a"), model(
        name="b", replicas=None, autoscaling={"minReplicas": 1, "maxReplicas": 2, "metric": "queue", "target": 4})])


def test_device_plugin_chart_is_pinned_and_scheduled_on_gpu_nodes_only(dev_run):
    chart = dev_run.one(CHART, "addons-device-plugin")
    assert chart.provider == "pulumi:providers:kubernetes::k8s"
    assert chart.inputs == {
        "chart": "nvidia-device-plugin", "version": "0.20.0", "name": "nvidia-device-plugin",
        "repositoryOpts": {"repo": "https://nvidia.github.io/k8s-device-plugin"},
        "namespace": "nvidia-device-plugin",
        "values": {"tolerations": GPU_TOLERATION, "affinity": GPU_AFFINITY,
                   "priorityClassName": "system-node-critical"},
    }
    ns = k8s(dev_run, "Namespace", "nvidia-device-plugin")
    assert pss(ns) == {"enforce": "privileged", "audit": "privileged", "warn": "privileged"}
    assert dev_run.by_urn(chart.depends_on[0]).inputs["metadata"]["name"] == "nvidia-device-plugin"
    assert dev_run.outputs["devicePluginChart"] == "0.20.0"


def test_optional_addons_are_off_by_default(dev_run):
    assert set(charts(dev_run)) == {"addons-device-plugin"}


def test_model_deployments_wait_for_the_device_plugin(dev_run):
    plugin = dev_run.one(CHART, "addons-device-plugin").urn
    deployments = dev_run.of_type("kubernetes:apps/v1:Deployment")
    assert len(deployments) == 3
    for deployment in deployments:
        assert plugin in deployment.depends_on


def test_device_plugin_rolls_out_after_the_gpu_node_groups(eks_run):
    groups = {r.urn for r in eks_run.of_type("aws:eks/nodeGroup:NodeGroup")}
    assert len(groups) == 2
    for name in ("addons-device-plugin", "addons-dcgm-exporter"):
        assert groups <= set(eks_run.one(CHART, name).depends_on)


def test_keda_and_dcgm_exporter_when_enabled(eks_run):
    installed = charts(eks_run)
    assert installed["addons-keda"] == {
        "chart": "keda", "version": "2.20.2", "name": "keda", "namespace": "keda",
        "repositoryOpts": {"repo": "https://kedacore.github.io/charts"}, "values": {}}
    assert installed["addons-dcgm-exporter"] == {
        "chart": "dcgm-exporter", "version": "4.8.2", "name": "dcgm-exporter", "namespace": "gpu-monitoring",
        "repositoryOpts": {"repo": "https://nvidia.github.io/dcgm-exporter/helm-charts"},
        "values": {"tolerations": GPU_TOLERATION, "affinity": GPU_AFFINITY,
                   "serviceMonitor": {"enabled": True, "honorLabels": True, "additionalLabels": {}}}}
    assert pss(k8s(eks_run, "Namespace", "gpu-monitoring")) == {
        "enforce": "privileged", "audit": "privileged", "warn": "privileged"}
    assert pss(k8s(eks_run, "Namespace", "keda")) == {"enforce": "baseline", "audit": "restricted",
                                                      "warn": "restricted"}


def test_model_autoscalers_wait_for_the_keda_crds(eks_run):
    keda = eks_run.one(CHART, "addons-keda").urn
    for name in ("a", "b"):
        # The whole ModelService (its ScaledObject included) is created after the chart that defines the CRD.
        assert keda in eks_run.one("inference:model:ModelService", name).depends_on
        assert eks_run.one(CHART, "addons-device-plugin").urn in eks_run.one(
            "kubernetes:apps/v1:Deployment", f"{name}-deploy").depends_on


def test_dcgm_service_monitor_follows_pod_monitor(project):
    run = project.run(config=stack_config(addons={"dcgmExporter": True},
                                          monitoring={**PROD["inference:monitoring"], "podMonitor": False}))
    assert charts(run)["addons-dcgm-exporter"]["values"]["serviceMonitor"] == {
        "enabled": False, "honorLabels": True, "additionalLabels": {}}


@pytest.mark.parametrize("config", [
    stack_config(addons={"devicePlugin": False}),
    stack_config(nodePools=[{"name": "l40s", "instanceType": "g6e.2xlarge", "minNodes": 1, "maxNodes": 4,
                             "amiType": "BOTTLEROCKET_x86_64_NVIDIA"}]),
], ids=["disabled", "bottlerocket-only"])
def test_no_device_plugin_when_disabled_or_bundled(project, config):
    run = project.run(config=config)
    assert charts(run) == {}
    assert not [r for r in run.k8s_objects() if r.inputs["metadata"]["name"] == "nvidia-device-plugin"]
    assert run.outputs["devicePluginChart"] is None
    assert not [u for u in run.one("kubernetes:apps/v1:Deployment", "m1-deploy").depends_on if "helm.sh" in u]
