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


def h100_model(name="mx", replicas=None, max_replicas=4, count=2, size=87):
    auto = {"minReplicas": 1, "maxReplicas": max_replicas, "metric": "queue", "target": 5}
    return model(name=name, sizeGiB=size, gpu={"type": "h100", "count": count}, replicas=replicas,
                 autoscaling=None if replicas else auto)


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


def test_tensor_parallel_above_node_and_memory_misfit_reported_together():
    s = settings([model(name="a", gpu={"type": "l40s", "count": 2}), model(name="b", sizeGiB=44)])
    with pytest.raises(PlanError) as info:
        plan(s)
    assert len(info.value.problems) == 2
    assert {p.model for p in info.value.problems} == {"a", "b"}


def test_larger_pool_of_same_gpu_type_is_chosen_for_tensor_parallel():
    big = {"name": "l40s-x4", "instanceType": "g6e.12xlarge", "minNodes": 0, "maxNodes": 2}
    p = plan(settings([model(gpu={"type": "l40s", "count": 4})], (L40S, big)))
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


def test_rollout_surges_only_when_the_pool_has_room_for_one_more():
    roomy = plan(settings([h100_model(max_replicas=3)], (L40S, {**H100, "maxNodes": 1})))
    assert (roomy.models[0].rollout.max_surge, roomy.models[0].rollout.max_unavailable) == (1, 0)
    full = plan(settings([h100_model(max_replicas=4)], (L40S, {**H100, "maxNodes": 1})))
    assert (full.models[0].rollout.max_surge, full.models[0].rollout.max_unavailable) == (0, 1)
    assert any("maxSurge 0" in w for w in full.warnings)


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
        assert c.estimate_s == c.image_pull_s + c.weight_read_s + c.engine_start_s
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
    assert m.rollout.update_timeout_s == m.cold_start.budget_s + 2 * m.cold_start.estimate_s + 600
    # g6e.2xlarge: 8 vCPU, 64 GiB, 1 GPU -> 90% minus reserve
    assert (m.resources.cpu_request, m.resources.memory_gib, m.resources.shm_gib) == ("6700m", 55, 1)


def test_tensor_parallel_shm_and_node_share():
    m = plan(settings([h100_model(count=4, max_replicas=2)])).models[0]
    # p5.48xlarge: 192 vCPU, 2048 GiB, 8 GPUs; a 4-GPU replica gets half the node
    r, pl = m.resources, m.placement
    assert (r.cpu_request, r.memory_gib, r.shm_gib, pl.replicas_per_node, pl.nodes_at_max) == ("86100m", 920, 16, 2, 1)


def test_cost_from_catalog_or_pool_override():
    p = plan(settings([model(replicas=2)], (L40S, H100)))
    assert p.pools[0].hourly_usd == 2.242 and p.pools[0].monthly_usd_max == round(2.242 * 10 * 730, 2)
    assert p.models[0].cost.monthly_usd_min == round(2.242 * 730 * 2, 2)
    cheap = plan(settings([model()], ({**L40S, "hourlyPrice": 1.0}, H100)))
    assert cheap.pools[0].hourly_usd == 1.0


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
