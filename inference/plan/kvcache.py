"""KV-cache fit: what one sequence costs per GPU, what the engine leaves for the cache, and what fits.

Per layer and token, on one tensor-parallel rank (vLLM: vllm/v1/kv_cache_interface.py page_size_bytes with
ModelConfig.get_num_kv_heads / get_head_size):
- standard attention: 2 (K and V) x max(1, kv_heads // TP) x head_dim x bytes per element;
- multi-head latent attention (DeepSeek-V2/V3/R1): (kv_lora_rank + qk_rope_head_dim) x bytes, the same on every
  rank (the latent is not split by TP).
Sliding-window layers (Gemma 2/3) keep at most `sliding_window` tokens of a sequence (vLLM SlidingWindowSpec);
global layers keep all of it. Bytes per element: 2 for bf16/fp16 (kvCacheDtype auto), 1 for fp8.
Pipeline parallelism (a replica over several nodes, vLLM) splits the layers into PP stages: a GPU keeps the KV cache
of its stage's layers only, at most ceil(layers / PP) (vllm/distributed/utils.py get_pp_indices splits evenly).
"""

from __future__ import annotations

import math

from ..architectures import Architecture

GIB = 2**30
DTYPE_BYTES = {"auto": 2, "fp8": 1}


def layer_token_bytes(arch: Architecture, tp: int, dtype: str) -> int:
    """Bytes one token costs in one layer on one GPU."""
    b = DTYPE_BYTES[dtype]
    if arch.mla:
        return (arch.kv_lora_rank + arch.qk_rope_head_dim) * b
    return 2 * max(1, arch.kv_heads // tp) * arch.head_dim * b


def stage_layers(arch: Architecture, pp: int) -> tuple[int, int]:
    """(global, sliding-window) layers of the largest pipeline stage; its global ones at most their even share."""
    layers = math.ceil(arch.layers / pp)
    global_layers = min(layers, math.ceil(arch.global_layers / pp))
    return global_layers, layers - global_layers


def sequence_bytes(arch: Architecture, tp: int, dtype: str, tokens: int, pp: int = 1) -> int:
    """Bytes one sequence of `tokens` costs on one GPU, over the layers of its pipeline stage."""
    window = min(tokens, arch.sliding_window) if arch.sliding_window else tokens
    global_layers, sliding = stage_layers(arch, pp)
    return layer_token_bytes(arch, tp, dtype) * (global_layers * tokens + sliding * window)


def largest_context(arch: Architecture, tp: int, dtype: str, budget_bytes: float, pp: int = 1) -> int:
    """The longest single sequence whose KV cache fits `budget_bytes` on one GPU."""
    per = layer_token_bytes(arch, tp, dtype)
    if budget_bytes <= 0:
        return 0
    global_layers, sliding = stage_layers(arch, pp)
    all_layers = int(budget_bytes // (per * (global_layers + sliding)))
    if not arch.sliding_window or all_layers <= arch.sliding_window:
        return all_layers
    return int((budget_bytes / per - sliding * arch.sliding_window) // global_layers)
