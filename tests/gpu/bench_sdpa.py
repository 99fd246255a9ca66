#!/usr/bin/env python3
"""Peer timing of one attention op: PyTorch's scaled_dot_product_attention (the call
HF transformers makes with attn_implementation="sdpa") at the Llama-3.2-1B attention
shape, for each SDPA backend this torch has (flash, cuDNN, memory-efficient).

Shape as tests/gpu/parity.c's perf.attention rows: batch 1 and 4, t = 2048, 32 query
heads, 8 KV heads (expanded to 32 before the call, as HF's repeat_kv does), head dim
64, causal, bf16. Forward time, and backward time as (forward + backward) - forward;
FLOPs as the parity rows count them (forward 4·d·Hq·B·visible pairs, backward 2.5x),
so the rows compare directly with ehrtune's kernels timed in the same check run.

Output: one JSON line per (backend, batch) on stdout, also appended to --out.
Smoke test without a GPU:  python3 bench_sdpa.py --device cpu --tiny
"""

import argparse
import sys
import time

from bench_hf_peft import emit  # one JSON line on stdout, appended to --out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--batches", default="1,4")
    ap.add_argument("--seq", type=int, default=2048)
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--tiny", action="store_true", help="a toy shape for smoke tests")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()

    import torch
    import torch.nn.functional as F
    from torch.nn.attention import SDPBackend, sdpa_kernel

    cuda = args.device.startswith("cuda")
    if cuda and not torch.cuda.is_available():
        print("bench_sdpa: no CUDA device", file=sys.stderr)
        return 77
    dev = torch.device(args.device)
    dtype = torch.bfloat16 if cuda else torch.float32
    t, hq, hkv, d = (64, 4, 2, 16) if args.tiny else (args.seq, 32, 8, 64)
    backends = [("flash", SDPBackend.FLASH_ATTENTION), ("efficient", SDPBackend.EFFICIENT_ATTENTION),
                ("math", SDPBackend.MATH)] if not cuda else \
               [("flash", SDPBackend.FLASH_ATTENTION), ("cudnn", SDPBackend.CUDNN_ATTENTION),
                ("efficient", SDPBackend.EFFICIENT_ATTENTION)]
    if not cuda:
        backends = backends[-1:]  # the CPU smoke test: the math backend only

    def now():
        if cuda:
            torch.cuda.synchronize()
        return time.perf_counter()

    def median_us(fn):
        fn()
        fn()  # warm-up (kernel selection, allocator)
        times = []
        for _ in range(args.reps):
            t0 = now()
            fn()
            times.append((now() - t0) * 1e6)
        times.sort()
        return times[len(times) // 2]

    pairs = t * (t + 1) / 2  # visible (query, key) pairs of a causal row set
    for b in [int(x) for x in args.batches.split(",")]:
        torch.manual_seed(0)
        q = torch.randn(b, hq, t, d, device=dev, dtype=dtype, requires_grad=True)
        k = torch.randn(b, hkv, t, d, device=dev, dtype=dtype, requires_grad=True)
        v = torch.randn(b, hkv, t, d, device=dev, dtype=dtype, requires_grad=True)
        g = torch.randn(b, hq, t, d, device=dev, dtype=dtype)
        ke = k.repeat_interleave(hq // hkv, dim=1).detach().requires_grad_(True)
        ve = v.repeat_interleave(hq // hkv, dim=1).detach().requires_grad_(True)
        fwd_flops = 4.0 * d * hq * b * pairs
        for name, backend in backends:
            row = {"kind": "sdpa", "backend": name, "batch": b, "seq": t, "hq": hq, "hkv": hkv,
                   "d": d, "dtype": str(dtype).replace("torch.", ""),
                   "device": torch.cuda.get_device_name(0) if cuda else "cpu",
                   "torch": torch.__version__}
            try:
                with sdpa_kernel([backend]):
                    def fwd():
                        with torch.no_grad():
                            F.scaled_dot_product_attention(q, ke, ve, is_causal=True)

                    def fwd_bwd():
                        o = F.scaled_dot_product_attention(q, ke, ve, is_causal=True)
                        o.backward(g)
                        q.grad = ke.grad = ve.grad = None

                    us_f = median_us(fwd)
                    us_fb = median_us(fwd_bwd)
                us_b = max(us_fb - us_f, 1e-3)
                row.update({"status": "ok", "fwd_us": round(us_f, 1), "bwd_us": round(us_b, 1),
                            "fwd_tflops": round(fwd_flops / us_f * 1e-6, 1),
                            "bwd_tflops": round(2.5 * fwd_flops / us_b * 1e-6, 1)})
            except Exception as e:  # a backend this torch/GPU lacks: say so, go on
                row.update({"status": "unavailable", "error": str(e).splitlines()[0][:200]})
            emit(row, args.out)
        del q, k, v, g, ke, ve
    return 0


if __name__ == "__main__":
    sys.exit(main())
