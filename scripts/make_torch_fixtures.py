#!/usr/bin/python3
"""Exports small PyTorch MoE blocks, written like the transformers ones, with
torch.onnx.export (TorchScript exporter, opset 17, dynamic batch and sequence
axes) into test/Import/Inputs/torch/, for the ONNX importer's
--moe-raise-experts tests. Next to each <name>.onnx it writes <name>.npz:
fixed random inputs at several token counts and the torch outputs (float32),
so tests can compare without torch. It also writes the folder's README.md
(configurations, what a correct raise must produce, op-type histograms).

Python: Debian's /usr/bin/python3 with python3-torch (1.13), python3-onnx and
python3-numpy (apt-get install python3-torch python3-onnx python3-numpy).
Deterministic: fixed seeds, and the .npz files are written with fixed zip
timestamps, so a rerun gives byte-identical files. Run from anywhere:

    /usr/bin/python3 scripts/make_torch_fixtures.py

Then check every export with onnxruntime (the pyenv python3 has it):

    python3 scripts/check_torch_fixtures.py
"""
import collections
import io
import json
import os
import warnings
import zipfile

import numpy as np
import onnx
import torch
import torch.nn.functional as F
from torch import nn

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
OUT = os.path.join(ROOT, "test", "Import", "Inputs", "torch")
OPSET = 17
# Qwen2MoeSparseMoeBlock calls F.sigmoid, as here; torch 1.13 warns about it.
warnings.filterwarnings("ignore", message="nn.functional.sigmoid is deprecated")
# Token counts stored in every .npz, as (batch, seq) shapes of the input.
SHAPES = {1: (1, 1), 7: (1, 7), 12: (3, 4), 64: (2, 32)}


# ---------------------------------------------------------------- experts ---

class MixtralBlockSparseTop2MLP(nn.Module):
    """transformers' Mixtral expert: w2(act(w1 x) * w3 x), no biases."""

    def __init__(self, hidden, inter):
        super().__init__()
        self.w1 = nn.Linear(hidden, inter, bias=False)
        self.w2 = nn.Linear(inter, hidden, bias=False)
        self.w3 = nn.Linear(hidden, inter, bias=False)
        self.act_fn = nn.SiLU()

    def forward(self, hidden_states):
        current_hidden_states = self.act_fn(self.w1(hidden_states)) * self.w3(hidden_states)
        return self.w2(current_hidden_states)


class SwitchTransformersDenseActDense(nn.Module):
    """Switch-style plain MLP expert wo(act(wi x)), with biases, GELU (erf)."""

    def __init__(self, hidden, inter):
        super().__init__()
        self.wi = nn.Linear(hidden, inter, bias=True)
        self.wo = nn.Linear(inter, hidden, bias=True)
        self.act = nn.GELU()  # approximate="none": erf

    def forward(self, hidden_states):
        return self.wo(self.act(self.wi(hidden_states)))


class Qwen2MoeMLP(nn.Module):
    """transformers' Qwen2-MoE MLP: down(act(gate x) * up x), no biases."""

    def __init__(self, hidden, inter):
        super().__init__()
        self.gate_proj = nn.Linear(hidden, inter, bias=False)
        self.up_proj = nn.Linear(hidden, inter, bias=False)
        self.down_proj = nn.Linear(inter, hidden, bias=False)
        self.act_fn = nn.SiLU()

    def forward(self, x):
        return self.down_proj(self.act_fn(self.gate_proj(x)) * self.up_proj(x))


class ScaledExpert(nn.Module):
    """The trap: one expert whose output gets an extra Mul by a constant."""

    def __init__(self, inner, scale):
        super().__init__()
        self.inner = inner
        self.scale = scale

    def forward(self, x):
        return self.inner(x) * self.scale


# ----------------------------------------------------------------- blocks ---

class SparseMoeBlock(nn.Module):
    """MixtralSparseMoeBlock (transformers 4.38..4.53), with the switches the
    fixtures need: renormalise or not (Qwen's norm_topk_prob), softmax before
    (Mixtral) or after top-k, and an optional shared expert gated by
    sigmoid(Linear(H, 1)) (Qwen2MoeSparseMoeBlock)."""

    def __init__(self, hidden, num_experts, top_k, make_expert, norm_topk_prob=True,
                 softmax_after_topk=False, shared_expert=None):
        super().__init__()
        self.hidden_dim = hidden
        self.num_experts = num_experts
        self.top_k = top_k
        self.norm_topk_prob = norm_topk_prob
        self.softmax_after_topk = softmax_after_topk
        self.gate = nn.Linear(hidden, num_experts, bias=False)
        self.experts = nn.ModuleList([make_expert(e) for e in range(num_experts)])
        self.shared_expert = shared_expert
        if shared_expert is not None:
            self.shared_expert_gate = nn.Linear(hidden, 1, bias=False)

    def route(self, hidden_states):
        router_logits = self.gate(hidden_states)
        if self.softmax_after_topk:
            routing_weights, selected_experts = torch.topk(router_logits, self.top_k, dim=-1)
            routing_weights = F.softmax(routing_weights, dim=-1, dtype=torch.float)
        else:
            routing_weights = F.softmax(router_logits, dim=1, dtype=torch.float)
            routing_weights, selected_experts = torch.topk(routing_weights, self.top_k, dim=-1)
            if self.norm_topk_prob:
                routing_weights /= routing_weights.sum(dim=-1, keepdim=True)
        routing_weights = routing_weights.to(hidden_states.dtype)
        return router_logits, routing_weights, selected_experts

    def experts_to_run(self, expert_mask):
        return range(self.num_experts)

    def forward(self, hidden_states):
        batch_size, sequence_length, hidden_dim = hidden_states.shape
        hidden_states = hidden_states.view(-1, hidden_dim)
        router_logits, routing_weights, selected_experts = self.route(hidden_states)

        final_hidden_states = torch.zeros(
            (batch_size * sequence_length, hidden_dim), dtype=hidden_states.dtype,
            device=hidden_states.device)

        # One hot encode the selected experts to create an expert mask
        # this will be used to easily index which expert is going to be sollicitated
        expert_mask = torch.nn.functional.one_hot(
            selected_experts, num_classes=self.num_experts).permute(2, 1, 0)

        # Loop over all available experts in the model and perform the computation on each expert
        for expert_idx in self.experts_to_run(expert_mask):
            expert_layer = self.experts[expert_idx]
            idx, top_x = torch.where(expert_mask[expert_idx])

            # Index the correct hidden states and compute the expert hidden state for
            # the current expert. We need to make sure to multiply the output hidden
            # states by `routing_weights` on the corresponding tokens (top-1 and top-2)
            current_state = hidden_states[None, top_x].reshape(-1, hidden_dim)
            current_hidden_states = expert_layer(current_state) * routing_weights[top_x, idx, None]

            # However `index_add_` only support torch tensors for indexing so we'll use
            # the `top_x` tensor here.
            final_hidden_states.index_add_(0, top_x, current_hidden_states.to(hidden_states.dtype))

        if self.shared_expert is not None:
            shared_expert_output = self.shared_expert(hidden_states)
            shared_expert_output = (F.sigmoid(self.shared_expert_gate(hidden_states))
                                    * shared_expert_output)
            final_hidden_states = final_hidden_states + shared_expert_output

        final_hidden_states = final_hidden_states.reshape(batch_size, sequence_length, hidden_dim)
        return final_hidden_states, router_logits


class HitExpertsListMoeBlock(SparseMoeBlock):
    """Loops over the experts hit by the input, the list computed in Python
    (so a trace freezes it: the experts the tracing input did not hit are
    missing from the graph). `frozen` pins the list for eager reference runs
    of what the exported graph computes."""

    frozen = None

    def experts_to_run(self, expert_mask):
        if self.frozen is not None:
            return list(self.frozen)
        expert_hit = torch.greater(expert_mask.sum(dim=(-1, -2)), 0).nonzero()
        return [int(e) for e in expert_hit.flatten().tolist()]


class HitExpertsTensorMoeBlock(SparseMoeBlock):
    """transformers >= 4.54 MixtralSparseMoeBlock: iterates over the tensor
    expert_hit = nonzero(mask.sum > 0); the expert module is picked by the
    tensor's value at trace time, the mask row by the traced value."""

    def forward(self, hidden_states):
        batch_size, sequence_length, hidden_dim = hidden_states.shape
        hidden_states = hidden_states.view(-1, hidden_dim)
        router_logits, routing_weights, selected_experts = self.route(hidden_states)

        final_hidden_states = torch.zeros(
            (batch_size * sequence_length, hidden_dim), dtype=hidden_states.dtype,
            device=hidden_states.device)

        expert_mask = torch.nn.functional.one_hot(
            selected_experts, num_classes=self.num_experts).permute(2, 1, 0)

        expert_hit = torch.greater(expert_mask.sum(dim=(-1, -2)), 0).nonzero()
        for expert_idx in expert_hit:
            expert_layer = self.experts[expert_idx]
            idx, top_x = torch.where(expert_mask[expert_idx].squeeze(0))
            current_state = hidden_states[None, top_x].reshape(-1, hidden_dim)
            current_hidden_states = expert_layer(current_state) * routing_weights[top_x, idx, None]
            final_hidden_states.index_add_(0, top_x, current_hidden_states.to(hidden_states.dtype))
        final_hidden_states = final_hidden_states.reshape(batch_size, sequence_length, hidden_dim)
        return final_hidden_states, router_logits


class OnlyHidden(nn.Module):
    """Exports a block's hidden-state output only (drops router_logits)."""

    def __init__(self, block):
        super().__init__()
        self.block = block

    def forward(self, x):
        return self.block(x)[0]


class MoeStack(nn.Module):
    """Two decoder-style MoE sublayers: x = x + moe(ln(x)), twice."""

    def __init__(self, hidden, make_block):
        super().__init__()
        self.ln1 = nn.LayerNorm(hidden)
        self.moe1 = make_block()
        self.ln2 = nn.LayerNorm(hidden)
        self.moe2 = make_block()

    def forward(self, x):
        x = x + self.moe1(self.ln1(x))[0]
        x = x + self.moe2(self.ln2(x))[0]
        return x


# ------------------------------------------------------------- fixtures ---

def randomize_(module, seed):
    """Deterministic weights: Linear weights uniform(+-1/sqrt(fan_in)) (the
    torch default range), biases and LayerNorm affine parameters random too,
    router weights wider so routing is decisive (no near-ties)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            if name.endswith("gate.weight"):
                p.copy_(torch.randn(p.shape, generator=g))
            elif p.dim() == 2:
                bound = 1.0 / p.shape[1] ** 0.5
                p.copy_((torch.rand(p.shape, generator=g) * 2 - 1) * bound)
            elif "ln" in name and name.endswith("weight"):
                p.copy_(1.0 + 0.2 * torch.randn(p.shape, generator=g))
            else:
                p.copy_(0.1 * torch.randn(p.shape, generator=g))


def mixtral_block(hidden, experts, top_k, inter, **kw):
    return SparseMoeBlock(hidden, experts, top_k,
                          lambda e: MixtralBlockSparseTop2MLP(hidden, inter), **kw)


def build(spec):
    """Returns (model, trace_input) for a fixture spec."""
    H, E, k, I = spec["H"], spec["E"], spec["k"], spec["I"]
    kind = spec["kind"]
    if kind == "mixtral":
        block = mixtral_block(H, E, k, I, norm_topk_prob=spec["renorm"],
                              softmax_after_topk=spec["softmax"] == "after")
        model = block if spec.get("router_logits_output") else OnlyHidden(block)
    elif kind == "switch":
        model = OnlyHidden(SparseMoeBlock(
            H, E, k, lambda e: SwitchTransformersDenseActDense(H, I), norm_topk_prob=False))
    elif kind == "qwen":
        model = OnlyHidden(SparseMoeBlock(
            H, E, k, lambda e: Qwen2MoeMLP(H, I), norm_topk_prob=False,
            shared_expert=Qwen2MoeMLP(H, spec["shared_I"])))
    elif kind == "stack":
        model = MoeStack(H, lambda: mixtral_block(H, E, k, I))
    elif kind == "trap":
        model = OnlyHidden(SparseMoeBlock(
            H, E, k, lambda e: (ScaledExpert(MixtralBlockSparseTop2MLP(H, I), spec["scale"])
                                if e == spec["trap_expert"] else MixtralBlockSparseTop2MLP(H, I))))
    elif kind == "hit_list":
        model = OnlyHidden(HitExpertsListMoeBlock(
            H, E, k, lambda e: MixtralBlockSparseTop2MLP(H, I)))
    elif kind == "hit_tensor":
        model = OnlyHidden(HitExpertsTensorMoeBlock(
            H, E, k, lambda e: MixtralBlockSparseTop2MLP(H, I)))
    else:
        raise ValueError(kind)
    randomize_(model, spec["seed"])
    model.eval()
    g = torch.Generator().manual_seed(spec["seed"] + 1000)
    if "trace_hits" in spec:
        trace_input = hit_limited_input(model, spec, g)
    else:
        trace_input = torch.randn((2, 5, H), generator=g)
    return model, trace_input


def selected(model, x):
    block = model.block
    h = x.reshape(-1, x.shape[-1])
    _, _, sel = block.route(h)
    return sorted(set(sel.flatten().tolist()))


def hit_limited_input(model, spec, g):
    """A (1, trace_tokens, H) input whose tokens hit exactly spec["trace_hits"]
    distinct experts (drawn until one does)."""
    for _ in range(10000):
        x = torch.randn((1, spec["trace_tokens"], spec["H"]), generator=g)
        if len(selected(model, x)) == spec["trace_hits"]:
            return x
    raise RuntimeError("no tracing input with the wanted hit count")


FIXTURES = [
    dict(name="mixtral_top2", short="1 moe.layer", kind="mixtral", seed=1, E=8, k=2, H=32, I=24, act="silu",
         expert="SwiGLU (w1 gate, w3 up, w2 down)", biases=False, renorm=True,
         softmax="before", raise_="one moe.layer: E=8, top-2, softmax then top-k, "
         "renormalised, SwiGLU (SiLU) experts without biases; no expert MatMul left."),
    dict(name="switch_top1_gelu", short="1 moe.layer", kind="switch", seed=2, E=8, k=1, H=16, I=48, act="gelu (erf)",
         expert="plain MLP (wi, wo)", biases=True, renorm=False, softmax="before",
         raise_="one moe.layer: E=8, top-1, softmax then top-1, not renormalised (the weight "
         "is the softmax probability), plain GELU-erf MLP experts with up and down biases."),
    dict(name="qwen_moe_shared", short="1 moe.layer + shared expert ops", kind="qwen", seed=3, E=8, k=4, H=32, I=16, shared_I=48,
         act="silu", expert="SwiGLU (gate_proj, up_proj, down_proj)", biases=False,
         renorm=False, softmax="before",
         raise_="one moe.layer: E=8, top-4, softmax then top-k, not renormalised, SwiGLU "
         "experts without biases; the shared expert (SwiGLU, I=48), its sigmoid(Linear(H,1)) "
         "gate and the Add stay ordinary ops around the layer."),
    dict(name="mixtral_stack2", short="2 moe.layer + LayerNorm/Add ops", kind="stack", seed=4, E=4, k=2, H=16, I=32, act="silu",
         expert="SwiGLU", biases=False, renorm=True, softmax="before",
         raise_="exactly two moe.layer ops (each E=4, top-2, renormalised, SwiGLU); "
         "the two LayerNormalization and the two residual Adds stay ordinary ops."),
    dict(name="mixtral_router_logits_out", short="1 moe.layer + router MatMul kept for output 2", kind="mixtral", seed=5, E=4, k=2, H=16, I=24,
         act="silu", expert="SwiGLU", biases=False, renorm=True, softmax="before",
         router_logits_output=True,
         raise_="one moe.layer as for mixtral_top2 (E=4); the graph also outputs "
         "router_logits (second output, (T, E)), so the router MatMul must stay (or be "
         "shared) to feed it."),
    dict(name="near_miss_softmax_after_topk", short="1 moe.layer (top-k then softmax) or un-raised with remark", kind="mixtral", seed=6, E=8, k=2, H=16, I=24,
         act="silu", expert="SwiGLU", biases=False, renorm=False, softmax="after",
         raise_="one moe.layer with top-k on the logits, then softmax over the k "
         "selected (no separate renormalisation). A matcher that does not support "
         "this order must leave it un-raised with a remark; raising it as "
         "softmax-before-top-k is wrong (outputs differ)."),
    dict(name="near_miss_no_renorm", short="1 moe.layer without renorm", kind="mixtral", seed=7, E=8, k=2, H=16, I=24, act="silu",
         expert="SwiGLU", biases=False, renorm=False, softmax="before",
         raise_="one moe.layer with renormalisation OFF (the ReduceSum/Div edge is "
         "absent); raising it as renormalised is wrong."),
    dict(name="near_miss_trap_expert", short="NOT raised (remark)", kind="trap", seed=8, E=4, k=2, H=16, I=24, act="silu",
         expert="SwiGLU; expert 2's output is multiplied by 1.5", biases=False, renorm=True,
         softmax="before", trap_expert=2, scale=1.5,
         raise_="must NOT be raised: expert 2's path has an extra Mul by 1.5 before the "
         "routing-weight Mul; the graph must stay ordinary ops with a remark saying why."),
    dict(name="hit_experts_list", short="1 moe.layer, untraced experts absent, warning", kind="hit_list", seed=9, E=8, k=2, H=16, I=24, act="silu",
         expert="SwiGLU", biases=False, renorm=True, softmax="before",
         trace_tokens=2, trace_hits=3,
         raise_="one moe.layer with E=8 where only the experts the tracing input hit "
         "(listed below) are present; the other experts are marked absent (tokens routed to "
         "them get nothing from them, their routing weight is still counted in the "
         "renormalisation) and a warning says the export lost experts."),
    dict(name="hit_experts_tensor", short="see notes (not a plain moe.layer)", kind="hit_tensor", seed=9, E=8, k=2, H=16, I=24,
         act="silu", expert="SwiGLU", biases=False, renorm=True, softmax="before",
         trace_tokens=2, trace_hits=3,
         ort_expect={"1": "error", "7": "error", "12": "error", "64": "error",
                     "other_hits": "mismatch"},
         raise_="transformers >= 4.54 form (for expert_idx in expert_hit tensor). The "
         "graph picks mask rows by the runtime NonZero result but weights by the trace-"
         "time experts, and fixes a Split to the trace-time hit count; see the "
         "onnxruntime notes. It equals a layer with only the traced experts present "
         "only on inputs that hit exactly those experts."),
]


def input_for(spec, tokens):
    g = torch.Generator().manual_seed(spec["seed"] * 7919 + tokens)
    b, s = SHAPES[tokens]
    return torch.randn((b, s, spec["H"]), generator=g)


def save_npz(path, arrays):
    """np.savez with fixed zip timestamps (np.savez stamps the current time)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        for key in sorted(arrays):
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.ascontiguousarray(arrays[key]),
                                      allow_pickle=False)
            info = zipfile.ZipInfo(key + ".npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            zf.writestr(info, buf.getvalue())


def hit_cases(model, spec, trace_input):
    """Two more (1, trace_tokens, H) inputs for the hit-experts fixtures: one
    that hits the same experts as the tracing input, one that hits as many
    experts but a different set."""
    g = torch.Generator().manual_seed(spec["seed"] + 2000)
    want = selected(model, trace_input)
    found = {}
    for _ in range(100000):
        x = torch.randn((1, spec["trace_tokens"], spec["H"]), generator=g)
        hit = selected(model, x)
        if hit == want and "same_hits" not in found:
            found["same_hits"] = x
        elif len(hit) == len(want) and hit != want and "other_hits" not in found:
            found["other_hits"] = x
        if len(found) == 2:
            return found
    raise RuntimeError("no inputs with the wanted hits")


def export(spec):
    """Exports one fixture; returns (path, notes, expected onnxruntime outcome
    per stored case)."""
    torch.manual_seed(0)
    model, trace_input = build(spec)
    two_outputs = spec.get("router_logits_output", False)
    output_names = ["output", "router_logits"] if two_outputs else ["output"]
    dynamic_axes = {"hidden_states": {0: "batch", 1: "seq"}, "output": {0: "batch", 1: "seq"}}
    if two_outputs:
        dynamic_axes["router_logits"] = {0: "tokens"}
    notes = []
    hit_kind = spec["kind"] in ("hit_list", "hit_tensor")
    if hit_kind:
        hit = selected(model, trace_input)
        notes.append("tracing input: %d tokens hitting experts %s; experts absent from the "
                     "graph: %s" % (spec["trace_tokens"], hit,
                                    [e for e in range(spec["E"]) if e not in hit]))
    path = os.path.join(OUT, spec["name"] + ".onnx")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with torch.no_grad():
            torch.onnx.export(model, (trace_input,), path, opset_version=OPSET,
                              input_names=["hidden_states"], output_names=output_names,
                              dynamic_axes=dynamic_axes, do_constant_folding=True)

    cases = {str(t): input_for(spec, t) for t in SHAPES}
    if hit_kind:
        cases.update(hit_cases(model, spec, trace_input))
    arrays = {"trace_input": trace_input}
    with torch.no_grad():
        out = model(trace_input)
        arrays["trace_output"] = out[0] if two_outputs else out
        for case, x in cases.items():
            arrays["input_" + case] = x
            if spec["kind"] == "hit_list":
                # What the graph computes: only the traced experts present...
                model.block.frozen = selected(model, trace_input)
                arrays["output_" + case] = model(x)
                model.block.frozen = None
                # ...and the model itself, with every expert (what the export lost).
                arrays["output_all_experts_" + case] = model(x)
            else:
                out = model(x)
                arrays["output_" + case] = out[0] if two_outputs else out
                if two_outputs:
                    arrays["router_logits_" + case] = out[1]
            if hit_kind:
                arrays["experts_hit_" + case] = torch.tensor(selected(model, x),
                                                             dtype=torch.int64)
    arrays = {k: v.numpy() for k, v in arrays.items()}
    for v in arrays.values():
        assert v.dtype in (np.float32, np.int64), v.dtype
    save_npz(os.path.join(OUT, spec["name"] + ".npz"), arrays)
    expect = {case: "match" for case in ["trace"] + list(cases)}
    expect.update(spec.get("ort_expect", {}))
    return path, notes, expect


def histogram(path):
    model = onnx.load(path)
    counts = collections.Counter(n.op_type for n in model.graph.node)
    return model, counts


def scatter_info(model):
    infos = set()
    for n in model.graph.node:
        if n.op_type in ("ScatterElements", "ScatterND"):
            attrs = {a.name: onnx.helper.get_attribute_value(a) for a in n.attribute}
            red = attrs.get("reduction", b"none")
            infos.add("%s(reduction=%s, axis=%s)" % (
                n.op_type, red.decode() if isinstance(red, bytes) else red, attrs.get("axis", 0)))
    return sorted(infos)


def ort_text(expect):
    """The README's onnxruntime line, from the expected outcomes."""
    by = collections.defaultdict(list)
    for case, status in expect.items():
        by[status].append(case)
    parts = []
    words = {"match": "runs and reproduces torch (rel L2 <= 1e-5)",
             "mismatch": "runs but differs from torch",
             "error": "fails (Split: the trace fixed the number of hit experts)"}
    for status in ("match", "mismatch", "error"):
        if by[status]:
            parts.append("%s on %s" % (words[status], ", ".join(
                ("T=" + c) if c.isdigit() else c for c in by[status])))
    return "; ".join(parts)


def main():
    os.makedirs(OUT, exist_ok=True)
    sections = []
    expected = {}
    for spec in FIXTURES:
        path, notes, expect = export(spec)
        expected[spec["name"]] = expect
        model, counts = histogram(path)
        size = os.path.getsize(path)
        npz_size = os.path.getsize(os.path.join(OUT, spec["name"] + ".npz"))
        print("%s.onnx: %d bytes, %d nodes, %d initializers" % (
            spec["name"], size, len(model.graph.node), len(model.graph.initializer)))
        print("  " + ", ".join("%s %d" % kv for kv in sorted(counts.items())))
        for n in notes:
            print("  " + n)
        sections.append(readme_section(spec, model, counts, size, npz_size, notes, expect))
    with open(os.path.join(OUT, "expected_ort.json"), "w") as f:
        json.dump(expected, f, indent=1, sort_keys=True)
        f.write("\n")
    with open(os.path.join(OUT, "README.md"), "w") as f:
        f.write(README_HEAD % dict(torch=torch.__version__, onnx=onnx.__version__,
                                   numpy=np.__version__, opset=OPSET,
                                   shapes=", ".join("%d as %s" % (t, s)
                                                    for t, s in SHAPES.items()),
                                   table="\n".join(table_row(s) for s in FIXTURES)))
        f.write("\n".join(sections))
        f.write(README_TAIL)


def readme_section(spec, model, counts, size, npz_size, notes, expect):
    cfg = ["E=%d" % spec["E"], "k=%d" % spec["k"], "H=%d" % spec["H"], "I=%d" % spec["I"]]
    if "shared_I" in spec:
        cfg.append("shared expert I=%d" % spec["shared_I"])
    lines = [
        "## %s.onnx" % spec["name"],
        "",
        "- config: %s; experts: %s; activation: %s; biases: %s; renormalise top-k: %s; "
        "softmax %s top-k" % (", ".join(cfg), spec["expert"], spec["act"],
                              "yes" if spec["biases"] else "no",
                              "yes" if spec["renorm"] else "no", spec["softmax"]),
        "- size: %d bytes (.npz %d bytes); %d nodes, %d initializers; opset %d" % (
            size, npz_size, len(model.graph.node), len(model.graph.initializer), OPSET),
        "- graph inputs: %s; outputs: %s" % (
            ", ".join(io_desc(v) for v in model.graph.input),
            ", ".join(io_desc(v) for v in model.graph.output)),
        "- index_add_ became: %s" % (", ".join(scatter_info(model)) or "none"),
        "- correct raise: %s" % spec["raise_"],
    ]
    lines += ["- " + n for n in notes]
    lines.append("- onnxruntime: %s" % ort_text(expect))
    lines += ["", "Op histogram (%d nodes):" % len(model.graph.node), "", "```",
              "\n".join("%-18s %d" % kv for kv in sorted(counts.items())), "```", ""]
    return "\n".join(lines)


def table_row(spec):
    return "| %s.onnx | %d | %d | %d | %d | %s | %s | %s | %s | %s |" % (
        spec["name"], spec["E"], spec["k"], spec["H"], spec["I"], spec["act"],
        "yes" if spec["biases"] else "no", "yes" if spec["renorm"] else "no",
        spec["softmax"] + " top-k", spec["short"])


def io_desc(v):
    dims = [d.dim_param if d.dim_param else str(d.dim_value)
            for d in v.type.tensor_type.shape.dim]
    return "%s [%s]" % (v.name, ", ".join(dims))


README_HEAD = """\
# torch-exported MoE fixtures

Generated by `scripts/make_torch_fixtures.py` (do not edit; rerun it with
Debian's `/usr/bin/python3`). Exported with `torch.onnx.export` (TorchScript
exporter), opset %(opset)s, torch %(torch)s (Debian python3-torch
1.13.1+dfsg), onnx %(onnx)s (Debian python3-onnx), numpy %(numpy)s. Every block
is written like its transformers original (MixtralSparseMoeBlock's loop:
softmax(float) -> topk -> [renormalise] -> one_hot(selected, E).permute(2, 1, 0)
-> for each expert: where(mask[e]) -> hidden[None, top_x] -> expert ->
x routing_weights[top_x, idx, None] -> index_add_). Input `hidden_states`
(batch, seq, H) with dynamic batch and seq, viewed as (-1, H) inside and
reshaped back. Weights: fixed seeds; router weights N(0, 1), the rest
uniform(+-1/sqrt(fan_in)), biases and LayerNorm affine parameters random.

| file | E | k | H | I | activation | biases | renorm | softmax | raise to |
|---|---|---|---|---|---|---|---|---|---|
%(table)s

Each `<name>.npz` (np.load) holds:
- `input_<case>` (batch, seq, H) float32 and `output_<case>`, the torch
  output, for cases T = %(shapes)s (T tokens as (batch, seq));
- `trace_input` / `trace_output`: the input the export was traced with;
- mixtral_router_logits_out: also `router_logits_<case>` (T, E);
- hit_experts_*: two more cases, `same_hits` (2 tokens hitting the same
  experts as the tracing input) and `other_hits` (2 tokens hitting as many
  experts, a different set), and `experts_hit_<case>` (int64, sorted expert
  ids the case's tokens select). For hit_experts_list, `output_<case>` is
  what the graph computes (only the traced experts present) and
  `output_all_experts_<case>` is the model with every expert; for
  hit_experts_tensor, `output_<case>` is the model itself (eager torch).

`expected_ort.json` lists, per fixture and case, what onnxruntime does
(`match`: rel L2 <= 1e-5 against `output_<case>`, `mismatch`, `error`);
`scripts/check_torch_fixtures.py` (the pyenv `python3`, which has onnxruntime;
no torch needed) checks every file against it and runs onnx.checker.

"""


README_TAIL = """
## How torch 1.13 (TorchScript exporter, opset 17) writes these graphs

Read off the fixtures above; node names carry the module path
(`/block/experts.3/w1/MatMul`, `/moe2/...`) but a matcher must not rely on
names. T = tokens, n = tokens routed to one expert.

Once per block:
- three `Shape(x) -> Gather(scalar 0|1|2)` chains for B, S, H; then
  `Concat([-1], Unsqueeze(H)) -> Reshape(x)` gives h (T, H). The same
  `Concat([-1], Unsqueeze(H))` is repeated once per expert (for each
  `reshape(-1, hidden_dim)`), all computed up front.
- router: `MatMul(h, Wg)` with Wg an (H, E) initializer named `onnx::MatMul_<n>`
  (the Linear weight already transposed); `Softmax(axis=1)` ->
  `Cast(to=FLOAT)` (the `dtype=torch.float`) -> `TopK(K=Constant [k], axis=-1,
  largest=1, sorted=1)`; renormalisation is `ReduceSum(values, axes=[-1]
  (input), keepdims=1) -> Div(values, sum)`; then `Cast(to=FLOAT)`
  (`.to(hidden_states.dtype)`). Without renormalisation the Cast reads the
  TopK values directly. Softmax after top-k: `TopK(logits) ->
  Softmax(values, axis=-1) -> Cast -> Cast`.
- zeros: `Mul(B, S) -> Unsqueeze -> Concat(.., Unsqueeze(H)) ->
  ConstantOfShape(value=float 0)` (T, H), the accumulator's start.
- mask: `OneHot(TopK indices, depth=Constant scalar E (int64),
  values=Constant [0, 1] (int64), axis=-1) -> Transpose(perm=[2, 1, 0])`
  (E, k, T), int64.

Per expert e (repeated, in expert order):
- `torch.where(mask[e])`: `Gather(mask, Constant scalar e, axis=0)` (k, T) ->
  `Cast(to=BOOL)` -> `NonZero` (2, n) -> `Transpose(perm=[1, 0])` (n, 2) ->
  `Split(axis=1, split=Constant [1, 1])` -> two `Squeeze(axes=[1])`: idx
  (slot in 0..k-1) and top_x (token).
- `hidden[None, top_x].reshape(-1, H)`: `Unsqueeze(h, [0])` (one node shared
  by all experts) -> `Gather(axis=1, indices=top_x)` -> `Reshape(.., [-1, H])`.
- expert: SwiGLU is `MatMul(x, W1) -> Sigmoid -> Mul(a, sigmoid(a))`,
  `MatMul(x, W3)`, `Mul(silu, up)`, `MatMul(.., W2)`, weights (H, I) / (I, H)
  initializers, no biases. A Linear WITH bias (Switch fixture) is instead
  `Gemm(x, weight (out, in) named like `block.experts.0.wi.weight`, bias,
  transB=1)`. GELU(erf) is `Div(a, 1.4142135) -> Erf -> Add(.., 1.0) ->
  Mul(a, ..) -> Mul(.., 0.5)`.
- `routing_weights[top_x, idx, None]`: `Unsqueeze(rw, [2])` (T, k, 1) ->
  `Shape -> Gather([1])` (= k) and `Gather([2])` (= 1); `Flatten(axis=2)`
  (T*k, 1); linear index `Add(idx, Mul(top_x, k))`; `Gather(flat, index,
  axis=0)`; then `Reshape(.., Concat([-1], Gather[2]))` and
  `Reshape(.., Concat(Shape(index), Gather[2]))` -> (n, 1). Whether the
  `Unsqueeze(rw)` is one node per expert or shared varies: it is per expert
  when the routing weights were renormalised in place (`/=`), shared
  otherwise (the exporter's CSE does not merge across the in-place op).
- `Mul(expert_out, weight) -> Cast(to=FLOAT)`; the trap fixture has an extra
  `Mul(.., Constant 1.5)` between expert 2's down MatMul and this Mul.
- `index_add_(0, top_x, out)` is NOT ScatterElements(reduction=add) here
  (torch 1.13's opset-9 index_add symbolic; newer torch writes
  reduction=add): `Slice(acc, starts=[0, 0], ends=[1, INT64_MAX],
  axes=[0, 1])` -> `Shape` -> `Expand(out, ..)` (a no-op (n, H) expand);
  `Unsqueeze(top_x, [1]) -> Expand(.., Shape(expanded out))` (n, H) index;
  `ConstantOfShape(Shape(acc), 0.0)` -> `ScatterElements(zeros, index, out,
  axis=0)` (reduction none) -> `Add(acc, scattered)` = the next acc. This equals
  index_add only because top_x holds each token at most once (true for one
  expert's where()); the raise may rely on that only after proving the index
  comes from this NonZero pattern.
- the final acc goes through `Reshape(acc, Concat(Unsqueeze(B),
  Unsqueeze(S), Unsqueeze(H)))` to (B, S, H).

Qwen shared expert: `MatMul(h, gate_proj) -> Sigmoid -> Mul`, `MatMul(h,
up_proj)`, `Mul`, `MatMul(.., down_proj)`; `MatMul(h, Wsg (H, 1)) -> Sigmoid
-> Mul(gate, shared)`; `Add(acc_last, ..)` before the final Reshape. Stack:
`LayerNormalization(axis=-1, epsilon=1e-5, scale, bias)` on (B, S, H), the
MoE block, `Add(x, block_out)`, twice.

hit_experts_tensor (the transformers >= 4.54 loop): `ReduceSum(mask,
axes=[-1, -2], keepdims=0) -> Greater(.., 0) -> NonZero -> Transpose ->
Split(axis=0, split=[1]*hits_at_trace) -> Squeeze(axes=[0])` per hit, then
`Gather(mask, that (1,) index, axis=0) -> Squeeze([0]) -> Cast(BOOL) ->
NonZero` as above. The expert weights in each unrolled iteration are the
trace-time expert's, while the mask row is picked at run time.

All tensors are float32 / int64 / bool; every model is ir_version 8, opset
17, producer "pytorch 1.13.0", and passes onnx.checker (full_check).
"""


if __name__ == "__main__":
    main()
