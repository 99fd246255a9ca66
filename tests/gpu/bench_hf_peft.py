#!/usr/bin/env python3
"""HF peer benchmark: LoRA training steps of HF transformers + PEFT on one GPU.

The model is a LlamaForCausalLM with Llama-3.2-1B's shape (hidden 2048, 16 layers,
32 heads, 8 KV heads, intermediate 8192, vocab 128256, tied embeddings), built from a
config with random weights (no download: the GPU machine is offline), in bf16 with
attn_implementation="sdpa". PEFT LoRA r=16, alpha 32 on all seven projections (PEFT's
defaults otherwise: adapter weights autocast to fp32), AdamW on the LoRA parameters.
One step = forward + causal-LM loss + backward + optimizer step on [batch, seq] random
tokens. Warm-up steps are untimed; each timed step is synchronised.

Output: JSON lines on stdout (and appended to --out): one "env" line, then one "bench"
line per batch size with tokens/s, MFU and peak memory. MFU counts model FLOPs only
(formula in the line): a frozen base model needs forward (2·N) plus the activation
gradients (2·N) per token, the LoRA weights their full 6·N_lora, and causal attention
its score/value products (forward 2·B·T²·H·D per layer, backward twice that).

Smoke test without a GPU:  python3 bench_hf_peft.py --device cpu --dtype fp32 --tiny
"""

import argparse
import json
import platform
import sys
import time

# Dense bf16 tensor-core peak by device name (vendor datasheets, SXM parts; leads,
# not measurements). Longest match wins.
PEAK_BF16_TFLOPS = {
    "H100": 989.0,       # H100 SXM5 80GB ('NVIDIA H100 80GB HBM3')
    "H100 PCIe": 756.0,
    "H100 NVL": 835.0,
    "H200": 989.0,       # H200 SXM 141GB: the H100's compute
    "A100": 312.0,
}

LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def emit(obj, out_path):
    line = json.dumps(obj, sort_keys=True)
    print(line, flush=True)
    if out_path:
        with open(out_path, "a") as f:
            f.write(line + "\n")


def peak_for(name):
    best = None
    for key, value in PEAK_BF16_TFLOPS.items():
        if key in name and (best is None or len(key) > len(best[0])):
            best = (key, value)
    return best[1] if best else None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--dtype", default="bf16", choices=["bf16", "fp32"])
    ap.add_argument("--attn", default="sdpa", choices=["sdpa", "eager"])
    ap.add_argument("--batches", default="1,4", help="comma-separated batch sizes")
    ap.add_argument("--seq", type=int, default=2048)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--rank", type=int, default=16)
    ap.add_argument("--alpha", type=float, default=32.0)
    ap.add_argument("--lora-dropout", type=float, default=0.0)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--tiny", action="store_true", help="a toy shape for smoke tests")
    ap.add_argument("--out", default=None, help="also append the JSON lines here")
    args = ap.parse_args()

    import torch
    import transformers
    import peft
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaConfig, LlamaForCausalLM

    device = torch.device(args.device)
    dtype = torch.bfloat16 if args.dtype == "bf16" else torch.float32
    cuda = device.type == "cuda"
    name = torch.cuda.get_device_name(device) if cuda else platform.processor() or "cpu"
    env = {"kind": "env", "torch": torch.__version__, "transformers": transformers.__version__,
           "peft": peft.__version__, "python": platform.python_version(), "device": name,
           "cuda": torch.version.cuda if cuda else None}
    if cuda:
        major, minor = torch.cuda.get_device_capability(device)
        env["capability"] = f"{major}.{minor}"
        env["total_memory_gib"] = round(torch.cuda.get_device_properties(device).total_memory / 2**30, 1)
    emit(env, args.out)

    if args.tiny:
        shape = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                     num_key_value_heads=2, intermediate_size=128, vocab_size=1000)
        seq = min(args.seq, 64)
    else:  # meta-llama/Llama-3.2-1B config.json
        shape = dict(hidden_size=2048, num_hidden_layers=16, num_attention_heads=32,
                     num_key_value_heads=8, intermediate_size=8192, vocab_size=128256)
        seq = args.seq
    config = LlamaConfig(**shape, max_position_embeddings=131072, rms_norm_eps=1e-5,
                         rope_theta=500000.0, tie_word_embeddings=True,
                         rope_scaling={"rope_type": "llama3", "factor": 32.0,
                                       "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                                       "original_max_position_embeddings": 8192})
    config._attn_implementation = args.attn
    config.use_cache = False

    torch.manual_seed(0)
    t0 = time.perf_counter()
    with torch.device(device):  # random init on the device: seconds, not minutes
        model = LlamaForCausalLM(config)
    model = model.to(dtype)
    lora = LoraConfig(task_type="CAUSAL_LM", r=args.rank, lora_alpha=args.alpha,
                      lora_dropout=args.lora_dropout, target_modules=LORA_TARGETS)
    model = get_peft_model(model, lora)
    build_s = time.perf_counter() - t0
    trainable = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(trainable, lr=args.lr)

    # FLOP model. N_frozen: weights of every matmul of the base model (the seven
    # projections of each layer and lm_head, which is the tied embedding).
    hidden, layers = shape["hidden_size"], shape["num_hidden_layers"]
    heads, kv = shape["num_attention_heads"], shape["num_key_value_heads"]
    head_dim, inter, vocab = hidden // heads, shape["intermediate_size"], shape["vocab_size"]
    per_layer = hidden * (heads * head_dim) * 2 + hidden * (kv * head_dim) * 2 + 3 * hidden * inter
    n_frozen = layers * per_layer + vocab * hidden
    n_lora = sum(p.numel() for p in trainable)
    n_params = sum(p.numel() for p in model.parameters())
    peak = peak_for(name) if cuda and dtype == torch.bfloat16 else None
    formula = ("4*N_frozen*tokens + 6*N_lora*tokens + 3*(2*B*T^2*H*D)*layers "
               "(frozen fwd+activation-grad, LoRA fwd+bwd, causal attention fwd + 2x bwd)")

    for batch in [int(b) for b in args.batches.split(",") if b]:
        row = {"kind": "bench", "model": "llama-3.2-1b-shape" + ("-tiny" if args.tiny else ""),
               "batch": batch, "seq": seq, "dtype": args.dtype, "attn": args.attn,
               "lora_r": args.rank, "lora_alpha": args.alpha, "lora_dropout": args.lora_dropout,
               "lora_dtype": str(trainable[0].dtype).replace("torch.", ""),
               "n_params": n_params, "n_frozen_matmul": n_frozen, "n_lora": n_lora,
               "build_s": round(build_s, 2), "warmup": args.warmup, "steps": args.steps,
               "mfu_formula": formula, "peak_tflops": peak}
        try:
            if cuda:
                torch.cuda.empty_cache()
                torch.cuda.reset_peak_memory_stats(device)
            gen = torch.Generator(device=device).manual_seed(batch)
            times, losses = [], []
            for step in range(args.warmup + args.steps):
                ids = torch.randint(0, vocab, (batch, seq), device=device, generator=gen)
                if cuda:
                    torch.cuda.synchronize(device)
                t = time.perf_counter()
                out = model(input_ids=ids, labels=ids)
                out.loss.backward()
                opt.step()
                opt.zero_grad(set_to_none=True)
                if cuda:
                    torch.cuda.synchronize(device)
                if step >= args.warmup:
                    times.append(time.perf_counter() - t)
                    losses.append(float(out.loss.detach()))
            times.sort()
            median = times[len(times) // 2]
            tokens = batch * seq
            flops = (4 * n_frozen * tokens + 6 * n_lora * tokens
                     + 3 * (2 * batch * seq * seq * heads * head_dim) * layers)
            row.update(status="ok", step_s_median=round(median, 4),
                       step_s_min=round(times[0], 4), tokens_per_s=round(tokens / median, 1),
                       model_tflop_per_step=round(flops / 1e12, 3),
                       achieved_tflops=round(flops / median / 1e12, 1),
                       loss_last=round(losses[-1], 4))
            if peak:
                row["mfu"] = round(flops / median / 1e12 / peak, 4)
            if cuda:
                row["peak_mem_gib"] = round(torch.cuda.max_memory_allocated(device) / 2**30, 2)
        except torch.cuda.OutOfMemoryError as e:
            row.update(status="oom", error=str(e).splitlines()[0][:200])
            opt.zero_grad(set_to_none=True)
            if cuda:
                torch.cuda.empty_cache()
        except Exception as e:  # record and go on to the next batch size
            row.update(status="error", error=f"{type(e).__name__}: {str(e)[:200]}")
        emit(row, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
