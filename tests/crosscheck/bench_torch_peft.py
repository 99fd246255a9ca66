#!/usr/bin/env python3
"""Peer benchmark: LoRA fine-tuning steps/s of PyTorch + PEFT on CPU, fp32.

Run:  /opt/xc/bin/python tests/crosscheck/bench_torch_peft.py [--threads N] [--batch 4] ...

The model is a random LlamaForCausalLM (hidden 256, 4 layers, 8 heads, 8 KV heads,
intermediate 688, vocab 32000 by default), PEFT LoRA r=16 (alpha 32, dropout 0) on all seven
projections, AdamW on the LoRA parameters only. One step = forward + causal-LM loss +
backward + optimizer step on a [batch, seq] batch of random tokens. Prints one JSON line;
tokens_per_s counts batch*seq tokens per timed step. Eager attention, so the work matches a
straightforward C implementation (no fused SDPA kernel).
"""

import argparse
import json
import os
import platform
import resource
import time

import torch
import transformers
import peft
from peft import LoraConfig, get_peft_model
from transformers import LlamaConfig, LlamaForCausalLM


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--seq", type=int, default=256)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--heads", type=int, default=8)
    ap.add_argument("--kv-heads", type=int, default=8)
    ap.add_argument("--intermediate", type=int, default=688)
    ap.add_argument("--vocab", type=int, default=32000)
    ap.add_argument("--rank", type=int, default=16)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--attn", default="eager", choices=["eager", "sdpa"])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--dp", action="store_true",
                    help="DP-SGD with Opacus (GradSampleModule + DPOptimizer): per-example "
                         "gradients of the LoRA weights, flat clipping, noise")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    config = LlamaConfig(
        hidden_size=args.hidden, num_hidden_layers=args.layers,
        num_attention_heads=args.heads, num_key_value_heads=args.kv_heads,
        intermediate_size=args.intermediate, vocab_size=args.vocab,
        max_position_embeddings=max(2048, args.seq), rms_norm_eps=1e-5,
        tie_word_embeddings=False)
    config._attn_implementation = args.attn
    model = LlamaForCausalLM(config).float()
    lora = LoraConfig(task_type="CAUSAL_LM", r=args.rank, lora_alpha=2 * args.rank,
                      lora_dropout=0.0,
                      target_modules=["q_proj", "k_proj", "v_proj", "o_proj",
                                      "gate_proj", "up_proj", "down_proj"])
    model = get_peft_model(model, lora)
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=args.lr)
    if args.dp:
        # Opacus's own machinery, as a user of Opacus + PEFT would set it up: hooks that
        # materialise per-example gradients of every trainable (LoRA) weight, then the
        # DP optimizer (flat clipping at C=1, noise sigma=1, division by the batch size).
        from opacus import GradSampleModule
        from opacus.optimizers import DPOptimizer
        model = GradSampleModule(model, loss_reduction="mean")
        opt = DPOptimizer(opt, noise_multiplier=1.0, max_grad_norm=1.0,
                          expected_batch_size=args.batch, loss_reduction="mean")
    n_lora = sum(p.numel() for p in params)
    n_total = sum(p.numel() for p in model.parameters())

    gen = torch.Generator().manual_seed(args.seed + 1)

    def step():
        ids = torch.randint(0, args.vocab, (args.batch, args.seq), generator=gen)
        loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss.item()

    for _ in range(args.warmup):
        step()
    t0 = time.perf_counter()
    for _ in range(args.steps):
        last_loss = step()
    elapsed = time.perf_counter() - t0

    tokens = args.batch * args.seq * args.steps
    print(json.dumps({
        "impl": "torch+peft+opacus" if args.dp else "torch+peft",
        "tokens_per_s": round(tokens / elapsed, 1),
        "step_s": round(elapsed / args.steps, 4),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "threads": torch.get_num_threads(),
        "batch": args.batch, "seq": args.seq, "hidden": args.hidden,
        "layers": args.layers, "heads": args.heads, "kv_heads": args.kv_heads,
        "intermediate": args.intermediate, "vocab": args.vocab, "rank": args.rank,
        "attn": args.attn, "warmup": args.warmup, "steps": args.steps,
        "lora_params": n_lora, "total_params": n_total, "last_loss": round(last_loss, 4),
        "dtype": "float32", "device": "cpu", "cpu": platform.processor() or platform.machine(),
        "torch": torch.__version__, "transformers": transformers.__version__,
        "peft": peft.__version__,
        **({"opacus": __import__("opacus").__version__} if args.dp else {}),
    }))


if __name__ == "__main__":
    main()
