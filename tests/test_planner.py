"""The planner as plain Python: fit, capacity, cache, cold-start budgets, rollout, cost."""

import pytest
import yaml
from conftest import model

from inference.errors import PlanError
from inference.plan import plan
from inference.plan.coldstart import BUDGET_MAX_S, BUDGET_MIN_S
from inference.plan.placement import pack_nodes
from inference.plan.units import quantity
from inference.settings import Settings, load_models, load_stack
from inference.yaml_loader import load_text

H100 = {"name": "h100", "instanceType": "p5.48xlarge", "minNodes": 0, "maxNodes": 4}
L40S = {"name": "l40s", "instanceType": "g6e.2xlarge", "minNodes": 0, "maxNodes": 10}
FSX = {"kind": "fsx-lustre", "storageGiB": 2400, "throughputPerTiB": 500, "subnetId": "subnet-0123456789abcdef0"}
CLUSTER = {"name": "c", "subnetIds": ["subnet-0123456789abcdef0"]}


def settings(models, pools=(L40S, H100), cache=None, target="render", **extra):
    raw = {"target": target, "nodePools": list(pools), **extra}
    if cache:
        raw["cache"] = cache
    if target == "eks":
        raw["cluster"] = CLUSTER
    src = load_text(yaml.safe_dump({"models": models}), "models.yaml")
    return Settings(stack_name="t", stack=load_stack(raw, "Pulumi.t.yaml", None), models=load_models(src),
                    models_src=src, stack_file="Pulumi.t.yaml", stack_src=None)


def h100_model(name="mx", replicas=None, max_replicas=4, count=2, size=87, rollout="replace"):
    auto = {"minReplicas": 1, "maxReplicas": max_replicas, "metric": "queue", "target": 5}
    return model(name=name, sizeGiB=size, gpu={"type": "h100", "count": count}, replicas=replicas,
                 autoscaling=None if replicas else auto, rollout=rollout)


@pytest.mark.parametrize("items, per_node, nodes", [
    ([], 8, 0), ([1] * 8, 8, 1), ([1] * 9, 8, 2), ([4, 4, 4], 8, 2), ([8, 1], 8, 2), ([2, 2, 4, 8, 2, 2], 8, 3),
])
def test_pack_nodes(items, per_node, nodes):
    assert pack_nodes(items, per_node) == nodes


@pytest.mark.parametrize("extra, fits", [(0, True), (1, False)])
def test_pool_fits_exactly_or_fails_by_one_node(extra, fits):
    # 4 replicas x 2 GPUs = one 8-GPU node, the pool's only one; `extra` more replicas need a second node
    pools = (L40S, {**H100, "maxNodes": 1})
    models = [h100_model(), *([h100_model(name="mx2", max_replicas=extra)] if extra else [])]
    s = settings(models, pools)
    if fits:
        p = plan(s)
        assert (p.pools[1].nodes_at_max, p.pools[1].gpus_at_max) == (1, 8)
    else:
        with pytest.raises(PlanError) as info:
            plan(s)
        msg = str(info.value)
        assert "pool h100 needs 2 nodes (8 GPUs each) at max replicas, allows 1: mx 4x2 GPUs, mx2 1x2 GPUs" in msg
        assert "short by 1 node(s)" in msg
        assert "inference:nodePools[1].maxNodes" in msg


def test_gpu_count_not_whole_nodes_and_memory_misfit_reported_together():
    s = settings([model(name="a", gpu={"type": "h100", "count": 12}), model(name="b", sizeGiB=44)])
    with pytest.raises(PlanError) as info:
        plan(s)
    assert len(info.value.problems) == 2
    assert {p.model for p in info.value.problems} == {"a", "b"}


def test_larger_pool_of_same_gpu_type_is_chosen_for_tensor_parallel():
    big = {"name": "l40s-x4", "instanceType": "g6e.12xlarge", "minNodes": 0, "maxNodes": 2}
    p = plan(settings([model(gpu={"type": "l40s", "count": 4}, rollout="replace")], (L40S, big)))
    assert p.models[0].placement.pool == "l40s-x4" and p.models[0].placement.replicas_per_node == 1


@pytest.mark.parametrize("size_gib, ok", [(1000, True), (1200, False)])
def test_cache_must_hold_all_weights_plus_room_for_one_revision(size_gib, ok):
    models = [model(name="a", sizeGiB=40), model(name="b", sizeGiB=40)]
    cache = {"kind": "pvc", "storageClass": "x", "sizeGiB": 119 if not ok else 120}
    s = settings(models, cache=cache)
    if ok:
        assert plan(s).cache.capacity_gib == 120
    else:
        with pytest.raises(PlanError) as info:
            plan(s)
        assert "holds 119 GiB but the models need 80 GiB plus 40 GiB" in str(info.value)
        assert "allowed: at least 120 GiB" in str(info.value)


def test_efs_warns_about_per_client_cap():
    p = plan(settings([model()], cache={"kind": "efs"}, target="eks"))
    assert any("efs" in w and "1500 MiB/s" in w for w in p.warnings)
    assert p.cache.per_client_mibps == 1500 and p.cache.capacity_gib is None


def test_rollout_is_the_models_own_and_the_pool_keeps_surge_room():
    pools = (L40S, {**H100, "maxNodes": 1})
    surge = plan(settings([h100_model(max_replicas=3, rollout="surge")], pools))
    assert (surge.models[0].rollout.max_surge, surge.models[0].rollout.max_unavailable) == (1, 0)
    assert surge.pools[1].nodes_for_updates == 1  # 3 x 2 GPUs + one surge replica of 2 = 8 GPUs, one node
    replace = plan(settings([h100_model(max_replicas=4, rollout="replace")], pools))
    assert (replace.models[0].rollout.max_surge, replace.models[0].rollout.max_unavailable) == (0, 1)
    with pytest.raises(PlanError) as info:  # 4 x 2 GPUs fill the node: the surge replica needs a second one
        plan(settings([h100_model(max_replicas=4, rollout="surge")], pools))
    msg = str(info.value)
    assert "pool h100 holds its models at max replicas (1 node)" in msg and "(mx): that needs 2 nodes" in msg
    assert "maxNodes is 1; allowed: maxNodes 2 or more, or `rollout: replace`" in msg


def test_replace_with_one_replica_warns_of_an_outage():
    p = plan(settings([model(replicas=1, rollout="replace")]))
    assert any("every update is an outage" in w for w in p.warnings)


def test_budget_grows_with_size_and_shrinks_with_throughput():
    def cold(size, throughput):
        cache = {**FSX, "throughputPerTiB": throughput}
        m = h100_model(size=size, count=8, max_replicas=1)
        return plan(settings([m], cache=cache, target="eks")).models[0].cold_start

    small, large = cold(16, 250), cold(140, 250)
    assert large.weight_read_s > small.weight_read_s and large.budget_s > small.budget_s
    assert cold(500, 1000).weight_read_s < cold(500, 125).weight_read_s
    assert cold(500, 1000).budget_s < cold(500, 125).budget_s
    for c in (small, large):
        assert c.estimate_s == c.image_pull_s + c.weight_read_s + c.engine_start_s + c.compile_s
        assert BUDGET_MIN_S <= c.budget_s <= BUDGET_MAX_S


def test_budget_is_bounded():
    tiny = plan(settings([model(sizeGiB=0.5)])).models[0].cold_start
    assert tiny.budget_s == BUDGET_MIN_S
    # 500 GiB read by 16 replicas sharing the assumed 1 GiB/s of an unknown RWX class
    huge = plan(settings([h100_model(size=500, count=8, max_replicas=16)], (L40S, {**H100, "maxNodes": 16}),
                         cache={"kind": "pvc", "storageClass": "x", "sizeGiB": 2000})).models[0].cold_start
    assert huge.budget_s == BUDGET_MAX_S


def test_budget_does_not_depend_on_other_models():
    alone = plan(settings([model(name="a")])).models[0]
    crowded = plan(settings([model(name="a"), model(name="b", replicas=6)])).models[0]
    assert alone.cold_start == crowded.cold_start
    assert alone.probes == crowded.probes


def test_numbers_derived_for_probes_timeouts_and_resources():
    m = plan(settings([model(replicas=3)])).models[0]
    startup = m.probes.startup
    assert startup.failure_threshold * startup.period_s >= m.cold_start.budget_s
    assert m.rollout.progress_deadline_s > m.cold_start.budget_s
    c = m.cold_start
    assert m.rollout.update_timeout_s == c.image_pull_s + c.budget_s + 2 * c.estimate_s + 600
    # g6e.2xlarge: 8 vCPU, 64 GiB, 1 GPU -> 90% minus reserve
    assert (m.resources.cpu_request, m.resources.memory_gib, m.resources.shm_gib) == ("6700m", 55, 1)


def test_tensor_parallel_shm_and_node_share():
    m = plan(settings([h100_model(count=4, max_replicas=2)])).models[0]
    # p5.48xlarge: 192 vCPU, 2048 GiB, 8 GPUs; a 4-GPU replica gets half the node
    r, pl = m.resources, m.placement
    assert (r.cpu_request, r.memory_gib, r.shm_gib, pl.replicas_per_node, pl.nodes_at_max) == ("86100m", 920, 16, 2, 1)


def test_cost_from_catalog_or_pool_override():
    p = plan(settings([model(replicas=2)], (L40S, H100)))
    # two one-GPU replicas demand two g6e.2xlarge nodes at min and max; the pool's maxNodes is not a cost
    assert p.pools[0].hourly_usd == 2.242 and p.pools[0].monthly_usd_max == round(2.242 * 2 * 730, 2)
    assert p.models[0].cost.monthly_usd_min == round(2.242 * 730 * 2, 2)
    cheap = plan(settings([model()], ({**L40S, "hourlyPrice": 1.0}, H100)))
    assert cheap.pools[0].hourly_usd == 1.0


def test_cost_counts_whole_nodes_a_model_forces_and_the_pool_floor():
    # One 2-GPU replica alone on an 8-GPU p5 node pays the whole node; minNodes 1 of an idle pool is still paid.
    pools = ({**L40S, "minNodes": 1}, {**H100, "minNodes": 0, "maxNodes": 2})
    p = plan(settings([h100_model(max_replicas=4)], pools, cache=FSX, target="eks"))
    node_month = 55.04 * 730
    mx = p.models[0]
    assert (mx.cost.monthly_usd_min, mx.cost.monthly_usd_max) == (round(node_month, 2), round(node_month, 2))
    l40s, h100 = p.pools
    assert (l40s.monthly_usd_min, l40s.monthly_usd_max) == (round(2.242 * 730, 2),) * 2  # floor of one idle node
    assert (h100.monthly_usd_min, h100.monthly_usd_max) == (round(node_month, 2),) * 2
    fsx = 2400 * 0.340  # PERSISTENT_2 at 500 MB/s/TiB, per GB-month
    assert p.cache.monthly_usd == round(fsx, 2)
    assert p.cost.monthly_usd_min == round(l40s.monthly_usd_min + h100.monthly_usd_min + fsx, 2)


def test_models_sharing_nodes_split_them_by_gpus():
    # 3 + 1 replicas of 2 GPUs = 8 GPUs = one p5 node: 3/4 and 1/4 of it; at max 6 + 2 = 16 GPUs = two nodes
    a = h100_model(name="a", max_replicas=6)
    b = h100_model(name="b", max_replicas=2)
    a["autoscaling"]["minReplicas"] = 3
    p = plan(settings([a, b], (L40S, {**H100, "maxNodes": 2})))
    node_month = 55.04 * 730
    costs = {m.name: (m.cost.monthly_usd_min, m.cost.monthly_usd_max) for m in p.models}
    assert costs == {"a": (round(node_month * 3 / 4, 2), round(2 * node_month * 12 / 16, 2)),
                     "b": (round(node_month / 4, 2), round(2 * node_month * 4 / 16, 2))}
    assert sum(c[1] for c in costs.values()) == pytest.approx(p.pools[1].monthly_usd_max)


def test_efs_cost_by_stored_weights_and_pvc_unpriced():
    efs = plan(settings([model(sizeGiB=16), model(name="b", sizeGiB=30)], cache={"kind": "efs"}, target="eks"))
    assert efs.cache.monthly_usd == round(46 * 0.30, 2)
    assert plan(settings([model()])).cache.monthly_usd is None


def test_autoscale_query_targets_only_this_models_pods():
    a = plan(settings([h100_model(name="mx")])).models[0].scaling.autoscale
    assert a.query == 'sum(vllm:num_requests_waiting{namespace="inference",pod=~"mx-[a-z0-9]+-[a-z0-9]+"})'
    assert (a.target, a.target_quantity, a.hpa_metric) == ("5", "5", "vllm_num_requests_waiting")
    assert a.behavior["scaleDown"]["stabilizationWindowSeconds"] >= 300


@pytest.mark.parametrize("value, expected", [(5, "5"), (0.8, "800m"), (2.5, "2500m")])
def test_quantity(value, expected):
    assert quantity(value) == expected


def test_prefetch_job_name_stable_per_revision():
    def job(rev):
        return plan(settings([model(revision=rev)])).models[0].prefetch.job_name
    assert job("a" * 40) == job("a" * 40)
    assert job("a" * 40) != job("b" * 40)
    assert job("a" * 40).startswith("m1-fetch-")


def test_moving_revision_warns():
    p = plan(settings([model(revision="main")]))
    assert any("revision 'main' is not a pinned commit" in w for w in p.warnings)


# ----------------------------------------------------------------- KV-cache fit, hand-computed
# budget per GPU (GiB) = the engine's share - weights / TP - reserve; vLLM: GPU x 0.92 - 1.5 (+0.5 with TP > 1);
# SGLang: (GPU MiB - reserved MiB) / 1024, reserved = 512 + 1.5 x chunked prefill + 1024 x TP/8 + 2 x graph batch
# (at least 10 GiB above 60 GiB). Bytes per token per GPU: 2 x max(1, kvHeads // TP) x headDim x 2 x layers;
# MLA: (kvLoraRank + qkRopeHeadDim) x 2 x layers on every GPU. tokens = budget / bytes per token.
P5EN = {"name": "h200", "instanceType": "p5en.48xlarge", "minNodes": 0, "maxNodes": 2}
L40S_X8 = {"name": "l40s-x8", "instanceType": "g6e.48xlarge", "minNodes": 0, "maxNodes": 2}
BIG_CACHE = {"kind": "pvc", "storageClass": "x", "sizeGiB": 2000}
KV_CASES = [
    # id, source, engine, pool, TP, sizeGiB, contextWindow: budget GiB/GPU, bytes/token/GPU, tokens, sequences
    ("llama-3.1-8b", "meta-llama/Llama-3.1-8B-Instruct", "vllm", L40S, 1, 16, 8192,
     48 * 0.92 - 16 - 1.5, 2 * 8 * 128 * 2 * 32, 218398, 26),
    ("llama-3.1-70b", "meta-llama/Llama-3.1-70B-Instruct", "vllm", H100, 2, 140, 8192,
     80 * 0.92 - 70 - 2.0, 2 * 4 * 128 * 2 * 80, 10485, 1),
    ("mixtral-8x7b (MoE)", "mistralai/Mixtral-8x7B-Instruct-v0.1", "vllm", H100, 2, 87, 32768,
     80 * 0.92 - 43.5 - 2.0, 2 * 4 * 128 * 2 * 32, 460390, 14),
    ("deepseek-v3 (MLA)", "deepseek-ai/DeepSeek-V3", "vllm", P5EN, 8, 640, 32768,
     141 * 0.92 - 80 - 2.0, (512 + 64) * 2 * 61, 729151, 22),
    ("qwen3-30b-a3b (MoE, SGLang)", "Qwen/Qwen3-30B-A3B", "sglang", H100, 1, 57, 32768,
     (81920 - 13440) / 1024 - 57, 2 * 4 * 128 * 2 * 48, 107861, 3),
    ("qwen2.5-7b (4 KV heads on 8 ranks)", "Qwen/Qwen2.5-7B-Instruct", "vllm", L40S_X8, 8, 15, 32768,
     48 * 0.92 - 15 / 8 - 2.0, 2 * 1 * 128 * 2 * 28, 3017277, 92),
]


@pytest.mark.parametrize("case", KV_CASES, ids=[c[0] for c in KV_CASES])
def test_kv_cache_fit_against_hand_computed_values(case):
    _, repo, engine, pool, tp, size, context, budget, per_token, tokens, sequences = case
    m = model(source=f"hf://{repo}", engine=engine, sizeGiB=size, gpu={"type": H100["name"] if pool is H100 else
              {"l40s": "l40s", "l40s-x8": "l40s", "h200": "h200"}[pool["name"]], "count": tp},
              contextWindow=context, batchSize=1, replicas=1, rollout="replace")
    fit = plan(settings([m], (pool,), cache=BIG_CACHE)).models[0].fit
    assert fit.kv_cache_gib == round(budget * tp, 1)
    assert fit.kv_bytes_per_token == per_token * tp  # per replica: every GPU holds its share of every token
    assert (fit.kv_tokens, fit.full_context_sequences, fit.context_window) == (tokens, sequences, context)
    assert fit.architecture and "config" in fit.architecture  # the catalog's source


def test_llama_70b_at_full_131072_context_on_two_h100_fails_naming_contextwindow_and_fixes():
    m = model(source="hf://meta-llama/Llama-3.1-70B-Instruct", sizeGiB=140, gpu={"type": "h100", "count": 2},
              contextWindow=131072, replicas=1, rollout="replace")
    with pytest.raises(PlanError) as info:
        plan(settings([m], (H100,)))
    (problem,) = info.value.problems
    assert problem.field == "contextWindow" and problem.model == "m1"
    # 131072 x 163840 B = 20 GiB per GPU needed; 1.6 GiB left; 1.6 GiB / 160 KiB = 10485 tokens, 20971 in fp8
    assert "contextWindow 131072: one full-length sequence needs 20.00 GiB of KV cache per GPU" in problem.message
    assert "leave 1.60 GiB per GPU for it after 70.0 GiB of weights" in problem.message
    assert "allowed: contextWindow at most 10485; or raise gpu.count; or kvCacheDtype: fp8 (fits 20971 tokens)" \
        in problem.message


def test_fp8_kv_cache_halves_bytes_per_token_and_sets_the_engines_flag():
    base = dict(source="hf://meta-llama/Llama-3.1-8B-Instruct", replicas=1, rollout="replace")
    auto = plan(settings([model(**base)])).models[0]
    fp8 = plan(settings([model(**base, kvCacheDtype="fp8")])).models[0]
    assert fp8.fit.kv_bytes_per_token * 2 == auto.fit.kv_bytes_per_token
    assert fp8.fit.kv_tokens in (2 * auto.fit.kv_tokens, 2 * auto.fit.kv_tokens + 1)  # each rounded down
    args = fp8.container.args
    assert args[args.index("--kv-cache-dtype") + 1] == "fp8" and "--kv-cache-dtype" not in auto.container.args
    sglang = plan(settings([model(**base, engine="sglang", kvCacheDtype="fp8")])).models[0].container.args
    assert sglang[sglang.index("--kv-cache-dtype") + 1] == "fp8_e4m3"


def test_sliding_window_layers_keep_only_their_window():
    # Gemma 3 27B: 10 global layers hold 131072 tokens, 52 sliding layers 1024: 8192 B x 1363968 = 10.41 GiB
    m = model(source="hf://google/gemma-3-27b-it", sizeGiB=52, gpu={"type": "h100", "count": 1},
              contextWindow=131072, replicas=1, rollout="replace")
    fit = plan(settings([m], (H100,))).models[0].fit
    assert (fit.full_context_sequences, fit.kv_tokens) == (1, 253169)
    assert fit.kv_bytes_per_token == 8192 * 1363968 // 131072


def test_own_architecture_for_an_unknown_source_and_a_warning_without_one():
    arch = {"layers": 32, "kvHeads": 8, "headDim": 128}
    own = plan(settings([model(source="s3://bucket/llama", revision="v1", architecture=arch)])).models[0].fit
    catalog = plan(settings([model(source="hf://meta-llama/Llama-3.1-8B-Instruct")])).models[0].fit
    assert own.kv_tokens == catalog.kv_tokens and own.architecture == "models.yaml architecture"
    unknown = plan(settings([model(source="hf://org/unknown")]))
    assert unknown.models[0].fit.kv_tokens is None
    assert any("KV-cache fit not checked: its source is not in the architecture catalog" in w
               for w in unknown.warnings)


def test_unset_context_window_is_checked_at_the_models_default():
    m = model(source="hf://meta-llama/Llama-3.1-70B-Instruct", sizeGiB=140, gpu={"type": "h100", "count": 2},
              contextWindow=None, replicas=1, rollout="replace")
    with pytest.raises(PlanError) as info:
        plan(settings([m], (H100,)))
    assert "contextWindow (unset: the model's default) 131072" in str(info.value)


def test_fewer_full_context_sequences_than_batch_size_warns():
    p = plan(settings([model(source="hf://meta-llama/Llama-3.1-8B-Instruct", contextWindow=8192, batchSize=64)]))
    assert p.models[0].fit.full_context_sequences == 26
    assert any("holds 26 full-context sequences (218398 tokens) but batchSize is 64" in w for w in p.warnings)


def test_mla_cache_is_not_split_by_tensor_parallelism():
    def per_gpu(tp):
        m = model(source="hf://deepseek-ai/DeepSeek-V3", sizeGiB=640, gpu={"type": "h200", "count": tp},
                  contextWindow=4096, replicas=1, rollout="replace")
        fit = plan(settings([m], (P5EN,), cache=BIG_CACHE)).models[0].fit
        return fit.kv_bytes_per_token // tp
    assert per_gpu(8) == (512 + 64) * 2 * 61
