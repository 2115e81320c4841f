"""Serving engines as data: image, command, flags, port, health and metrics. Adding an engine is one entry here.

Sources: each engine's CLI reference (vLLM `vllm serve` docs v0.31.0, SGLang server arguments, TGI launcher.md,
TensorRT-LLM trtllm-serve docs); metric names from vllm/v1/metrics/loggers.py, SGLang's metrics collector and
TGI's router metrics. vLLM's --safetensors-load-strategy needs
v0.10.2+. TGI has no --served-model-name (PR #3064 unmerged): clients use the Service name.

Managed flags list every spelling the engine's own parser maps to the same setting, read from the parser at the
pinned version: vLLM 0.31.0 and SGLang 0.5.20 from their argparse parsers' option strings
(`scripts/engine_flags.py` dumps and checks them), TGI 3.3.7 from the clap derive in `launcher/src/main.rs`
(`long, short`: kebab-case long name, first letter as short), TensorRT-LLM from the click options of
`tensorrt_llm/commands/serve.py`.
"""

from __future__ import annotations

import json
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
    kv_cache_fp8: bool = False
    streamer_concurrency: int | None = None  # loader runai-streamer: parallel reads; None: the default loader


def _flag(name: str, value: int | str | None) -> list[str]:
    return [] if value is None else [name, str(value)]


def _kv(flag: str, value: str, i: EngineInputs) -> list[str]:
    """The engine's own flag for an fp8 KV cache, when models.yaml asks for one."""
    return [flag, value] if i.kv_cache_fp8 else []


def _vllm(i: EngineInputs) -> list[str]:
    args = [i.model_path, "--served-model-name", i.served_name, "--host", "0.0.0.0", "--port", str(i.port),
            "--tensor-parallel-size", str(i.tensor_parallel)]
    args += _flag("--max-model-len", i.context_window) + _flag("--max-num-seqs", i.batch_size)
    args += _kv("--kv-cache-dtype", "fp8", i)  # vllm/config/cache.py CacheDType: fp8 (= fp8_e4m3)
    if i.streamer_concurrency is not None:
        # Run:ai Model Streamer: many parallel reads straight into GPU memory (vLLM docs, "Loading models with
        # Run:ai Model Streamer"; only `concurrency`, `memory_limit` and `distributed` are read from the config).
        config = json.dumps({"concurrency": i.streamer_concurrency}, separators=(",", ":"))
        return [*args, "--load-format", "runai_streamer", "--model-loader-extra-config", config]
    # The cache is always a network file system, where mmap reads of safetensors are slow: read eagerly
    # (vLLM docs, `--safetensors-load-strategy`).
    return [*args, "--safetensors-load-strategy", "eager"]


def _sglang(i: EngineInputs) -> list[str]:
    return ["--model-path", i.model_path, "--served-model-name", i.served_name, "--host", "0.0.0.0",
            "--port", str(i.port), "--tp-size", str(i.tensor_parallel), "--enable-metrics",
            *_flag("--context-length", i.context_window), *_flag("--max-running-requests", i.batch_size),
            # sglang/srt/server_args.py: fp8_e4m3 or fp8_e5m2 (plain "fp8" is refused by its parser)
            *_kv("--kv-cache-dtype", "fp8_e4m3", i)]


def _tgi(i: EngineInputs) -> list[str]:
    args = ["--model-id", i.model_path, "--hostname", "0.0.0.0", "--port", str(i.port),
            "--num-shard", str(i.tensor_parallel)]
    if i.context_window is not None:
        args += ["--max-total-tokens", str(i.context_window), "--max-input-tokens", str(i.context_window - 1)]
    # launcher/src/main.rs KVCacheDtype: fp8_e4m3fn or fp8_e5m2
    return args + _flag("--max-concurrent-requests", i.batch_size) + _kv("--kv-cache-dtype", "fp8_e4m3fn", i)


# trtllm-serve serves Prometheus text at /prometheus/metrics only when the LLM API option `return_perf_metrics` is
# set (tensorrt_llm/serve/openai_server.py builds its MetricsCollector only then), and that option is reachable only
# through the --config YAML: the platform mounts this file read-only from a ConfigMap.
TRTLLM_CONFIG_DIR = "/etc/trtllm"
TRTLLM_OPTIONS = (("options.yaml", "return_perf_metrics: true\n"),)


def _trtllm(i: EngineInputs) -> list[str]:
    return [i.model_path, "--host", "0.0.0.0", "--port", str(i.port), "--tp_size", str(i.tensor_parallel),
            *_flag("--max_seq_len", i.context_window), *_flag("--max_batch_size", i.batch_size),
            "--config", f"{TRTLLM_CONFIG_DIR}/{TRTLLM_OPTIONS[0][0]}"]


GIB_PER_MIB = 1 / 1024
# vLLM's share of each GPU for weights, activations, CUDA graphs and KV cache: gpu_memory_utilization, 0.92 in
# v0.31.0 (vllm/config/cache.py, CacheConfig.gpu_memory_utilization); CUDA graphs count inside it since v0.21.
VLLM_MEMORY_UTILIZATION = 0.92
# What the engine keeps per GPU besides weights and KV cache: non-torch allocations (0.2-0.3 GiB), the profiled
# activation peak (0.2-1.8 GiB) and CUDA graphs (0.1-0.9 GiB), as vLLM's own profiling logs report them
# (vllm-project/vllm#14452, #15039, #10511; gpustack/runner#251). Tensor parallelism adds NCCL and custom
# all-reduce buffers: an assumption of 0.5 GiB. The sums of the upper ends, so the check errs towards refusing.
RESERVE_GIB, TP_RESERVE_GIB = 1.5, 0.5
# TensorRT-LLM sizes its KV cache as a share of the memory free after loading the weights:
# KvCacheConfig.free_gpu_memory_fraction, 0.9 (trtllm-serve's --free_gpu_memory_fraction default).
TRTLLM_FREE_FRACTION = 0.9


def _reserve(tp: int) -> float:
    return RESERVE_GIB + (TP_RESERVE_GIB if tp > 1 else 0)


def _vllm_kv(gpu_gib: float, weights_gib: float, tp: int) -> float:
    return gpu_gib * VLLM_MEMORY_UTILIZATION - weights_gib - _reserve(tp)


def _sglang_kv(gpu_gib: float, weights_gib: float, tp: int) -> float:
    """mem_fraction_static = (gpu - reserved) / gpu holds weights and KV cache; reserved as SGLang 0.5.20 computes
    it when --mem-fraction-static is unset (sglang/srt/arg_groups/memory_hook.py, handle_gpu_memory_settings)."""
    gpu_mib = gpu_gib * 1024
    # chunked_prefill_size and the decode CUDA-graph batch by GPU memory (same function's table)
    prefill, graph_bs = ((2048, 8) if gpu_mib < 20 * 1024 else (4096, 48 if tp < 4 else 160) if gpu_mib < 35 * 1024
                         else (4096, 32 if tp < 4 else 160) if gpu_mib < 60 * 1024
                         else (8192, 256 if tp < 4 else 512) if gpu_mib < 160 * 1024 else (16384, 512))
    reserved = 512 + max(prefill, 2048) * 1.5 + tp / 8 * 1024 + graph_bs * 2
    if gpu_mib > 60 * 1024:
        reserved = max(reserved, 10 * 1024)
    return (gpu_mib - reserved) * GIB_PER_MIB - weights_gib


def _tgi_kv(gpu_gib: float, weights_gib: float, tp: int) -> float:
    # --cuda-memory-fraction defaults to 1.0 (launcher/src/main.rs); warmup keeps the same reserve as vLLM's.
    return gpu_gib - weights_gib - _reserve(tp)


def _trtllm_kv(gpu_gib: float, weights_gib: float, tp: int) -> float:
    return TRTLLM_FREE_FRACTION * (gpu_gib - weights_gib - _reserve(tp))


@dataclass(frozen=True)
class MultiNodeLaunch:
    """How an engine runs one replica over several nodes, one pod per node, under a LeaderWorkerSet.

    `parallelism(gpus_per_node, nodes)` gives (tensor parallel, pipeline parallel); `launch(nodes, pp, leader)` gives
    the flags added to the engine's own command line on the leader (rank 0) or on a worker. LWS injects
    LWS_LEADER_ADDRESS and LWS_WORKER_INDEX into every pod (api/leaderworkerset/v1/leaderworkerset_types.go);
    Kubernetes expands `$(NAME)` in args from the container's environment.
    """

    parallelism: Callable[[int, int], tuple[int, int]]
    launch: Callable[[int, int, bool], list[str]]
    flags: tuple[str, ...]  # what `launch` sets: engineArgs of a multi-node model may not repeat them
    source: str


def _vllm_multinode(nodes: int, pp: int, leader: bool) -> list[str]:
    # vLLM's multiprocessing backend across nodes (docs "Running vLLM with MultiProcessing", vllm-project/vllm#30509;
    # flags checked against the v0.31.0 parser): every node runs `vllm serve` with the same parallel layout, rank 0
    # serves the API, the others run --headless.
    args = ["--pipeline-parallel-size", str(pp), "--nnodes", str(nodes), "--node-rank", "$(LWS_WORKER_INDEX)",
            "--master-addr", "$(LWS_LEADER_ADDRESS)"]
    return args if leader else [*args, "--headless"]


SGLANG_DIST_PORT = 20000  # the LWS SGLang example's --dist-init-addr port


def _sglang_multinode(nodes: int, pp: int, leader: bool) -> list[str]:
    # kubernetes-sigs/lws docs/examples/sglang/lws.yaml (v0.10.0): the same command on every node, ranked by
    # LWS_WORKER_INDEX; tensor parallel spans the nodes.
    return ["--nnodes", str(nodes), "--node-rank", "$(LWS_WORKER_INDEX)",
            "--dist-init-addr", f"$(LWS_LEADER_ADDRESS):{SGLANG_DIST_PORT}"]


@dataclass(frozen=True)
class Engine:
    name: str
    image: str | None  # None: no published image runs as the platform's non-root user; models must set `image`
    image_gib: float  # compressed image size: drives the image-pull part of the cold-start estimate
    command: tuple[str, ...]
    build_args: Callable[[EngineInputs], list[str]]
    # Every spelling of the flags derived from models.yaml fields (aliases included); engineArgs may not set them.
    managed_flags: tuple[str, ...]
    abbreviations: bool  # the parser accepts any unique prefix of a long option (argparse allow_abbrev)
    port: int
    health_path: str
    health_timeout_s: int  # what one health check may take
    metrics_path: str
    metrics: dict[str, str]  # autoscaling metric (queue | running | kvCache) -> Prometheus series
    start_seconds: int  # engine start once weights are read, its compile cache warm (CUDA graphs, warm-up)
    kv_budget_gib: Callable[[float, float, int], float]  # (GPU GiB, weights per GPU GiB, TP) -> KV GiB per GPU
    kv_cache_fp8: bool  # has a flag for an fp8 KV cache
    streamer: bool  # reads weights with the Run:ai Model Streamer (loader: runai-streamer)
    compile_cache_env: str | None  # the variable naming its compile cache directory; None: it compiles nothing
    compile_s: int  # what an empty compile cache adds to its start
    image_note: str = ""  # why `image` is required, and how to build one (engines without a usable image)
    config_dir: str | None = None  # where the engine's options files are mounted read-only
    config_files: tuple[tuple[str, str], ...] = ()  # (file name, content) of those files
    multinode: MultiNodeLaunch | None = None  # None: one replica must fit one node


ENGINES: dict[str, Engine] = {
    "vllm": Engine(
        name="vllm", image="vllm/vllm-openai:v0.31.0", image_gib=10.0, command=("vllm", "serve"),
        build_args=_vllm,
        # FlexibleArgumentParser (vllm/utils/argparse_utils.py) also reads underscores as dashes.
        managed_flags=("--model", "--served-model-name", "--host", "--port", "--tensor-parallel-size", "-tp",
                       "--max-model-len", "--max-num-seqs", "--kv-cache-dtype", "--load-format",
                       "--model-loader-extra-config", "--safetensors-load-strategy"),
        abbreviations=True,
        port=8000, health_path="/health", health_timeout_s=5, metrics_path="/metrics",
        metrics={"queue": "vllm:num_requests_waiting", "running": "vllm:num_requests_running",
                 "kvCache": "vllm:kv_cache_usage_perc"},
        # torch.compile of Llama-3.1-8B on an L40S took 52 s (Tensorfuse, "vLLM cold starts"); loading the compiled
        # graph from VLLM_CACHE_ROOT takes about 6 s (vllm-project/vllm#46389 log: "Directly load the compiled
        # graph(s) ... from the cache, took 5.684 s"): an empty cache adds 46 s.
        start_seconds=40, kv_budget_gib=_vllm_kv, kv_cache_fp8=True, streamer=True,
        compile_cache_env="VLLM_CACHE_ROOT", compile_s=46,
        # Tensor parallel within a node, pipeline parallel across nodes: vLLM's distributed-serving guide and the
        # LWS vLLM example (Llama-3.1-405B, TP 8 x PP 2 on two 8-GPU nodes).
        multinode=MultiNodeLaunch(
            parallelism=lambda gpus_per_node, nodes: (gpus_per_node, nodes), launch=_vllm_multinode,
            flags=("--pipeline-parallel-size", "-pp", "--nnodes", "-n", "--node-rank", "-r", "--master-addr",
                   "--headless", "--distributed-executor-backend"),
            source="vLLM docs, multi-node serving with the multiprocessing backend"),
    ),
    "sglang": Engine(
        name="sglang", image="lmsysorg/sglang:v0.5.20", image_gib=12.0,
        command=("python3", "-m", "sglang.launch_server"), build_args=_sglang,
        managed_flags=("--model-path", "--model", "--served-model-name", "--host", "--port", "--tp-size",
                       "--tensor-parallel-size", "--context-length", "--max-running-requests",
                       "--kv-cache-dtype"),
        abbreviations=True,
        # /health runs a one-token generation, 1-20 s under load (sglang/srt/entrypoints/http_server.py).
        port=30000, health_path="/health", health_timeout_s=30, metrics_path="/metrics",
        metrics={"queue": "sglang:num_queue_reqs", "running": "sglang:num_running_reqs",
                 "kvCache": "sglang:token_usage"},
        # Triton and Inductor JIT caches live under SGLANG_CACHE_DIR (sglang/srt/environ.py); torch.compile is off
        # by default (--enable-torch-compile), so no start time is counted for an empty cache.
        start_seconds=60, kv_budget_gib=_sglang_kv, kv_cache_fp8=True, streamer=False,
        compile_cache_env="SGLANG_CACHE_DIR", compile_s=0,
        # Tensor parallel over all GPUs of the replica, as the LWS SGLang example (--tp = GPUs of all nodes).
        multinode=MultiNodeLaunch(
            parallelism=lambda gpus_per_node, nodes: (gpus_per_node * nodes, 1), launch=_sglang_multinode,
            flags=("--nnodes", "--node-rank", "--dist-init-addr", "--nccl-init-addr", "--pp-size",
                   "--pipeline-parallel-size"),
            source="kubernetes-sigs/lws docs/examples/sglang/lws.yaml"),
    ),
    "tgi": Engine(
        name="tgi", image=None, image_gib=6.0,
        command=("text-generation-launcher",), build_args=_tgi,
        # --max-input-length is the legacy spelling of --max-input-tokens; -p is --port's short form.
        managed_flags=("--model-id", "--num-shard", "--max-total-tokens", "--max-input-tokens", "--max-input-length",
                       "--max-concurrent-requests", "--port", "-p", "--hostname", "--kv-cache-dtype"),
        abbreviations=False,  # clap matches long names exactly (no infer_long_args)
        port=8080, health_path="/health", health_timeout_s=5, metrics_path="/metrics",
        metrics={"queue": "tgi_queue_size", "running": "tgi_batch_current_size"},
        start_seconds=60, kv_budget_gib=_tgi_kv, kv_cache_fp8=True, streamer=False, compile_cache_env=None,
        compile_s=0,
        image_note=(
            "ghcr.io/huggingface/text-generation-inference:3.3.7 (the last release; upstream is in maintenance mode) "
            "installs Python under /root/.local/share/uv/python, which a non-root user cannot enter, so the "
            "launcher cannot load libpython as the platform's UID 10001 (huggingface/text-generation-inference"
            "#3082; the fix, PR #3197, is in no tag). Build an image that a non-root user can run, for example "
            "'FROM ghcr.io/huggingface/text-generation-inference:3.3.7' plus 'RUN chmod 0755 /root', push it to "
            "your registry and set it as this model's 'image' (pinned by tag or digest)"),
    ),
    "trtllm": Engine(
        name="trtllm", image="nvcr.io/nvidia/tensorrt-llm/release:1.2.1", image_gib=20.0,
        command=("trtllm-serve",), build_args=_trtllm,
        # click matches option names exactly; --config is the platform's options file.
        managed_flags=("--host", "--port", "--tensor_parallel_size", "--tp_size", "--max_seq_len", "--max_batch_size",
                       "--config", "--extra_llm_api_options"),
        abbreviations=False,
        # /metrics is JSON iteration stats; Prometheus text is at /prometheus/metrics, with no queue gauge
        # guaranteed across releases: no autoscaling signal.
        port=8000, health_path="/health", health_timeout_s=5, metrics_path="/prometheus/metrics", metrics={},
        # The KV dtype of trtllm-serve lives in its options YAML (kv_cache_config.dtype), which is per engine here.
        start_seconds=90, kv_budget_gib=_trtllm_kv, kv_cache_fp8=False, streamer=False, compile_cache_env=None,
        compile_s=0, config_dir=TRTLLM_CONFIG_DIR,
        config_files=TRTLLM_OPTIONS,
    ),
}

def managed_flag(engine: Engine, arg: str) -> str | None:
    """The managed flag that the engine's parser would read `arg` as, or None.

    Underscores count as dashes and `=VALUE` is dropped (vLLM reads `--max_model_len=4096` as --max-model-len);
    a short flag also matches with its value attached (`-p8080`, clap and argparse); with abbreviations, any
    prefix of a managed long flag matches (argparse resolves `--max-model` to --max-model-len). Spellings that
    the parser would reject anyway are refused too: refusing them here beats a pod that crash-loops.
    """
    if not arg.startswith("-") or len(arg) < 2:
        return None
    name = arg.split("=", 1)[0].replace("_", "-")
    exact = [flag for flag in engine.managed_flags if flag.replace("_", "-") == name]
    if exact:  # an exact option wins over abbreviations, as in argparse
        return exact[0]
    for flag in engine.managed_flags:
        spelt = flag.replace("_", "-")
        if flag.startswith("--"):
            if name == spelt or (engine.abbreviations and len(name) > 3 and spelt.startswith(name)):
                return flag
        elif not name.startswith("--") and (
                name.startswith(spelt) or (engine.abbreviations and spelt.startswith(name))):
            return flag
    return None


# Environment every engine container gets from the platform (offline hub, writable home, the revision's path);
# models.yaml may not set these names.
PLATFORM_ENV = ("HF_HUB_OFFLINE", "HOME", "HF_HOME", "MODEL_PATH",
                *sorted({e.compile_cache_env for e in ENGINES.values() if e.compile_cache_env}))


def platform_env(model_path: str, compile_env: str | None, compile_dir: str | None) -> tuple[tuple[str, str], ...]:
    """The platform's variables for one engine container: offline hub, writable home, the revision, its cache."""
    env = [("HF_HUB_OFFLINE", "1"), ("HOME", "/tmp"), ("HF_HOME", "/tmp/hf"), ("MODEL_PATH", model_path)]
    if compile_env and compile_dir:
        env.append((compile_env, compile_dir))
    return tuple(env)
