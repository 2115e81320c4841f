"""Blast radius: adding, removing or changing one model touches only that model's resources, and a cache change
that would replace the file system meets the protect option.

Written over every recorded resource, whatever the components register: a resource belongs to a model when its
name or an ancestor's (by parent URN) carries the model's name as dash-separated words (`qwen-14b-deploy`,
`weights-qwen-14b-job`); everything else is shared infrastructure (namespace, cache, provider, node pools, charts,
network policies) and must stay byte-identical. Identical means same (type, name), inputs, parent, provider and
resource options: what the engine diffs.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from conftest import DEV, PROD, Project, stack_config

from offline.mockrun import Registered, Run, reveal

STACK = "test"
FSX = "aws:fsx/lustreFileSystem:LustreFileSystem"
PV = "kubernetes:core/v1:PersistentVolume"
PVC = "kubernetes:core/v1:PersistentVolumeClaim"

# Fixed and autoscaled, three engines, HF and S3 sources, two pools. No name is a word-run of another's or of any
# infrastructure name. At max replicas the L40S models take 6 one-GPU nodes, plus 3 for their surge replicas.
BASELINE: list[dict[str, Any]] = [
    {"name": "llama-8b", "source": "hf://meta-llama/Llama-3.1-8B-Instruct",
     "revision": "0e9e39f249a16976918f6564b8830bc894c89659", "sizeGiB": 16, "gpu": {"type": "l40s", "count": 1},
     "replicas": 2, "contextWindow": 8192, "batchSize": 64},
    {"name": "mixtral-moe", "source": "s3://weights-bucket/mixtral/8x7b", "revision": "v1", "sizeGiB": 87,
     "gpu": {"type": "h100", "count": 2}, "autoscaling": {"minReplicas": 1, "maxReplicas": 2, "metric": "queue",
                                                         "target": 5}},
    {"name": "qwen-14b", "source": "hf://Qwen/Qwen2.5-14B-Instruct", "revision": "main", "engine": "sglang",
     "sizeGiB": 28, "gpu": {"type": "l40s", "count": 1},
     "autoscaling": {"minReplicas": 1, "maxReplicas": 3, "metric": "running", "target": 48}},
    {"name": "tiny-tgi", "source": "hf://org/tiny", "revision": "main", "engine": "tgi", "sizeGiB": 2,
     "image": "registry.example.com/tgi-nonroot:3.3.7",
     "gpu": {"type": "l40s", "count": 1}, "replicas": 1},
]
ADDED = {"name": "phi-mini", "source": "hf://microsoft/Phi-3-mini-4k-instruct", "revision": "main", "sizeGiB": 8,
         "gpu": {"type": "l40s", "count": 1}, "replicas": 1, "contextWindow": 4096}
NAMES = [m["name"] for m in [*BASELINE, ADDED]]
L40S_NEED = 6 + 3  # max replicas plus one surge replica per model (all of BASELINE's L40S models surge)


def with_l40s_max(config: dict[str, Any], max_nodes: int) -> dict[str, Any]:
    """The stack with its L40S pool's maxNodes set (the first pool in both stacks)."""
    out = copy.deepcopy(config)
    pools = out["inference:nodePools"]
    assert pools[0]["name"] == "l40s"
    pools[0]["maxNodes"] = max_nodes
    return out


# Room for ADDED (one replica plus its surge replica) on top of BASELINE.
CONFIGS = {"dev": with_l40s_max(DEV, L40S_NEED + 2), "prod": with_l40s_max(PROD, L40S_NEED + 2)}


def owner(run: Run, resource: Registered) -> str | None:
    """The model a resource belongs to, from its own name or its nearest ancestor that names one."""
    by_urn = {r.urn: r for r in run.resources}
    node: Registered | None = resource
    while node is not None:
        words = f"-{node.name}-"
        hits = [m for m in NAMES if f"-{m}-" in words]
        assert len(hits) <= 1, f"{node.name} names several models: {hits}"
        if hits:
            return hits[0]
        node = by_urn.get(node.parent)
    return None


def fingerprint(r: Registered) -> str:
    """Everything the engine would diff for one resource, as canonical JSON (secrets revealed)."""
    return json.dumps({"inputs": reveal(r.inputs, placeholder=False), "parent": r.parent, "provider": r.provider,
                       "custom": r.custom, "remote": r.remote, "protect": r.protect,
                       "retainOnDelete": r.retain_on_delete, "customTimeouts": r.custom_timeouts,
                       "dependsOn": r.depends_on, "ignoreChanges": r.ignore_changes}, sort_keys=True, default=repr)


PREPULL = "kubernetes:apps/v1:DaemonSet"


def split(run: Run) -> dict[str | None, dict[tuple[str, str], str]]:
    """Fingerprints grouped by owning model (None: shared infrastructure; `image:<pool>:<ref>`: the pre-pull
    DaemonSet of an engine image on a pool, which exists while some model there uses it), keyed by (type, name)."""
    out: dict[str | None, dict[tuple[str, str], str]] = {}
    for r in run.resources:
        if r.type == PREPULL:
            pool = r.inputs["spec"]["template"]["spec"]["nodeSelector"]["inference/pool"]
            group = f"image:{pool}:{r.inputs['metadata']['annotations']['inference/image']}"
        else:
            group = owner(run, r)
        out.setdefault(group, {})[(r.type, r.name)] = fingerprint(r)
    return out


def images(run: Run, name: str) -> set[str]:
    """`pool:image` of the model's engine containers."""
    return {f"{r.inputs['spec']['template']['spec']['nodeSelector']['inference/pool']}:{c['image']}"
            for r in run.of_type("kubernetes:apps/v1:Deployment") if r.name == f"{name}-deploy"
            for c in r.inputs["spec"]["template"]["spec"]["containers"]}


def differences(before: dict[tuple[str, str], str], after: dict[tuple[str, str], str]) -> list[str]:
    return sorted([f"removed {k}" for k in before.keys() - after.keys()]
                  + [f"added {k}" for k in after.keys() - before.keys()]
                  + [f"changed {k}" for k in before.keys() & after.keys() if before[k] != after[k]])


def assert_only(before: Run, after: Run, touched: str) -> None:
    """Shared infrastructure and every model but `touched` are identical between the two runs; so is every image's
    pre-pull DaemonSet but for `touched`'s own image (added with the first model using it, removed with the last)."""
    b, a = split(before), split(after)
    assert b.get(None) and a.get(None), "no shared infrastructure recognised"
    own = {f"image:{i}" for i in images(before, touched) | images(after, touched)}
    for group in sorted(b.keys() | a.keys(), key=str):
        if group == touched or (group in own and (group not in b or group not in a)):
            continue
        assert b.get(group) == a.get(group), f"{group or 'shared infrastructure'} changed: " \
                                             f"{differences(b.get(group, {}), a.get(group, {}))}"


def deployments(group: dict[tuple[str, str], str]) -> list[str]:
    return [name for kind, name in group if kind == "kubernetes:apps/v1:Deployment"]


@pytest.fixture(scope="module", params=["dev", "prod"])
def baseline(request, tmp_path_factory) -> tuple[str, Run]:
    stack = request.param
    project = Project(tmp_path_factory.mktemp(f"baseline-{stack}"))
    return stack, project.run(STACK, config=stack_config(CONFIGS[stack]), models=BASELINE)


def run_with(project: Project, stack: str, models: list[dict[str, Any]], **config: Any) -> Run:
    return project.run(STACK, config=stack_config(CONFIGS[stack], **config), models=models)


def test_baseline_has_resources_for_every_model_and_the_shared_infrastructure(baseline):
    stack, run = baseline
    groups = split(run)
    for m in BASELINE:
        assert deployments(groups[m["name"]]) == [f"{m['name']}-deploy"], stack
        assert any(kind == "kubernetes:batch/v1:Job" for kind, _ in groups[m["name"]]), "prefetch Job per model"
    shared = {kind for kind, _ in groups[None]}
    assert {"pulumi:providers:kubernetes", "kubernetes:core/v1:Namespace", PVC} <= shared
    if stack == "prod":
        assert {FSX, PV, "aws:eks/nodeGroup:NodeGroup"} <= shared


def test_adding_a_model_changes_nothing_else(baseline, project):
    stack, before = baseline
    after = run_with(project, stack, [*BASELINE, ADDED])
    assert_only(before, after, "phi-mini")
    added = split(after)["phi-mini"]
    assert "phi-mini" not in split(before)
    assert deployments(added) == ["phi-mini-deploy"]


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_adding_a_model_to_a_nearly_full_pool_fails_the_plan_or_changes_nothing_else(project, stack):
    """The pool holds BASELINE with its surge room exactly: one more model either fits the room it brings (and
    nobody else's objects move) or the plan stops with the pool, the models and the fix."""
    full = with_l40s_max(CONFIGS[stack], L40S_NEED)
    project.run(STACK, config=stack_config(full), models=BASELINE)  # BASELINE alone fits exactly
    message, registered = project.rejected(STACK, config=stack_config(full), models=[*BASELINE, ADDED])
    assert "field 'inference:nodePools[0].maxNodes'" in message and "pool l40s" in message
    assert "phi-mini" in message and "needs 11 nodes" in message and "maxNodes is 9" in message
    assert "`rollout: replace`" in message and not registered.resources
    # One node more holds the new model but not its surge replica: as `rollout: replace` it fits, alone changed.
    roomier = stack_config(with_l40s_max(CONFIGS[stack], L40S_NEED + 1))
    before = project.run(STACK, config=roomier, models=BASELINE)
    after = project.run(STACK, config=roomier, models=[*BASELINE, {**ADDED, "rollout": "replace"}])
    assert_only(before, after, "phi-mini")
    strategy = after.one("kubernetes:apps/v1:Deployment", "phi-mini-deploy").inputs["spec"]["strategy"]
    assert strategy["rollingUpdate"] == {"maxSurge": 0, "maxUnavailable": 1}
    for m in BASELINE:  # every other model keeps surging
        spec = after.one("kubernetes:apps/v1:Deployment", f"{m['name']}-deploy").inputs["spec"]
        assert spec["strategy"]["rollingUpdate"] == {"maxSurge": 1, "maxUnavailable": 0}


@pytest.mark.parametrize("removed", ["llama-8b", "mixtral-moe"])
def test_removing_a_model_changes_nothing_else(baseline, project, removed):
    stack, before = baseline
    after = run_with(project, stack, [m for m in BASELINE if m["name"] != removed])
    assert_only(before, after, removed)
    assert removed not in split(after)
    assert removed in split(before)


@pytest.mark.parametrize("name, change", [
    ("qwen-14b", {"revision": "a" * 40}),
    ("llama-8b", {"batchSize": 128}),
    ("mixtral-moe", {"autoscaling": {"minReplicas": 1, "maxReplicas": 2, "metric": "queue", "target": 8}}),
])
def test_changing_a_model_changes_only_that_model(baseline, project, name, change):
    stack, before = baseline
    models = copy.deepcopy(BASELINE)
    next(m for m in models if m["name"] == name).update(change)
    after = run_with(project, stack, models)
    assert_only(before, after, name)
    b, a = split(before)[name], split(after)[name]
    assert differences(b, a), f"changing {change} changed none of {name}'s resources"
    # Same Deployment (updated in place, not replaced by a new name).
    assert deployments(a) == deployments(b) == [f"{name}-deploy"]


# ----------------------------------------------------------------- protect on what holds the weights

def cache_resources(run: Run) -> dict[tuple[str, str], Registered]:
    types = (FSX, PV, PVC)
    return {(r.type, r.name): r for r in run.resources if r.type in types}


def assert_kept(run: Run, expected_types: set[str]) -> None:
    kept = cache_resources(run)
    assert {t for t, _ in kept} == expected_types, sorted(kept)
    for key, r in kept.items():
        assert r.protect and r.retain_on_delete, f"{key} must be protect=True and retainOnDelete=True"


def test_dev_cache_claim_is_protected_and_a_storage_class_change_hits_protect(project):
    before = run_with(project, "dev", BASELINE)
    assert_kept(before, {PVC})
    # storageClassName of a bound claim is immutable: a change means replacing the claim, which protect refuses.
    after = run_with(project, "dev", BASELINE, cache={"kind": "pvc", "storageClass": "fsx-sc", "sizeGiB": 500})
    assert_kept(after, {PVC})
    (key, claim), = cache_resources(after).items()
    assert key in cache_resources(before)
    assert claim.inputs["spec"]["storageClassName"] == "fsx-sc"
    assert cache_resources(before)[key].inputs["spec"]["storageClassName"] == "efs-sc"


# FSx fields that force replacement (pulumi-aws docs, aws.fsx.LustreFileSystem): the cache setting that drives
# each, the input that changes, and
# whether every model must stay identical (throughput and capacity set read rates, hence some cold-start budgets).
REPLACING = [
    ({"subnetId": "subnet-0a1b2c3d4e5f60002"}, "subnetIds", True),
    ({"throughputPerTiB": 250}, "perUnitStorageThroughput", False),
    ({"throughputPerTiB": 1000}, "perUnitStorageThroughput", False),
    ({"storageGiB": 1200}, "storageCapacity", False),  # a decrease
]


@pytest.mark.parametrize("change, field, models_same", REPLACING)
def test_fsx_change_that_forces_replacement_meets_protect(project, change, field, models_same):
    """Depends on the FSx cache (aws.fsx.LustreFileSystem + static PV/PVC) being registered on the prod stack."""
    cache = {**PROD["inference:cache"], **change}
    before = run_with(project, "prod", BASELINE)
    after = run_with(project, "prod", BASELINE, cache=cache)
    assert_kept(before, {FSX, PV, PVC})
    assert_kept(after, {FSX, PV, PVC})
    (fs_key, fs_before), = [(k, r) for k, r in cache_resources(before).items() if k[0] == FSX]
    fs_after = cache_resources(after)[fs_key]  # same (type, name): the engine would replace it in place ...
    assert fs_before.inputs[field] != fs_after.inputs[field]
    assert fs_after.protect  # ... and refuses, because it is protected
    if models_same:
        b, a = split(before), split(after)
        for m in BASELINE:
            assert b[m["name"]] == a[m["name"]], differences(b[m["name"]], a[m["name"]])


def test_a_node_pool_change_leaves_the_cache_untouched(project):
    pools = copy.deepcopy(PROD["inference:nodePools"])
    pools[0].update(capacityType="SPOT", diskGiB=300)
    before = run_with(project, "prod", BASELINE)
    after = run_with(project, "prod", BASELINE, nodePools=pools)
    fb, fa = ({k: fingerprint(r) for k, r in cache_resources(run).items()} for run in (before, after))
    assert fb == fa and len(fb) == 3
    changed = differences(split(before)[None], split(after)[None])
    assert changed and all("l40s" in c for c in changed), changed  # only the l40s pool's node group and template
