#!/usr/bin/env python3
"""Exports the MoE blocks of transformers 5's model families (and three whole
tiny causal LMs) with torch.onnx.export, both exporters, into
test/Import/Inputs/hf/, for issue 13's raising of `batched_mm` experts.

Each block is built from its family's own transformers class (tiny config,
fixed seeds, random weights), with the experts implementation `batched_mm`
(config._experts_implementation) where the family has one; llama4
(Llama4TextMoe) and jetmoe (JetMoeMoE) run their own forward. Every block is
exported twice:
- `torchscript`: torch.onnx.export(dynamo=False, opset_version=17,
  dynamic_axes: batch and seq);
- `dynamo`: torch.onnx.export(dynamo=True, the exporter's default opset,
  dynamic_shapes: batch and seq, external_data=False).
Input `hidden_states` (batch, seq, H), output `output` (the block's hidden
output; blocks returning a tuple are wrapped). An export is kept only when
onnxruntime reproduces torch (rel L2 <= 1e-5) at T = 1, 7, 64 and 513 tokens;
the others are recorded (exporter error, onnxruntime error, mismatch, with the
message) in expected_ort.json and the README, not dropped silently. The whole
LMs (mixtral, qwen3_moe, deepseek_v3: 2 layers, vocab 256, use_cache=False,
eager attention) map `input_ids` (batch, seq) to `logits`, at T = 1, 9, 65.

For each kept export: <family>_<exporter>.onnx (<family>_lm_<exporter>.onnx for
the LMs) and .npz with `input_<T>`, `output_<T>` (torch's own output, float32;
LM inputs are int64 ids) and `config` (the transformers config as JSON) and
`spec` (this script's settings as JSON). Also README.md (per file: config,
op histogram, the routing and expert node listing, what a correct raise is),
expected_ort.json, and docs/hf-exports.md (family x exporter table).

It makes its own virtual environment (PyPI; idempotent: reinstalls only when
the pins change) and re-executes itself inside it:

    python3 scripts/make_hf_fixtures.py [--only FAMILY ...] [--venv DIR]

The venv is $MOE_HF_VENV or ~/.cache/moe-mlir/hf-venv. `--only` re-exports the
named families (`mixtral`, `mixtral_lm`, ...) and keeps the other entries of
expected_ort.json; the README and docs are always rewritten from all entries.
Deterministic (fixed seeds, single-threaded torch and onnxruntime, .npz with
fixed zip timestamps). Check the files later without torch:

    python3 scripts/check_hf_fixtures.py
"""
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, ".."))
OUT = os.path.join(ROOT, "test", "Import", "Inputs", "hf")
DOC = os.path.join(ROOT, "docs", "hf-exports.md")

# torch 2.15 and transformers 5.24 are the newest on PyPI (November 2026).
# PyPI's Linux torch wheel is the CUDA one (about 0.5 GB, plus about 3 GB of
# nvidia-* wheels, 5.7 GB installed); the CPU-only index is not reachable
# from our machines, and the CUDA wheel runs on CPU as is.
PINS = ["torch==2.15.*", "transformers==5.24.*", "onnx==1.23.*", "onnxruntime==1.32.*",
        "onnxscript==0.7.*", "numpy==2.4.*"]


def venv_dir(argv):
    if "--venv" in argv:
        return os.path.abspath(argv[argv.index("--venv") + 1])
    return os.environ.get("MOE_HF_VENV") or os.path.expanduser("~/.cache/moe-mlir/hf-venv")


def ensure_venv(argv):
    """Creates (or updates) the venv and re-executes this script inside it.
    Returns only when already running inside it."""
    venv = venv_dir(argv)
    py = os.path.join(venv, "bin", "python")
    if os.path.realpath(sys.prefix) == os.path.realpath(venv):
        return
    stamp = os.path.join(venv, "moe-mlir-pins.txt")
    want = "\n".join(PINS) + "\n"
    have = open(stamp).read() if os.path.exists(stamp) else None
    if have != want or not os.path.exists(py):
        if not os.path.exists(py):
            print("creating %s" % venv, flush=True)
            subprocess.check_call([sys.executable, "-m", "venv", venv])
        print("installing %s into %s" % (" ".join(PINS), venv), flush=True)
        subprocess.check_call([py, "-m", "pip", "install", "-q", "--upgrade", "pip"])
        subprocess.check_call([py, "-m", "pip", "install", "-q"] + PINS)
        with open(stamp, "w") as f:
            f.write(want)
    os.execv(py, [py, os.path.abspath(__file__)] + argv)


if __name__ == "__main__":
    ensure_venv(sys.argv[1:])

# ---- everything below runs inside the venv ----------------------------------
import argparse  # noqa: E402
import collections  # noqa: E402
import importlib  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import re  # noqa: E402
import warnings  # noqa: E402
import zipfile  # noqa: E402

import numpy as np  # noqa: E402
import onnx  # noqa: E402
import onnxruntime as ort  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402
from onnx import helper, numpy_helper  # noqa: E402

TOL = 1e-5
H = 32
BLOCK_SHAPES = {1: (1, 1), 7: (1, 7), 64: (2, 32), 513: (1, 513)}
LM_SHAPES = {1: (1, 1), 9: (1, 9), 65: (1, 65)}
EXPORT_SHAPE = (2, 5)       # the example input given to both exporters
PROBES = ((3, 7), (2, 5))   # (batch, seq) runs that name the README's sizes
TORCHSCRIPT_OPSET = 17
EXPORTERS = ("torchscript", "dynamo")
ATTN = dict(num_attention_heads=4, num_key_value_heads=2)

SOFTMAX_TOPK_RENORM = ("softmax over the E router logits (float32), top-k of the probabilities, "
                       "divided by their sum (renormalised)")
SOFTMAX_TOPK = "softmax over the E router logits, top-k of the probabilities, NOT renormalised"
GROUP_LIMITED = (
    "logits = x @ Wr^T in float32; scores = sigmoid(logits); choice = scores + e_score_correction_bias "
    "(a constant (E,) vector); group score = sum of the top-2 choice values of each of the n_group "
    "groups of E/n_group consecutive experts; keep the topk_group best groups (TopK, sorted=0), "
    "mask the other groups' choice values to -inf; top-k experts of the masked choice (sorted=0); "
    "weights = the UNBIASED scores gathered at those experts, divided by (their sum + 1e-20), "
    "times routed_scaling_factor")
SWIGLU_CHUNK = ("batched_mm SwiGLU: gate_up_proj (E, 2I, H) gathered per (token, slot), bmm, "
                "chunk in halves (gate = first I, up = second I), silu(gate) * up, down_proj (E, H, I) "
                "gathered, bmm")

FAMILIES = [
    dict(family="mixtral", config="MixtralConfig", block="MixtralSparseMoeBlock",
         kw=dict(hidden_size=H, intermediate_size=32, num_local_experts=8, num_experts_per_tok=2, **ATTN),
         E=8, k=2, I=32, routing=SOFTMAX_TOPK_RENORM, experts=SWIGLU_CHUNK,
         raise_="one moe.layer: E=8, top-2, softmax then top-k, renormalised, SwiGLU (silu), no biases; "
         "no Gather of a 3-D weight, no batched MatMul left."),
    dict(family="qwen2_moe", config="Qwen2MoeConfig", block="Qwen2MoeSparseMoeBlock",
         kw=dict(hidden_size=H, moe_intermediate_size=32, shared_expert_intermediate_size=48, num_experts=8,
                 num_experts_per_tok=2, norm_topk_prob=False, **ATTN),
         E=8, k=2, I=32, routing=SOFTMAX_TOPK, experts=SWIGLU_CHUNK,
         shared="shared expert: SwiGLU MLP (I=48) on every token, times sigmoid(x @ shared_expert_gate (1, H)^T), "
         "added to the routed sum",
         raise_="one moe.layer: E=8, top-2, softmax then top-k, not renormalised, SwiGLU; the shared expert "
         "(three MatMuls), its Sigmoid gate (MatMul (H,1) -> Sigmoid -> Mul) and the Add stay ordinary ops "
         "(or become the layer's shared expert with a sigmoid gate, if the dialect has one)."),
    dict(family="qwen3_moe", config="Qwen3MoeConfig", block="Qwen3MoeSparseMoeBlock",
         kw=dict(hidden_size=H, moe_intermediate_size=32, num_experts=8, num_experts_per_tok=2,
                 norm_topk_prob=True, head_dim=8, **ATTN),
         E=8, k=2, I=32, routing=SOFTMAX_TOPK_RENORM, experts=SWIGLU_CHUNK,
         raise_="one moe.layer: E=8, top-2, softmax then top-k, renormalised, SwiGLU, no biases."),
    dict(family="olmoe", config="OlmoeConfig", block="OlmoeSparseMoeBlock",
         kw=dict(hidden_size=H, intermediate_size=32, num_experts=8, num_experts_per_tok=2, norm_topk_prob=False,
                 **ATTN),
         E=8, k=2, I=32, routing=SOFTMAX_TOPK, experts=SWIGLU_CHUNK,
         raise_="one moe.layer: E=8, top-2, softmax then top-k, not renormalised, SwiGLU, no biases."),
    dict(family="deepseek_v3", config="DeepseekV3Config", block="DeepseekV3MoE",
         kw=dict(hidden_size=H, intermediate_size=64, moe_intermediate_size=16, n_routed_experts=8,
                 num_experts_per_tok=2, n_group=4, topk_group=2, routed_scaling_factor=2.5, norm_topk_prob=True,
                 n_shared_experts=1, num_attention_heads=4, num_key_value_heads=4, kv_lora_rank=16,
                 q_lora_rank=16, qk_rope_head_dim=8, qk_nope_head_dim=8, v_head_dim=8),
         E=8, k=2, I=16, routing=GROUP_LIMITED + " (n_group=4, topk_group=2, routed_scaling_factor=2.5)",
         experts=SWIGLU_CHUNK,
         shared="shared experts: one SwiGLU MLP (I = moe_intermediate_size * n_shared_experts = 16) on every "
         "token, ungated, added after the routed sum is reshaped to (B, S, H)",
         raise_="one moe.layer: E=8, top-2, sigmoid scoring, selection bias e_score_correction_bias, "
         "group-limited top-k (4 groups of 2, keep 2 groups by the sum of their top-2 biased scores), "
         "weights from the unbiased sigmoid, renormalised (+1e-20), times 2.5, SwiGLU experts; the "
         "shared MLP and the Add stay ordinary ops (or the layer's ungated shared expert)."),
    dict(family="glm4_moe", config="Glm4MoeConfig", block="Glm4MoeMoE",
         kw=dict(hidden_size=H, intermediate_size=64, moe_intermediate_size=16, n_routed_experts=8,
                 num_experts_per_tok=2, n_group=2, topk_group=1, routed_scaling_factor=2.5, norm_topk_prob=True,
                 n_shared_experts=1, head_dim=8, **ATTN),
         E=8, k=2, I=16, routing=GROUP_LIMITED + " (here n_group=2, topk_group=1, routed_scaling_factor=2.5; "
         "GLM-4.5 itself ships n_group=1, topk_group=1: the same graph with trivial group constants)",
         experts=SWIGLU_CHUNK,
         shared="shared experts: one SwiGLU MLP (I=16), ungated, added after the reshape",
         raise_="one moe.layer as for deepseek_v3 but 2 groups of 4 experts, the best 1 group kept; shared "
         "MLP and Add stay ordinary ops (or the layer's ungated shared expert)."),
    dict(family="gpt_oss", config="GptOssConfig", block="GptOssMLP",
         kw=dict(hidden_size=H, intermediate_size=32, num_local_experts=8, num_experts_per_tok=2, swiglu_limit=1.0,
                 head_dim=8, **ATTN),
         E=8, k=2, I=32,
         routing="logits = x @ Wr^T + router bias; top-k of the LOGITS; softmax over the k selected logits",
         experts="batched_mm, transposed layout with biases: gate_up_proj (E, H, 2I) and its bias (E, 2I) "
         "gathered per (token, slot), x @ W + b; gate = even columns (stride-2 slice ::2), up = odd columns "
         "(1::2); gate = min(gate, limit), up = clamp(up, -limit, limit); glu = gate * sigmoid(1.702 * gate); "
         "(up + 1) * glu; down_proj (E, I, H) and bias (E, H) gathered; limit = swiglu_limit = 1.0 here "
         "(gpt-oss ships 7.0; lowered so that the clamps bite on these inputs)",
         raise_="one moe.layer: E=8, top-2, top-k of the biased logits then softmax over the k, interleaved "
         "gate/up columns, clamped SwiGLU with alpha 1.702 and limit 1.0, up + 1, expert biases on both "
         "projections; router bias kept."),
    dict(family="granitemoe", config="GraniteMoeConfig", block="GraniteMoeMoE",
         kw=dict(hidden_size=H, intermediate_size=32, num_local_experts=8, num_experts_per_tok=2, **ATTN),
         E=8, k=2, I=32, routing="top-k of the logits (float32), softmax over the k selected",
         experts=SWIGLU_CHUNK,
         raise_="one moe.layer: E=8, top-2, top-k then softmax, SwiGLU, no biases."),
    dict(family="phimoe", config="PhimoeConfig", block="PhimoeSparseMoeBlock",
         kw=dict(hidden_size=H, intermediate_size=32, num_local_experts=8, num_experts_per_tok=2, **ATTN),
         E=8, k=2, I=32,
         routing="sparsemixer, top-2 fixed (eval form, router_jitter_noise eps = 0.01): "
         "m1, i1 = max(logits); factor = max(|logits|, m1); masked where (m1 - logits) / factor > 2*eps "
         "to -inf; w1 = softmax(masked)[i1]; second pass: logits with i1 scattered to -inf, m2, i2 = max of "
         "that; factor = max(|logits|, m2) (the ORIGINAL logits); mask (m2 - logits) / factor > 2*eps on the "
         "i1-masked logits; w2 = softmax(that)[i2]; weights (w1, w2), experts (i1, i2)",
         experts=SWIGLU_CHUNK,
         raise_="one moe.layer: E=8, top-2, sparsemixer routing with eps 0.01, SwiGLU, no biases."),
    dict(family="ernie4_5_moe", config="Ernie4_5_MoeConfig", block="Ernie4_5_MoeSparseMoeBlock",
         kw=dict(hidden_size=H, intermediate_size=64, moe_intermediate_size=32, moe_num_experts=8, moe_k=2,
                 moe_num_shared_experts=1, **ATTN),
         E=8, k=2, I=32,
         routing="p = softmax(x @ Wr^T) (float32); experts = top-k of p + e_score_correction_bias "
         "(constant (1, E), squeezed); weights = p gathered at them (unbiased), divided by "
         "max(sum, moe_norm_min = 1e-12) (a Clip floor)",
         experts=SWIGLU_CHUNK,
         shared="shared experts: one SwiGLU MLP (I=32), ungated, added before the final reshape",
         raise_="one moe.layer: E=8, top-2, softmax scoring, selection bias, weights from the unbiased "
         "probabilities renormalised with a 1e-12 floor, SwiGLU; shared MLP and Add stay ordinary ops."),
    dict(family="minimax", config="MiniMaxConfig", block="MiniMaxSparseMoeBlock",
         kw=dict(hidden_size=H, intermediate_size=32, num_local_experts=8, num_experts_per_tok=2, head_dim=8, **ATTN),
         E=8, k=2, I=32, routing=SOFTMAX_TOPK_RENORM, experts=SWIGLU_CHUNK,
         raise_="one moe.layer: E=8, top-2, softmax then top-k, renormalised, SwiGLU (as mixtral)."),
    dict(family="hunyuan_v1_moe", config="HunYuanMoEV1Config", block="HunYuanMoEV1Moe",
         kw=dict(hidden_size=H, intermediate_size=32, num_experts=8, moe_topk=2, head_dim=8, **ATTN),
         E=8, k=2, I=32, routing=SOFTMAX_TOPK_RENORM + " (router weight float32, wg Linear)",
         experts=SWIGLU_CHUNK,
         shared="shared MLP: SwiGLU (I=32) on the (B, S, H) input, ungated, added after the reshape",
         raise_="one moe.layer: E=8, top-2, softmax then top-k, renormalised, SwiGLU; the shared MLP "
         "and Add stay ordinary ops."),
    dict(family="llama4", config="Llama4TextConfig", block="Llama4TextMoe",
         kw=dict(hidden_size=H, intermediate_size=32, intermediate_size_mlp=64, num_local_experts=8,
                 num_experts_per_tok=1, head_dim=8, **ATTN),
         E=8, k=1, I=32, own_forward=True,
         routing="top-1 of the logits; scores = sigmoid of a (T, E) tensor that is -inf except the selected "
         "logit (so 0 for unselected experts, sigmoid(logit) for the selected one); the score multiplies "
         "the expert INPUT, not its output",
         experts="dense (own forward): x repeated E times (E*T, H), times the transposed scores as a column, "
         "viewed (E, T, H), bmm with gate_up_proj (E, H, 2I), chunk (gate first), up * silu(gate), bmm "
         "with down_proj (E, I, H), viewed (E, T, H), summed over E",
         shared="shared expert: SwiGLU MLP (I=32) on every token; the routed sum is added to it",
         raise_="one moe.layer: E=8, top-1, sigmoid of the selected logit applied to the expert input "
         "(score on input), SwiGLU experts in transposed layout; the dense all-experts computation is gone; "
         "the shared MLP and Add stay ordinary ops."),
    dict(family="jetmoe", config="JetMoeConfig", block="JetMoeMoE",
         kw=dict(hidden_size=H, intermediate_size=32, num_local_experts=8, num_experts_per_tok=2, kv_channels=8,
                 num_key_value_heads=2),
         E=8, k=2, I=32, own_forward=True,
         routing="top-k of the logits (float32), softmax over the k selected",
         experts="own forward: (token, slot) pairs sorted by expert id, tokens gathered in that order, "
         "split into per-expert groups by expert_size (a Python list: a trace constant), per-expert "
         "Linear with input_linear (E, 2I, H), chunk (gate first), silu(gate) * up, per-expert Linear "
         "with output_linear (E, H, I), times the sorted gates, index_add into zeros, plus an (H,) bias",
         raise_="one moe.layer: E=8, top-2, top-k then softmax, SwiGLU, plus the output bias (an ordinary "
         "Add after the layer)."),
]

# The other experts implementations of one family, to record what a user
# exporting them gets (not kept unless onnxruntime reproduces torch).
FORMS = [dict(FAMILIES[0], name="mixtral_eager", experts_implementation="eager",
              experts="eager loop over the experts hit (for expert_idx in expert_hit: where, index_add_)"),
         dict(FAMILIES[0], name="mixtral_grouped_mm", experts_implementation="grouped_mm",
              experts="grouped_mm: tokens sorted by expert, torch._grouped_mm / F.grouped_mm with offsets")]

LMS = [
    dict(family="mixtral", config="MixtralConfig", model="MixtralForCausalLM",
         kw=dict(hidden_size=H, intermediate_size=16, num_local_experts=8, num_experts_per_tok=2, **ATTN),
         moe_layers=2,
         raise_="two moe.layer (one per decoder layer), each as mixtral_<exporter>.onnx but I=16."),
    dict(family="qwen3_moe", config="Qwen3MoeConfig", model="Qwen3MoeForCausalLM",
         kw=dict(hidden_size=H, moe_intermediate_size=16, num_experts=8, num_experts_per_tok=2,
                 norm_topk_prob=True, head_dim=8, **ATTN),
         moe_layers=2,
         raise_="two moe.layer, each as qwen3_moe_<exporter>.onnx but I=16; q_norm/k_norm RMSNorms in attention."),
    dict(family="deepseek_v3", config="DeepseekV3Config", model="DeepseekV3ForCausalLM",
         kw=dict(FAMILIES[4]["kw"], intermediate_size=32, first_k_dense_replace=1),
         moe_layers=1,
         raise_="one moe.layer (decoder layer 1, as deepseek_v3_<exporter>.onnx with its shared MLP); "
         "layer 0 is a dense SwiGLU MLP (I=32, first_k_dense_replace=1) that must stay ordinary ops; "
         "multi-head latent attention (q/kv LoRA ranks 16, rope dim 8, interleaved rope)."),
]
LM_COMMON = dict(vocab_size=256, num_hidden_layers=2, use_cache=False, max_position_embeddings=1024,
                 tie_word_embeddings=False)


# ------------------------------------------------------------ building ---

class HiddenOnly(torch.nn.Module):
    """hidden_states -> the block's hidden output (first element of a tuple)."""

    def __init__(self, block):
        super().__init__()
        self.block = block

    def forward(self, hidden_states):
        out = self.block(hidden_states)
        return out[0] if isinstance(out, tuple) else out


class LogitsOnly(torch.nn.Module):
    """input_ids -> logits. With ones_mask, passes attention_mask =
    ones_like(input_ids) (the TorchScript workaround: without a mask,
    transformers' masking_utils probes position_ids for packed sequences with
    torch.diff, which the TorchScript exporter cannot translate)."""

    def __init__(self, model, ones_mask=False):
        super().__init__()
        self.model = model
        self.ones_mask = ones_mask

    def forward(self, input_ids):
        mask = torch.ones_like(input_ids) if self.ones_mask else None
        return self.model(input_ids=input_ids, attention_mask=mask, use_cache=False).logits


def make_config(spec, extra=None):
    kw = dict(spec["kw"])
    kw.update(extra or {})
    cfg = getattr(transformers, spec["config"])(**kw)
    cfg._experts_implementation = spec.get("experts_implementation", "batched_mm")
    return cfg


def randomize_(module, seed):
    """Deterministic weights: routers N(0, 2/H) (logits of std ~1.4, decisive
    routing), other matrices uniform(+-1/sqrt(fan_in)) (expert tensors: fan_in
    from their layout), norms 1 + 0.2 N(0,1), biases and selection biases
    0.1 N(0,1) (ernie's, on softmax probabilities: 0.03 N(0,1)), embeddings
    N(0,1)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        named = list(module.named_parameters()) + [
            (n, b) for n, b in module.named_buffers() if n.endswith("e_score_correction_bias")]
        for name, p in named:
            short = name.split(".")[-2:] if "." in name else [name]
            if name.endswith("e_score_correction_bias"):
                scale = 0.03 if "moe_statics" in name else 0.1
                p.copy_(scale * torch.randn(p.shape, generator=g))
            elif "embed_tokens" in name:
                p.copy_(torch.randn(p.shape, generator=g))
            elif (short[-1] == "weight" and len(short) == 2 and short[0] in ("gate", "router", "wg", "layer")
                  and p.dim() == 2 and p.shape[0] > 1):
                p.copy_(torch.randn(p.shape, generator=g) * (2.0 / p.shape[1]) ** 0.5)
            elif p.dim() == 3:
                fan_in = p.shape[1] if (getattr(module_of(module, name), "is_transposed", False)
                                        or is_llama4_experts(module, name)) else p.shape[2]
                p.copy_((torch.rand(p.shape, generator=g) * 2 - 1) / fan_in ** 0.5)
            elif p.dim() == 2:
                p.copy_((torch.rand(p.shape, generator=g) * 2 - 1) / p.shape[1] ** 0.5)
            elif "norm" in name and name.endswith("weight"):
                p.copy_(1.0 + 0.2 * torch.randn(p.shape, generator=g))
            else:
                p.copy_(0.1 * torch.randn(p.shape, generator=g))


def module_of(root, param_name):
    mod = root
    for part in param_name.split(".")[:-1]:
        mod = getattr(mod, part)
    return mod


def is_llama4_experts(root, param_name):
    return type(module_of(root, param_name)).__name__ == "Llama4TextExperts"


def build_block(spec):
    cfg = make_config(spec)
    mod = importlib.import_module("transformers.models.%s.modeling_%s" % (spec["family"], spec["family"]))
    block = getattr(mod, spec["block"])(cfg)
    model = HiddenOnly(block)
    randomize_(model, seed_of(spec["family"]))  # the same weights for every form of a family
    return model.eval(), cfg


def build_lm(spec):
    kw = dict(LM_COMMON)
    cfg = make_config(spec, kw)
    cls = getattr(transformers, spec["model"])
    lm = cls._from_config(cfg, attn_implementation="eager")
    lm.set_experts_implementation("batched_mm")
    assert set(lm.get_experts_implementation().values()) <= {"batched_mm"}, lm.get_experts_implementation()
    assert lm.config._attn_implementation == "eager"
    model = LogitsOnly(lm)
    randomize_(model, seed_of(spec["family"] + "_lm"))
    return model.eval(), lm.config


def seed_of(name):
    return sum((i + 1) * ord(c) for i, c in enumerate(name))


def block_input(name, t, shape):
    g = torch.Generator().manual_seed(seed_of(name) * 7919 + t)
    return torch.randn(shape + (H,), generator=g)


def lm_input(name, t, shape, vocab):
    g = torch.Generator().manual_seed(seed_of(name) * 7919 + t)
    return torch.randint(0, vocab, shape, generator=g)


# ------------------------------------------------------------- exporting ---

class Quiet:
    """Sends file descriptors 1 and 2 to a temporary file (the exporters
    print whole graphs and progress lines from C++ and Python)."""

    def __enter__(self):
        sys.stdout.flush()
        sys.stderr.flush()
        self.saved = [os.dup(1), os.dup(2)]
        self.sink = open(os.devnull, "w")
        os.dup2(self.sink.fileno(), 1)
        os.dup2(self.sink.fileno(), 2)
        return self

    def __exit__(self, *exc):
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(self.saved[0], 1)
        os.dup2(self.saved[1], 2)
        for fd in self.saved:
            os.close(fd)
        self.sink.close()
        return False


def export(model, example, path, exporter, in_name, out_name):
    """Writes path; returns the opset of the default domain."""
    with Quiet(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if exporter == "torchscript":
            torch.onnx.export(model, (example,), path, dynamo=False, opset_version=TORCHSCRIPT_OPSET,
                              input_names=[in_name], output_names=[out_name],
                              dynamic_axes={in_name: {0: "batch", 1: "seq"}, out_name: {0: "batch", 1: "seq"}},
                              do_constant_folding=True)
        else:
            dims = {0: torch.export.Dim("batch"), 1: torch.export.Dim("seq")}
            torch.onnx.export(model, (example,), path, dynamo=True, input_names=[in_name],
                              output_names=[out_name], dynamic_shapes={in_name: dims},
                              external_data=False, verbose=False)
    m = onnx.load(path)
    # The dynamo exporter stamps every node, value and initializer with
    # metadata (the Python stack that made it, with this machine's paths; the
    # module path; the FX node): up to half the file, and not deterministic
    # across machines. Dropped; node names stay.
    for part in list(m.graph.node) + list(m.graph.value_info) + list(m.graph.initializer):
        del part.metadata_props[:]
    onnx.save(m, path)
    return [o.version for o in m.opset_import if o.domain in ("", "ai.onnx")][0]


def rel_l2(got, want):
    want = want.astype(np.float64)
    den = float(np.linalg.norm(want))
    num = float(np.linalg.norm(got.astype(np.float64) - want))
    return num / den if den else num


def session(path):
    opts = ort.SessionOptions()
    opts.log_severity_level = 4
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    return ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])


def first_line(e):
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(e)).strip()
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    # The dynamo exporter's errors start with generic advice; the cause
    # follows "## Exception summary" as "<class '...'>: message".
    if "## Exception summary" in lines:
        rest = lines[lines.index("## Exception summary") + 1:]
        causes = [ln for ln in rest if ln.startswith("<class ")]
        if causes:
            m = re.match(r"<class '(?:[\w.]+\.)?(\w+)'>: (.*)", causes[0])
            if m:
                return "%s: %s: %s" % (type(e).__name__, m.group(1), m.group(2)[:400])
    # torch.export errors put the useful line after a generic header.
    for ln in lines:
        if any(w in ln for w in ("Error", "error", "failed", "Could not", "not supported", "Unsupported",
                                 "guard", "data-dependent", "Data dependent")):
            return "%s: %s" % (type(e).__name__, ln[:400])
    return "%s: %s" % (type(e).__name__, (lines[0] if lines else "")[:400])


def ort_outcomes(path, cases, in_name):
    """{case: "match" | "mismatch: ..." | "error: ..."} plus details."""
    try:
        sess = session(path)
    except Exception as e:  # noqa: BLE001 - onnxruntime raises several kinds
        return {c: "error: session: " + first_line(e) for c in cases}, {}
    res, err = {}, {}
    for c, (x, want) in cases.items():
        try:
            got = sess.run(None, {in_name: x})[0]
        except Exception as e:  # noqa: BLE001
            res[c] = "error: " + first_line(e)
            continue
        if got.shape != want.shape:
            res[c] = "mismatch: shape %s, torch %s" % (got.shape, want.shape)
            continue
        r = rel_l2(got, want)
        err[c] = r
        res[c] = "match" if r <= TOL else "mismatch: rel L2 %.3g" % r
    return res, err


def save_npz(path, arrays):
    """np.savez with fixed zip timestamps (np.savez stamps the current time)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        for key in sorted(arrays):
            buf = io.BytesIO()
            arr = np.asarray(arrays[key])
            np.lib.format.write_array(buf, np.ascontiguousarray(arr) if arr.ndim else arr, allow_pickle=False)
            info = zipfile.ZipInfo(key + ".npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            zf.writestr(info, buf.getvalue())


def spec_json(spec, kind):
    keep = {k: v for k, v in spec.items() if k not in ("routing", "experts", "raise_", "shared")}
    keep["kind"] = kind
    return json.dumps(keep, sort_keys=True)


def config_json(cfg):
    d = cfg.to_diff_dict() if hasattr(cfg, "to_diff_dict") else cfg.to_dict()
    d["_experts_implementation"] = cfg._experts_implementation
    d["_attn_implementation"] = getattr(cfg, "_attn_implementation", None)
    return json.dumps(d, sort_keys=True, default=str)


def do_one(name, spec, kind, model, cfg, cases_t, exporter):
    """Exports one (family, exporter); returns its expected_ort.json entry."""
    in_name, out_name = ("hidden_states", "output") if kind == "block" else ("input_ids", "logits")
    path = os.path.join(OUT, name + ".onnx")
    npz_path = os.path.join(OUT, name + ".npz")
    for p in (path, npz_path, path + ".data"):
        if os.path.exists(p):
            os.remove(p)
    if kind == "block":
        example = block_input(name, 0, EXPORT_SHAPE)
    else:
        example = lm_input(name, 0, EXPORT_SHAPE, cfg.vocab_size)
    entry = dict(family=spec["family"], kind=kind, exporter=exporter)
    tmp = path + ".tmp"
    try:
        try:
            opset = export(model, example, tmp, exporter, in_name, out_name)
        except Exception as e:  # noqa: BLE001
            if not (kind == "lm" and exporter == "torchscript" and "aten::diff" in str(e)):
                raise
            entry["note"] = ("the plain export fails (%s); exported with attention_mask = "
                             "ones_like(input_ids) passed inside the wrapper" % first_line(e))
            print("  %-28s plain export failed (aten::diff); retrying with an all-ones attention_mask"
                  % name, flush=True)
            model = LogitsOnly(model.model, ones_mask=True).eval()
            opset = export(model, example, tmp, exporter, in_name, out_name)
    except Exception as e:  # noqa: BLE001 - exporters raise many kinds
        for p in (tmp, tmp + ".data"):
            if os.path.exists(p):
                os.remove(p)
        entry.update(status="failed", stage="export", message=first_line(e))
        print("  %-28s export FAILED: %s" % (name, entry["message"]), flush=True)
        return entry
    entry["opset"] = opset
    cases, arrays = {}, {}
    with torch.no_grad():
        for t, shape in cases_t.items():
            x = block_input(name, t, shape) if kind == "block" else lm_input(name, t, shape, cfg.vocab_size)
            y = model(x)
            cases[str(t)] = (x.numpy(), y.float().numpy())
    res, errs = ort_outcomes(tmp, cases, in_name)
    entry["cases"] = res
    entry["max_rel_l2"] = float("%.3g" % max(errs.values())) if errs else None
    bad = {c: r for c, r in res.items() if r != "match"}
    if bad:
        os.remove(tmp)
        stage = "ort" if any(r.startswith("error") for r in bad.values()) else "mismatch"
        order = sorted(bad, key=int)
        entry.update(status="failed", stage=stage,
                     message="fails at T=%s of %s; T=%s: %s" % (
                         ", ".join(order), ", ".join(sorted(res, key=int)), order[0], bad[order[0]][:300]))
        print("  %-28s onnxruntime FAILED: %s" % (name, entry["message"][:300]), flush=True)
        return entry
    os.replace(tmp, path)
    for c, (x, y) in cases.items():
        arrays["input_" + c] = x
        arrays["output_" + c] = y
    arrays["config"] = np.array(config_json(cfg))
    arrays["spec"] = np.array(spec_json(spec, kind))
    save_npz(npz_path, arrays)
    entry.update(status="kept", onnx_bytes=os.path.getsize(path), npz_bytes=os.path.getsize(npz_path))
    print("  %-28s kept: opset %d, %d bytes, max rel L2 %.2e" % (
        name, opset, entry["onnx_bytes"], max(errs.values())), flush=True)
    return entry


# ---------------------------------------------------- reading the graphs ---

def histogram(model):
    return collections.Counter(n.op_type for n in model.graph.node)


def attr_text(n):
    parts = []
    for a in n.attribute:
        v = helper.get_attribute_value(a)
        if isinstance(v, onnx.TensorProto):
            arr = numpy_helper.to_array(v)
            v = arr.tolist() if arr.size <= 8 else "tensor%s" % (list(arr.shape),)
        elif isinstance(v, bytes):
            v = v.decode()
        elif isinstance(v, float):
            v = "%.6g" % v
        elif isinstance(v, list) and len(v) > 8:
            v = "[%d values]" % len(v)
        parts.append("%s=%s" % (a.name, v))
    return ",".join(parts)


def probe_values(model, in_name, feeds_list):
    """Runs the graph with every intermediate value as an output, once per
    probe input; returns [ {name: array} ] (empty dicts where it fails)."""
    inferred = onnx.shape_inference.infer_shapes(model)
    types = {v.name: v.type.tensor_type.elem_type for v in
             list(inferred.graph.value_info) + list(inferred.graph.output) + list(inferred.graph.input)}
    m = onnx.ModelProto()
    m.CopyFrom(model)
    have = {o.name for o in m.graph.output}
    names = []
    for n in m.graph.node:
        for o in n.output:
            if o and o not in have and types.get(o):
                m.graph.output.append(helper.make_tensor_value_info(o, types[o], None))
                names.append(o)
    names += [o.name for o in model.graph.output]
    out = []
    try:
        sess = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    except Exception:  # noqa: BLE001
        return [{} for _ in feeds_list]
    outs = [o.name for o in sess.get_outputs()]
    for feeds in feeds_list:
        try:
            vals = sess.run(None, feeds)
            out.append(dict(zip(outs, vals)))
        except Exception:  # noqa: BLE001
            out.append({})
    return out


def dim_namer(probes):
    """Names a size seen as (v1, v2) in the two probes: B, S, T, nT."""
    (b1, s1), (b2, s2) = probes
    t1, t2 = b1 * s1, b2 * s2
    table = {(b1, b2): "B", (s1, s2): "S", (t1, t2): "T", (s1 + 1, s2 + 1): "S+1"}

    def name(v1, v2):
        v1, v2 = int(v1), int(v2)
        if v1 == v2:
            return str(v1)
        if (v1, v2) in table:
            return table[(v1, v2)]
        if t1 and v1 % t1 == 0 and v2 % t2 == 0 and v1 // t1 == v2 // t2:
            return "%dT" % (v1 // t1)
        if s1 and v1 % s1 == 0 and v2 % s2 == 0 and v1 // s1 == v2 // s2:
            return "%dS" % (v1 // s1)
        return "?"
    return name


def param_labels(model, torch_model):
    """Initializer name -> the torch parameter it holds (or its transpose)."""
    params = dict(torch_model.named_parameters())
    params.update(torch_model.named_buffers())
    labels = {}
    for init in model.graph.initializer:
        arr = numpy_helper.to_array(init)
        if arr.size <= 8:
            continue
        for pname, p in params.items():
            pa = p.detach().float().numpy()
            if pa.shape == arr.shape and np.array_equal(pa, arr):
                labels[init.name] = pname
                break
            if pa.ndim == 2 and pa.T.shape == arr.shape and np.array_equal(pa.T, arr):
                labels[init.name] = pname + "^T"
                break
            if pa.size == arr.size and pa.size > 8 and np.array_equal(pa.reshape(arr.shape), arr):
                labels[init.name] = pname + " (reshaped)"
                break
            if pa.ndim == 3 and pa.shape[1:] == arr.shape:
                hit = [e for e in range(pa.shape[0]) if np.array_equal(pa[e], arr)]
                if hit:
                    labels[init.name] = "%s[%d]" % (pname, hit[0])
                    break
    return labels


DTYPES = {1: "f32", 6: "i32", 7: "i64", 9: "bool", 10: "f16", 11: "f64"}


def listing(model, torch_model, in_name, feeds_fn):
    """The graph's data path, one line per node that computes on tensor data
    (shape arithmetic and constants are folded into their users' arguments).
    Sizes and shape values are named from two probe runs: B, S, T = B*S,
    nT = n*T; other numbers are constant."""
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    consts = dict((k, v) for k, v in inits.items() if v.size <= 8)
    for n in model.graph.node:
        if n.op_type == "Constant":
            for a in n.attribute:
                if a.name == "value":
                    consts[n.output[0]] = numpy_helper.to_array(a.t)
    probes = probe_values(model, in_name, [feeds_fn(p) for p in PROBES])
    name = dim_namer(PROBES)
    # content taint: depends on the input's values (not only on its shape)
    content = {in_name}
    for n in model.graph.node:
        if n.op_type in ("Shape", "Size", "Constant"):
            continue
        if any(i in content for i in n.input if i):
            content.update(o for o in n.output if o)
    hidden = set()
    for n in model.graph.node:
        outs = [o for o in n.output if o]
        if n.op_type == "Constant":
            hidden.update(outs)
            continue
        if all(o not in content for o in outs):
            # shape arithmetic (integer results not computed from data)
            vals = [probes[0].get(o) for o in outs]
            if all(v is not None and v.dtype.kind in "iub" for v in vals):
                hidden.update(outs)
    ids = {}

    def ref(v):
        if v == "":
            return "_"
        if v == in_name:
            return in_name
        if v in ids:
            return ids[v]
        if v in consts:
            arr = consts[v]
            if arr.dtype.kind == "f":
                return ("[%s]" % ", ".join("%.7g" % float(x) for x in arr.ravel())
                        if arr.ndim else "%.7g" % float(arr))
            return str(arr.tolist())
        if v in inits:
            arr = inits[v]
            label = labels.get(v)
            return "W[%s%s %s%s]" % (v, ("=" + label) if label and label != v else "", DTYPES.get(
                onnx.helper.np_dtype_to_tensor_dtype(arr.dtype), str(arr.dtype)), list(arr.shape))
        if v in hidden:
            a, b = probes[0].get(v), probes[1].get(v)
            if a is not None and b is not None and a.size <= 8 and a.shape == b.shape:
                if a.ndim == 0:
                    return "<%s>" % name(a, b)
                return "<[%s]>" % ",".join(name(x, y) for x, y in zip(a.ravel(), b.ravel()))
            if a is not None:
                return "<%s%s>" % (DTYPES.get(onnx.helper.np_dtype_to_tensor_dtype(a.dtype), a.dtype),
                                   shape_text(a, b, name))
            return "<shape>"
        return "?" + v

    labels = param_labels(model, torch_model)
    lines = []
    for n in model.graph.node:
        outs = [o for o in n.output if o]
        if not outs or all(o in hidden for o in outs):
            continue
        args = ", ".join(ref(i) for i in n.input)
        for o in outs:
            ids[o] = "v%d" % (len(ids) + 1)
        res = []
        for o in outs:
            a, b = probes[0].get(o), probes[1].get(o)
            if a is not None:
                res.append("%s %s%s" % (ids[o], DTYPES.get(onnx.helper.np_dtype_to_tensor_dtype(a.dtype), a.dtype),
                                        shape_text(a, b, name)))
            else:
                res.append(ids[o])
        at = attr_text(n)
        lines.append("%s = %s%s(%s)" % (", ".join(res), n.op_type, "{%s}" % at if at else "", args))
    final = [o.name for o in model.graph.output]
    lines.append("output: %s" % ", ".join(ids.get(o, o) for o in final))
    return lines, labels


def shape_text(a, b, name):
    if b is None or a.ndim != b.ndim:
        return list(a.shape).__repr__().replace(" ", "")
    return "[%s]" % ",".join(name(x, y) for x, y in zip(a.shape, b.shape))


# -------------------------------------------------------------- writing ---

def all_entries():
    path = os.path.join(OUT, "expected_ort.json")
    if os.path.exists(path):
        with open(path) as f:
            return json.load(f)
    return {}


def write_expected(entries):
    with open(os.path.join(OUT, "expected_ort.json"), "w") as f:
        json.dump(entries, f, indent=1, sort_keys=True)
        f.write("\n")


def file_section(name, entry, spec, torch_model, kind):
    path = os.path.join(OUT, name + ".onnx")
    model = onnx.load(path)
    counts = histogram(model)
    lines = ["### %s.onnx" % name, ""]
    lines.append("- family %s, exporter %s (%s), opset %d, ir_version %d, producer %s %s" % (
        spec["family"], entry["exporter"],
        "torch.onnx.export(dynamo=False)" if entry["exporter"] == "torchscript" else "torch.onnx.export(dynamo=True)",
        entry["opset"], model.ir_version, model.producer_name, model.producer_version))
    with np.load(os.path.join(OUT, name + ".npz")) as z:
        cfg_items = json.loads(str(z["spec"]))["kw"]
    lines.append("- config: %s(%s)%s" % (spec["config"], ", ".join("%s=%s" % kv for kv in sorted(cfg_items.items())),
                                         (", " + ", ".join("%s=%s" % kv for kv in sorted(LM_COMMON.items())))
                                         if kind == "lm" else ""))
    lines.append("- size: %d bytes (.npz %d bytes); %d nodes, %d initializers; max rel L2 vs torch %.2g" % (
        entry["onnx_bytes"], entry["npz_bytes"], len(model.graph.node), len(model.graph.initializer),
        entry["max_rel_l2"]))
    lines.append("- onnxruntime: reproduces torch at T = %s" % ", ".join(sorted(entry["cases"], key=int)))
    if entry.get("note"):
        lines.append("- note: %s" % entry["note"])
    if kind == "block":
        lines.append("- routing: %s" % spec["routing"])
        lines.append("- experts: %s" % spec["experts"])
        if spec.get("shared"):
            lines.append("- %s" % spec["shared"])
    lines.append("- correct raise: %s" % spec["raise_"])
    gathers = expert_gathers(model)
    lines.append("- expert-weight gathers (Gather/GatherND of a 3-D initializer): %d (%s)" % (
        sum(gathers.values()), ", ".join("%s %d" % kv for kv in sorted(gathers.items())) or "none"))
    top = counts.most_common()
    lines += ["", "Op histogram (%d nodes): %s" % (len(model.graph.node),
                                                   ", ".join("%s %d" % kv for kv in top)), ""]
    if kind == "block":
        in_name = "hidden_states"
        feeds = lambda p: {in_name: np.random.default_rng(p[0] * 100 + p[1]).standard_normal(  # noqa: E731
            p + (H,)).astype(np.float32)}
    else:
        in_name = "input_ids"
        feeds = lambda p: {in_name: np.random.default_rng(p[0] * 100 + p[1]).integers(  # noqa: E731
            0, LM_COMMON["vocab_size"], p).astype(np.int64)}
    listing_lines, _ = listing(model, torch_model, in_name, feeds)
    lines += ["Data path (%d nodes; shape arithmetic folded into `<...>`):" % (len(listing_lines) - 1), "",
              "```"] + listing_lines + ["```", ""]
    return "\n".join(lines)


def expert_gathers(model):
    dims = {i.name: len(i.dims) for i in model.graph.initializer}
    return collections.Counter(n.op_type for n in model.graph.node
                               if n.op_type in ("Gather", "GatherND") and dims.get(n.input[0]) == 3)


def status_word(entry):
    if entry["status"] == "kept":
        return "ORT-verified"
    return "failed (%s)" % entry["stage"]


def readme(entries, specs, models):
    blocks = [f.get("name", f["family"]) for f in FAMILIES + FORMS]
    out = [README_HEAD % dict(torch=torch.__version__, transformers=transformers.__version__,
                              onnx=onnx.__version__, ort=ort.__version__, onnxscript=onnxscript_version(),
                              opset=TORCHSCRIPT_OPSET, tol=TOL,
                              shapes=", ".join("%d as %s" % kv for kv in BLOCK_SHAPES.items()),
                              lm_shapes=", ".join("%d as %s" % kv for kv in LM_SHAPES.items()))]
    out.append("| family | kind | torchscript | dynamo |")
    out.append("|---|---|---|---|")
    for fam in blocks + [s["family"] + "_lm" for s in LMS]:
        row = []
        for ex in EXPORTERS:
            e = entries.get("%s_%s" % (fam, ex))
            row.append("missing" if e is None else (
                "`%s_%s.onnx` (%d KB)" % (fam, ex, (e["onnx_bytes"] + 1023) // 1024) if e["status"] == "kept"
                else status_word(e)))
        out.append("| %s | %s | %s | %s |" % (row_label(fam, specs), "LM" if fam.endswith("_lm") else "block",
                                             row[0], row[1]))
    out.append("")
    failed = [(n, e) for n, e in sorted(entries.items()) if e["status"] != "kept"]
    if failed:
        out += ["## Failed exports (not checked in)", ""]
        for n, e in failed:
            out.append("- `%s` (%s): %s" % (n, e["stage"], e["message"]))
        out.append("")
    out.append(PATTERNS)
    out += ["## Blocks", ""]
    for fam in blocks:
        for ex in EXPORTERS:
            n = "%s_%s" % (fam, ex)
            e = entries.get(n)
            if e and e["status"] == "kept":
                out.append(file_section(n, e, specs[fam], models[fam], "block"))
    out += ["## Whole causal LMs", ""]
    for s in LMS:
        for ex in EXPORTERS:
            n = "%s_lm_%s" % (s["family"], ex)
            e = entries.get(n)
            if e and e["status"] == "kept":
                out.append(file_section(n, e, s, models[s["family"] + "_lm"], "lm"))
    with open(os.path.join(OUT, "README.md"), "w") as f:
        f.write("\n".join(out).rstrip() + "\n")


def row_label(name, specs):
    """Table label: the family, with the experts implementation when it is
    not batched_mm, or "(whole LM)"."""
    if name.endswith("_lm"):
        return name[:-3] + " (whole LM)"
    for f in FAMILIES + FORMS:
        if f.get("name", f["family"]) == name:
            impl = f.get("experts_implementation")
            if impl:
                return "%s, `%s` experts" % (f["family"], impl)
            return f["family"] + (" (own forward)" if f.get("own_forward") else "")
    return name


def onnxscript_version():
    try:
        import onnxscript
        return onnxscript.__version__
    except Exception:  # noqa: BLE001
        return "?"


def write_doc(entries):
    rows = []
    for fam in [f.get("name", f["family"]) for f in FAMILIES + FORMS] + [s["family"] + "_lm" for s in LMS]:
        cells = []
        for ex in EXPORTERS:
            e = entries.get("%s_%s" % (fam, ex))
            if e is None:
                cells.append("not run")
            elif e["status"] == "kept":
                cells.append("ORT-verified (opset %d, %d KB, rel L2 %.1g)" % (
                    e["opset"], (e["onnx_bytes"] + 1023) // 1024, e["max_rel_l2"]))
            elif e["stage"] == "export":
                cells.append("failed: exporter error")
            else:
                cells.append("exported (opset %d); failed: %s" % (
                    e["opset"], "onnxruntime error" if e["stage"] == "ort" else "mismatch"))
        rows.append("| %s | %s | %s |" % (row_label(fam, None), cells[0], cells[1]))
    failures = ["- `%s`: %s" % (n, e["message"]) for n, e in sorted(entries.items()) if e["status"] != "kept"]
    notes = ["- `%s`: %s." % (n, e["note"]) for n, e in sorted(entries.items()) if e.get("note")]
    with open(DOC, "w") as f:
        f.write(DOC_TEXT % dict(torch=torch.__version__, transformers=transformers.__version__,
                                onnx=onnx.__version__, ort=ort.__version__, onnxscript=onnxscript_version(),
                                table="\n".join(rows),
                                failures="\n".join(failures) if failures else "none",
                                notes="\n".join(notes) if notes else "none"))


README_HEAD = """\
# transformers 5 MoE exports (issue 13 fixtures)

Generated by `scripts/make_hf_fixtures.py` (do not edit; rerun it). torch
%(torch)s, transformers %(transformers)s, onnx %(onnx)s, onnxscript %(onnxscript)s,
onnxruntime %(ort)s (all from PyPI, in the script's own venv). Each block is its
family's own transformers module, built from a tiny config with fixed seeds
and random weights (routers N(0, 2/H); the rest uniform(+-1/sqrt(fan_in));
biases and selection biases random), experts implementation `batched_mm`
(`config._experts_implementation`) except llama4 and jetmoe, which have
their own forward. Exporters: `torchscript` = `torch.onnx.export(dynamo=False,
opset_version=%(opset)d)`, `dynamo` = `torch.onnx.export(dynamo=True)` at the
exporter's default opset, `external_data=False`. Input `hidden_states`
(batch, seq, H) (LMs: `input_ids` (batch, seq) int64), dynamic batch and
seq; output `output` (LMs: `logits`). A file is here only when onnxruntime
reproduces torch (rel L2 <= %(tol)g) at every case: blocks T = %(shapes)s;
LMs T = %(lm_shapes)s (T tokens as (batch, seq)).

Each `<name>.npz` (np.load) holds `input_<T>` and `output_<T>` (torch's own
output, float32), `config` (the transformers config as JSON, a 0-d unicode
array: `json.loads(str(z["config"]))`) and `spec` (the script's settings).
`expected_ort.json` records every (family, exporter): kept files with their
per-case outcome, failures with stage (`export`, `ort`, `mismatch`) and
message. `scripts/check_hf_fixtures.py` (the pyenv `python3`; no torch)
re-checks the kept files and runs onnx.checker.

"""

PATTERNS = """\
## How the exporters write these blocks

T = tokens (B*S), k = top-k, E = experts, H = hidden, I = expert
intermediate size. In the listings under each file: `vN` are node results
with their dtype and shape as run by onnxruntime on two probe inputs ((3, 7)
and (2, 5)), so sizes read B, S, T, 2T (= T*k), 8T (= E*T); `?` is a size
that depends on the routing (jetmoe's groups); `W[name=param dims]` is an
initializer and the torch parameter it holds (`^T`: transposed, `[e]`: one
expert's slice); `<...>` is a value computed from shapes only, shown as its
probed value; `_` an absent optional input; small constants are inline.
Shape arithmetic (Shape, Gather on shapes, Concat, Constant, ...) is folded
away; everything that touches data is listed, in graph order.

### The batched_mm experts (all families but llama4 and jetmoe)

`batched_mm_experts_forward` (transformers/integrations/moe.py) in torch:
`x.repeat_interleave(k, 0)` (T*k, H); `ids = top_k_index.reshape(-1)`;
`W1 = gate_up_proj[ids]` (T*k, 2I, H); `bmm(W1, x[..., None])[..., 0]`;
[`+ gate_up_proj_bias[ids]`]; gate; `W2 = down_proj[ids]`; second bmm;
[`+ bias`]; `* top_k_weights.reshape(-1)[:, None]`; `.view(T, k, H).sum(1)`.
As ONNX, from the router's outputs (weights w (T, k) f32, ids (T, k) i64) to
the block output:

| step | torchscript (opset 17) | dynamo (opset 20) |
|---|---|---|
| tokens (T, H) | `Reshape(x, <[-1,H]>)` | `Reshape(x, [-1, H])` (allowzero=1) |
| repeat k times | `Unsqueeze(x, [1])` -> `Tile(.., <[1,k,1]>)` -> `Flatten(axis=2)` | `Unsqueeze(x, [1])` -> `Expand(.., [1,k,1])` -> `Reshape(.., [-1,H])` |
| flat ids | `Reshape(ids, [-1])` | `Reshape(ids, [-1])` -> `Unsqueeze(.., [-1])` (T*k, 1) |
| weight gather | `Gather(W (E,2I,H), flat_ids, axis=0)` | `GatherND(W, ids (T*k,1), batch_dims=0)` |
| batched matmul | `MatMul(Wg (T*k,2I,H), Unsqueeze(x_rep, [-1]))` -> `Squeeze([2])` | same, `Squeeze([-1])` |
| gate / up | two `Slice`s on axis -1: [0, <I>) and [<I>, <2I>) | `Split(axis=1, num_outputs=2)` |
| SiLU | `Sigmoid(g)`, `Mul(g, ..)`, `Mul(.., up)` | same |
| down | `Gather`/`GatherND` of (E, H, I), `MatMul`, `Squeeze` as above | same |
| weighting | `Reshape(w, [-1])` -> `Unsqueeze([-1])` -> `Mul(out, ..)` | same |
| sum over k | `Reshape(.., <[T,k,H]>)` -> `ReduceSum(axes [1], keepdims=0)` -> `Cast(to=FLOAT)` | `Reshape(.., [-1,k,H])` -> `ReduceSum(axes [1], keepdims=0)` |
| back to (B, S, H) | `Reshape(.., <[B,S,H]>)` | `Reshape(.., Concat(Shape(x,0:1), Shape(x,1:2), [H]))` |

The two gathers share one index value. Both exporters keep the expert tensors
3-D, in transformers' (E, out, in) layout (gpt_oss: (E, in, out)). The
dynamo exporter renames most initializers (`val_23`): match on structure,
never on names. The TorchScript graph keeps `Cast(to=FLOAT)` no-ops for
`.float()` / `.to(dtype)` (router input, softmax output, routed sum); the
dynamo graph has none. TorchScript writes Linear layers as `MatMul(x,
W^T initializer)` (a `Gemm(transB=1)` when the Linear has a bias: gpt_oss's
router); dynamo writes `Gemm(x, W, transB=1)` on 2-D inputs and `MatMul(x,
W^T)` on 3-D ones (hunyuan's shared MLP, applied to (B, S, H)).

gpt_oss (transposed layout, biases, interleaved gate/up, clamped SwiGLU):
`Unsqueeze(x_rep, [1])` (T*k, 1, H) -> `MatMul(.., W (T*k, H, 2I))` ->
`Squeeze([1])` -> `Add(.., Gather(bias (E, 2I)))`; gate = `Slice(starts 0,
ends INT64_MAX, axes 1, steps 2)`, up = the same from 1; `Clip(gate, _,
limit)`, `Clip(up, -limit, limit)`; `Mul(gate, 1.702) -> Sigmoid ->
Mul(gate, ..)`; `Add(up, 1) -> Mul`; the down projection the same way with
its (E, H) bias. dynamo adds no-op `Unsqueeze([1]) -> Squeeze([1])` pairs
after each bias Add.

### The routers

- softmax, top-k, [renormalise] (mixtral, minimax, qwen2_moe, qwen3_moe,
  olmoe, hunyuan_v1_moe): `Softmax(axis=-1 or 1)` on the logits ->
  `TopK(K=[k], axis=-1, largest=1, sorted=1)`; renormalisation is
  `ReduceSum(values, [-1], keepdims=1) -> Div(values, sum)`.
- top-k, then softmax (granitemoe, gpt_oss, jetmoe): `TopK` on the logits
  (gpt_oss: Gemm with the router bias as C) -> `Softmax` of the k values.
- ernie4_5_moe: `Softmax` -> `Add(p, bias (E,))` -> `TopK` -> indices;
  `GatherElements(p, indices, axis=-1)` (the unbiased probabilities) ->
  `ReduceSum` -> `Clip(sum, 1e-12, _)` -> `Div`.
- deepseek_v3 / glm4_moe (group-limited): `Sigmoid(logits)` = s; `Add(s,
  bias (E,))` = c; `Reshape(c, [-1, n_group, E/n_group]) -> TopK(K=2) ->
  ReduceSum([-1], keepdims=0)` group scores (T, n_group) -> `TopK(K=topk_group,
  sorted=0)` indices -> `ScatterElements(zeros (T, n_group), idx, ones,
  axis=1)` -> `Unsqueeze([-1]) -> Expand([1, n_group, E/n_group]) ->
  Reshape([-1, E])` -> `Cast(BOOL) -> Not` -> `Where(not, -inf, c)` ->
  `TopK(K=k, sorted=0)` indices -> `GatherElements(s, idx, axis=1)` ->
  `ReduceSum([-1], keepdims=1)` -> [`Add(.., 1e-20)`: TorchScript only; the
  dynamo optimizer drops it] -> `Div` -> `Mul(.., routed_scaling_factor)`.
  The zeros are `ConstantOfShape` (TorchScript) or `Expand(0, shape)`
  (dynamo), the ones `Expand(1, ..)` or `ConstantOfShape(1)`; TorchScript
  casts to BOOL twice around the `Not`.
- phimoe (sparsemixer, eval): `ReduceMax(logits, [-1], keepdims=1)` = m1,
  `ArgMax(keepdims=1)` = i1, `Max(Abs(logits), m1)` = f, `Greater(Div(Sub(m1,
  logits), f), 2*eps)` -> `Where(.., -inf, logits)` -> `Softmax` ->
  `GatherElements(.., i1)` = w1; `ScatterElements(logits, i1, -inf)` = l2;
  the same with m2 = `ReduceMax(l2)`, i2 = `ArgMax(l2)`, f2 = `Max(Abs(logits),
  m2)`, masking l2; `Concat` of (w1, w2) and of (i1, i2) are the weights
  and ids. TorchScript writes the `Max` operand through two `Cast`s.
- llama4: `TopK(K=1, axis=1)` on the logits -> `ScatterElements(-inf (T, E),
  idx, values, axis=1)` -> `Sigmoid` (T, E) = scores (0 for unselected).

### llama4 and jetmoe (own forward)

- llama4 (dense, score on the input): `Tile(x, [E, 1])` (E*T, H) ->
  `Mul(.., Reshape(Transpose(scores), [-1, 1]))` -> `Reshape([E, -1, H])` ->
  `MatMul(.., gate_up_proj (E, H, 2I))` -> chunk (Slice pair / Split on
  axis 2) -> `Mul(up, silu(gate))` -> `MatMul(.., down_proj (E, I, H))` ->
  `Reshape([E, -1, H])` -> `ReduceSum([0])` -> `Add(shared_mlp, ..)`.
- jetmoe (dynamo only; the TorchScript trace freezes the per-expert sizes
  into its `Split`, so onnxruntime fails on other inputs): per-expert sizes
  `ReduceSum(Cast(ScatterElements(zeros (T, E), ids, ones)), [0])`;
  `TopK(Reshape(ids, [-1]), K=T*k, axis=0, largest=0, sorted=1)` (the sort)
  -> token = index / k (`Div`, `Abs`, `Floor`, `Sign`, `Mul`: truncating
  division); `GatherND` of the tokens and of the flat gates; `Split(axis=0,
  sizes)` into E groups; per expert `Gemm(group, Gather(input_linear, e),
  transB=1)`, `Concat`; `Split(num_outputs=2)`, SiLU; `Split` again, per
  expert `Gemm` with `output_linear[e]` (constant-folded into E separate
  initializers), `Concat`; `Mul` by the gates; `ScatterND(zeros (T, H),
  tokens (T*k, 1), .., reduction=add)`; `Add(.., bias (H,))`.

### The whole LMs

`Gather(embed_tokens, input_ids)`; per decoder layer: RMSNorm (`Pow(x, 2)
-> ReduceMean([-1], keepdims=1) -> Add(eps) -> Sqrt -> Reciprocal` (dynamo)
or `Div(1, ..)` (TorchScript, with `Cast` no-ops around) `-> Mul(x, ..) ->
Mul(weight, ..)`); attention with q/k/v `MatMul`s, `Reshape(<[B,S,-1,d]>)
-> Transpose([0,2,1,3])`, rotary `x*cos + rotate_half(x)*sin`
(`Slice` halves, `Neg`, `Concat`; cos/sin from `Cos`/`Sin` of the positions
(computed from shapes, `<i64[1,S,1]>`) times the inverse frequencies), GQA
`Unsqueeze -> Expand -> Reshape` of k and v, `MatMul(q, Transpose(k)) ->
Mul(scale) -> Add(mask) -> Softmax -> MatMul(.., v)`; the causal mask is a
`Where(<bool[B,1,S,S]>, 0, -3.4e38)` whose condition is shape arithmetic
(`Range`, `LessOrEqual`, `And`, ...); residual `Add`s; the MoE block as in the
block fixture (the router reads the (B, S, H) norm output through `Reshape(..,
[-1, H])`); final RMSNorm; `lm_head` `MatMul`. deepseek_v3 adds MLA (q and
kv LoRA projections with their RMSNorms, a rope/nope split, interleaved rope
through a `Reshape`/`Transpose`) and a dense SwiGLU MLP in layer 0. TorchScript
LMs are exported with an all-ones attention_mask (see the note on each), which
adds the mask's padding branch to that shape arithmetic.

"""

DOC_TEXT = """\
# transformers 5 MoE exports: family x exporter status

What a user gets exporting today's MoE models to ONNX, and which of those
exports the repository keeps as fixtures for issue 13 (raising the
`batched_mm` form to `moe.layer`). Generated by `scripts/make_hf_fixtures.py`
with torch %(torch)s, transformers %(transformers)s, onnx %(onnx)s, onnxscript
%(onnxscript)s and onnxruntime %(ort)s, all from PyPI (torch 2.15 and
transformers 5.24 are the newest there; PyPI's torch is the CUDA build, which
runs on CPU; the CPU-only index is not reachable from our machines). The
files, their configurations, op histograms and node listings:
[test/Import/Inputs/hf/README.md](../test/Import/Inputs/hf/README.md).

## Regenerating

    python3 scripts/make_hf_fixtures.py

It creates (once) a venv at `$MOE_HF_VENV` or `~/.cache/moe-mlir/hf-venv`
with the pinned packages (about 5.7 GB: PyPI's torch pulls the nvidia-*
wheels), re-executes itself there, and rewrites `test/Import/Inputs/hf/`
and this page (about 3 minutes on 2 cores after the install; deterministic).
`--only FAMILY...` (e.g. `--only jetmoe mixtral_lm`) re-exports some entries.
Checking the files needs no torch:

    python3 scripts/check_hf_fixtures.py

## Status

Blocks are exported with `config._experts_implementation = "batched_mm"`
(llama4 and jetmoe: their own forward); `torchscript` is
`torch.onnx.export(dynamo=False, opset_version=17)`, `dynamo` is
`torch.onnx.export(dynamo=True)` (default opset). ORT-verified: onnxruntime
reproduces torch (rel L2 <= 1e-5) at T = 1, 7, 64, 513 tokens (LMs: 1, 9,
65); only those files are checked in.

| family | torchscript | dynamo |
|---|---|---|
%(table)s

Failures, with the first line of the error:

%(failures)s

Notes:

%(notes)s

`moe-opt --moe-raise-experts` (and so `moe-compile`) raises every MoE block
of every kept file to one `moe.layer`: the `batched_mm` blocks, llama4's
dense score-scaled block and jetmoe's sorted-token block, each router as its
own `#moe.routing` (docs/import.md, "Raising transformers 5 exports"). The
node patterns, per exporter, are in the fixtures' README.

## Why `batched_mm`

transformers 5 picks the experts implementation at load time. The rows
for mixtral's other implementations above show what each gives:
`grouped_mm` (what `from_pretrained` picks on recent torch) does not export
at all: the TorchScript exporter stops at `aten::histc` (the per-expert
counts), the dynamo exporter at transformers' `grouped_mm_fallback` custom
op (what `grouped_mm` calls under torch.export for non-bf16 weights). The
`eager` loop (`for expert_idx in expert_hit`) does not pass torch.export
(a guard on the data-dependent number of experts hit) and its TorchScript
trace freezes the experts the tracing input happened to hit, so onnxruntime
fails on inputs that hit fewer (see test/Import/Inputs/torch/README.md,
`hit_experts_tensor`). jetmoe's own forward has the same trace problem
(`expert_size.tolist()` becomes constant `Split` sizes); its dynamo export
is fine. `batched_mm`
never loops: it gathers each (token, slot)'s expert matrices and runs one
batched MatMul, which both exporters write as plain ONNX and onnxruntime
runs, at the cost of T*k copies of the expert weights (what issue 13's
raising removes). Set it with `config._experts_implementation =
"batched_mm"` before building a module, or `model.set_experts_implementation(
"batched_mm")` on a loaded model.
"""


# ----------------------------------------------------------------- main ---

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", nargs="*", default=None,
                    help="families to re-export (block names, or <family>_lm)")
    ap.add_argument("--venv", default=None, help="venv folder (default $MOE_HF_VENV or ~/.cache/moe-mlir/hf-venv)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    logging.getLogger("torch").setLevel(logging.ERROR)
    logging.getLogger("transformers").setLevel(logging.ERROR)
    transformers.logging.set_verbosity_error()
    os.makedirs(OUT, exist_ok=True)
    print("torch %s, transformers %s, onnx %s, onnxruntime %s, onnxscript %s" % (
        torch.__version__, transformers.__version__, onnx.__version__, ort.__version__, onnxscript_version()))
    entries = all_entries() if args.only else {}
    specs, models = {}, {}
    jobs = [(spec.get("name", spec["family"]), spec, "block", build_block, BLOCK_SHAPES)
            for spec in FAMILIES + FORMS]
    jobs += [(spec["family"] + "_lm", spec, "lm", build_lm, LM_SHAPES) for spec in LMS]
    for fam, spec, kind, build, shapes in jobs:
        specs[fam] = spec
        model, cfg = build(spec)
        models[fam] = model
        if args.only is not None and fam not in args.only:
            continue
        print(fam, flush=True)
        for ex in EXPORTERS:
            name = "%s_%s" % (fam, ex)
            entries[name] = do_one(name, spec, kind, model, cfg, shapes, ex)
    write_expected(entries)
    readme(entries, specs, models)
    write_doc(entries)
    kept = sum(e["status"] == "kept" for e in entries.values())
    print("%d kept, %d failed; wrote %s and %s" % (kept, len(entries) - kept, OUT, DOC))


if __name__ == "__main__":
    main()
