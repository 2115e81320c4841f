"""Components built from hand-made plans: each translates its records into objects, deciding nothing itself."""

from __future__ import annotations

import dataclasses
from typing import Any

from components.cache import ModelCache, ModelCacheArgs
from components.model_service import ModelService, ModelServiceArgs
from components.monitoring import Monitoring, MonitoringArgs
from components.network_policy import NetworkPolicies, NetworkPoliciesArgs
from inference.plan.records import (
    Autoscale,
    CachePlan,
    ColdStart,
    Container,
    Cost,
    EngineMonitor,
    Fit,
    ModelPlan,
    MonitoringPlan,
    NetworkPlan,
    Placement,
    Prefetch,
    Probe,
    Probes,
    Resources,
    Rollout,
    Scaling,
    Volumes,
    WeightsCheck,
)
from offline.mockrun import Run, run_function

PREFETCH = Prefetch(
    job_name="m-fetch-abcd1234", scheme="hf", repo="org/repo", revision="r1", directory="/w/m/r1",
    partial="/w/m/.r1.partial", marker="/w/m/r1.complete", compile_dir="/w/.c", image="py:1", hub_version="9.9.9",
    hf_endpoint=None, min_kib=1, max_kib=2, service_account=None,
    estimate_s=10, active_deadline_s=1234, timeout_s=2345, backoff_limit=7, cpu_request="1", cpu_limit="2",
    memory_gib=3, tmp_gib=1)


def model_plan(**changes: Any) -> ModelPlan:
    """A plan for one model with numbers no planner would pick, so a test sees they come from here."""
    base = ModelPlan(
        name="m", engine="vllm",
        container=Container(image="img:1", command=("serve",), args=("/w/m/r1", "--x", "1"),
                            env=(("A", "1"),), port=1234, health_path="/hz", metrics_path="/mx", config=None),
        placement=Placement(pool="p", gpu_type="l40s", gpus=3, replicas_per_node=1, nodes_at_min=2, nodes_at_max=2,
                            node_selector={"inference/pool": "p"}),
        resources=Resources(cpu_request="1500m", memory_gib=7, shm_gib=2, tmp_gib=5),
        volumes=Volumes(claim="claim-x", mount_path="/w", model_path="/w/m/r1", marker_path="/w/m/r1.complete",
                        compile_subpath=".c", compile_mount="/cc"),
        probes=Probes(startup=Probe("/hz", 7, 77, 3), readiness=Probe("/hz", 8, 4, 2), liveness=Probe("/hz", 9, 6, 11)),
        scaling=Scaling(replicas=2, min_replicas=2, max_replicas=2, autoscale=None),
        rollout=Rollout(max_surge=0, max_unavailable=1, pdb_max_unavailable=1, revision_history_limit=5,
                        progress_deadline_s=901, create_timeout_s=902, update_timeout_s=903, prestop_sleep_s=4,
                        termination_grace_s=44),
        fit=Fit(weights_gib=1, gpu_memory_gib=48, kv_cache_gib=40, kv_cache_dtype="auto", architecture=None,
                context_window=None, kv_bytes_per_token=None, kv_tokens=None, full_context_sequences=None,
                batch_size=None),
        cold_start=ColdStart(loader="default", image_pull_s=1, weight_read_s=2, engine_start_s=3, compile_s=4,
                             estimate_s=10, warm_s=5, budget_s=300, read_mibps=100, limit_link="node network",
                             limit_mibps=100, limit_s=2, floor_s=42, warm_ratio=0.12,
                             streamer_concurrency=None), cost=Cost(1.0, 2.0),
        weights_check=WeightsCheck(image="bb:1", cpu_request="1m", cpu_limit="2m", memory="3Mi"), prefetch=PREFETCH)
    return dataclasses.replace(base, **changes)


def build(fn) -> Run:
    return run_function(fn)


def objects(run: Run, kind: str) -> list[dict[str, Any]]:
    return [r.inputs for r in run.k8s_objects() if r.inputs["kind"] == kind]


def test_model_service_translates_the_plan_fixed_replicas():
    m = model_plan()
    run = build(lambda: ModelService("m", ModelServiceArgs(m, "ns")))
    (deploy,) = objects(run, "Deployment")
    spec = deploy["spec"]
    assert spec["replicas"] == 2 and spec["revisionHistoryLimit"] == 5 and spec["progressDeadlineSeconds"] == 901
    assert spec["strategy"]["rollingUpdate"] == {"maxSurge": 0, "maxUnavailable": 1}
    pod = spec["template"]["spec"]
    engine = pod["containers"][0]
    assert engine["image"] == "img:1" and engine["command"] == ["serve"] and engine["args"] == ["/w/m/r1", "--x", "1"]
    assert engine["startupProbe"] == {"httpGet": {"path": "/hz", "port": "http"}, "periodSeconds": 7,
                                      "failureThreshold": 77, "timeoutSeconds": 3}
    assert engine["livenessProbe"]["timeoutSeconds"] == 11 and engine["readinessProbe"]["periodSeconds"] == 8
    assert engine["resources"] == {"requests": {"cpu": "1500m", "memory": "7Gi", "nvidia.com/gpu": "3"},
                                   "limits": {"memory": "7Gi", "nvidia.com/gpu": "3"}}
    assert engine["lifecycle"]["preStop"] == {"sleep": {"seconds": 4}} and pod["terminationGracePeriodSeconds"] == 44
    assert pod["nodeSelector"] == {"inference/pool": "p"}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["weights"]["persistentVolumeClaim"] == {"claimName": "claim-x", "readOnly": True}
    assert volumes["tmp"]["emptyDir"] == {"sizeLimit": "5Gi"} and volumes["shm"]["emptyDir"]["sizeLimit"] == "2Gi"
    # the compile cache: the same claim, writable, mounted at the plan's path from the plan's subPath only
    assert volumes["compile-cache"]["persistentVolumeClaim"] == {"claimName": "claim-x"}
    assert {"name": "compile-cache", "mountPath": "/cc", "subPath": ".c"} in engine["volumeMounts"]
    check = pod["initContainers"][0]
    assert check["image"] == "bb:1" and "/w/m/r1.complete" in check["command"][-1]
    assert check["resources"] == {"requests": {"cpu": "1m", "memory": "3Mi"}, "limits": {"cpu": "2m", "memory": "3Mi"}}
    deployment = run.one("kubernetes:apps/v1:Deployment", "m-deploy")
    assert deployment.custom_timeouts == {"create": "902s", "update": "903s"}
    assert objects(run, "Service")[0]["spec"]["ports"][0]["targetPort"] == "http"
    assert objects(run, "PodDisruptionBudget")[0]["spec"]["maxUnavailable"] == 1
    assert not objects(run, "ScaledObject") and not objects(run, "HorizontalPodAutoscaler")
    # The component and its three objects: nothing else per fixed-replica model.
    assert len(run.resources) == 4


def autoscaled(kind: str) -> ModelPlan:
    auto = Autoscale(kind=kind, metric="queue", series="s:q", query="sum(q)", hpa_metric="s_q", target="3",
                     target_quantity="3", prometheus_url="http://prom:1", polling_interval_s=21,
                     behavior={"scaleDown": {"stabilizationWindowSeconds": 999}}, fallback_failures=4,
                     fallback_replicas=2)
    return model_plan(scaling=Scaling(replicas=None, min_replicas=1, max_replicas=6, autoscale=auto))


def test_model_service_keda_scaled_object_from_the_plan():
    run = build(lambda: ModelService("m", ModelServiceArgs(autoscaled("keda"), "ns")))
    (so,) = objects(run, "ScaledObject")
    assert so["spec"]["minReplicaCount"] == 1 and so["spec"]["maxReplicaCount"] == 6
    assert so["spec"]["pollingInterval"] == 21
    assert so["spec"]["triggers"][0]["metadata"] == {"serverAddress": "http://prom:1", "query": "sum(q)",
                                                     "threshold": "3", "ignoreNullValues": "false"}
    assert so["spec"]["fallback"]["failureThreshold"] == 4 and so["spec"]["fallback"]["replicas"] == 2
    assert so["spec"]["advanced"]["horizontalPodAutoscalerConfig"]["behavior"] == {
        "scaleDown": {"stabilizationWindowSeconds": 999}}
    assert "replicas" not in objects(run, "Deployment")[0]["spec"]


def test_model_service_hpa_from_the_plan():
    run = build(lambda: ModelService("m", ModelServiceArgs(autoscaled("hpa"), "ns")))
    (hpa,) = objects(run, "HorizontalPodAutoscaler")
    assert hpa["spec"]["metrics"][0]["pods"]["metric"] == {"name": "s_q"}
    assert not objects(run, "ScaledObject")


def test_monitoring_one_pod_monitor_per_planned_engine():
    monitors = (EngineMonitor("vllm", "/mx", "9s", ("a/b",)), EngineMonitor("tgi", "/other", "9s", ()))
    plan = MonitoringPlan(selector_labels={"release": "kps"}, monitors=monitors, alerts=(), dashboard=None)
    run = build(lambda: Monitoring("mon", MonitoringArgs("ns", plan)))
    got = {o["metadata"]["name"]: o for o in objects(run, "PodMonitor")}
    assert set(got) == {"model-server-vllm", "model-server-tgi"}
    assert got["model-server-tgi"]["spec"]["podMetricsEndpoints"] == [
        {"port": "http", "path": "/other", "interval": "9s"}]
    assert got["model-server-vllm"]["spec"]["podTargetLabels"] == ["a/b"]
    assert got["model-server-vllm"]["metadata"]["labels"]["release"] == "kps"
    assert not objects(run, "PrometheusRule") and not objects(run, "ConfigMap")


def test_network_policies_from_the_network_plan():
    net = NetworkPlan(("a", "b"), "prom-ns", "1.2.3.4/32", "5.6.7.8/32")
    run = build(lambda: NetworkPolicies("net", NetworkPoliciesArgs("ns", net)))
    specs = {o["metadata"]["name"]: o["spec"] for o in objects(run, "NetworkPolicy")}
    clients = specs["allow-model-clients"]["ingress"][0]["from"][0]["namespaceSelector"]["matchExpressions"][0]
    assert clients["values"] == ["a", "b"]
    egress = specs["allow-prefetch-egress"]["egress"]
    assert egress[0]["to"][0]["ipBlock"]["except"] == ["1.2.3.4/32"] and egress[1]["to"][0]["ipBlock"]["cidr"] == (
        "5.6.7.8/32")


def test_cache_pvc_claim_and_jobs_from_the_plan():
    cache = CachePlan(kind="pvc", claim_name="claim-x", capacity_gib=321, storage_class="sc", throughput_per_tib=None,
                      subnet_id=None, s3_import_path=None, weights_gib=1, aggregate_mibps=1, per_client_mibps=1,
                      all_start_s=1, monthly_usd=None, target=None)
    run = build(lambda: ModelCache("w", ModelCacheArgs(cache, (model_plan(),), "ns")))
    (pvc,) = objects(run, "PersistentVolumeClaim")
    assert pvc["metadata"]["name"] == "claim-x" and pvc["spec"]["storageClassName"] == "sc"
    assert pvc["spec"]["resources"]["requests"]["storage"] == "321Gi"
    assert run.one("kubernetes:core/v1:PersistentVolumeClaim", "w-pvc").protect
    (job,) = objects(run, "Job")
    assert job["metadata"]["name"] == "m-fetch-abcd1234" and job["spec"]["backoffLimit"] == 7
    assert job["spec"]["activeDeadlineSeconds"] == 1234
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "py:1" and "huggingface_hub==9.9.9" in container["command"][-1]
    assert container["resources"]["limits"] == {"cpu": "2", "memory": "3Gi"}
    assert run.one("kubernetes:batch/v1:Job", "w-m-job").custom_timeouts == {"create": "2345s", "update": "2345s"}



# ---------------------------------------------------------------- KubeObject

KUBE_KINDS = [  # (typed class, apiVersion, kind, fields)
    ("core.v1.Service", "v1", "Service", {"spec": {"ports": [{"port": 80}]}}),
    ("core.v1.ServiceAccount", "v1", "ServiceAccount", {"automount_service_account_token": False}),
    ("core.v1.ConfigMap", "v1", "ConfigMap", {"data": {"a": "b"}}),
    ("apps.v1.Deployment", "apps/v1", "Deployment", {"spec": {"replicas": 2}}),
    ("batch.v1.Job", "batch/v1", "Job", {"spec": {"backoffLimit": 3}}),
    ("policy.v1.PodDisruptionBudget", "policy/v1", "PodDisruptionBudget", {"spec": {"maxUnavailable": 1}}),
    ("autoscaling.v2.HorizontalPodAutoscaler", "autoscaling/v2", "HorizontalPodAutoscaler",
     {"spec": {"minReplicas": 1}}),
    ("networking.v1.NetworkPolicy", "networking.k8s.io/v1", "NetworkPolicy", {"spec": {"podSelector": {}}}),
]


def test_kube_object_registers_what_the_typed_class_registers():
    import pulumi
    import pulumi_kubernetes as k8s

    from components.conventions import KubeObject

    def camel(key: str) -> str:
        head, *rest = key.split("_")
        return head + "".join(part.title() for part in rest)

    def build() -> None:
        for path, api_version, kind, fields in KUBE_KINDS:
            typed = k8s
            for part in path.split("."):
                typed = getattr(typed, part)
            meta = {"name": kind.lower(), "labels": {"a": "b"}}
            typed(f"typed-{kind}", metadata=meta, **fields)
            KubeObject(f"plain-{kind}", api_version, kind, pulumi.ResourceOptions(),
                       metadata=meta, **{camel(k): v for k, v in fields.items()})
        KubeObject("crd", "keda.sh/v1alpha1", "ScaledObject", pulumi.ResourceOptions(), spec={"x": 1})
        k8s.apiextensions.CustomResource("untyped-crd", api_version="keda.sh/v1alpha1", kind="ScaledObject",
                                         spec={"x": 1})

    run = run_function(build)
    named = {r.name: r for r in run.resources}
    for _, _, kind, _ in KUBE_KINDS:
        typed, plain = named[f"typed-{kind}"], named[f"plain-{kind}"]
        assert (plain.type, plain.inputs, plain.provider) == (typed.type, typed.inputs, typed.provider), kind
    assert named["crd"].type == named["untyped-crd"].type == "kubernetes:keda.sh/v1alpha1:ScaledObject"
    assert named["crd"].inputs == named["untyped-crd"].inputs
