#!/usr/bin/env python3
"""Reads an ehrtune GGUF LoRA adapter with the `gguf` package (llama.cpp's gguf-py)
and compares it with the PEFT adapter it was exported from.

    python check_gguf_adapter.py --gguf adapter.gguf --peft PEFT_DIR --config config.json

Checks: general.type / general.architecture / adapter.type, adapter.lora.alpha
(alpha, or alpha*sqrt(r) for rsLoRA), one lora_a/lora_b pair per PEFT A/B pair under
llama.cpp's tensor names, dims reversed, 32-byte aligned offsets, and the values:
lora_a == A, lora_b == B with llama.cpp's q/k row permutation for the "llama"
architecture (convert_hf_to_gguf.py LlamaModel.permute). Only numpy and gguf are
needed (the safetensors file is parsed here). Exit 0 = all checks passed.
"""
import argparse
import json
import math
import struct
import sys

import numpy as np
import gguf

GGUF_NAME = {"q_proj": "attn_q", "k_proj": "attn_k", "v_proj": "attn_v",
             "o_proj": "attn_output", "gate_proj": "ffn_gate", "up_proj": "ffn_up",
             "down_proj": "ffn_down"}


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        b, e = info["data_offsets"]
        raw = np.frombuffer(data[b:e], dtype=np.uint8)
        if info["dtype"] == "F32":
            v = raw.view(np.float32)
        elif info["dtype"] == "BF16":
            v = (raw.view(np.uint16).astype(np.uint32) << 16).view(np.float32)
        else:
            sys.exit(f"{name}: unexpected dtype {info['dtype']}")
        out[name] = v.reshape(info["shape"])
    return out


def permute(w, n_head):
    return (w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:])
            .swapaxes(1, 2).reshape(w.shape))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--gguf", required=True)
    ap.add_argument("--peft", required=True)
    ap.add_argument("--config", required=True)
    a = ap.parse_args()
    cfg = json.load(open(a.config))
    acfg = json.load(open(f"{a.peft}/adapter_config.json"))
    peft = read_safetensors(f"{a.peft}/adapter_model.safetensors")
    arch = "qwen2" if cfg["model_type"] == "qwen2" else "llama"
    r = acfg["r"]
    alpha = acfg["lora_alpha"] * (math.sqrt(r) if acfg.get("use_rslora") else 1.0)

    reader = gguf.GGUFReader(a.gguf)
    f = {k: v.contents() for k, v in reader.fields.items()}
    problems = []
    def check(ok, what):
        if not ok:
            problems.append(what)
    check(f.get("general.type") == "adapter", f"general.type {f.get('general.type')}")
    check(f.get("general.architecture") == arch, f"general.architecture {f.get('general.architecture')}")
    check(f.get("adapter.type") == "lora", "adapter.type")
    check(f.get("adapter.lora.alpha") == np.float32(alpha),
          f"adapter.lora.alpha {f.get('adapter.lora.alpha')} != {alpha}")
    tensors = {t.name: t for t in reader.tensors}
    seen = 0
    for key, A in peft.items():
        if not key.endswith(".lora_A.weight"):
            continue
        B = peft[key.replace("lora_A", "lora_B")]
        parts = key.split(".")  # base_model.model.model.layers.L.<mod>.<proj>.lora_A.weight
        layer, proj = int(parts[4]), parts[6]
        if arch == "llama" and proj in ("q_proj", "k_proj"):
            heads = cfg["num_attention_heads"] if proj == "q_proj" else cfg.get(
                "num_key_value_heads", cfg["num_attention_heads"])
            B = permute(B, heads)
        for suffix, want in (("lora_a", A), ("lora_b", B)):
            name = f"blk.{layer}.{GGUF_NAME[proj]}.weight.{suffix}"
            t = tensors.get(name)
            if t is None:
                problems.append(f"missing {name}")
                continue
            seen += 1
            check(list(t.shape) == list(reversed(want.shape)), f"{name}: ne {list(t.shape)}")
            check(t.data_offset % 32 == 0, f"{name}: offset {t.data_offset} not 32-aligned")
            data = np.asarray(t.data)
            if t.tensor_type == gguf.GGMLQuantizationType.BF16:
                data = (np.ascontiguousarray(data).view(np.uint16).astype(np.uint32) << 16).view(np.float32)
            elif t.tensor_type != gguf.GGMLQuantizationType.F32:
                problems.append(f"{name}: type {t.tensor_type}")
                continue
            got = np.asarray(data, dtype=np.float32).reshape(want.shape)
            check(np.array_equal(got, want), f"{name}: values differ (max {np.abs(got - want).max()})")
    check(seen == len(tensors), f"{len(tensors)} tensors in the file, {seen} expected")
    if problems:
        print("\n".join(problems))
        sys.exit(1)
    print(f"gguf ok: {seen} tensors, arch {arch}, alpha {alpha:g}")


if __name__ == "__main__":
    main()
