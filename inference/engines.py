"""Serving engines as data: image, command, flags, port, health and metrics. Adding an engine is one entry here.

Sources: each engine's CLI reference (vLLM `vllm serve` docs v0.31.0, SGLang server arguments, TGI launcher.md,
TensorRT-LLM trtllm-serve docs); metric names from vllm/v1/metrics/loggers.py, SGLang's metrics collector and
TGI's router metrics. vLLM's --safetensors-load-strategy needs
v0.10.2+. TGI has no --served-model-name (PR #3064 unmerged): clients use the Service name.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class EngineInputs:
    """What a model contributes to its engine's command line."""

    model_path: str
    served_name: str
    tensor_parallel: int
    port: int
    context_window: int | None
    batch_size: int | None


def _flag(name: str, value: int | None) -> list[str]:
    return [] if value is None else [name, str(value)]


def _vllm(i: EngineInputs) -> list[str]:
    args = [i.model_path, "--served-model-name", i.served_name, "--host", "0.0.0.0", "--port", str(i.port),
            "--tensor-parallel-size", str(i.tensor_parallel)]
    args += _flag("--max-model-len", i.context_window) + _flag("--max-num-seqs", i.batch_size)
    # The cache is always a network file system, where mmap reads of safetensors are slow: read eagerly
    # (vLLM docs, `--safetensors-load-strategy`).
    return [*args, "--safetensors-load-strategy", "eager"]


def _sglang(i: EngineInputs) -> list[str]:
    return ["--model-path", i.model_path, "--served-model-name", i.served_name, "--host", "0.0.0.0",
            "--port", str(i.port), "--tp-size", str(i.tensor_parallel), "--enable-metrics",
            *_flag("--context-length", i.context_window), *_flag("--max-running-requests", i.batch_size)]


def _tgi(i: EngineInputs) -> list[str]:
    args = ["--model-id", i.model_path, "--hostname", "0.0.0.0", "--port", str(i.port),
            "--num-shard", str(i.tensor_parallel)]
    if i.context_window is not None:
        args += ["--max-total-tokens", str(i.context_window), "--max-input-tokens", str(i.context_window - 1)]
    return args + _flag("--max-concurrent-requests", i.batch_size)


def _trtllm(i: EngineInputs) -> list[str]:
    return [i.model_path, "--host", "0.0.0.0", "--port", str(i.port), "--tp_size", str(i.tensor_parallel),
            *_flag("--max_seq_len", i.context_window), *_flag("--max_batch_size", i.batch_size)]


@dataclass(frozen=True)
class Engine:
    name: str
    image: str
    image_gib: float  # compressed image size: drives the image-pull part of the cold-start estimate
    command: tuple[str, ...]
    build_args: Callable[[EngineInputs], list[str]]
    managed_flags: tuple[str, ...]  # flags derived from models.yaml fields; engineArgs may not repeat them
    port: int
    health_path: str
    metrics_path: str
    metrics: dict[str, str]  # autoscaling metric (queue | running | kvCache) -> Prometheus series
    start_seconds: int  # engine start once weights are read (CUDA graphs, compile), upper end of measurements


ENGINES: dict[str, Engine] = {
    "vllm": Engine(
        name="vllm", image="vllm/vllm-openai:v0.31.0", image_gib=10.0, command=("vllm", "serve"),
        build_args=_vllm,
        managed_flags=("--served-model-name", "--tensor-parallel-size", "-tp", "--max-model-len", "--max-num-seqs",
                       "--port", "--host", "--model"),
        port=8000, health_path="/health", metrics_path="/metrics",
        metrics={"queue": "vllm:num_requests_waiting", "running": "vllm:num_requests_running",
                 "kvCache": "vllm:kv_cache_usage_perc"},
        start_seconds=40,
    ),
    "sglang": Engine(
        name="sglang", image="lmsysorg/sglang:v0.5.20", image_gib=12.0,
        command=("python3", "-m", "sglang.launch_server"), build_args=_sglang,
        managed_flags=("--model-path", "--served-model-name", "--tp-size", "--tp", "--context-length",
                       "--max-running-requests", "--port", "--host"),
        port=30000, health_path="/health", metrics_path="/metrics",
        metrics={"queue": "sglang:num_queue_reqs", "running": "sglang:num_running_reqs",
                 "kvCache": "sglang:token_usage"},
        start_seconds=60,
    ),
    "tgi": Engine(
        name="tgi", image="ghcr.io/huggingface/text-generation-inference:3.3.7", image_gib=6.0,
        command=("text-generation-launcher",), build_args=_tgi,
        managed_flags=("--model-id", "--num-shard", "--max-total-tokens", "--max-input-tokens",
                       "--max-concurrent-requests", "--port", "--hostname"),
        port=8080, health_path="/health", metrics_path="/metrics",
        metrics={"queue": "tgi_queue_size", "running": "tgi_batch_current_size"},
        start_seconds=60,
    ),
    "trtllm": Engine(
        name="trtllm", image="nvcr.io/nvidia/tensorrt-llm/release:1.2.1", image_gib=20.0,
        command=("trtllm-serve",), build_args=_trtllm,
        managed_flags=("--tp_size", "--max_seq_len", "--max_batch_size", "--port", "--host"),
        # /metrics is JSON iteration stats; Prometheus text is at /prometheus/metrics, with no queue gauge
        # guaranteed across releases: no autoscaling signal.
        port=8000, health_path="/health", metrics_path="/prometheus/metrics", metrics={},
        start_seconds=90,
    ),
}

# Environment every engine container gets from the platform (offline hub, writable home, the revision's path);
# models.yaml may not set these names.
PLATFORM_ENV = ("HF_HUB_OFFLINE", "HOME", "HF_HOME", "MODEL_PATH")


def platform_env(model_path: str) -> tuple[tuple[str, str], ...]:
    return tuple(zip(PLATFORM_ENV, ("1", "/tmp", "/tmp/hf", model_path), strict=True))
