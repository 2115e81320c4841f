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
    image = {"image": "registry.example.com/tgi:3.3.7"} if engine == "tgi" else {}
    msg = project.error(models=[model(engine=engine, gpu={"type": "h100", "count": 16}, **image)])
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
    assert ("models.yaml:3: model 'a': field 'gpu.type': got 'l40'; allowed: a10g, l4, l40s, a100-40gb, a100-80gb, "
            "h100, h200; did you mean 'l40s'?") in msg


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
    ({"name": "Llama_3"}, "name", "'Llama_3' character 'L' at position 1 is not allowed (upper-case: use lower case)"),
    ({"name": "a" * 41}, "name", "is 41 characters long, over the limit of 40"),
    ({"sizeGiB": "16"}, "sizeGiB", "Input should be a valid number, got str '16'"),
    ({"replicas": 0}, "replicas", "greater than or equal to 1"),
    ({"autoscaling": {"minReplicas": 1, "maxReplicas": 2, "metric": "queue", "target": 1}}, "",
     "set exactly one of 'replicas'"),
    ({"image": "vllm/vllm-openai:latest"}, "image", "moving tag 'latest'"),
    ({"image": "vllm/vllm-openai"}, "image", "must be pinned"),
    ({"engineArgs": ["--tensor-parallel-size=2"]}, "", "engineArgs may not set '--tensor-parallel-size'"),
    ({"env": {"HF_HUB_OFFLINE": "0"}}, "env.HF_HUB_OFFLINE", "set by the platform"),
    ({"env": {"N": 1}}, "env.N", "Input should be a valid string"),
    ({"gpu": {"type": "l40s", "count": 3}}, "gpu.count", "GPUs per replica must be one of 1, 2, 4, 8 (one node)"),
    ({"engine": "tgi", "image": "registry.example.com/tgi:3.3.7", "replicas": None,
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


# ----------------------------------------------------------------- hostile and accidental input (issues 15, 16)

@pytest.mark.parametrize("entry, field, text", [
    ({"source": "hf://o/r\n"}, "source", "repository 'r\\n' is not valid"),
    ({"source": "s3://weights/llama/*"}, "source", "prefix character '*' is not allowed (a wildcard in the IAM policy"),
    ({"source": "s3://a..b/x"}, "source", "bucket 'a..b' contains two adjacent periods"),
    ({"source": "s3://a.-b/x"}, "source", "bucket 'a.-b': a '-' next to a '.' is not allowed"),
    ({"source": "s3://192.168.5.4/x"}, "source", "bucket '192.168.5.4' is formatted as an IP address"),
    ({"source": "s3://xn--bucket/x"}, "source", "starts with the reserved prefix 'xn--'"),
    ({"revision": "v1.complete"}, "revision", "ends with '.complete', the weight cache's completion marker for "
                                              "revision 'v1'"),
    ({"revision": "main\n"}, "revision", "a revision (commit, tag or branch) is 1 to 128 letters"),
    ({"image": "vllm/vllm-openai:"}, "image", "tag '' is not a tag"),
    ({"image": "vllm/Vllm-openai:v1"}, "image", "repository path component 'Vllm-openai' is not valid (upper case"),
    ({"image": "vllm/vllm openai:v1"}, "image", "repository path component 'vllm openai' is not valid"),
    ({"image": "ghcr.io/o/r@sha256:abc"}, "image", "sha256 needs 64 lower-case hex digits"),
    ({"image": "bad_host.io:x/o/r:v1"}, "image", "registry port 'x' is not a number"),
    ({"env": {"A\nB": "1"}}, "env.A\\nB", "character '\\n' at position 2 is not allowed"),
    ({"name": "a\x1b[31m"}, "name", "character '\\x1b' at position 2 is not allowed"),
    ({"replicas": 1, "replica": 2}, "replica", "unknown key 'replica'; allowed keys: name,"),
    ({"engine": "VLLM"}, "engine", "got 'VLLM'; allowed: vllm, sglang, tgi, trtllm; did you mean 'vllm'?"),
    ({"gpu": {"type": "l40s", "count": 1, "cuont": 1}}, "gpu.cuont", "did you mean 'count'?"),
    ({"engineArgs": ["x" * 60_000] * 5}, "engineArgs",
     "holds more than 256 KiB of text (with its defaults), the limit"),
    ({"engineArgs": ["--x"] * 300}, "engineArgs", "List should have at most 256 items after validation, not 300"),
])
def test_hostile_model_fields(entry, field, text):
    test_model_field_errors(entry, field, text)


def test_did_you_mean_for_a_near_miss_key():
    with pytest.raises(InputError) as info:
        load_models(load_text(yaml_dump({"models": [model(replica=2)]}), "models.yaml"))
    assert "unknown key 'replica'; allowed keys: name, source" in str(info.value)
    assert "did you mean 'replicas'?" in str(info.value)


def test_every_problem_of_one_env_entry_at_once_at_its_line():
    text = "models:\n  - name: a\n    source: hf://o/r\n    sizeGiB: 1\n    gpu: {type: l40s}\n    replicas: 1\n" \
           "    env:\n      HOME: 1\n"
    with pytest.raises(InputError) as info:
        load_models(load_text(text, "models.yaml"))
    msg = str(info.value)
    assert "models.yaml:8: model 'a': field 'env.HOME': 'HOME' is set by the platform" in msg
    assert "models.yaml:8: model 'a': field 'env.HOME': Input should be a valid string, got int 1" in msg


def test_engine_args_and_metric_errors_point_at_their_own_lines():
    text = ("models:\n  - name: a\n    source: hf://o/r\n    sizeGiB: 1\n    gpu: {type: l40s}\n    engine: tgi\n"
            "    autoscaling:\n      minReplicas: 1\n      maxReplicas: 2\n      metric: kvCache\n      target: 0.5\n"
            "    engineArgs:\n      - --json-output\n      - --port=9\n")
    with pytest.raises(InputError) as info:
        load_models(load_text(text, "models.yaml"))
    msg = str(info.value)
    assert "models.yaml:10: model 'a': field 'autoscaling.metric': engine tgi exposes no 'kvCache' metric" in msg
    assert "models.yaml:14: model 'a': field 'engineArgs[1]': engineArgs may not set '--port'" in msg


def test_control_characters_never_reach_the_terminal(project):
    msg = project.error(models=[model(name="a\x1b]0;pwned\x07", env={"\x1b[2J": "1"}, source="hf://o/\u202er")])
    assert not [c for c in msg if not c.isprintable() and c != "\n"]
    assert "\\x1b]0;pwned\\x07" in msg and "\\u202e" in msg and "\\x1b[2J" in msg


@pytest.mark.parametrize("text, expected", [
    ("models: " + "[" * 5000 + "]" * 5000 + "\n", "models.yaml:1: nested more than 32 levels deep, the limit"),
    ("models:\n" + "".join("  " * i + "- \n" for i in range(1, 3000)), "nested more than 32 levels deep, the limit"),
    ("models: !!seq []\n", "models.yaml:1: not valid YAML here: tag '!!seq'; YAML tags"),
    ("models:\n  - !!python/object:os.system {name: a}\n", "models.yaml:2: not valid YAML here: tag "
                                                          "'!!python/object:os.system'"),
    ("models:\n  - name: a\n    env: !custom {A: b}\n", "models.yaml:3: not valid YAML here: tag '!custom'"),
    ("models:\n  - name: !!binary aGk=\n", "tag '!!binary'"),
    ("models:\n  - name: a\n   source: b\n",
     "models.yaml:3: not valid YAML: a line is indented differently from the list items around it"),
    ("models:\n  - {name: a\n", "models.yaml:3: not valid YAML: a '{' mapping is not closed with '}'"),
    ("models:\n\t- name: a\n", "models.yaml:2: not valid YAML: a tab where YAML needs spaces"),
    ("models:\n  - name: " + "x" * 70_000 + "\n", "models.yaml:2: field 'models[0].name': a value of 70000 "
                                                   "characters, over the limit of 65536"),
    ("models:\n" + "  - {name: m, source: hf://o/r, sizeGiB: 1, gpu: {type: l40s}, replicas: 1}\n" * 1001,
     "models.yaml:1: field 'models': lists 1001 models, over the limit of 1000"),
    ("models:\n  - name: 2020-02-30\n", "models.yaml:2: field 'models[0].name': not valid YAML: cannot read "
                                        "'2020-02-30'"),
])
def test_hostile_files(text, expected):
    with pytest.raises(InputError) as info:
        load_models(load_text(text, "models.yaml"))
    assert expected in str(info.value)


def test_models_file_over_the_size_limit(project):
    project.write()
    (project.root / "models.yaml").write_text("# padding\n" * 120_000)
    assert "models.yaml: is larger than 1024 KiB, the limit for a models or stack file" in project.error()


@pytest.mark.parametrize("changes, base, expected", [
    ({"namespace": "keda"}, None, "field 'inference:namespace': 'keda' is the namespace of the keda add-on's chart"),
    ({"namespace": "nvidia-device-plugin"}, None, "of the device-plugin add-on's chart"),
    ({"namespace": "kube-system"}, None, "'kube-system' is a Kubernetes system namespace: the program would label it"),
    ({"namespace": "default"}, None, "'default' is a Kubernetes system namespace"),
    ({"allowedClientNamespaces": []}, None, "field 'inference:allowedClientNamespaces': is an empty list, which would "
                                            "render a NetworkPolicy the API server refuses"),
    ({"allowedClientNamespaces": ["gateway", "gateway"]}, None, "each entry may appear once; repeated: 'gateway'"),
    ({"cluster": {"name": "ml", "subnetIds": ["subnet-0a1b2c3d", "subnet-0a1b2c3d"]}}, PROD,
     "field 'inference:cluster.subnetIds': each entry may appear once; repeated: 'subnet-0a1b2c3d'"),
    ({"cache": {"kind": "fsx-lustre", "storageGiB": 2400, "throughputPerTiB": 500, "subnetId": "subnet-0a1b2c3d",
                "s3ImportPath": "s3://a..b/x"}}, PROD, "'s3://a..b/x': bucket 'a..b' contains two adjacent periods"),
    ({"nodepools": []}, None, "unknown config key 'inference:nodepools'; allowed: inference:target"),
    ({"kubernetesVersion": "1.32\n"}, None, "a Kubernetes minor version is like \"1.32\"; got '1.32\\n'"),
])
def test_stack_values_that_render_but_could_never_deploy(project, changes, base, expected):
    message, run = project.rejected(config=stack_config(base, **changes))
    assert expected in message and run.resources == []


def test_unknown_stack_key_suggests_the_near_miss(project):
    assert "did you mean 'inference:nodePools'?" in project.error(config=stack_config(nodepools=[]))


@pytest.mark.parametrize("text, expected", [
    ("config:\n  inference:target: 2020-01-01\n", "field 'inference:target': got '2020-01-01'; allowed: render, eks"),
    ("config:\n  inference:target: render\n  inference:nodePools: " + "[" * 3000 + "]" * 3000 + "\n",
     "Pulumi.test.yaml:3: nested more than 32 levels deep"),
    ("config:\n  inference:cache: !!map {kind: pvc}\n", "Pulumi.test.yaml:2: not valid YAML here: tag '!!map'"),
])
def test_stack_file_of_an_unexpected_shape_is_an_error_naming_the_key(project, text, expected):
    project.write(config=text)
    message, run = project.rejected()
    assert expected in message and "Traceback" not in message and run.resources == []
