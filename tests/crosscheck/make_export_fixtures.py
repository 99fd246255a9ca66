#!/usr/bin/env python3
"""Reference fixtures for `ehrtune export` (and PEFT-written BF16 adapters for import).

Run (from the repository root, after building ehrtune):

    /opt/xc/bin/python tests/crosscheck/make_export_fixtures.py --ehrtune build/ehrtune \
        [--out tests/fixtures/export]

What it does, for three base models of tests/fixtures/ (Llama GQA, Mistral with rsLoRA
and head_dim != hidden/heads, Qwen2 with bias and tied embeddings):

 1. trains a short LoRA run with ehrtune (tiny synthetic corpus, `ehrtune ingest` +
    `ehrtune train`), so the adapter is ehrtune's own output;
 2. exports it with `ehrtune export --format peft,merged,gguf` (F32 adapters, merged
    model forced into several shards) and again with `--format peft,gguf --dtype bf16`;
 3. checks every artefact with the reference libraries and records what they compute:
    - PEFT: PeftModel.from_pretrained(HF base, exported peft/) loads without missing or
      unexpected keys; its fp32 logits are compared with `ehrtune forward` on the same
      files (relative error < 1e-4) and written as the expected logits;
    - merged: AutoModelForCausalLM.from_pretrained(exported merged/) (sharded, BF16)
      loads; every weight equals bf16(W + scale * B @ A) computed here in float64
      (at most 1 bf16 ulp apart: fp32 rounding before the bf16 rounding); its logits
      (weights upcast to fp32) are written, and compared with PEFT's (bf16 tolerance);
    - GGUF: gguf.GGUFReader reads adapter.gguf; metadata (general.type, architecture,
      adapter.type, adapter.lora.alpha with the rsLoRA rule) and every tensor (name,
      reversed dims, type, values) are checked against PEFT's A and llama.cpp's
      q/k permutation of B (convert_hf_to_gguf.py's `permute`, re-implemented here);
      the expected tensors are written for the C test;
 4. writes two adapters with PEFT itself in BF16 on a subset of target modules
    (tests for `--adapter` / `--init-adapter` import), with their fp32 logits.

Output (small; committed):
  <case>/run/           the run directory pieces export reads (config.resolved.yaml with
                        model.path rewritten to the repository-relative fixture model,
                        manifest.json, metrics.jsonl, adapter/)
  <case>/expected.safetensors   peft_f32_logits, peft_bf16_logits, merged_logits [B,T,V]
                        and "gguf/<tensor name>" = expected GGUF tensor in torch shape
  peft_bf16/<name>/adapter/     PEFT save_pretrained, BF16 weights
  peft_bf16/<name>/expected.safetensors   logits [B,T,V] of PEFT with that adapter, fp32
  checks.json           versions and every check's number
"""

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import torch
import transformers
import peft
import safetensors
from peft import LoraConfig, PeftModel, get_peft_model
from safetensors import safe_open
from safetensors.torch import save_file
from transformers import AutoModelForCausalLM

try:
    import gguf
except ImportError:  # the GGUF checks are required for the fixtures
    gguf = None

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PROJ = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
MODULE = {"q_proj": "self_attn", "k_proj": "self_attn", "v_proj": "self_attn",
          "o_proj": "self_attn", "gate_proj": "mlp", "up_proj": "mlp", "down_proj": "mlp"}
GGUF_NAME = {"q_proj": "attn_q", "k_proj": "attn_k", "v_proj": "attn_v",
             "o_proj": "attn_output", "gate_proj": "ffn_gate", "up_proj": "ffn_up",
             "down_proj": "ffn_down"}

# case -> (fixture model, lora settings for the ehrtune run)
CASES = {
    "llama": dict(model="llama_gqa_llama3", r=4, alpha=8, rslora=False, targets=PROJ),
    "mistral": dict(model="mistral_window", r=6, alpha=12, rslora=True,
                    targets=["q_proj", "k_proj", "v_proj", "down_proj"]),
    "qwen2": dict(model="qwen2_bias_tied", r=3, alpha=5, rslora=False,
                  targets=["q_proj", "k_proj", "o_proj", "up_proj"]),
}
# PEFT-written BF16 adapters for import tests: (fixture model, targets, r, alpha, rslora)
PEFT_BF16 = {
    "llama_qv": ("llama_gqa_llama3", ["q_proj", "v_proj"], 4, 8, False),
    "mistral_kod": ("mistral_window", ["k_proj", "o_proj", "down_proj"], 6, 12, True),
}

RECIPE = """model: {{path: {model}, dtype: fp32}}
lora: {{r: {r}, alpha: {alpha}, dropout: 0.0, use_rslora: {rslora}, targets: [{targets}]}}
data: {{train: {corpus}, seq_len: 12}}
optim: {{lr: 0.05, schedule: constant, warmup_steps: 0, steps: 10, max_grad_norm: 0}}
run: {{out: {out}, device: cpu, micro_batch: 4, seed: 7, checkpoint_every: 0}}
"""

checks = {}


def run(cmd, **kw):
    r = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if r.returncode != 0:
        sys.exit(f"command failed ({r.returncode}): {' '.join(cmd)}\n{r.stdout}\n{r.stderr}")
    return r.stdout


def rel(a, b):
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-30))


def expect(tag, value, limit):
    checks[tag] = float(value)
    if not (value <= limit):
        sys.exit(f"check {tag} failed: {value} > {limit}")


def tokens_of(model_name):
    with open(os.path.join(REPO, "tests/fixtures", model_name, "tokens.json")) as f:
        return torch.tensor(json.load(f)["input_ids"])


def hf_base(model_dir):
    m = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32,
                                             attn_implementation="eager")
    return m.eval()


def peft_logits(model_dir, adapter_dir, ids):
    model = PeftModel.from_pretrained(hf_base(model_dir), adapter_dir)
    model.eval()
    with torch.no_grad():
        return model(input_ids=ids).logits.float(), model


def ehrtune_logits(binary, model_dir, adapter_dir, tokens_json, work):
    out = os.path.join(work, "fwd.safetensors")
    cmd = [binary, "forward", "--model", model_dir, "--tokens", tokens_json, "-o", out]
    if adapter_dir:
        cmd += ["--adapter", adapter_dir]
    run(cmd)
    with safe_open(out, "pt") as f:
        return f.get_tensor("logits")


def write_corpus(path, vocab, seed):
    rng = np.random.default_rng(seed)
    succ = rng.integers(3, vocab, size=(vocab, 2))
    with open(path, "w") as f:
        for p in range(24):
            for d in range(2):
                n = int(rng.integers(20, 60))
                t = [int(rng.integers(3, vocab))]
                for _ in range(n - 1):
                    t.append(int(succ[t[-1], int(rng.random() < 0.3)]))
                f.write(json.dumps({"patient_id": 100 + p, "tokens": t}) + "\n")


def llama_permute(w, n_head):
    """convert_hf_to_gguf.py LlamaModel.permute, applied to lora_b's rows."""
    return (w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:])
            .swapaxes(1, 2).reshape(w.shape))


def check_merged(case, model_dir, merged_dir, adapter, scale, cfg):
    """Every merged weight equals bf16(W + scale * B @ A) within 1 bf16 ulp."""
    from safetensors.torch import load_file
    base = {}
    for fn in os.listdir(model_dir):
        if fn.endswith(".safetensors"):
            base.update(load_file(os.path.join(model_dir, fn)))
    merged = {}
    shards = [fn for fn in os.listdir(merged_dir) if fn.endswith(".safetensors")]
    for fn in shards:
        with safe_open(os.path.join(merged_dir, fn), "pt") as f:
            assert f.metadata().get("format") == "pt", fn
            for k in f.keys():
                merged[k] = f.get_tensor(k)
    assert set(merged) == set(base), (set(merged) ^ set(base))
    worst = 0
    for name, w in base.items():
        ref = w.double()
        for p in PROJ:
            for layer in range(cfg.num_hidden_layers):
                if name == f"model.layers.{layer}.{MODULE[p]}.{p}.weight":
                    a = adapter.get(f"base_model.model.model.layers.{layer}.{MODULE[p]}.{p}.lora_A.weight")
                    b = adapter.get(f"base_model.model.model.layers.{layer}.{MODULE[p]}.{p}.lora_B.weight")
                    if a is not None:
                        ref = ref + scale * (b.double() @ a.double())
        got = merged[name]
        assert got.dtype == torch.bfloat16, (name, got.dtype)
        want = ref.float().to(torch.bfloat16)
        # distance in bf16 ulps (same-sign values: integer distance of the bit patterns)
        gi = got.view(torch.int16).int()
        wi = want.view(torch.int16).int()
        worst = max(worst, int((gi - wi).abs().max()))
    expect(f"{case}.merged_weights_max_bf16_ulp", worst, 1)
    checks[f"{case}.merged_shards"] = len(shards)
    return worst


def check_gguf(case, path, adapter, cfg, arch, r, alpha, rslora, dtype, expected_out):
    reader = gguf.GGUFReader(path)
    def field(name):
        f = reader.fields[name]
        return f.contents()
    assert field("general.type") == "adapter"
    assert field("general.architecture") == arch
    assert field("adapter.type") == "lora"
    want_alpha = alpha * math.sqrt(r) if rslora else alpha
    got_alpha = field("adapter.lora.alpha")
    expect(f"{case}.gguf_{dtype}_alpha_abs_err", abs(got_alpha - np.float32(want_alpha)), 0)
    assert reader.alignment == 32 if hasattr(reader, "alignment") else True
    tensors = {t.name: t for t in reader.tensors}
    n = 0
    worst = 0.0
    for layer in range(cfg.num_hidden_layers):
        for p in PROJ:
            key = f"base_model.model.model.layers.{layer}.{MODULE[p]}.{p}"
            if key + ".lora_A.weight" not in adapter:
                continue
            a = adapter[key + ".lora_A.weight"].float()
            b = adapter[key + ".lora_B.weight"].float()
            if arch == "llama" and p in ("q_proj", "k_proj"):
                heads = cfg.num_attention_heads if p == "q_proj" else cfg.num_key_value_heads
                b = llama_permute(b, heads)
            for suffix, want in (("lora_a", a), ("lora_b", b)):
                name = f"blk.{layer}.{GGUF_NAME[p]}.weight.{suffix}"
                t = tensors[name]
                # GGUF ne is the torch shape reversed
                assert list(t.shape) == list(reversed(want.shape)), (name, t.shape, want.shape)
                want_type = gguf.GGMLQuantizationType.F32 if dtype == "f32" else gguf.GGMLQuantizationType.BF16
                assert t.tensor_type == want_type, (name, t.tensor_type)
                assert t.data_offset % 32 == 0
                data = np.asarray(t.data)
                if dtype == "bf16":  # the reader returns the raw bytes of a BF16 tensor
                    words = np.ascontiguousarray(data).view(np.uint16).astype(np.uint32)
                    data = (words << 16).view(np.float32)
                got = torch.from_numpy(np.array(data, dtype=np.float32).reshape(want.shape))
                expected = want if dtype == "f32" else want.to(torch.bfloat16).float()
                worst = max(worst, float((got - expected).abs().max()))
                if expected_out is not None:
                    expected_out[f"gguf/{name}"] = expected.contiguous()
                n += 1
    assert n == len(tensors), (n, len(tensors))
    expect(f"{case}.gguf_{dtype}_tensor_max_abs_err", worst, 0)
    checks[f"{case}.gguf_tensors"] = n


def make_case(case, spec, binary, out_root, work):
    model_rel = f"tests/fixtures/{spec['model']}/model"
    model_dir = os.path.join(REPO, model_rel)
    cfg = transformers.AutoConfig.from_pretrained(model_dir)
    d = os.path.join(work, case)
    os.makedirs(d)
    write_corpus(os.path.join(d, "c.jsonl"), cfg.vocab_size, seed=len(case))
    run([binary, "ingest", "--pretokenized", os.path.join(d, "c.jsonl"), "-o",
         os.path.join(d, "corpus.h5")])
    recipe = os.path.join(d, "r.yaml")
    with open(recipe, "w") as f:
        f.write(RECIPE.format(model=model_rel, r=spec["r"], alpha=spec["alpha"],
                              rslora=str(spec["rslora"]).lower(),
                              targets=", ".join(spec["targets"]),
                              corpus=os.path.join(d, "corpus.h5"), out=os.path.join(d, "run")))
    # model.path relative to the repository root, as the committed recipe keeps it
    run([binary, "train", recipe], cwd=REPO, env=dict(os.environ, OMP_NUM_THREADS="1"))
    run_dir = os.path.join(d, "run")
    e32, e16 = os.path.join(d, "e32"), os.path.join(d, "e16")
    run([binary, "export", run_dir, "--format", "peft,merged,gguf", "-o", e32,
         "--max-shard-size", "30kB"], cwd=REPO)
    run([binary, "export", run_dir, "--format", "peft,gguf", "--dtype", "bf16", "-o", e16],
        cwd=REPO)

    ids = tokens_of(spec["model"])
    tokens_json = os.path.join(REPO, "tests/fixtures", spec["model"], "tokens.json")
    expected = {}
    arch = "qwen2" if cfg.model_type == "qwen2" else "llama"
    scale = spec["alpha"] / (math.sqrt(spec["r"]) if spec["rslora"] else spec["r"])
    for dtype, exp_dir in (("f32", e32), ("bf16", e16)):
        pdir = os.path.join(exp_dir, "peft")
        logits, pm = peft_logits(model_dir, pdir, ids)
        # PEFT read every tensor (no missing / unexpected keys) with our scaling
        from safetensors.torch import load_file
        adapter = load_file(os.path.join(pdir, "adapter_model.safetensors"))
        sd = {k.replace(".default", ""): v for k, v in pm.state_dict().items() if "lora_" in k}
        assert set(sd) == set(adapter), set(sd) ^ set(adapter)
        for k, v in adapter.items():
            assert torch.equal(sd[k].float(), v.float()), k
        for mod in pm.modules():
            if hasattr(mod, "scaling") and isinstance(mod.scaling, dict) and "default" in mod.scaling:
                assert abs(mod.scaling["default"] - scale) < 1e-12, (mod.scaling, scale)
        ours = ehrtune_logits(binary, model_dir, pdir, tokens_json, d)
        expect(f"{case}.peft_{dtype}_vs_ehrtune_forward_rel", rel(ours, logits), 1e-4)
        expected[f"peft_{dtype}_logits"] = logits.contiguous()
        with safe_open(os.path.join(pdir, "adapter_model.safetensors"), "pt") as f:
            meta = f.metadata()
        assert meta["format"] == "pt" and "ehrtune_privacy" in meta and "ehrtune_version" in meta
        check_gguf(case, os.path.join(exp_dir, "gguf", "adapter.gguf"), adapter, cfg, arch,
                   spec["r"], spec["alpha"], spec["rslora"], dtype,
                   expected if dtype == "f32" else None)
        if dtype == "f32":
            adapter32 = adapter
    with torch.no_grad():
        base_logits = hf_base(model_dir)(input_ids=ids).logits.float()
    # the trained LoRA must matter well beyond the bf16 tolerance used for merged logits
    lora_effect = rel(expected["peft_f32_logits"], base_logits)
    checks[f"{case}.lora_effect_rel"] = lora_effect
    if lora_effect < 0.1:
        sys.exit(f"{case}: the trained adapter changes logits by only {lora_effect}")
    mdir = os.path.join(e32, "merged")
    check_merged(case, model_dir, mdir, adapter32, scale, cfg)
    merged = AutoModelForCausalLM.from_pretrained(mdir, dtype=torch.float32,
                                                  attn_implementation="eager").eval()
    with torch.no_grad():
        mlogits = merged(input_ids=ids).logits.float()
    # bf16 tolerance, measured rather than guessed: PEFT's fp32 logits against the same
    # model (base + adapter) with every weight rounded to bf16, computed in fp32 — the
    # error the merged export cannot avoid. The merged model may not be worse than 1.5x it.
    pm16 = PeftModel.from_pretrained(hf_base(model_dir), os.path.join(e32, "peft")).eval()
    with torch.no_grad():
        for prm in pm16.parameters():
            prm.copy_(prm.to(torch.bfloat16).float())
        rounded = pm16(input_ids=ids).logits.float()
    bf16_floor = rel(rounded, expected["peft_f32_logits"])
    checks[f"{case}.bf16_rounding_floor_rel"] = bf16_floor
    expect(f"{case}.merged_vs_peft_rel", rel(mlogits, expected["peft_f32_logits"]),
           1.5 * bf16_floor)
    ours = ehrtune_logits(binary, mdir, None, tokens_json, d)
    expect(f"{case}.merged_hf_vs_ehrtune_forward_rel", rel(ours, mlogits), 1e-4)
    expected["merged_logits"] = mlogits.contiguous()

    # commit the run directory pieces export reads
    dst = os.path.join(out_root, case)
    shutil.rmtree(dst, ignore_errors=True)
    os.makedirs(os.path.join(dst, "run"))
    for fn in ("config.resolved.yaml", "manifest.json", "metrics.jsonl"):
        shutil.copy(os.path.join(run_dir, fn), os.path.join(dst, "run", fn))
    shutil.copytree(os.path.join(run_dir, "adapter"), os.path.join(dst, "run", "adapter"))
    save_file(expected, os.path.join(dst, "expected.safetensors"), metadata={"format": "pt"})


def make_peft_bf16(name, spec, binary, out_root, work):
    model_name, targets, r, alpha, rslora = spec
    model_dir = os.path.join(REPO, "tests/fixtures", model_name, "model")
    torch.manual_seed(1234)
    base = hf_base(model_dir)
    cfg = LoraConfig(r=r, lora_alpha=alpha, target_modules=targets, use_rslora=rslora,
                     lora_dropout=0.0, task_type="CAUSAL_LM")
    pm = get_peft_model(base, cfg)
    gen = torch.Generator().manual_seed(99)
    with torch.no_grad():
        for n, p in pm.named_parameters():
            if "lora_B" in n:  # non-zero B, so the adapter changes the logits
                p.copy_(torch.randn(p.shape, generator=gen) * 0.3)
    pm = pm.to(torch.bfloat16)
    dst = os.path.join(out_root, "peft_bf16", name)
    shutil.rmtree(dst, ignore_errors=True)
    adir = os.path.join(dst, "adapter")
    pm.save_pretrained(adir, safe_serialization=True)
    for fn in ("README.md",):  # PEFT's empty card template
        if os.path.exists(os.path.join(adir, fn)):
            os.remove(os.path.join(adir, fn))
    cfgp = os.path.join(adir, "adapter_config.json")
    with open(cfgp) as f:
        c = json.load(f)
    c["target_modules"] = sorted(c["target_modules"])  # PEFT writes a set in hash order
    with open(cfgp, "w") as f:
        json.dump(c, f, indent=2, sort_keys=True)
    with safe_open(os.path.join(adir, "adapter_model.safetensors"), "pt") as f:
        dts = {f.get_slice(k).get_dtype() for k in f.keys()}
    assert dts == {"BF16"}, dts
    ids = tokens_of(model_name)
    logits, _ = peft_logits(model_dir, adir, ids)
    ours = ehrtune_logits(binary, model_dir, adir,
                          os.path.join(REPO, "tests/fixtures", model_name, "tokens.json"), work)
    expect(f"peft_bf16.{name}.vs_ehrtune_forward_rel", rel(ours, logits), 1e-4)
    base_logits = hf_base(model_dir)(input_ids=ids).logits.detach()
    checks[f"peft_bf16.{name}.lora_effect_rel"] = rel(logits, base_logits)
    save_file({"logits": logits.contiguous()}, os.path.join(dst, "expected.safetensors"),
              metadata={"format": "pt"})


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ehrtune", required=True, help="path of the ehrtune binary")
    ap.add_argument("--out", default=os.path.join(REPO, "tests/fixtures/export"))
    args = ap.parse_args()
    if gguf is None:
        sys.exit("the gguf package is needed: /opt/xc/bin/pip install gguf")
    torch.set_num_threads(1)
    binary = os.path.abspath(args.ehrtune)
    os.makedirs(args.out, exist_ok=True)
    with tempfile.TemporaryDirectory() as work:
        for case, spec in CASES.items():
            make_case(case, spec, binary, args.out, work)
        for name, spec in PEFT_BF16.items():
            make_peft_bf16(name, spec, binary, args.out, work)
    out = {"command": "tests/crosscheck/make_export_fixtures.py", "checks": checks,
           "torch": torch.__version__, "transformers": transformers.__version__,
           "peft": peft.__version__, "safetensors": safetensors.__version__,
           "gguf": getattr(gguf, "__version__", None) or "installed", "numpy": np.__version__}
    with open(os.path.join(args.out, "checks.json"), "w") as f:
        json.dump(out, f, indent=2, sort_keys=True)
        f.write("\n")
    print(json.dumps(checks, indent=1))


if __name__ == "__main__":
    main()
