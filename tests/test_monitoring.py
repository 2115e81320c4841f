"""Monitoring that cannot fail silently: selector labels everywhere, KEDA holding capacity on a broken metrics path,
DCGM on EKS, the PrometheusRule (promtool and its CRD), the Grafana dashboard, and add-on version ranges."""

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from conftest import PROD, k8s, model, stack_config

from offline.mockrun import Run

RELEASE = {"release": "kube-prometheus-stack"}
AUTO = {"minReplicas": 2, "maxReplicas": 4, "metric": "queue", "target": 5}


def with_labels(base=None, **monitoring):
    base = base or stack_config()
    return stack_config(base, monitoring={**base["inference:monitoring"], **monitoring})


def promtool(path: Path) -> subprocess.CompletedProcess:
    if shutil.which("promtool") is None:
        if os.environ.get("CI"):
            pytest.fail("promtool is missing: .ci/run installs Debian's prometheus package")
        pytest.skip("promtool not installed (apt-get install prometheus)")
    return subprocess.run(["promtool", "check", "rules", str(path)], capture_output=True, text=True, check=False)


def test_selector_labels_on_every_monitor_and_rule(project):
    run = project.run(config=with_labels(stack_config(PROD), selectorLabels=RELEASE),
                      models=[model(), model(name="m2", engine="sglang")])
    for kind, name in (("PodMonitor", "model-server-vllm"), ("PodMonitor", "model-server-sglang"),
                       ("PrometheusRule", "inference-alerts")):
        assert k8s(run, kind, name)["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    dcgm = run.one("kubernetes:helm.sh/v4:Chart", "addons-dcgm-exporter").inputs["values"]["serviceMonitor"]
    assert dcgm == {"enabled": True, "honorLabels": True, "additionalLabels": RELEASE}


def test_pod_monitors_carry_model_and_pool_onto_every_series(project):
    run = project.run()
    spec = k8s(run, "PodMonitor", "model-server-vllm")["spec"]
    assert spec["podTargetLabels"] == ["app.kubernetes.io/name", "inference/pool"]
    labels = k8s(run, "Deployment", "m1")["spec"]["template"]["metadata"]["labels"]
    assert labels["inference/pool"] == "l40s" and labels["app.kubernetes.io/name"] == "m1"


@pytest.mark.parametrize("labels", [{"release name": "x"}, {"release": "-x"}, {"a/b/c": "x"}, {"release": "x" * 64}])
def test_bad_selector_labels_are_refused(project, labels):
    message, run = project.rejected(config=with_labels(selectorLabels=labels))
    assert "inference:monitoring.selectorLabels" in message and run.resources == []


def test_keda_never_reads_a_broken_metrics_path_as_zero(project):
    run = project.run(models=[model(replicas=None, autoscaling=AUTO)])
    spec = k8s(run, "ScaledObject", "m1")["spec"]
    assert spec["triggers"][0]["metadata"]["ignoreNullValues"] == "false"
    # KEDA v2.20.2 ScaledObject: fallback {failureThreshold, replicas, behavior}; hold the current count, >= min
    assert spec["fallback"] == {"failureThreshold": 3, "replicas": 2, "behavior": "currentReplicasIfHigher"}


def test_dcgm_exporter_is_on_by_default_on_eks_only(project, dev_run):
    eks = project.run(config=stack_config(PROD, addons={"devicePlugin": True}))
    assert "addons-dcgm-exporter" in {r.name for r in eks.of_type("kubernetes:helm.sh/v4:Chart")}
    assert "addons-dcgm-exporter" not in {r.name for r in dev_run.of_type("kubernetes:helm.sh/v4:Chart")}
    off = project.run(config=stack_config(PROD, addons={"dcgmExporter": False}))
    assert "addons-dcgm-exporter" not in {r.name for r in off.of_type("kubernetes:helm.sh/v4:Chart")}


def rules_of(run: Run) -> list[dict]:
    return k8s(run, "PrometheusRule", "inference-alerts")["spec"]["groups"]


def test_alerts_cover_what_an_inference_platform_must_see(dev_run):
    alerts = {r["alert"]: r for g in rules_of(dev_run) for r in g["rules"]}
    assert set(alerts) == {"InferenceGpuIdle", "InferenceKvCacheNearlyFull", "InferenceQueueGrowing",
                           "InferenceModelNotReady", "InferenceEngineRestarted", "InferencePrefetchFailed"}
    assert "DCGM_FI_DEV_GPU_UTIL" in alerts["InferenceGpuIdle"]["expr"] and "< 5" in alerts["InferenceGpuIdle"]["expr"]
    for series in ("vllm:kv_cache_usage_perc", "sglang:token_usage"):
        assert series in alerts["InferenceKvCacheNearlyFull"]["expr"]
    for series in ("vllm:num_requests_waiting", "sglang:num_queue_reqs", "tgi_queue_size"):
        assert series in alerts["InferenceQueueGrowing"]["expr"]
    assert 'job_name=~".+-fetch-[0-9a-f]{8}"' in alerts["InferencePrefetchFailed"]["expr"]
    assert all('namespace="inference"' in a["expr"] for a in alerts.values())


def test_alert_rules_pass_promtool(dev_run, tmp_path):
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump({"groups": rules_of(dev_run)}))
    result = promtool(path)
    assert result.returncode == 0 and "SUCCESS: 6 rules found" in result.stdout, result.stdout + result.stderr


def test_dashboard_queries_pass_promtool(dev_run, tmp_path):
    """Every panel query, checked as a recording rule: promtool parses each expression."""
    board = json.loads(k8s(dev_run, "ConfigMap", "inference-dashboard")["data"]["inference-inference.json"])
    exprs = [t["expr"] for p in board["panels"] for t in p["targets"]]
    path = tmp_path / "dashboard.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": [
        {"record": f"dashboard:query{i}", "expr": e} for i, e in enumerate(exprs)]}]}))
    result = promtool(path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_dashboard_config_map_for_the_grafana_sidecar(dev_run):
    cm = k8s(dev_run, "ConfigMap", "inference-dashboard")
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"  # kube-prometheus-stack sidecar default
    board = json.loads(cm["data"]["inference-inference.json"])
    assert board["uid"] == "inference-inference"
    titles = [p["title"] for p in board["panels"]]
    assert titles == ["GPU utilisation by model and pool", "GPU memory used by model and pool", "Requests waiting",
                      "Requests running", "KV cache use (highest pod)", "Replicas against min and max",
                      "Cold starts: model pods not Ready, and model pods created in the last hour"]
    assert "by (app_kubernetes_io_name, inference_pool)" in board["panels"][0]["targets"][0]["expr"]


def test_alerts_and_dashboard_can_be_turned_off(project):
    run = project.run(config=with_labels(alerts=False, dashboards=False))
    kinds = {r.inputs["kind"] for r in run.k8s_objects()}
    assert "PrometheusRule" not in kinds
    assert not [r for r in run.k8s_objects() if r.inputs["metadata"]["name"] == "inference-dashboard"]


@pytest.mark.parametrize("version, warned", [("1.32", True), ("1.33", False), ("1.35", False), ("1.36", True)])
def test_warns_outside_the_pinned_addons_supported_kubernetes(project, version, warned):
    run = project.run(config=stack_config(PROD, kubernetesVersion=version, addons={"keda": True}))
    found = [w for w in run.outputs["plan"]["warnings"] if "add-on keda 2.20.2" in w]
    assert bool(found) == warned
    if warned:
        assert found[0] == (f"add-on keda 2.20.2 supports Kubernetes 1.33-1.35 (kedacore/keda v2.20.2 "
                            f"pkg/util/welcome.go); kubernetesVersion is {version}: it may misbehave there")
