"""Model architectures as data: what a KV cache costs per token, keyed by Hugging Face repo.

Values are the config.json fields vLLM reads for its KV cache (`num_hidden_layers`, `num_key_value_heads`,
`head_dim` (else hidden_size / num_attention_heads), `max_position_embeddings`, and for MLA `kv_lora_rank` and
`qk_rope_head_dim`), each with the copy of the config it was read from. A source not listed here can state its
own `architecture:` in models.yaml.
"""

from __future__ import annotations

from dataclasses import dataclass

# Sources (public copies of the Hugging Face config.json files, or the families' own architecture code):
AICONFIG = "ai-dynamo/aiconfigurator@095f58a5 model_configs/<org>--<repo>_config.json (HF config.json copies)"
LLAMA_SKUS = "meta-llama/llama-models@8098c825 models/sku_list.py (arch_args)"
LITGPT = "Lightning-AI/litgpt@26857050 litgpt/config.py"
LLMPROF = "citsjtu2020/LLM-Prof@8434c8d1 sglang/Model_Config.md (HF config.json dumps)"
MAXTEXT = "AI-Hypercomputer/maxtext@02b47fd8 src/MaxText/utils/ckpt_conversion/utils/hf_model_configs.py"
GEMMA = "google-deepmind/gemma@7691fd4e gemma/gm/nn/_gemma.py (attention pattern, sliding window)"
NEMO = "kevinstephano/thunder_model_blocks mistral/mistral_config.py (Mistral-Nemo-Base-2407 config.json)"


@dataclass(frozen=True)
class Architecture:
    """What one token costs in the KV cache. Standard attention: kv_heads x head_dim per layer for K and V;
    multi-head latent attention (MLA): one latent of kv_lora_rank + qk_rope_head_dim per layer."""

    layers: int
    kv_heads: int = 0  # standard attention
    head_dim: int = 0
    kv_lora_rank: int = 0  # MLA
    qk_rope_head_dim: int = 0
    max_context: int | None = None  # max_position_embeddings: the engine's context when contextWindow is unset
    sliding_window: int | None = None  # tokens a sliding-window layer keeps ...
    global_every: int = 1  # ... when only every n-th layer attends to the whole context (1: all layers do)
    source: str = "models.yaml architecture"

    @property
    def mla(self) -> bool:
        return self.kv_lora_rank > 0

    @property
    def global_layers(self) -> int:
        return self.layers // self.global_every if self.sliding_window else self.layers


def _std(layers: int, kv: int, hd: int, ctx: int, source: str, window: int | None = None,
         every: int = 1) -> Architecture:
    return Architecture(layers, kv, hd, max_context=ctx, sliding_window=window, global_every=every, source=source)


_LLAMA_8B = _std(32, 8, 128, 131072, f"{AICONFIG}; {LLAMA_SKUS}")
_LLAMA_70B = _std(80, 8, 128, 131072, f"{AICONFIG}; {LLAMA_SKUS}")
_LLAMA_405B = _std(126, 8, 128, 131072, f"{AICONFIG}; {LLAMA_SKUS}")
_DEEPSEEK_V3 = Architecture(61, kv_lora_rank=512, qk_rope_head_dim=64, max_context=163840, source=f"{AICONFIG}; "
                            f"{MAXTEXT}")

# Keys are lower case: Hugging Face repo ids are case-insensitive.
ARCHITECTURES: dict[str, Architecture] = {k.lower(): v for k, v in {
    "meta-llama/Llama-3.1-8B": _LLAMA_8B,
    "meta-llama/Llama-3.1-8B-Instruct": _LLAMA_8B,
    "meta-llama/Llama-3.1-70B": _LLAMA_70B,
    "meta-llama/Llama-3.1-70B-Instruct": _LLAMA_70B,
    "meta-llama/Llama-3.3-70B-Instruct": _std(80, 8, 128, 131072, AICONFIG),
    "meta-llama/Llama-3.1-405B": _LLAMA_405B,
    "meta-llama/Llama-3.1-405B-Instruct": _LLAMA_405B,
    "meta-llama/Llama-3.1-405B-Instruct-FP8": _LLAMA_405B,
    "meta-llama/Llama-3.2-1B-Instruct": _std(16, 8, 64, 131072, f"{LLAMA_SKUS}; {LITGPT}"),
    "meta-llama/Llama-3.2-3B-Instruct": _std(28, 8, 128, 131072, f"{LLMPROF}; {LLAMA_SKUS}"),
    "mistralai/Mistral-7B-Instruct-v0.3": _std(32, 8, 128, 32768, LITGPT),
    "mistralai/Mixtral-8x7B-v0.1": _std(32, 8, 128, 32768, AICONFIG),
    "mistralai/Mixtral-8x7B-Instruct-v0.1": _std(32, 8, 128, 32768, f"{AICONFIG}; {LITGPT}"),
    "mistralai/Mixtral-8x22B-Instruct-v0.1": _std(56, 8, 128, 65536, f"{AICONFIG}; {LITGPT}"),
    "mistralai/Mistral-Nemo-Instruct-2407": _std(40, 8, 128, 128000, NEMO),  # head_dim 128, not 5120 / 32
    "Qwen/Qwen2.5-7B-Instruct": _std(28, 4, 128, 32768, f"{LLMPROF}; {LITGPT}"),
    "Qwen/Qwen2.5-14B-Instruct": _std(48, 8, 128, 32768, LLMPROF),
    "Qwen/Qwen2.5-32B-Instruct": _std(64, 8, 128, 32768, LLMPROF),
    "Qwen/Qwen2.5-72B-Instruct": _std(80, 8, 128, 32768, LITGPT),
    "Qwen/Qwen3-8B": _std(36, 8, 128, 40960, f"{AICONFIG}; {MAXTEXT}"),
    "Qwen/Qwen3-14B": _std(40, 8, 128, 40960, f"{LLMPROF}; {MAXTEXT}"),
    "Qwen/Qwen3-32B": _std(64, 8, 128, 40960, f"{AICONFIG}; {MAXTEXT}"),  # head_dim 128, not 5120 / 64
    "Qwen/Qwen3-30B-A3B": _std(48, 4, 128, 40960, f"{AICONFIG}; {LLMPROF}"),  # MoE: KV is per layer all the same
    "Qwen/Qwen3-235B-A22B": _std(94, 4, 128, 40960, AICONFIG),
    # Gemma 2 alternates 4096-token sliding-window layers with global ones; Gemma 3 has one global layer in six.
    "google/gemma-2-9b-it": _std(42, 8, 256, 8192, f"{GEMMA}; {MAXTEXT}", window=4096, every=2),
    "google/gemma-2-27b-it": _std(46, 16, 128, 8192, f"{GEMMA}; {MAXTEXT}", window=4096, every=2),
    "google/gemma-3-12b-it": _std(48, 8, 256, 131072, f"{GEMMA}; {MAXTEXT}; {LITGPT}", window=1024, every=6),
    "google/gemma-3-27b-it": _std(62, 16, 128, 131072, f"{GEMMA}; {MAXTEXT}; {LITGPT}", window=1024, every=6),
    "deepseek-ai/DeepSeek-V3": _DEEPSEEK_V3,
    "deepseek-ai/DeepSeek-R1": _DEEPSEEK_V3,
    "deepseek-ai/DeepSeek-R1-Distill-Llama-70B": _std(80, 8, 128, 131072, LITGPT),
    "microsoft/phi-4": _std(40, 10, 128, 16384, LITGPT),
    "tiiuae/Falcon3-7B-Instruct": _std(28, 4, 256, 32768, LITGPT),
}.items()}


def known(source: str) -> Architecture | None:
    """The catalog's architecture for an hf:// source, if any."""
    if not source.startswith("hf://"):
        return None
    return ARCHITECTURES.get(source.removeprefix("hf://").lower())
