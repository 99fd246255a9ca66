#!/usr/bin/env python3
"""Reference fixtures for `ehrtune forward`, produced by HF transformers + PEFT.

Run:  /opt/xc/bin/python tests/crosscheck/make_model_fixtures.py [--out tests/fixtures]

For each case this writes tests/fixtures/<case>/:
  model/config.json, model/model.safetensors      base model (F32), save_pretrained
  adapter/adapter_config.json, adapter/adapter_model.safetensors   PEFT save_pretrained
  tokens.json                                      {"input_ids": [[..]], "loss_mask": [[..]]?}
  expected.safetensors                             logits [B,T,V] F32, loss [] F32, and the
                                                   gradient of loss for every LoRA weight, keyed
                                                   like the adapter file (no ".default").

Reference semantics (what the C side must reproduce):
  * eager attention, fp32, CPU, no attention_mask (rows are equal length, no padding);
  * labels = input_ids where loss_mask == 1 else -100 (all ones when tokens.json has no
    loss_mask); logits at position t predict token t+1; loss = mean cross-entropy over the
    targets that are not -100 (HF ForCausalLMLoss without num_items_in_batch);
  * dropout OFF: the adapter config says lora_dropout = 0.05 (realistic), but the reference
    runs with model.eval() under torch.enable_grad(), so every nn.Dropout is the identity;
  * LoRA B is re-initialised to non-zero values so the adapter path changes the result.

Every case is also checked three ways before it is written:
  1. the files on disk, reloaded with from_pretrained / PeftModel.from_pretrained, give the
     same logits, loss and grads;
  2. an independent float64 implementation written from research/formats.md §2-3 (not HF
     code) reproduces logits, loss and grads — this validates the spec the C code follows;
  3. case-specific properties (sliding window changes logits, tied head not saved, LoRA
     path matters).
"""

import argparse
import copy
import json
import math
import os
import platform
import shutil
import sys

import numpy as np
import safetensors
import torch
import torch.nn.functional as F
import transformers
import peft
from peft import LoraConfig, PeftModel, get_peft_model
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from transformers import (AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM,
                          MistralConfig, MistralForCausalLM, Qwen2Config,
                          Qwen2ForCausalLM)

LORA_DROPOUT_IN_CONFIG = 0.05
# The LoRA delta is sized to be roughly this fraction of the base projection's output,
# large enough that a wrong LoRA path fails the comparison, small enough to stay realistic.
LORA_DELTA_FRACTION = 0.2

CASES = {
    "llama_gqa_llama3": dict(
        seed=1001,
        model_cls=LlamaForCausalLM,
        config=lambda: LlamaConfig(
            hidden_size=48, num_attention_heads=6, num_key_value_heads=2,
            num_hidden_layers=2, intermediate_size=100, vocab_size=97,
            max_position_embeddings=64, rms_norm_eps=1e-5, tie_word_embeddings=False,
            rope_theta=500000.0,
            rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                          "high_freq_factor": 4.0,
                          "original_max_position_embeddings": 16},
            bos_token_id=1, eos_token_id=2),
        lora=dict(r=4, lora_alpha=8, use_rslora=False,
                  target_modules=["q_proj", "k_proj", "v_proj", "o_proj",
                                  "gate_proj", "up_proj", "down_proj"]),
        batch=2, seq=13,
        # Row 0: a 4-token "prompt" that is not trained on; row 1: 6-token prompt.
        loss_mask=[[0] * 4 + [1] * 9, [0] * 6 + [1] * 7],
        # Published Llama checkpoints carry the transformers-v4 keys (rope_theta +
        # rope_scaling); transformers v5 writes rope_parameters. This case stores the v4
        # form, the others keep the v5 form, so the C reader is tested on both.
        legacy_rope_keys=True,
    ),
    "mistral_window": dict(
        seed=2002,
        model_cls=MistralForCausalLM,
        config=lambda: MistralConfig(
            hidden_size=40, num_attention_heads=4, head_dim=12, num_key_value_heads=2,
            num_hidden_layers=2, intermediate_size=72, vocab_size=89,
            max_position_embeddings=64, rms_norm_eps=1e-5, tie_word_embeddings=False,
            rope_theta=10000.0, sliding_window=5, bos_token_id=1, eos_token_id=2),
        lora=dict(r=6, lora_alpha=12, use_rslora=True,
                  target_modules=["q_proj", "v_proj"]),
        batch=2, seq=11,
        loss_mask=None,
        legacy_rope_keys=False,
    ),
    "qwen2_bias_tied": dict(
        seed=3003,
        model_cls=Qwen2ForCausalLM,
        config=lambda: Qwen2Config(
            hidden_size=36, num_attention_heads=3, num_key_value_heads=1,
            num_hidden_layers=2, intermediate_size=60, vocab_size=83,
            max_position_embeddings=64, rms_norm_eps=1e-6, tie_word_embeddings=True,
            rope_theta=1000000.0, use_sliding_window=False,
            bos_token_id=None, eos_token_id=82),
        lora=dict(r=3, lora_alpha=5, use_rslora=False,
                  target_modules=["k_proj", "o_proj", "up_proj", "down_proj"]),
        batch=3, seq=9,
        loss_mask=[[0, 0, 0, 1, 1, 1, 1, 1, 1],
                   [1] * 9,
                   [0, 0, 0, 0, 0, 1, 1, 0, 0]],
        legacy_rope_keys=False,
    ),
}


# ----------------------------------------------------------------------------- weights

def randomise_base_weights(model, gen):
    """Non-default random weights with sensible scales so logits are not degenerate."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=gen, dtype=torch.float32)
            if name.endswith("norm.weight"):
                p.copy_(1.0 + 0.1 * noise)           # RMSNorm gains around 1
            elif name.endswith(".bias"):
                p.copy_(0.1 * noise)                 # clearly non-zero q/k/v biases
            elif "embed_tokens" in name:
                p.copy_(0.15 * noise)                # also the head when tied
            else:                                    # nn.Linear [out, in]
                p.copy_(noise * (0.7 / math.sqrt(p.shape[1])))


def randomise_lora_b(peft_model, gen):
    """PEFT initialises B = 0 (a no-op adapter); give it values so the LoRA path matters."""
    with torch.no_grad():
        for module in peft_model.modules():
            if hasattr(module, "lora_B") and "default" in getattr(module, "lora_B", {}):
                scale = module.scaling["default"]
                r = module.r["default"]
                w = module.lora_B["default"].weight
                # A ~ U(±1/sqrt(in)) maps unit-RMS x to RMS ~ 1/sqrt(3); pick B's std so
                # scale·B·A·x has RMS ≈ LORA_DELTA_FRACTION of the base output (≈ 0.7).
                std = LORA_DELTA_FRACTION * 0.7 * math.sqrt(3.0) / (scale * math.sqrt(r))
                w.copy_(std * torch.randn(w.shape, generator=gen, dtype=torch.float32))


# ----------------------------------------------------------------------------- reference

def labels_from(input_ids, loss_mask):
    labels = input_ids.clone()
    if loss_mask is not None:
        labels[loss_mask == 0] = -100
    return labels


def peft_key(param_name):
    """In-memory PEFT parameter name -> the key used in adapter_model.safetensors."""
    return param_name.replace(".lora_A.default.", ".lora_A.").replace(".lora_B.default.", ".lora_B.")


def hf_forward_backward(peft_model, input_ids, labels):
    """One forward + backward, dropout off. Returns logits, loss, {peft key: grad}."""
    peft_model.eval()                       # dropout modules become identity
    peft_model.zero_grad(set_to_none=True)
    with torch.enable_grad():
        out = peft_model(input_ids=input_ids, labels=labels)
        out.loss.backward()
    grads = {}
    for name, p in peft_model.named_parameters():
        if p.requires_grad:
            assert p.grad is not None, name
            grads[peft_key(name)] = p.grad.detach().clone().contiguous()
    return out.logits.detach().float().contiguous(), out.loss.detach().float(), grads


def manual_causal_lm_loss(logits, labels):
    shift_logits = logits[:, :-1, :].reshape(-1, logits.shape[-1])
    shift_labels = labels[:, 1:].reshape(-1)
    return F.cross_entropy(shift_logits.double(), shift_labels, ignore_index=-100,
                           reduction="mean")


# ------------------------------------------------- independent float64 implementation

def rope_inv_freq(cfg, head_dim):
    """From formats.md §2 RoPE; accepts both the v4 and v5 config keys."""
    if "rope_parameters" in cfg and cfg["rope_parameters"] is not None:
        rp = dict(cfg["rope_parameters"])
        theta = rp["rope_theta"]
    else:
        rp = dict(cfg.get("rope_scaling") or {})
        theta = cfg.get("rope_theta", 10000.0)
    rope_type = rp.get("rope_type", rp.get("type", "default"))
    i = torch.arange(0, head_dim // 2, dtype=torch.float64)
    inv = 1.0 / theta ** (2.0 * i / head_dim)
    if rope_type == "default":
        return inv
    assert rope_type == "llama3", rope_type
    factor, lo, hi = rp["factor"], rp["low_freq_factor"], rp["high_freq_factor"]
    orig = rp["original_max_position_embeddings"]
    low_wavelen, high_wavelen = orig / lo, orig / hi
    out = torch.empty_like(inv)
    for k in range(inv.numel()):
        wavelen = 2 * math.pi / inv[k].item()
        if wavelen > low_wavelen:
            out[k] = inv[k] / factor
        elif wavelen < high_wavelen:
            out[k] = inv[k]
        else:
            s = (orig / wavelen - lo) / (hi - lo)
            out[k] = (1 - s) * inv[k] / factor + s * inv[k]
    return out


def independent_forward(model_dir, adapter_dir, input_ids, labels, cfg_edit=None):
    """Llama/Mistral/Qwen2 + LoRA forward/backward in float64, written from the spec.
    cfg_edit(cfg) may alter the parsed config.json (for what-if comparisons)."""
    cfg = json.load(open(os.path.join(model_dir, "config.json")))
    if cfg_edit is not None:
        cfg_edit(cfg)
    acfg = json.load(open(os.path.join(adapter_dir, "adapter_config.json")))
    W = {k: v.double() for k, v in load_file(os.path.join(model_dir, "model.safetensors")).items()}
    A = {k: v.double().requires_grad_(True)
         for k, v in load_file(os.path.join(adapter_dir, "adapter_model.safetensors")).items()}
    H, nh = cfg["hidden_size"], cfg["num_attention_heads"]
    nkv = cfg.get("num_key_value_heads") or nh
    hd = cfg.get("head_dim") or H // nh
    eps = cfg["rms_norm_eps"]
    r, alpha = acfg["r"], acfg["lora_alpha"]
    scaling = alpha / math.sqrt(r) if acfg.get("use_rslora") else alpha / r
    window = None
    if cfg["model_type"] == "mistral":
        window = cfg.get("sliding_window")
    elif cfg["model_type"] == "qwen2" and cfg.get("use_sliding_window"):
        raise NotImplementedError("qwen2 sliding window not used by these fixtures")

    def linear(x, name):
        y = x @ W[name + ".weight"].T
        if name + ".bias" in W:
            y = y + W[name + ".bias"]
        a_key = "base_model.model." + name + ".lora_A.weight"
        if a_key in A:
            b_key = "base_model.model." + name + ".lora_B.weight"
            y = y + scaling * ((x @ A[a_key].T) @ A[b_key].T)
        return y

    def rmsnorm(x, name):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * W[name + ".weight"]

    def rotate_half(x):
        return torch.cat([-x[..., hd // 2:], x[..., :hd // 2]], dim=-1)

    Bsz, T = input_ids.shape
    inv = rope_inv_freq(cfg, hd)
    ang = torch.arange(T, dtype=torch.float64)[:, None] * inv[None, :]
    cos = torch.cat([ang.cos(), ang.cos()], -1)
    sin = torch.cat([ang.sin(), ang.sin()], -1)
    q_pos = torch.arange(T)[:, None]
    kv_pos = torch.arange(T)[None, :]
    allowed = kv_pos <= q_pos
    if window is not None:
        allowed = allowed & (kv_pos > q_pos - window)

    x = W["model.embed_tokens.weight"][input_ids]
    for layer in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{layer}."
        h = rmsnorm(x, p + "input_layernorm")
        q = linear(h, p + "self_attn.q_proj").view(Bsz, T, nh, hd).transpose(1, 2)
        k = linear(h, p + "self_attn.k_proj").view(Bsz, T, nkv, hd).transpose(1, 2)
        v = linear(h, p + "self_attn.v_proj").view(Bsz, T, nkv, hd).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        group = nh // nkv
        k = k.repeat_interleave(group, dim=1)   # query head h uses kv head h // group
        v = v.repeat_interleave(group, dim=1)
        scores = (q @ k.transpose(-1, -2)) * hd ** -0.5
        scores = scores.masked_fill(~allowed, float("-inf"))
        attn = scores.softmax(-1) @ v
        attn = attn.transpose(1, 2).reshape(Bsz, T, nh * hd)
        x = x + linear(attn, p + "self_attn.o_proj")
        h = rmsnorm(x, p + "post_attention_layernorm")
        mlp = F.silu(linear(h, p + "mlp.gate_proj")) * linear(h, p + "mlp.up_proj")
        x = x + linear(mlp, p + "mlp.down_proj")
    x = rmsnorm(x, "model.norm")
    head = W["model.embed_tokens.weight"] if cfg.get("tie_word_embeddings") else W["lm_head.weight"]
    logits = x @ head.T
    loss = manual_causal_lm_loss(logits, labels)
    loss.backward()
    return logits.detach(), loss.detach(), {k: v.grad for k, v in A.items()}


# ----------------------------------------------------------------------------- checks

def max_rel(a, b):
    """max |a-b| / max |b| (a scale-aware error that is robust to tiny entries)."""
    a, b = a.double(), b.double()
    return ((a - b).abs().max() / b.abs().max().clamp_min(1e-30)).item()


def assert_same(tag, got, want, rel):
    err = max_rel(got, want)
    if not err <= rel:
        sys.exit(f"make_model_fixtures: {tag}: relative error {err:.3g} > {rel:g}")
    return err


def rewrite_config_with_legacy_rope_keys(path):
    cfg = json.load(open(path))
    rp = cfg.pop("rope_parameters")
    cfg["rope_theta"] = rp.pop("rope_theta")
    cfg["rope_scaling"] = rp     # keeps rope_type, factor, low/high_freq_factor, orig ctx
    with open(path, "w") as f:
        json.dump(cfg, f, indent=2, sort_keys=True)
        f.write("\n")


def sort_target_modules(path):
    """PEFT stores target_modules as a set and writes it in hash order, which changes from
    run to run; sort it so the fixture is byte-reproducible (same format as PEFT writes)."""
    cfg = json.load(open(path))
    if isinstance(cfg.get("target_modules"), list):
        cfg["target_modules"] = sorted(cfg["target_modules"])
    with open(path, "w") as f:
        f.write(json.dumps(cfg, indent=2, sort_keys=True))


def load_from_disk(model_dir, adapter_dir, **overrides):
    base = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32,
                                                attn_implementation="eager", **overrides)
    return PeftModel.from_pretrained(base, adapter_dir, is_trainable=True)


# ----------------------------------------------------------------------------- driver

def make_case(name, spec, out_root):
    case_dir = os.path.join(out_root, name)
    if os.path.exists(case_dir):
        shutil.rmtree(case_dir)
    model_dir = os.path.join(case_dir, "model")
    adapter_dir = os.path.join(case_dir, "adapter")
    gen = torch.Generator().manual_seed(spec["seed"])
    torch.manual_seed(spec["seed"])           # PEFT's kaiming init of lora_A

    config = spec["config"]()
    config._attn_implementation = "eager"
    model = spec["model_cls"](config).float()
    randomise_base_weights(model, gen)
    model.save_pretrained(model_dir, safe_serialization=True)
    if spec["legacy_rope_keys"]:
        rewrite_config_with_legacy_rope_keys(os.path.join(model_dir, "config.json"))

    lcfg = LoraConfig(task_type="CAUSAL_LM", lora_dropout=LORA_DROPOUT_IN_CONFIG,
                      bias="none", **spec["lora"])
    pmodel = get_peft_model(model, lcfg)
    randomise_lora_b(pmodel, gen)
    pmodel.save_pretrained(adapter_dir, safe_serialization=True)
    sort_target_modules(os.path.join(adapter_dir, "adapter_config.json"))
    os.remove(os.path.join(adapter_dir, "README.md"))   # PEFT's empty model-card template

    B, T = spec["batch"], spec["seq"]
    V = config.vocab_size
    input_ids = torch.randint(0, V, (B, T), generator=gen, dtype=torch.int64)
    loss_mask = None
    if spec["loss_mask"] is not None:
        loss_mask = torch.tensor(spec["loss_mask"], dtype=torch.int64)
        assert loss_mask.shape == (B, T)
    labels = labels_from(input_ids, loss_mask)
    tokens = {"input_ids": input_ids.tolist()}
    if loss_mask is not None:
        tokens["loss_mask"] = loss_mask.tolist()
    with open(os.path.join(case_dir, "tokens.json"), "w") as f:
        json.dump(tokens, f)
        f.write("\n")

    logits, loss, grads = hf_forward_backward(pmodel, input_ids, labels)
    checks = {}

    # The loss is HF's causal-LM loss as the task defines it.
    checks["loss_vs_manual_abs"] = abs(manual_causal_lm_loss(logits, labels).item() - loss.item())
    assert checks["loss_vs_manual_abs"] < 1e-5, checks

    # Grad keys are exactly the adapter file's keys.
    with safe_open(os.path.join(adapter_dir, "adapter_model.safetensors"), "pt") as f:
        adapter_keys = set(f.keys())
        for k in adapter_keys:
            assert f.get_slice(k).get_dtype() == "F32", k
    assert set(grads) == adapter_keys, sorted(set(grads) ^ adapter_keys)

    # Base checkpoint: all F32; tied head absent, untied present.
    with safe_open(os.path.join(model_dir, "model.safetensors"), "pt") as f:
        base_keys = set(f.keys())
        for k in base_keys:
            assert f.get_slice(k).get_dtype() == "F32", k
    assert ("lm_head.weight" in base_keys) == (not config.tie_word_embeddings), base_keys

    # 1. Files on disk reproduce the reference.
    reloaded = load_from_disk(model_dir, adapter_dir)
    r_logits, r_loss, r_grads = hf_forward_backward(reloaded, input_ids, labels)
    checks["reload_logits_rel"] = assert_same(f"{name} reload logits", r_logits, logits, 1e-6)
    assert abs(r_loss.item() - loss.item()) < 1e-6
    for k in grads:
        assert_same(f"{name} reload grad {k}", r_grads[k], grads[k], 1e-5)

    # 2. Independent float64 implementation of the spec agrees.
    i_logits, i_loss, i_grads = independent_forward(model_dir, adapter_dir, input_ids, labels)
    checks["fp64_spec_logits_rel"] = assert_same(f"{name} spec logits", logits, i_logits, 1e-5)
    checks["fp64_spec_loss_abs"] = abs(i_loss.item() - loss.item())
    assert checks["fp64_spec_loss_abs"] < 1e-5, checks
    checks["fp64_spec_grad_rel_max"] = max(
        assert_same(f"{name} spec grad {k}", grads[k], i_grads[k], 1e-4) for k in grads)

    # 3. Case properties.
    with torch.no_grad():
        pmodel.eval()
        with pmodel.disable_adapter():
            no_lora = pmodel(input_ids=input_ids).logits.float()
    checks["lora_effect_rel"] = max_rel(logits, no_lora)
    assert checks["lora_effect_rel"] > 0.05, f"LoRA path barely matters: {checks}"
    if name == "llama_gqa_llama3":
        # The llama3 rescaling must change the result at these sizes, or it is untested.
        def drop_scaling(cfg):
            cfg.pop("rope_scaling", None)
        plain_logits, _, _ = independent_forward(model_dir, adapter_dir, input_ids, labels,
                                                 cfg_edit=drop_scaling)
        checks["llama3_vs_plain_rope_rel"] = max_rel(logits, plain_logits)
        assert checks["llama3_vs_plain_rope_rel"] > 1e-2, "llama3 rope scaling had no effect"
    if name == "mistral_window":
        assert config.sliding_window < T
        full = load_from_disk(model_dir, adapter_dir, sliding_window=None)
        assert full.base_model.model.config.sliding_window is None
        with torch.no_grad():
            full.eval()
            full_logits = full(input_ids=input_ids).logits.float()
        checks["window_vs_full_rel"] = max_rel(logits, full_logits)
        assert checks["window_vs_full_rel"] > 1e-2, "sliding window had no effect"
        # Positions < window see the same context either way: identical there.
        w = config.sliding_window
        assert torch.allclose(logits[:, :w], full_logits[:, :w], atol=1e-6)

    expected = {"logits": logits, "loss": loss.reshape(())}
    expected.update(grads)
    # One metadata key: safetensors writes metadata in Rust HashMap order, so several keys
    # would make the file bytes differ from run to run.
    meta = {"about": "tests/crosscheck/make_model_fixtures.py; dropout off (eval) although "
                     "adapter_config says lora_dropout=0.05; loss = mean CE over targets "
                     "t+1 with loss_mask[t+1]==1"}
    save_file(expected, os.path.join(case_dir, "expected.safetensors"), metadata=meta)

    size = sum(os.path.getsize(os.path.join(d, f))
               for d, _, fs in os.walk(case_dir) for f in fs)
    assert size < 300 * 1024, f"{name}: fixture is {size} bytes"
    print(f"{name}: B={B} T={T} V={V} loss={loss.item():.6f} "
          f"lora_keys={len(grads)} size={size} bytes checks={json.dumps(checks)}")
    return {"bytes": size, "loss": loss.item(), "checks": checks}


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=os.path.join(here, "..", "fixtures"))
    args = ap.parse_args()
    out_root = os.path.normpath(args.out)
    os.makedirs(out_root, exist_ok=True)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)                  # reproducible reductions

    summary = {}
    for name, spec in CASES.items():
        summary[name] = make_case(name, spec, out_root)

    versions = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "peft": peft.__version__,
        "safetensors": safetensors.__version__,
        "numpy": np.__version__,
        "command": "/opt/xc/bin/python tests/crosscheck/make_model_fixtures.py",
        "cases": summary,
    }
    with open(os.path.join(out_root, "versions.json"), "w") as f:
        json.dump(versions, f, indent=2, sort_keys=True)
        f.write("\n")


if __name__ == "__main__":
    main()
