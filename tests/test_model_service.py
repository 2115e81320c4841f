"""What each model becomes: Deployment, Service, PDB, autoscaler, PodMonitor, wired from the plan."""

import pytest
from conftest import containers, k8s, model, stack_config

from inference.engines import ENGINES

AUTO = {"minReplicas": 1, "maxReplicas": 3, "metric": "queue", "target": 5}


def engine_of(run, name):
    pod = k8s(run, "Deployment", name)["spec"]["template"]["spec"]
    return next(c for c in pod["containers"] if c["name"] == "engine"), pod


@pytest.mark.parametrize("engine, expected", [
    ("vllm", ["vllm", "serve", "/models/m1/" + "0" * 40, "--served-model-name", "m1", "--tensor-parallel-size", "1",
              "--max-model-len", "8192", "--max-num-seqs", "32", "--port", "8000",
              "--safetensors-load-strategy", "eager", "--enable-prefix-caching"]),
    ("sglang", ["python3", "-m", "sglang.launch_server", "--model-path", "/models/m1/" + "0" * 40,
                "--served-model-name", "m1", "--tp-size", "1", "--context-length", "8192",
                "--max-running-requests", "32", "--port", "30000", "--enable-metrics", "--enable-prefix-caching"]),
    ("tgi", ["text-generation-launcher", "--model-id", "/models/m1/" + "0" * 40, "--num-shard", "1",
             "--max-total-tokens", "8192", "--max-input-tokens", "8191", "--max-concurrent-requests", "32",
             "--port", "8080", "--hostname", "0.0.0.0", "--enable-prefix-caching"]),
    ("trtllm", ["trtllm-serve", "/models/m1/" + "0" * 40, "--tp_size", "1", "--max_seq_len", "8192",
                "--max_batch_size", "32", "--port", "8000", "--host", "0.0.0.0", "--enable-prefix-caching"]),
])
def test_engine_command_line(project, engine, expected):
    image = ENGINES[engine].image or "registry.example.com/tgi-nonroot:3.3.7"  # TGI: no usable default image
    run = project.run(models=[model(engine=engine, image=image, engineArgs=["--enable-prefix-caching"])])
    c, _ = engine_of(run, "m1")
    line = [*c["command"], *c["args"]]
    # every expected flag is present with its value right after it, and engineArgs come last, verbatim
    for i, token in enumerate(expected):
        if token.startswith("--") and i + 1 < len(expected) and not expected[i + 1].startswith("--"):
            assert line[line.index(token) + 1] == expected[i + 1], token
        assert token in line
    assert line[: len(c["command"])] == list(ENGINES[engine].command)
    assert line[-1] == "--enable-prefix-caching"
    assert c["image"] == image and not c["image"].endswith(":latest")
    assert c["ports"] == [{"name": "http", "containerPort": ENGINES[engine].port, "protocol": "TCP"}]


def test_image_override_and_user_env(project):
    run = project.run(models=[model(image="registry.local:5000/vllm:v1", env={"VLLM_LOGGING_LEVEL": "DEBUG"})])
    c, _ = engine_of(run, "m1")
    assert c["image"] == "registry.local:5000/vllm:v1"
    env = {e["name"]: e["value"] for e in c["env"]}
    assert env["HF_HUB_OFFLINE"] == "1" and env["VLLM_LOGGING_LEVEL"] == "DEBUG" and env["HOME"] == "/tmp"


def test_gpu_placement(project):
    pools = [{"name": "big", "instanceType": "p5.48xlarge", "minNodes": 0, "maxNodes": 2}]
    run = project.run(config=stack_config(nodePools=pools),
                      models=[model(gpu={"type": "h100", "count": 4}, sizeGiB=140)])
    c, pod = engine_of(run, "m1")
    assert c["resources"]["limits"]["nvidia.com/gpu"] == "4" == c["resources"]["requests"]["nvidia.com/gpu"]
    assert c["resources"]["requests"]["memory"] == c["resources"]["limits"]["memory"] == "920Gi"
    assert "cpu" not in c["resources"]["limits"]
    assert pod["nodeSelector"] == {"inference/pool": "big", "inference/gpu-type": "h100"}
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod["tolerations"]
    shm = next(v for v in pod["volumes"] if v["name"] == "shm")
    assert shm["emptyDir"] == {"medium": "Memory", "sizeLimit": "16Gi"}
    assert "--tensor-parallel-size" in c["args"] and c["args"][c["args"].index("--tensor-parallel-size") + 1] == "4"


def test_probes_from_plan(project):
    run = project.run(models=[model(sizeGiB=40, replicas=1)])
    plan = next(m for m in run.outputs["plan"]["models"] if m["name"] == "m1")
    c, pod = engine_of(run, "m1")
    startup = c["startupProbe"]
    assert startup["httpGet"] == {"path": "/health", "port": "http"}
    assert startup["failureThreshold"] == plan["startupProbe"]["failureThreshold"]
    assert startup["failureThreshold"] * startup["periodSeconds"] >= plan["coldStart"]["budgetSeconds"]
    assert c["readinessProbe"]["httpGet"]["path"] == c["livenessProbe"]["httpGet"]["path"] == "/health"
    assert c["lifecycle"]["preStop"] == {"sleep": {"seconds": 15}}
    assert pod["terminationGracePeriodSeconds"] > 15
    deploy = k8s(run, "Deployment", "m1")
    assert deploy["spec"]["progressDeadlineSeconds"] == plan["rollout"]["progressDeadlineSeconds"]


def test_restricted_security_and_readonly_cache(project):
    run = project.run()
    _, pod = engine_of(run, "m1")
    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] != 0
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    for c in containers(pod):
        sc = c["securityContext"]
        assert sc["allowPrivilegeEscalation"] is False and sc["capabilities"] == {"drop": ["ALL"]}
        weights = next(m for m in c["volumeMounts"] if m["name"] == "weights")
        assert weights == {"name": "weights", "mountPath": "/models", "readOnly": True}
    claim = next(v for v in pod["volumes"] if v["name"] == "weights")["persistentVolumeClaim"]
    assert claim == {"claimName": "model-weights", "readOnly": True}
    check = pod["initContainers"][0]
    assert check["name"] == "check-weights" and "/models/m1/" + "0" * 40 + ".complete" in check["command"][-1]


def test_fixed_replicas_service_pdb_no_autoscaler(project):
    run = project.run(models=[model(replicas=3)])
    assert k8s(run, "Deployment", "m1")["spec"]["replicas"] == 3
    svc = k8s(run, "Service", "m1")["spec"]
    assert svc["type"] == "ClusterIP" and svc["ports"][0]["name"] == "http" and svc["ports"][0]["targetPort"] == "http"
    pdb = k8s(run, "PodDisruptionBudget", "m1")
    assert pdb["apiVersion"] == "policy/v1" and pdb["spec"]["maxUnavailable"] == 1
    assert not [r for r in run.k8s_objects() if r.inputs["kind"] in ("ScaledObject", "HorizontalPodAutoscaler")]


def test_keda_scaled_object(project):
    run = project.run(models=[model(replicas=None, autoscaling=AUTO)])
    assert "replicas" not in k8s(run, "Deployment", "m1")["spec"]
    so = k8s(run, "ScaledObject", "m1")
    assert so["apiVersion"] == "keda.sh/v1alpha1"
    spec = so["spec"]
    assert spec["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "m1"}
    assert (spec["minReplicaCount"], spec["maxReplicaCount"]) == (1, 3)
    trigger = spec["triggers"][0]
    assert trigger["type"] == "prometheus"
    assert trigger["metadata"] == {
        "serverAddress": "http://prometheus-operated.monitoring.svc:9090",
        "query": 'sum(vllm:num_requests_waiting{namespace="inference",pod=~"m1-[a-z0-9]+-[a-z0-9]+"})',
        "threshold": "5", "ignoreNullValues": "false"}
    down = spec["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]["scaleDown"]
    assert down["stabilizationWindowSeconds"] >= 300


def test_hpa_on_pods_metric(project):
    auto = {**AUTO, "metric": "kvCache", "target": 0.8}
    run = project.run(config=stack_config(autoscaler="hpa"), models=[model(replicas=None, autoscaling=auto)])
    hpa = k8s(run, "HorizontalPodAutoscaler", "m1")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["metrics"] == [{"type": "Pods", "pods": {
        "metric": {"name": "vllm_kv_cache_usage_perc"}, "target": {"type": "AverageValue", "averageValue": "800m"}}}]
    assert hpa["spec"]["behavior"]["scaleDown"]["stabilizationWindowSeconds"] >= 300
    assert not [r for r in run.k8s_objects() if r.inputs["kind"] == "ScaledObject"]


def test_one_pod_monitor_per_engine_in_use_and_toggle(project):
    on = project.run(models=[model(name="a"), model(name="b"), model(name="c", engine="sglang")])
    monitors = sorted(r.inputs["metadata"]["name"] for r in on.k8s_objects() if r.inputs["kind"] == "PodMonitor")
    assert monitors == ["model-server-sglang", "model-server-vllm"]
    pm = k8s(on, "PodMonitor", "model-server-vllm")["spec"]
    assert pm["selector"] == {"matchLabels": {"app.kubernetes.io/component": "model-server",
                                              "inference/engine": "vllm"}}
    assert pm["podMetricsEndpoints"] == [{"port": "http", "path": "/metrics", "interval": "15s"}]
    pod = k8s(on, "Deployment", "a")["spec"]["template"]["metadata"]["labels"]
    assert all(pod[k] == v for k, v in pm["selector"]["matchLabels"].items())
    off = project.run(config=stack_config(monitoring={"podMonitor": False}))
    assert not [r for r in off.k8s_objects() if r.inputs["kind"] == "PodMonitor"]


def test_every_kubernetes_resource_uses_the_one_explicit_provider(dev_run, prod_run):
    for run in (dev_run, prod_run):
        providers = [r for r in run.resources if r.type == "pulumi:providers:kubernetes"]
        assert [p.name for p in providers] == ["k8s"]
        k8s_resources = [r for r in run.resources if r.type.startswith("kubernetes:") and (r.custom or r.remote)]
        assert k8s_resources
        for r in k8s_resources:
            assert r.provider == "pulumi:providers:kubernetes::k8s", (r.type, r.name, r.provider)


def test_namespace_is_restricted(dev_run):
    ns = k8s(dev_run, "Namespace", "inference")["metadata"]["labels"]
    for level in ("enforce", "audit", "warn"):
        assert ns[f"pod-security.kubernetes.io/{level}"] == "restricted"


def test_deployment_timeouts_from_plan(dev_run):
    deploy = dev_run.one("kubernetes:apps/v1:Deployment", "mixtral-8x7b-deploy")
    plan = next(m for m in dev_run.outputs["plan"]["models"] if m["name"] == "mixtral-8x7b")
    cold = plan["coldStart"]
    budget = cold["budgetSeconds"]
    # the image is pulled before the startup probe runs: Pulumi waits for both, plus its margin
    assert int(deploy.custom_timeouts["create"].rstrip("s")) == cold["imagePullSeconds"] + budget + 600
    assert int(deploy.custom_timeouts["update"].rstrip("s")) > budget


def test_budgets_reach_probes_timeouts_and_strategy_and_grow_with_size(project):
    """A 16 GiB and a 140 GiB model on the same cache get different, plan-derived probes and timeouts."""
    pools = [{"name": "h100", "instanceType": "p5.48xlarge", "minNodes": 0, "maxNodes": 2}]
    cache = {"kind": "pvc", "storageClass": "rwx", "sizeGiB": 400}
    run = project.run(config=stack_config(nodePools=pools, cache=cache), models=[
        model(name="small", sizeGiB=16, gpu={"type": "h100", "count": 1}, replicas=1),
        model(name="large", sizeGiB=140, gpu={"type": "h100", "count": 2}, replicas=1)])
    plans = {m["name"]: m for m in run.outputs["plan"]["models"]}
    seen = {}
    for name in ("small", "large"):
        deploy = run.one("kubernetes:apps/v1:Deployment", f"{name}-deploy")
        spec = deploy.inputs["spec"]
        startup = spec["template"]["spec"]["containers"][0]["startupProbe"]
        budget = plans[name]["coldStart"]["budgetSeconds"]
        assert startup["failureThreshold"] == plans[name]["startupProbe"]["failureThreshold"] == -(-budget // 10)
        assert spec["progressDeadlineSeconds"] == plans[name]["rollout"]["progressDeadlineSeconds"]
        rollout = plans[name]["rollout"]
        assert spec["strategy"]["rollingUpdate"] == {k: rollout[k] for k in ("maxSurge", "maxUnavailable")}
        seen[name] = (startup["failureThreshold"], int(deploy.custom_timeouts["create"].rstrip("s")),
                      int(deploy.custom_timeouts["update"].rstrip("s")))
    assert all(large > small for small, large in zip(seen["small"], seen["large"], strict=True))
