"""Models larger than one node: planner figures against hand-computed values, and the LeaderWorkerSet they render."""

from pathlib import Path

import pytest
import yaml
from conftest import PROD, Project, k8s, model, stack_config
from test_planner import H100, settings
from test_validate import problems

from inference.architectures import known
from inference.errors import PlanError
from inference.plan import kvcache, plan
from inference.plan.cost import HOURS_PER_MONTH
from offline.mockrun import ROOT, Run
from offline.render import k8s_document

EXAMPLE = yaml.safe_load((ROOT / "examples" / "models-405b.yaml").read_text())["models"]
LLAMA_405B = EXAMPLE[0]
CHART = "kubernetes:helm.sh/v4:Chart"
PVC_CACHE = {"kind": "pvc", "storageClass": "efs-sc", "sizeGiB": 2000}


def big(**changes):
    """Llama-3.1-405B over 16 H100s, as in examples/models-405b.yaml."""
    return {**LLAMA_405B, **changes}


# ---------------------------------------------------------------- planner


def test_405b_on_two_p5_nodes_vllm_tensor_within_pipeline_across():
    m = plan(settings([big()], pools=(H100,), cache=PVC_CACHE)).models[0]
    mn = m.multinode
    assert (mn.nodes_per_replica, mn.gpus_per_pod, mn.tensor_parallel, mn.pipeline_parallel) == (2, 8, 8, 2)
    assert (m.placement.gpus, m.placement.nodes_at_min, m.placement.nodes_at_max) == (16, 2, 2)
    # vLLM: 80 GiB x 0.92 - 757/16 GiB of weights - (1.5 + 0.5) GiB reserve = 24.2875 GiB of KV cache per GPU.
    # Per token, each GPU holds 1 KV head (8 heads / TP 8) x 128 x 2 (K, V) x 2 bytes = 512 B in each of the
    # 126 / PP 2 = 63 layers of its stage: 32,256 B; over 16 GPUs 516,096 B (504 KiB, the model's full KV per token).
    fit = m.fit
    assert fit.kv_cache_gib == round(24.2875 * 16, 1) == 388.6
    assert fit.kv_bytes_per_token == 516_096
    assert fit.kv_tokens == int(24.2875 * 2**30 // 32_256) == 808_485
    assert fit.full_context_sequences == 808_485 // 32_768 == 24


def test_sglang_spans_nodes_with_tensor_parallel_over_all_gpus():
    m = plan(settings([big(engine="sglang")], pools=(H100,), cache=PVC_CACHE)).models[0]
    assert (m.multinode.tensor_parallel, m.multinode.pipeline_parallel) == (16, 1)
    # TP 16 over 8 KV heads: each GPU keeps one (replicated) head in all 126 layers: 126 x 512 B per GPU.
    assert m.fit.kv_bytes_per_token == 126 * 512 * 16
    assert m.container.args[m.container.args.index("--tp-size") + 1] == "16"
    assert m.container.args[-6:] == ("--nnodes", "2", "--node-rank", "$(LWS_WORKER_INDEX)", "--dist-init-addr",
                                     "$(LWS_LEADER_ADDRESS):20000")
    assert m.multinode.worker_args == m.container.args


def test_vllm_leader_and_worker_command_lines():
    m = plan(settings([big(engineArgs=["--enable-prefix-caching"])], pools=(H100,), cache=PVC_CACHE)).models[0]
    launch = ("--pipeline-parallel-size", "2", "--nnodes", "2", "--node-rank", "$(LWS_WORKER_INDEX)",
              "--master-addr", "$(LWS_LEADER_ADDRESS)")
    leader, worker = m.container.args, m.multinode.worker_args
    assert leader[leader.index("--tensor-parallel-size") + 1] == "8"
    assert leader[-len(launch) - 1:] == (*launch, "--enable-prefix-caching")
    assert worker[-len(launch) - 2:] == (*launch, "--headless", "--enable-prefix-caching")


def test_pipeline_stage_layers():
    gemma3 = known("hf://google/gemma-3-27b-it")
    assert (gemma3.layers, gemma3.global_layers) == (62, 10)
    # 62 layers over 2 stages: 31 each, of which at most 10 / 2 = 5 global
    assert kvcache.stage_layers(gemma3, 2) == (5, 26)
    assert kvcache.stage_layers(gemma3, 1) == (10, 52)
    llama = known("hf://meta-llama/Llama-3.1-405B-Instruct")
    assert kvcache.stage_layers(llama, 2) == (63, 0) and kvcache.stage_layers(llama, 4) == (32, 0)  # ceil(126/4)
    assert kvcache.sequence_bytes(llama, 8, "auto", 1000, pp=2) == 63 * 512 * 1000


def test_cold_start_every_node_reads_the_checkpoint():
    fsx = {"kind": "fsx-lustre", "storageGiB": 2400, "throughputPerTiB": 500, "subnetId": "subnet-0123456789abcdef0"}
    cs = plan(settings([big()], pools=(H100,), target="eks", cache=fsx)).models[0].cold_start
    # FSx 2400 GiB x 500 MB/s per TiB = 1171.875 MB/s = 1117 MiB/s, shared by the replica's 2 nodes: 558 MiB/s each
    aggregate = int(500 * 2400 / 1024 * 1e6 / 2**20)
    assert aggregate == 1117 and (cs.limit_link, cs.limit_mibps) == ("cache aggregate share", 558)
    assert (cs.read_mibps, cs.weight_read_s) == (298, 2602)  # the default loader's one reader: ceil(757 x 1024 / 298)
    assert cs.engine_start_s == 78  # vLLM 40 s + 757 / 2 GiB per pod at 10 GiB/s = 77.85 s
    assert cs.image_pull_s == 100  # 10 GiB at 0.1 GiB/s, on both nodes at once
    streamed = plan(settings([big(loader="runai-streamer")], pools=(H100,), target="eks", cache=fsx)).models[0]
    assert (streamed.cold_start.read_mibps, streamed.cold_start.weight_read_s) == (558, 1390)  # ceil(775168 / 558)


def test_cost_a_replica_pays_its_nodes():
    p = plan(settings([big(replicas=2)], pools=({**H100, "maxNodes": 6},), cache=PVC_CACHE))
    month = 55.04 * HOURS_PER_MONTH
    assert p.pools[0].nodes_at_max == 4 and p.pools[0].gpus_at_max == 32
    assert (p.models[0].cost.monthly_usd_min, p.models[0].cost.monthly_usd_max) == (round(4 * month, 2),) * 2


def test_surge_room_is_a_whole_group_of_nodes():
    s = settings([big(rollout="surge")], pools=({**H100, "maxNodes": 3},), cache=PVC_CACHE)
    with pytest.raises(PlanError) as info:
        plan(s)
    assert "that needs 4 nodes, maxNodes is 3" in str(info.value)
    assert plan(settings([big(rollout="surge")], pools=(H100,), cache=PVC_CACHE)).pools[0].nodes_for_updates == 4


def test_pool_too_small_for_one_multinode_replica_names_the_pool():
    with pytest.raises(PlanError) as info:
        plan(settings([big(name="big")], pools=({**H100, "maxNodes": 1},), cache=PVC_CACHE))
    msg = str(info.value)
    assert ("pool h100 needs 2 nodes (8 GPUs each) at max replicas, allows 1: big 1x16 GPUs (2 nodes per replica); "
            "short by 1 node(s)") in msg
    assert "inference:nodePools[0].maxNodes" in msg


def test_engine_args_may_not_set_the_launch_flags():
    with pytest.raises(PlanError) as info:
        plan(settings([big(engineArgs=["--nnodes=4"])], pools=(H100,), cache=PVC_CACHE))
    assert "field 'engineArgs': engineArgs sets --nnodes, which the multi-node launch of engine vllm sets" \
        in str(info.value)


def test_a_count_a_larger_instance_holds_warns():
    # 2 L40S on 1-GPU g6e.2xlarge nodes: a replica of two nodes, though a g6e.12xlarge has 4 L40S
    p = plan(settings([model(gpu={"type": "l40s", "count": 2}, sizeGiB=16)],
                      pools=({"name": "l40s", "instanceType": "g6e.2xlarge", "minNodes": 0, "maxNodes": 10},)))
    assert p.models[0].multinode.nodes_per_replica == 2
    assert any("one replica spans 2 nodes of pool l40s (g6e.2xlarge), talking over the network; g6e.12xlarge" in w
               for w in p.warnings)


def test_efa_only_for_pools_serving_multinode_models_unless_off():
    pools = (H100, {"name": "h200", "instanceType": "p5e.48xlarge", "minNodes": 0, "maxNodes": 2})
    small = model(name="small", gpu={"type": "h200", "count": 8}, sizeGiB=16, replicas=1)
    p = plan(settings([big(), small], pools=pools, target="eks", cache=PVC_CACHE))
    assert p.pools[0].efa is not None and p.pools[0].efa.interfaces == 32
    assert p.pools[0].efa.subnet_ids == ("subnet-0123456789abcdef0",)
    assert p.pools[1].efa is None  # its model fits one node
    assert p.models[0].multinode.efa_devices == 32 and p.addons.efa_device_plugin is not None
    off = plan(settings([big()], pools=({**H100, "efa": False},), cache=PVC_CACHE))
    assert off.pools[0].efa is None and off.models[0].multinode.efa_devices == 0
    assert off.addons.efa_device_plugin is None


def test_single_node_models_have_no_multinode_record(dev_run):
    assert all(m.get("multinode") is None for m in dev_run.outputs["plan"]["models"])


# ---------------------------------------------------------------- rendered


def prod_config(**changes):
    return stack_config(PROD, cache=PVC_CACHE, addons={**PROD["inference:addons"], "leaderWorkerSet": True},
                        **changes)


@pytest.fixture(scope="module")
def run_405b(tmp_path_factory) -> Run:
    auto = {"minReplicas": 1, "maxReplicas": 1, "metric": "queue", "target": 5}
    return Project(tmp_path_factory.mktemp("p405")).run(
        config=prod_config(), models=[big(replicas=None, autoscaling=auto)])


def test_405b_renders_a_leader_worker_set_of_two_8_gpu_pods(run_405b):
    lws = k8s(run_405b, "LeaderWorkerSet", "llama-3-1-405b")
    assert lws["apiVersion"] == "leaderworkerset.x-k8s.io/v1" and "replicas" not in lws["spec"]
    t = lws["spec"]["leaderWorkerTemplate"]
    assert (t["size"], t["restartPolicy"]) == (2, "RecreateGroupOnPodRestart")
    leader, worker = (t[k]["spec"]["containers"][0] for k in ("leaderTemplate", "workerTemplate"))
    for c in (leader, worker):
        assert c["resources"]["limits"]["nvidia.com/gpu"] == "8"
        assert c["resources"]["requests"]["vpc.amazonaws.com/efa"] == "32"
        assert c["volumeMounts"][0] == {"name": "weights", "mountPath": "/models", "readOnly": True}
        assert c["securityContext"]["runAsNonRoot"] and c["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert "startupProbe" in leader and "startupProbe" not in worker and "ports" not in worker
    assert worker["args"][-1] == "--headless" and "--headless" not in leader["args"]
    for k in ("leaderTemplate", "workerTemplate"):
        pod = t[k]["spec"]
        assert pod["nodeSelector"] == {"inference/pool": "h100", "inference/gpu-type": "h100"}
        assert pod["initContainers"][0]["name"] == "check-weights" and "topologySpreadConstraints" not in pod


def test_405b_service_pdb_autoscaler_and_group_traffic(run_405b):
    svc = k8s(run_405b, "Service", "llama-3-1-405b")
    assert svc["spec"]["selector"] == {
        "app.kubernetes.io/name": "llama-3-1-405b", "app.kubernetes.io/component": "model-server",
        "leaderworkerset.sigs.k8s.io/name": "llama-3-1-405b", "leaderworkerset.sigs.k8s.io/worker-index": "0"}
    assert k8s(run_405b, "PodDisruptionBudget", "llama-3-1-405b")["spec"]["maxUnavailable"] == 1
    so = k8s(run_405b, "ScaledObject", "llama-3-1-405b")
    assert so["spec"]["scaleTargetRef"] == {"apiVersion": "leaderworkerset.x-k8s.io/v1", "kind": "LeaderWorkerSet",
                                            "name": "llama-3-1-405b"}
    assert 'pod=~"llama-3-1-405b-[0-9]+"' in so["spec"]["triggers"][0]["metadata"]["query"]
    group = {"podSelector": {"matchLabels": {"leaderworkerset.sigs.k8s.io/name": "llama-3-1-405b"}}}
    assert k8s(run_405b, "NetworkPolicy", "llama-3-1-405b-group")["spec"] == {
        **group, "policyTypes": ["Ingress", "Egress"], "ingress": [{"from": [group]}], "egress": [{"to": [group]}]}
    assert run_405b.outputs["endpoints"]["llama-3-1-405b"] == \
        "http://llama-3-1-405b.inference.svc.cluster.local:80"


def test_405b_objects_validate_against_stored_crds(run_405b):
    docs = [k8s_document(r) for r in run_405b.k8s_objects()]
    found = [f"{d['kind']} {d['metadata']['name']}: {p}" for d in docs for p in problems(d, "1.32")]
    assert not found, found
    assert {"LeaderWorkerSet", "ScaledObject"} <= {d["kind"] for d in docs}


def test_405b_installs_lws_and_efa_charts_and_waits_for_them(run_405b):
    charts = {r.name: r for r in run_405b.of_type(CHART)}
    lws, efa = charts["addons-leader-worker-set"].inputs, charts["addons-efa-device-plugin"].inputs
    assert (lws["chart"], lws["version"], lws["namespace"]) == ("oci://registry.k8s.io/lws/charts/lws", "0.10.0",
                                                                "lws-system")
    assert "repositoryOpts" not in lws
    assert (efa["chart"], efa["version"], efa["repositoryOpts"]) == (
        "aws-efa-k8s-device-plugin", "v0.5.30", {"repo": "https://aws.github.io/eks-charts"})
    assert efa["values"]["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    deps = run_405b.one("kubernetes:leaderworkerset.x-k8s.io/v1:LeaderWorkerSet", "llama-3-1-405b-lws").depends_on
    assert {charts["addons-leader-worker-set"].urn, charts["addons-efa-device-plugin"].urn} <= set(deps)


def test_405b_pool_in_a_cluster_placement_group_with_efa(run_405b):
    (pg,) = run_405b.of_type("aws:ec2/placementGroup:PlacementGroup")
    assert pg.name == "h100-placement" and pg.inputs["strategy"] == "cluster"
    lt = run_405b.one("aws:ec2/launchTemplate:LaunchTemplate", "h100-launch-template").inputs
    nics = lt["networkInterfaces"]
    assert len(nics) == 32 and {n["interfaceType"] for n in nics} == {"efa"}
    assert [(n["networkCardIndex"], n["deviceIndex"]) for n in nics[:2]] == [(0, 0), (1, 1)]
    assert "vpcSecurityGroupIds" not in lt and "placement" in lt
    ng = run_405b.one("aws:eks/nodeGroup:NodeGroup", "h100-gpu-nodes").inputs
    assert ng["subnetIds"] == ["subnet-0a1b2c3d4e5f60001"]  # one AZ, as the placement group
    l40s = run_405b.one("aws:ec2/launchTemplate:LaunchTemplate", "l40s-launch-template").inputs
    assert "networkInterfaces" not in l40s and "placement" not in l40s


def test_render_target_registers_no_aws_with_a_multinode_model(project):
    run = project.run(config=stack_config(cache=PVC_CACHE), models=[big()])
    assert not [r for r in run.resources if r.type.startswith("aws:")]
    assert k8s(run, "LeaderWorkerSet", "llama-3-1-405b")["spec"]["replicas"] == 1


def test_example_file_renders_on_prod_as_written(tmp_path: Path):
    project = Project(tmp_path)
    run = project.run(config=prod_config(), models=EXAMPLE)
    t = k8s(run, "LeaderWorkerSet", "llama-3-1-405b")["spec"]["leaderWorkerTemplate"]
    assert t["size"] == 2
    shown = run.outputs["plan"]["models"][0]
    assert shown["multinode"] == {"nodesPerReplica": 2, "gpusPerPod": 8, "tensorParallel": 8, "pipelineParallel": 2,
                                  "restartPolicy": "RecreateGroupOnPodRestart", "efaDevices": 32,
                                  "launch": "vLLM docs, multi-node serving with the multiprocessing backend"}


def test_report_shows_nodes_fit_cold_start_and_cost(tmp_path: Path):
    from offline.report import markdown, text

    # the pvc cache reads 250 MiB/s per client: 757 GiB x 1024 / 250 = 3101 s
    shown = Project(tmp_path).run(config=prod_config(), models=EXAMPLE).outputs["plan"]
    rows = [line for line in text(shown).splitlines() if line.startswith("llama-3-1-405b")]
    for figure in ("16x h100 = 2 nodes x 8 (TP 8 x PP 2, EFA)", "2-2", "388.6", "808,485 = 24x 32768 (batch 32)",
                   f"${round(2 * 55.04 * HOURS_PER_MONTH):,}"):
        assert figure in rows[0], (figure, rows[0])
    assert "= 100s + 3101s + 78s + 46s" in rows[1]  # pull + read + start + compile
    assert "16x h100 = 2 nodes x 8 (TP 8 x PP 2, EFA)" in markdown(shown, "prod")
