#!/usr/bin/env bash
# CPU speed comparison in one run, same shape and threads for every line (docs/perf.md):
# ehrtune LoRA, ehrtune DP-SGD (per-example clipping), PyTorch + PEFT, and PyTorch +
# PEFT + Opacus. Each is run ROUNDS times, interleaved, so a noisy neighbour hurts all
# alike; the best of each is reported (the least disturbed run).
# usage: bash tests/crosscheck/bench_cpu.sh EHRTUNE_BINARY [PYTHON] [THREADS] [ROUNDS]
set -euo pipefail
bin=$1; py=${2:-/opt/xc/bin/python}; threads=${3:-2}; rounds=${4:-3}
here=$(cd "$(dirname "$0")" && pwd)
out=$(mktemp); trap 'rm -f "$out"' EXIT
for r in $(seq "$rounds"); do
  OMP_NUM_THREADS=$threads "$bin" bench --warmup 2 --steps 8 >> "$out"
  OMP_NUM_THREADS=$threads "$bin" bench --warmup 2 --steps 8 --dp >> "$out"
  "$py" "$here/bench_torch_peft.py" --threads "$threads" --warmup 2 --steps 8 2>/dev/null >> "$out"
  "$py" "$here/bench_torch_peft.py" --threads "$threads" --warmup 2 --steps 8 --dp 2>/dev/null >> "$out"
done
"$py" - "$out" <<'PY'
import json, sys
best = {}
for line in open(sys.argv[1]):
    d = json.loads(line)
    if d["impl"] not in best or d["tokens_per_s"] > best[d["impl"]]["tokens_per_s"]:
        best[d["impl"]] = d
print(f"{'impl':22} {'tokens/s':>9} {'step s':>8} {'peak RSS MB':>12}")
for k in ("ehrtune-cpu", "ehrtune-cpu-dp", "torch+peft", "torch+peft+opacus"):
    d = best[k]
    print(f"{k:22} {d['tokens_per_s']:9.1f} {d['step_s']:8.4f} {d['peak_rss_mb']:12.1f}")
e, t = best["ehrtune-cpu"], best["torch+peft"]
print(f"ehrtune / torch+peft tokens/s: {e['tokens_per_s'] / t['tokens_per_s']:.2f}x")
print(f"DP step / plain step: ehrtune {best['ehrtune-cpu-dp']['step_s'] / e['step_s']:.2f}x, "
      f"opacus {best['torch+peft+opacus']['step_s'] / t['step_s']:.2f}x")
print(f"ehrtune DP extra memory: {best['ehrtune-cpu-dp']['dp_extra_bytes']} bytes "
      f"(micro_batch x LoRA params x 4 = {e['batch'] * e['lora_params'] * 4})")
print("versions:", {k: t[k] for k in ("torch", "transformers", "peft")},
      "opacus", best["torch+peft+opacus"].get("opacus"))
PY
