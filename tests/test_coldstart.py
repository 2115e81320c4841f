"""Cold start near the physical limit: image pre-pull, the streaming loader, the compile cache, a cache sized for a
target; every figure against hand-computed values, and the budgets following them."""

from __future__ import annotations

import pytest
from conftest import containers, k8s, model, stack_config
from test_planner import FSX, H100, L40S, settings

from inference.errors import PlanError
from inference.plan import plan

# prod's cache: FSx 2400 GiB at 500 MB/s/TiB = int(500 x 2400 / 1024 x 10^6 / 2^20) = 1117 MiB/s aggregate.
# g6e.2xlarge: 20 Gbit/s = 2441 MiB/s; host to GPU 10 GiB/s = 10240 MiB/s; one reader 298 MiB/s.
LLAMA = dict(source="hf://meta-llama/Llama-3.1-8B-Instruct", sizeGiB=16, rollout="replace")


def cold(cache=FSX, pools=(L40S, H100), **changes):
    return plan(settings([model(**{**LLAMA, **changes})], pools, cache=cache, target="eks")).models[0].cold_start


def test_default_loader_on_a_shared_cache_hand_computed():
    c = cold(replicas=4)  # 1117 / 4 = 279 MiB/s each: the aggregate share is the tightest link
    assert (c.limit_link, c.limit_mibps, c.read_mibps) == ("cache aggregate share", 279, 279)
    assert (c.image_pull_s, c.weight_read_s, c.engine_start_s, c.compile_s) == (100, 59, 42, 46)
    # 10 GiB image / 0.1 GiB/s; 16384 MiB / 279; 40 s + 16 GiB / 10 GiB/s; vLLM's torch.compile without a cache
    assert (c.estimate_s, c.warm_s, c.limit_s, c.floor_s) == (100 + 59 + 42 + 46, 59 + 42, 59, 59 + 40)
    assert c.warm_ratio == round(101 / 99, 2) == 1.02
    assert c.budget_s == 300  # 2 x (59 + 42 + 46) = 294, raised to the 5-minute floor


def test_streaming_loader_reads_at_the_path_limit_a_single_reader_cannot():
    default, streamer = cold(replicas=1), cold(replicas=1, loader="runai-streamer")
    assert (default.read_mibps, default.weight_read_s) == (298, 55)  # one reader: 16384 / 298
    assert (streamer.limit_mibps, streamer.read_mibps, streamer.weight_read_s) == (1117, 1117, 15)
    assert streamer.streamer_concurrency == 16  # ceil(1117 / 596) = 2 flows, raised to the streamer's 16
    assert streamer.engine_start_s == 40  # the streams land in GPU memory: no separate copy
    assert streamer.warm_s == 55 < default.warm_s == 97


def test_streamer_flag_and_concurrency_reach_the_command_line(project):
    run = project.run(models=[model(loader="runai-streamer")])
    engine = k8s(run, "Deployment", "m1")["spec"]["template"]["spec"]["containers"][0]
    args = engine["args"]
    assert args[args.index("--load-format") + 1] == "runai_streamer"
    assert args[args.index("--model-loader-extra-config") + 1] == '{"concurrency":16}'
    assert "--safetensors-load-strategy" not in args


@pytest.mark.parametrize("engine", ["sglang", "trtllm"])
def test_streamer_refused_for_engines_without_it(project, engine):
    msg = project.error(models=[model(engine=engine, loader="runai-streamer")])
    assert "field 'loader'" in msg and "no Run:ai Model Streamer loader" in msg and "vllm" in msg


def test_compile_cache_is_shared_per_revision_and_image_and_writable_only_there(project):
    run = project.run(models=[model()])
    pod = k8s(run, "Deployment", "m1")["spec"]["template"]["spec"]
    engine = pod["containers"][0]
    env = {e["name"]: e["value"] for e in engine["env"]}
    assert env["VLLM_CACHE_ROOT"] == "/compile-cache/m1/" + "0" * 40 + "/vllm-openai_v0.31.0"
    mounts = {m["name"]: m for m in engine["volumeMounts"]}
    assert mounts["compile-cache"] == {"name": "compile-cache", "mountPath": "/compile-cache", "subPath": ".compile"}
    assert mounts["weights"]["readOnly"] is True
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["compile-cache"]["persistentVolumeClaim"] == {"claimName": "model-weights"}
    job = next(r.inputs for r in run.of_type("kubernetes:batch/v1:Job"))
    assert "mkdir -p /models/.compile" in job["spec"]["template"]["spec"]["containers"][0]["command"][2]
    tgi = project.run(models=[model(engine="tgi", image="registry.local:5000/tgi:3.3.7-nonroot")])
    pod = k8s(tgi, "Deployment", "m1")["spec"]["template"]["spec"]
    assert "compile-cache" not in {v["name"] for v in pod["volumes"]}


def test_image_prepull_one_daemonset_per_pool_and_image_restricted(project):
    run = project.run(models=[model(name="a"), model(name="b"), model(name="c", engine="sglang")])
    sets = {r.inputs["metadata"]["annotations"]["inference/image"]: r.inputs
            for r in run.of_type("kubernetes:apps/v1:DaemonSet")}
    assert set(sets) == {"vllm/vllm-openai:v0.31.0", "lmsysorg/sglang:v0.5.20"}  # a and b share one
    spec = sets["vllm/vllm-openai:v0.31.0"]["spec"]["template"]["spec"]
    assert spec["nodeSelector"] == {"inference/pool": "l40s", "inference/gpu-type": "l40s"}
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in spec["tolerations"]
    (pull,) = spec["initContainers"]
    assert pull["image"] == "vllm/vllm-openai:v0.31.0" and pull["command"] == ["sh", "-c", "exit 0"]
    for c in containers(spec):
        assert c["securityContext"]["runAsNonRoot"] and c["securityContext"]["allowPrivilegeEscalation"] is False
        assert c["resources"]["requests"] == {"cpu": "10m", "memory": "16Mi"}
        assert "nvidia.com/gpu" not in c["resources"]["limits"]
    assert spec["automountServiceAccountToken"] is False


def test_budgets_follow_the_estimates(project):
    run = project.run(config=stack_config(cache={"kind": "pvc", "storageClass": "x", "sizeGiB": 500}),
                      models=[model(**{**LLAMA, "replicas": 1, "sizeGiB": 40})])
    plan_ = run.outputs["plan"]["models"][0]
    c = plan_["coldStart"]
    # pvc: 250 MiB/s per client; 40960 / 250 = 164 s; start 40 + 4 = 44 s; compile 46 s
    assert (c["weightReadSeconds"], c["engineStartSeconds"], c["compileSeconds"]) == (164, 44, 46)
    assert c["budgetSeconds"] == 2 * (164 + 44 + 46)  # the pull happens before the probe runs: not in it
    deploy = run.one("kubernetes:apps/v1:Deployment", "m1-deploy")
    startup = deploy.inputs["spec"]["template"]["spec"]["containers"][0]["startupProbe"]
    assert startup["failureThreshold"] * startup["periodSeconds"] >= c["budgetSeconds"]
    assert deploy.inputs["spec"]["progressDeadlineSeconds"] == c["imagePullSeconds"] + c["budgetSeconds"] + 600
    assert deploy.custom_timeouts["create"] == f"{c['imagePullSeconds'] + c['budgetSeconds'] + 600}s"


def test_a_faster_loader_shortens_probe_and_timeouts(project):
    def startup(**changes):
        run = project.run(models=[model(**{**LLAMA, "replicas": 1, "sizeGiB": 40}, **changes)],
                          config=stack_config(cache={"kind": "pvc", "storageClass": "x", "sizeGiB": 500}))
        return run.outputs["plan"]["models"][0]["coldStart"]["budgetSeconds"]
    # pvc's 250 MiB/s per client is below one reader's 298: the streamer gains only the separate GPU copy
    assert startup(loader="runai-streamer") == 2 * (164 + 40 + 46) < startup()


def test_cold_start_target_sizes_fsx_and_errors_naming_the_setting():
    mixtral = model(name="mx", source="hf://mistralai/Mixtral-8x7B-Instruct-v0.1", sizeGiB=87,
                    gpu={"type": "h100", "count": 2}, replicas=None, loader="runai-streamer", rollout="replace",
                    autoscaling={"minReplicas": 1, "maxReplicas": 4, "metric": "queue", "target": 5})
    with pytest.raises(PlanError) as info:
        plan(settings([mixtral], (L40S, H100), cache={**FSX, "coldStartTarget": "3m"}, target="eks"))
    (problem,) = info.value.problems
    # 180 s - 40 s start = 140 s for 87 GiB: 636.3 MiB/s a replica, x 4 = 2546 MiB/s against 1117
    assert problem.field == "inference:cache.coldStartTarget"
    assert "model mx's replicas starting together must read 2546 MiB/s from the cache, which reads 1117" in \
        problem.message
    # cheapest: 500 MB/s/TiB needs 5.34 TiB -> 7200 GiB at $0.340 = $2,448 (1000: 4800 GiB, $2,880; 250: 12000, ...)
    assert "set storageGiB 7200 with throughputPerTiB 500 ($2,448/month)" in problem.message
    ok = plan(settings([mixtral], (L40S, H100), cache={**FSX, "storageGiB": 7200, "coldStartTarget": "3m"},
                       target="eks"))
    assert ok.cache.target.needed_mibps == 2546 and ok.models[0].cold_start.warm_s <= 180


def test_cold_start_target_a_single_reader_cannot_meet_says_so():
    big = model(**{**LLAMA, "sizeGiB": 40, "replicas": 1})
    with pytest.raises(PlanError) as info:
        plan(settings([big], cache={**FSX, "coldStartTarget": "1m"}, target="eks"))
    msg = str(info.value)
    # 60 s - (40 + 4) s = 16 s for 40 GiB: 2560 MiB/s per replica, above one reader's 298
    assert "cannot be met whatever the cache: model m1 needs 2560 MiB/s per replica" in msg
    assert "298 MiB/s (one reader, loader default)" in msg and "loader: runai-streamer" in msg


def test_fp8_kv_cache_refused_for_an_engine_without_the_flag(project):
    msg = project.error(models=[model(engine="trtllm", kvCacheDtype="fp8")])
    assert "field 'kvCacheDtype'" in msg and "engine trtllm takes its KV-cache dtype from its options file" in msg
    assert "engines with kvCacheDtype fp8: vllm, sglang, tgi" in msg
