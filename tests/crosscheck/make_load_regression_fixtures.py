#!/usr/bin/env python3
"""Regression fixtures for model loading, produced by HF transformers (no adapter).

Run:  /opt/xc/bin/python tests/crosscheck/make_load_regression_fixtures.py [--out tests/fixtures/load_regression]

Cases the full LoRA fixtures (make_model_fixtures.py) do not cover; each is tiny (KBs):
  qwen2_swa_mwl      Qwen2, use_sliding_window true, window 3, max_window_layers 1 of 3
                     (layer 0 full, layers 1-2 sliding), T = 10 > window; config.json as
                     transformers 5 writes it (layer_types, rope_parameters)
  qwen2_swa_mwl_v4   the same sizes with a Qwen2.5-style v4 config.json: no layer_types (the
                     window layers come from max_window_layers), rope_theta at top level
  llama_linear_bias  linear RoPE (factor 4), attention_bias + mlp_bias (q/k/v/o and MLP biases)
  llama_bf16         weights stored as BF16 (loaded to fp32 by both sides)
  llama_sharded      save_pretrained(max_shard_size="8KB"): index + several shards

For each case, <out>/<case>/ holds model/ (save_pretrained, as transformers writes it),
tokens.json {"input_ids": [[..]]} and expected.safetensors: logits [B,T,V] F32 and loss []
F32 of transformers' from_pretrained(dtype=float32, attn_implementation="eager") forward,
labels = input_ids (HF ForCausalLMLoss). tests/unit/test_hf_parity.c runs
`ehrtune forward` on each and compares (relative L2 error < 1e-5).

Checks made before writing: the reloaded model gives the same logits as the one saved
(fp32 cases), and each case's feature changes the logits (the window, the RoPE factor, the
biases, bf16 rounding), so a loader that ignored it would fail the comparison.
"""

import argparse
import json
import math
import os
import shutil

import torch
import transformers
from safetensors.torch import save_file
from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

BASE = dict(hidden_size=16, num_attention_heads=2, num_key_value_heads=1, num_hidden_layers=2,
            intermediate_size=24, vocab_size=32, max_position_embeddings=64, rms_norm_eps=1e-5,
            tie_word_embeddings=False, bos_token_id=1, eos_token_id=2)

CASES = {
    "qwen2_swa_mwl": dict(
        cls=Qwen2ForCausalLM, seed=11, T=10,
        config=lambda **k: Qwen2Config(**{**BASE, "num_hidden_layers": 3, **k}),
        kw=dict(use_sliding_window=True, sliding_window=3, max_window_layers=1),
        off=dict(use_sliding_window=False)),
    "qwen2_swa_mwl_v4": dict(
        cls=Qwen2ForCausalLM, seed=15, T=10,
        config=lambda **k: Qwen2Config(**{**BASE, "num_hidden_layers": 3, **k}),
        kw=dict(use_sliding_window=True, sliding_window=3, max_window_layers=1),
        off=dict(use_sliding_window=False), edit="v4"),
    "llama_linear_bias": dict(
        cls=LlamaForCausalLM, seed=12, T=9,
        config=lambda **k: LlamaConfig(**{**BASE, **k}),
        kw=dict(rope_scaling={"rope_type": "linear", "factor": 4.0}, attention_bias=True,
                mlp_bias=True),
        off=dict(rope_scaling=None, attention_bias=True, mlp_bias=True)),
    "llama_bf16": dict(
        cls=LlamaForCausalLM, seed=13, T=8, dtype=torch.bfloat16,
        config=lambda **k: LlamaConfig(**{**BASE, **k}), kw={}, off=None),
    "llama_sharded": dict(
        cls=LlamaForCausalLM, seed=14, T=8, save_kw=dict(max_shard_size="8KB"),
        config=lambda **k: LlamaConfig(**{**BASE, **k}), kw={}, off=None),
}


def randomise(model, gen):
    with torch.no_grad():
        for name, p in model.named_parameters():
            z = torch.randn(p.shape, generator=gen, dtype=torch.float32)
            if name.endswith("norm.weight"):
                p.copy_(1.0 + 0.1 * z)
            elif name.endswith(".bias"):
                p.copy_(0.1 * z)
            elif "embed_tokens" in name:
                p.copy_(0.15 * z)
            else:
                p.copy_(z * (0.7 / math.sqrt(p.shape[1])))


def forward(model, ids):
    with torch.no_grad():
        out = model(input_ids=ids, labels=ids)
    return out.logits.float().contiguous(), out.loss.float()


def rel(a, b):
    return ((a - b).norm() / b.norm()).item()


def make(name, spec, root):
    d = os.path.join(root, name)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    cfg = spec["config"](**spec["kw"])
    cfg._attn_implementation = "eager"
    torch.manual_seed(spec["seed"])
    model = spec["cls"](cfg).eval()
    gen = torch.Generator().manual_seed(spec["seed"])
    randomise(model, gen)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    if spec.get("dtype") is not None:
        model = model.to(spec["dtype"])
    model.save_pretrained(os.path.join(d, "model"), **spec.get("save_kw", {}))
    ids = torch.randint(0, cfg.vocab_size, (2, spec["T"]), generator=gen)
    if spec.get("edit") == "v4":
        path = os.path.join(d, "model", "config.json")
        with open(path) as f:
            c = json.load(f)
        del c["layer_types"]
        c["rope_theta"] = c.pop("rope_parameters")["rope_theta"]
        c["torch_dtype"] = c.pop("dtype")
        with open(path, "w") as f:
            json.dump(c, f, indent=2)
            f.write("\n")

    ref = spec["cls"].from_pretrained(os.path.join(d, "model"), attn_implementation="eager",
                                      dtype=torch.float32).eval()
    logits, loss = forward(ref, ids)

    # the saved model is the one built (fp32 cases), and the feature matters
    orig = spec["cls"](cfg).eval()
    orig.load_state_dict(state)
    if spec.get("dtype") is None:
        assert rel(forward(orig, ids)[0], logits) < 1e-6, name
    else:
        assert rel(forward(orig, ids)[0], logits) > 1e-4, name + ": bf16 rounding has no effect"
    if spec["off"] is not None:
        cfg_off = spec["config"](**spec["off"])
        cfg_off._attn_implementation = "eager"
        other = spec["cls"](cfg_off).eval()
        other.load_state_dict({k: v for k, v in ref.state_dict().items()})
        assert rel(forward(other, ids)[0], logits) > 1e-3, name + ": feature has no effect"
    if "save_kw" in spec:
        files = os.listdir(os.path.join(d, "model"))
        assert "model.safetensors.index.json" in files and "model.safetensors" not in files
        assert sum(f.endswith(".safetensors") for f in files) >= 2, files

    with open(os.path.join(d, "tokens.json"), "w") as f:
        json.dump({"input_ids": ids.tolist()}, f)
    save_file({"logits": logits, "loss": loss}, os.path.join(d, "expected.safetensors"),
              metadata={"format": "pt"})
    print(f"{name}: loss {loss.item():.6f}")


def main():
    ap = argparse.ArgumentParser()
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--out", default=os.path.join(here, "..", "fixtures", "load_regression"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    transformers.logging.set_verbosity_error()
    os.makedirs(args.out, exist_ok=True)
    for name, spec in CASES.items():
        make(name, spec, args.out)
    with open(os.path.join(args.out, "versions.json"), "w") as f:
        json.dump({"torch": torch.__version__, "transformers": transformers.__version__}, f,
                  indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
