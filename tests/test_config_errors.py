"""Each kind of bad input SPEC.md lists is rejected before any resource, naming file, model, field and line."""

import re

import pytest
import yaml
from conftest import PROD, model, stack_config

from inference.errors import InputError
from inference.settings import load_models
from inference.yaml_loader import load_text


def test_unknown_model_key_names_line_and_allowed_keys(project):
    msg = project.error(models="models:\n  - name: a\n    source: hf://o/r\n    sizeGiB: 16\n"
                               "    gpu: {type: l40s}\n    replicas: 1\n    replica: 2\n")
    assert "models.yaml:7: model 'a': field 'replica': unknown key 'replica'; allowed keys: name, source" in msg


def test_duplicate_yaml_key_is_rejected_with_both_lines(project):
    msg = project.error(models="models:\n  - name: a\n    source: hf://o/r\n    source: hf://o/s\n")
    assert "models.yaml:4: model 'a': field 'models[0].source': duplicate key 'source' (first set on line 3)" in msg


def test_duplicate_model_name(project):
    msg = project.error(models=[model(name="a"), model(name="b"), model(name="a")])
    assert re.search(r"models.yaml:\d+: model 'a': field 'name': duplicate model name \(first on line 2\)", msg)


def test_gpu_type_without_pool_lists_what_pools_provide(project):
    msg = project.error(models=[model(gpu={"type": "a100-80gb", "count": 1})])
    assert "model 'm1': field 'gpu.type': no node pool provides GPU type 'a100-80gb'" in msg
    assert "pools provide: h100, l40s" in msg


def test_gpu_count_above_a_node_must_be_whole_nodes(project):
    msg = project.error(models=[model(gpu={"type": "h100", "count": 12})])
    assert ("field 'gpu.count': gpu.count 12 exceeds the GPUs of one node (8 in the largest 'h100' pool; pools: h100 "
            "(8 per node)) and is not a multiple of a node's GPUs: a replica larger than one node spans whole nodes; "
            "allowed: 1, 2, 4, 8 (one node), or a multiple of the GPUs per node (16, 24, 32, ... for 8-GPU nodes)"
            ) in msg


@pytest.mark.parametrize("engine, why", [
    ("tgi", "its launcher only spawns shards on the local node"),
    ("trtllm", "trtllm-serve spans nodes only under an MPI launcher"),
])
def test_engine_without_multinode_launch_is_refused(project, engine, why):
    msg = project.error(models=[model(engine=engine, gpu={"type": "h100", "count": 16})])
    assert ("field 'gpu.count': gpu.count 16 is more than the 8 GPUs of one node of pool h100 (p5.48xlarge), so a "
            f"replica would span 2 nodes, but engine {engine} cannot run one replica over several nodes: {why}") in msg
    assert f"allowed: gpu.count at most 8 with engine {engine}, or engine vllm, sglang" in msg


def test_weights_that_do_not_fit_gpu_memory(project):
    msg = project.error(models=[model(sizeGiB=60)])
    # vLLM on one L40S: 48 GiB x 0.92 - 1.5 GiB reserve = 42.66 GiB for weights and KV cache together
    assert ("field 'sizeGiB': weights of 60 GiB (60.0 GiB per GPU) do not fit 1 x l40s (48 GiB each) with room for "
            "a KV cache after engine vllm's memory share and reserve; allowed: at most 42.7 GiB") in msg


def test_every_problem_reported_at_once_with_lines(project):
    msg = project.error(models=[model(name="a", sizeGiB=60), model(name="b", gpu={"type": "l4"})])
    assert "2 problems" in msg
    assert re.search(r"models.yaml:\d+: model 'a': field 'sizeGiB'", msg)
    assert re.search(r"models.yaml:\d+: model 'b': field 'gpu.type'", msg)


def test_field_from_defaults_points_at_the_defaults_line(project):
    text = "defaults:\n  engine: vllm\n  gpu: {type: l40}\nmodels:\n  - name: a\n    source: hf://o/r\n" \
           "    sizeGiB: 16\n    replicas: 1\n"
    msg = project.error(models=text)
    assert "models.yaml:3: model 'a': field 'gpu.type': Input should be 'a10g', 'l4', 'l40s'" in msg


def test_stack_config_errors_name_stack_file_key_and_line(project):
    cfg = stack_config(nodePools=[{"name": "p", "instanceType": "g6e.huge", "minNodes": 0, "maxNodes": 1}])
    msg = project.error(config=cfg)
    assert re.search(r"Pulumi.test.yaml:\d+: field 'inference:nodePools\[0\].instanceType': 'g6e.huge' is not a "
                     r"GPU instance type in the catalog; allowed: g5.xlarge", msg)


def test_missing_models_file_names_the_config_key(project):
    project.write(config=stack_config(modelsFile="nope.yaml"))
    assert "Pulumi.test.yaml:3: field 'inference:modelsFile': models file 'nope.yaml' not found" in project.error()


def test_unknown_stack_key(project):
    msg = project.error(config=stack_config(nodepools=[]))
    assert "unknown config key 'inference:nodepools'; allowed: inference:target" in msg


def test_eks_target_needs_cluster_and_render_target_rejects_aws_cache(project):
    assert "target eks needs 'cluster'" in project.error(config=stack_config(PROD, cluster=None))
    msg = project.error(config=stack_config(cache={"kind": "efs"}))
    assert "cache kind 'efs' creates AWS resources and needs target eks" in msg


@pytest.mark.parametrize("entry, field, text", [
    ({"source": "http://x/y"}, "source", "allowed: hf://ORG/REPO or s3://BUCKET/PREFIX"),
    ({"name": "Llama_3"}, "name", "String should match pattern"),
    ({"name": "a" * 41}, "name", "at most 40 characters"),
    ({"sizeGiB": "16"}, "sizeGiB", "Input should be a valid number, got str '16'"),
    ({"replicas": 0}, "replicas", "greater than or equal to 1"),
    ({"autoscaling": {"minReplicas": 1, "maxReplicas": 2, "metric": "queue", "target": 1}}, "",
     "set exactly one of 'replicas'"),
    ({"image": "vllm/vllm-openai:latest"}, "image", "moving tag 'latest'"),
    ({"image": "vllm/vllm-openai"}, "image", "must be pinned"),
    ({"engineArgs": ["--tensor-parallel-size=2"]}, "", "engineArgs may not set '--tensor-parallel-size'"),
    ({"env": {"HF_HUB_OFFLINE": "0"}}, "env", "set by the platform"),
    ({"env": {"N": 1}}, "env.N", "Input should be a valid string"),
    ({"gpu": {"type": "l40s", "count": 3}}, "gpu.count", "GPUs per replica must be one of 1, 2, 4, 8 (one node)"),
    ({"engine": "tgi", "replicas": None,
      "autoscaling": {"minReplicas": 1, "maxReplicas": 2, "metric": "kvCache", "target": 0.5}}, "",
     "engine tgi exposes no 'kvCache' metric"),
    ({"replicas": None, "autoscaling": {"minReplicas": 3, "maxReplicas": 2, "metric": "queue", "target": 1}},
     "autoscaling", "maxReplicas (2) must be at least minReplicas (3)"),
])
def test_model_field_errors(entry, field, text):
    src = load_text(yaml_dump({"models": [model(**entry)]}), "models.yaml")
    with pytest.raises(InputError) as info:
        load_models(src)
    msg = str(info.value)
    assert text in msg
    assert re.search(r"models.yaml:\d+: model '", msg)
    if field:
        assert f"field '{field}'" in msg


def yaml_dump(data):
    return yaml.safe_dump(data, sort_keys=False)


@pytest.mark.parametrize("text, expected", [
    ("", "models.yaml: is empty"),
    ("- a\n", "must be a mapping with 'models:'"),
    ("models: []\n", "'models' must be a non-empty list"),
    ("models:\n  - 3\n", "each model must be a mapping"),
    ("modles: []\n", "unknown key 'modles'; allowed keys: defaults, models"),
    ("defaults: {name: x}\nmodels: [{}]\n", "'defaults' may not set 'name'"),
    ("models: [\n", "not valid YAML"),
])
def test_file_level_errors(text, expected):
    with pytest.raises(InputError) as info:
        load_models(load_text(text, "models.yaml"))
    assert expected in str(info.value)


def test_non_utf8_models_file(project):
    project.write()
    (project.root / "models.yaml").write_bytes(b"models:\n  - name: \xff\n")
    assert "models.yaml:2: is not UTF-8 text" in project.error()


def test_defaults_merge_deeply_and_own_sizing_wins():
    text = ("defaults:\n  gpu: {type: l40s, count: 2}\n  replicas: 3\n  env: {A: '1'}\nmodels:\n"
            "  - {name: a, source: hf://o/r, sizeGiB: 1, gpu: {count: 1}, env: {B: '2'}}\n"
            "  - {name: b, source: hf://o/r, sizeGiB: 1, autoscaling: {minReplicas: 1, maxReplicas: 2, "
            "metric: queue, target: 3}}\n")
    a, b = load_models(load_text(text, "models.yaml"))
    assert (a.gpu.type, a.gpu.count, a.replicas, a.env) == ("l40s", 1, 3, {"A": "1", "B": "2"})
    assert b.replicas is None and b.autoscaling.max_replicas == 2 and b.gpu.count == 2
