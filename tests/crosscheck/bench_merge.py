#!/usr/bin/env python3
"""Merge throughput of `ehrtune export --format merged` against `cp` of the same bytes.

    /opt/xc/bin/python tests/crosscheck/bench_merge.py --ehrtune build/ehrtune \
        --dir /tmp/merge_bench [--layers 32] [--rank 16]

Builds, under --dir, a Llama-3-8B-shaped base model in BF16 (hidden 4096, MLP 14336,
32 heads / 8 KV heads, vocabulary 128256; --layers of them, 32 = the real 8B size of
16.06 GB) in 5 GB shards with an index, a LoRA adapter (r = --rank on all seven
projections, F32) and a minimal finished run directory pointing at them. Then, each
after `sync` and (when permitted) dropping the page cache so that reads come from the
disk:
  1. ehrtune export RUN --format merged -o OUT      (reads, merges, writes, fsyncs)
  2. cp -r BASE COPY && sync                          (the same bytes, no arithmetic)
and prints one JSON line: bytes, seconds and seconds per GB of each. Needs about
2 × the model size of free disk (the copy is deleted before the merge output is).
Weights are random (a repeated random block), which does not change the cost.
"""
import argparse
import json
import os
import resource
import shutil
import struct
import subprocess
import time

import numpy as np

SHARD_LIMIT = 5_000_000_000


def llama8b_tensors(layers, H=4096, I=14336, V=128256, heads=32, kv=8):
    hd = H // heads
    t = [("model.embed_tokens.weight", [V, H])]
    for i in range(layers):
        p = f"model.layers.{i}."
        t += [(p + "input_layernorm.weight", [H]),
              (p + "self_attn.q_proj.weight", [heads * hd, H]),
              (p + "self_attn.k_proj.weight", [kv * hd, H]),
              (p + "self_attn.v_proj.weight", [kv * hd, H]),
              (p + "self_attn.o_proj.weight", [H, heads * hd]),
              (p + "post_attention_layernorm.weight", [H]),
              (p + "mlp.gate_proj.weight", [I, H]),
              (p + "mlp.up_proj.weight", [I, H]),
              (p + "mlp.down_proj.weight", [H, I])]
    t += [("model.norm.weight", [H]), ("lm_head.weight", [V, H])]
    return t


def write_safetensors(path, tensors, dtype, block):
    """tensors: [(name, shape)]; the data is `block` repeated."""
    esize = {"BF16": 2, "F32": 4}[dtype]
    header, off = {"__metadata__": {"format": "pt"}}, 0
    for name, shape in sorted(tensors):
        n = int(np.prod(shape)) * esize
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [off, off + n]}
        off += n
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        left = off
        while left:
            k = min(left, len(block))
            f.write(block[:k])
            left -= k
    return off


def make_block(seed, nbytes, dtype):
    rng = np.random.default_rng(seed)
    v = (rng.standard_normal(nbytes // 4) * 0.02).astype(np.float32)
    if dtype == "BF16":
        b = (v.view(np.uint32) >> 16).astype(np.uint16)
        return np.concatenate([b, b]).tobytes()[:nbytes]
    return v.tobytes()


def build(d, layers, rank):
    base = os.path.join(d, "base")
    os.makedirs(base)
    cfg = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 4096,
           "intermediate_size": 14336, "num_hidden_layers": layers, "num_attention_heads": 32,
           "num_key_value_heads": 8, "vocab_size": 128256, "max_position_embeddings": 8192,
           "rms_norm_eps": 1e-5, "rope_theta": 500000.0, "tie_word_embeddings": False,
           "hidden_act": "silu", "torch_dtype": "bfloat16", "bos_token_id": 128000,
           "eos_token_id": 128001}
    json.dump(cfg, open(os.path.join(base, "config.json"), "w"), indent=2)
    block = make_block(1, 1 << 26, "BF16")
    tensors = llama8b_tensors(layers)
    shards, cur, size = [], [], 0
    for name, shape in tensors:
        n = int(np.prod(shape)) * 2
        if cur and size + n > SHARD_LIMIT:
            shards.append(cur)
            cur, size = [], 0
        cur.append((name, shape))
        size += n
    shards.append(cur)
    total, wmap = 0, {}
    for i, s in enumerate(shards):
        fn = f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors"
        total += write_safetensors(os.path.join(base, fn), s, "BF16", block)
        wmap.update({name: fn for name, _ in s})
    json.dump({"metadata": {"total_size": total}, "weight_map": wmap},
              open(os.path.join(base, "model.safetensors.index.json"), "w"), indent=2)

    run = os.path.join(d, "run")
    os.makedirs(os.path.join(run, "adapter"))
    targets = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    lt = []
    for name, shape in tensors:
        for p in targets:
            if name.endswith(f".{p}.weight"):
                key = "base_model.model." + name[: -len(".weight")]
                lt += [(key + ".lora_A.weight", [rank, shape[1]]),
                       (key + ".lora_B.weight", [shape[0], rank])]
    ablock = make_block(2, 1 << 24, "F32")
    write_safetensors(os.path.join(run, "adapter", "adapter_model.safetensors"), lt, "F32", ablock)
    json.dump({"peft_type": "LORA", "task_type": "CAUSAL_LM", "r": rank, "lora_alpha": 2 * rank,
               "lora_dropout": 0.0, "target_modules": targets, "use_rslora": False,
               "bias": "none", "base_model_name_or_path": base},
              open(os.path.join(run, "adapter", "adapter_config.json"), "w"))
    with open(os.path.join(run, "config.resolved.yaml"), "w") as f:
        f.write(f"model: {{path: {base}}}\nlora: {{r: {rank}, alpha: {2 * rank}, dropout: 0.0, "
                f"targets: [{', '.join(targets)}]}}\ndata: {{train: {d}/none.h5}}\n"
                f"run: {{out: {run}}}\n")
    json.dump({"manifest": {"format": "ehrtune-manifest", "version": 1}, "files": [],
               "run": {"status": "completed"}, "privacy": {"enabled": False}},
              open(os.path.join(run, "manifest.json"), "w"))
    return base, run, total


def cold():
    subprocess.run(["sync"], check=True)
    try:
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
        return True
    except OSError:
        return False


def du(path):
    return sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(path) for f in fs)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ehrtune", required=True)
    ap.add_argument("--dir", required=True)
    ap.add_argument("--layers", type=int, default=32)
    ap.add_argument("--rank", type=int, default=16)
    a = ap.parse_args()
    os.makedirs(a.dir)
    t0 = time.time()
    base, run, total = build(a.dir, a.layers, a.rank)
    t_build = time.time() - t0
    res = {"layers": a.layers, "rank": a.rank, "base_bytes": du(base), "build_s": round(t_build, 1)}

    copy = os.path.join(a.dir, "copy")
    res["cold_cache"] = cold()
    t0 = time.time()
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(["cp", "-r", base, copy], check=True)
    subprocess.run(["sync"], check=True)
    res["cp_s"] = round(time.time() - t0, 2)
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    res["cp_cpu_s"] = round(ru1.ru_utime - ru0.ru_utime + ru1.ru_stime - ru0.ru_stime, 2)
    shutil.rmtree(copy)

    out = os.path.join(a.dir, "out")
    cold()
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.time()
    log = subprocess.run([a.ehrtune, "export", run, "--format", "merged", "-o", out],
                         check=True, capture_output=True, text=True).stdout
    res["export_s"] = round(time.time() - t0, 2)
    # peak RSS of the children so far (cp's is small): includes the mapped base pages
    # the merge touched, which are page cache, not allocations
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    res["export_cpu_user_s"] = round(ru1.ru_utime - ru0.ru_utime, 2)
    res["export_cpu_sys_s"] = round(ru1.ru_stime - ru0.ru_stime, 2)
    res["export_max_rss_mb"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024
    res["merged_bytes"] = du(os.path.join(out, "merged"))
    res["ehrtune_says"] = log.strip().splitlines()[-1]
    gb = res["base_bytes"] / 1e9
    res["cp_s_per_gb"] = round(res["cp_s"] / gb, 3)
    res["export_s_per_gb"] = round(res["export_s"] / gb, 3)
    shutil.rmtree(a.dir)
    print(json.dumps(res))


if __name__ == "__main__":
    main()
