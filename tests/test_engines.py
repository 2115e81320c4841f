"""Engines against their real parsers: every spelling of a managed flag is refused, TGI needs a non-root image,
TRT-LLM gets the options file that turns its Prometheus metrics on, SGLang's slow /health gets a long probe."""

import pytest
from conftest import k8s, model

from inference.engines import ENGINES, managed_flag

TGI_IMAGE = "registry.example.com/tgi-nonroot:3.3.7"


# Spellings each engine's parser reads as a managed flag (see inference/engines.py for the parser sources).
@pytest.mark.parametrize("engine, arg, flag", [
    ("vllm", "--max_model_len=4096", "--max-model-len"),  # FlexibleArgumentParser: underscores as dashes
    ("vllm", "--max-model-len=4096", "--max-model-len"),
    ("vllm", "--max-model", "--max-model-len"),  # argparse abbreviation
    ("vllm", "--tensor_parallel_size", "--tensor-parallel-size"),
    ("vllm", "-tp=2", "-tp"),
    ("vllm", "-tp2", "-tp"),
    ("vllm", "--served_model_name", "--served-model-name"),
    ("vllm", "--model=other", "--model"),
    ("sglang", "--tensor-parallel-size", "--tensor-parallel-size"),  # alias of --tp-size
    ("sglang", "--tp", "--tp-size"),  # abbreviation
    ("sglang", "--model", "--model"),  # alias of --model-path
    ("sglang", "--context", "--context-length"),
    ("tgi", "-p", "-p"),  # clap short of --port
    ("tgi", "-p8081", "-p"),
    ("tgi", "-p=8081", "-p"),
    ("tgi", "--max-input-length=10", "--max-input-length"),  # legacy alias of --max-input-tokens
    ("tgi", "--num_shard", "--num-shard"),
    ("trtllm", "--tensor_parallel_size=2", "--tensor_parallel_size"),  # long name of --tp_size
    ("trtllm", "--tp-size", "--tp_size"),
    ("trtllm", "--extra_llm_api_options", "--extra_llm_api_options"),  # alias of --config
])
def test_every_spelling_of_a_managed_flag_is_recognised(engine, arg, flag):
    assert managed_flag(ENGINES[engine], arg) == flag


@pytest.mark.parametrize("engine, arg", [
    ("vllm", "--enable-prefix-caching"), ("vllm", "--max-num-batched-tokens=8192"), ("vllm", "-q"),
    ("vllm", "--gpu-memory-utilization"), ("vllm", "8192"), ("vllm", "-"),
    ("sglang", "--mem-fraction-static"), ("sglang", "--enable-torch-compile"),
    ("tgi", "--prometheus-port"), ("tgi", "--max-batch-prefill-tokens"), ("tgi", "-e"),
    ("trtllm", "--kv_cache_free_gpu_memory_fraction"), ("trtllm", "--max_num_tokens"),
])
def test_other_flags_pass(engine, arg):
    assert managed_flag(ENGINES[engine], arg) is None


@pytest.mark.parametrize("engine, arg, flag", [
    ("vllm", "--max_model_len=4096", "--max-model-len"),
    ("sglang", "--tensor-parallel-size", "--tensor-parallel-size"),
    ("tgi", "-p", "-p"),
    ("trtllm", "--tensor_parallel_size", "--tensor_parallel_size"),
])
def test_models_file_refuses_them(project, engine, arg, flag):
    image = ENGINES[engine].image or TGI_IMAGE
    message, run = project.rejected(models=[model(engine=engine, image=image, engineArgs=[arg, "8"])])
    assert f"engineArgs may not set '{arg.split('=')[0]}': {engine} reads it as '{flag}'" in message
    assert run.resources == []


def test_tgi_needs_an_image_that_runs_as_non_root(project):
    message, run = project.rejected(models=[model(engine="tgi")])
    assert "field 'image': engine tgi needs 'image'" in message
    assert "text-generation-inference#3082" in message and "RUN chmod 0755 /root" in message
    assert run.resources == []
    deployed = project.run(models=[model(engine="tgi", image=TGI_IMAGE)])
    pod = k8s(deployed, "Deployment", "m1")["spec"]["template"]["spec"]
    assert pod["containers"][0]["image"] == TGI_IMAGE and pod["securityContext"]["runAsUser"] == 10001


def test_trtllm_reads_an_options_file_that_enables_prometheus_metrics(project):
    run = project.run(models=[model(engine="trtllm")])
    config = k8s(run, "ConfigMap", "m1-engine-config")
    assert config["data"] == {"options.yaml": "return_perf_metrics: true\n"}
    pod = k8s(run, "Deployment", "m1")["spec"]["template"]["spec"]
    engine = pod["containers"][0]
    assert engine["args"][engine["args"].index("--config") + 1] == "/etc/trtllm/options.yaml"
    assert {"name": "engine-config", "mountPath": "/etc/trtllm", "readOnly": True} in engine["volumeMounts"]
    assert {"name": "engine-config", "configMap": {"name": "m1-engine-config"}} in pod["volumes"]
    monitor = k8s(run, "PodMonitor", "model-server-trtllm")
    assert monitor["spec"]["podMetricsEndpoints"][0]["path"] == "/prometheus/metrics"
    deployment = run.one("kubernetes:apps/v1:Deployment", "m1-deploy")
    assert run.one("kubernetes:core/v1:ConfigMap", "m1-engine-config").urn in deployment.depends_on


def test_other_engines_read_no_options_file(project):
    run = project.run(models=[model()])
    assert not [r for r in run.k8s_objects() if r.inputs["kind"] == "ConfigMap" and "engine" in r.name]


def test_sglang_health_probes_allow_a_one_token_generation(project):
    """SGLang's /health generates one token (1-20 s); the probes wait 30 s and run no more often than that."""
    run = project.run(models=[model(engine="sglang"), model(name="m2")])
    for name, timeout in (("m1", 30), ("m2", 5)):
        engine = k8s(run, "Deployment", name)["spec"]["template"]["spec"]["containers"][0]
        for probe in ("startupProbe", "readinessProbe"):
            assert engine[probe]["timeoutSeconds"] == timeout
            assert engine[probe]["periodSeconds"] >= timeout
        assert engine["livenessProbe"]["timeoutSeconds"] >= timeout
