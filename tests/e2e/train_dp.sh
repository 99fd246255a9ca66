#!/usr/bin/env bash
# Patient-level DP-SGD end to end: the epsilon in metrics equals `ehrtune privacy
# epsilon` for the steps taken; the budget is never exceeded; resume equals an
# uninterrupted run (deterministic noise); a non-private run cannot be resumed as a
# private one; a budget reached right after a resume keeps the step count; secure mode
# draws fresh noise; bad privacy settings are refused before any training.
set -euo pipefail
bin=$1; src=$2
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
cd "$work"
export OMP_NUM_THREADS=2
"$bin" demo --recipe "$src/recipes/tiny-cpu.yaml" --dir demo \
  --tokenizer "$src/tests/fixtures/tokenizers/demo-bytelevel/tokenizer.json" > /dev/null
r=$src/recipes/tiny-cpu.yaml
base=(model.path=demo/model data.train=demo/corpus.h5 privacy.enabled=true optim.warmup_steps=2
      privacy.secure_rng=false privacy.expected_batch_size=8 privacy.max_sequences_per_unit=2
      run.checkpoint_every=5)
json() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))" "$@"; }

"$bin" train "$r" "${base[@]}" privacy.target_epsilon=3 optim.steps=10 run.out=a > a.log
grep -q "DP-SGD: unit patient" a.log
steps=$(json a/manifest.json "d['privacy']['steps']")
test "$steps" = 10
q=$(json a/manifest.json "repr(d['privacy']['sample_rate'])")
sigma=$(json a/manifest.json "repr(d['privacy']['noise_multiplier'])")
delta=$(json a/manifest.json "repr(d['privacy']['delta'])")
"$bin" privacy epsilon --sample-rate "$q" --noise-multiplier "$sigma" --steps 10 --delta "$delta" \
  --accountant prv --json > eps.json
python3 - a/metrics.jsonl eps.json <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
want = json.load(open(sys.argv[2]))["epsilon"]
assert len(rows) == 10, len(rows)
assert abs(rows[-1]["epsilon"] - want) <= 1e-6 * want, (rows[-1]["epsilon"], want)
assert all(r["epsilon"] <= 3.0 for r in rows), "budget exceeded"
assert all(r["epsilon"] < s["epsilon"] for r, s in zip(rows, rows[1:])), "epsilon must grow"
for r in rows:
    assert 0.0 <= r["clipped_fraction"] <= 1.0 and r["units"] >= 0
PY
json a/manifest.json "d['privacy']['statement']" | grep -q "patient level"
test "$(json a/manifest.json "d['run']['status']")" = completed
# The manifest travels with every export: no noise-free loss under DP, and the exact
# dataset sizes it does carry are declared outside the guarantee
test "$(json a/manifest.json "'final_loss' in d['run']")" = False
json a/manifest.json "' '.join(d['privacy']['outside_guarantee'])" | grep -q "data.training_rows"
# A privacy office recomputes the run's epsilon from its manifest alone: equal to the
# last digit; a manifest whose epsilon was edited is caught (exit 1).
"$bin" privacy epsilon --manifest a/manifest.json --json > m_eps.json
test "$(json m_eps.json "d['matches']")" = True
test "$(json m_eps.json "d['epsilon'] == d['recorded_epsilon']")" = True
python3 -c "import json; d=json.load(open('a/manifest.json')); d['privacy']['epsilon'] *= 0.9; json.dump(d, open('edited.json', 'w'))"
if "$bin" privacy epsilon --manifest edited.json > /dev/null 2> edited.err; then echo "edited epsilon not caught"; exit 1; fi
grep -q "records epsilon" edited.err

# Resume mid-run equals the uninterrupted run (deterministic noise and sampling).
"$bin" train "$r" "${base[@]}" privacy.target_epsilon= privacy.noise_multiplier=1.0 optim.steps=8 run.out=full > /dev/null
"$bin" train "$r" "${base[@]}" privacy.target_epsilon= privacy.noise_multiplier=1.0 optim.steps=8 run.out=part --stop-after 3 > /dev/null
"$bin" train "$r" "${base[@]}" privacy.target_epsilon= privacy.noise_multiplier=1.0 optim.steps=8 run.out=part --resume > /dev/null
cmp full/adapter/adapter_model.safetensors part/adapter/adapter_model.safetensors
strip() { sed 's/"tokens_per_s":[0-9.]*,//' "$1"; }
diff <(strip full/metrics.jsonl) <(strip part/metrics.jsonl)

# A run begun without privacy cannot become private on resume: its first steps were not.
"$bin" train "$r" "${base[@]}" privacy.enabled=false optim.steps=8 run.out=mix --stop-after 3 > /dev/null
if "$bin" train "$r" "${base[@]}" privacy.target_epsilon=3 optim.steps=8 run.out=mix --resume \
    > mix.log 2> mix.err; then echo "resumed a non-private run as a private one"; exit 1; fi
grep -q "trained without privacy" mix.err || { cat mix.err; exit 1; }
test ! -e mix/adapter

# A private run resumed with another unit, clip, delta or corpus is refused: one
# guarantee cannot cover two settings.
"$bin" train "$r" "${base[@]}" privacy.target_epsilon= privacy.noise_multiplier=1.0 optim.steps=8 run.out=chg --stop-after 2 > /dev/null
if "$bin" train "$r" "${base[@]}" privacy.target_epsilon= privacy.noise_multiplier=1.0 optim.steps=8 \
    run.out=chg privacy.unit=sequence --resume > chg.log 2> chg.err; then echo "resumed with another unit"; exit 1; fi
grep -q "resuming with another privacy.unit (patient, now sequence)" chg.err || { cat chg.err; exit 1; }
if "$bin" train "$r" "${base[@]}" privacy.target_epsilon= privacy.noise_multiplier=1.0 optim.steps=8 \
    run.out=chg privacy.max_grad_norm=0.5 --resume > chg.log 2> chg.err; then echo "resumed with another clip"; exit 1; fi
grep -q "privacy.max_grad_norm" chg.err || { cat chg.err; exit 1; }

# Starting from an adapter under DP needs the user's declaration (an adapter trained on
# these patients without DP would void the guarantee); the manifest records its digest.
# The adapter's folder name holds '=': an option's value, not a recipe override.
mkdir -p "init=1" && cp -r a/adapter "init=1/"
if "$bin" train "$r" "${base[@]}" privacy.target_epsilon=3 optim.steps=3 run.out=ia \
    --init-adapter "init=1/adapter" > ia.log 2> ia.err; then echo "DP from an undeclared adapter"; exit 1; fi
grep -q "init-adapter-public" ia.err || { cat ia.err; exit 1; }
"$bin" train "$r" "${base[@]}" privacy.target_epsilon=3 optim.steps=3 run.out=ia \
    --init-adapter "init=1/adapter" --init-adapter-public > /dev/null
want=$(sha256sum "init=1/adapter/adapter_model.safetensors" | cut -d' ' -f1)
test "$(json ia/manifest.json "d['run']['init_adapter']['sha256']")" = "$want"
test "$(json ia/manifest.json "d['run']['init_adapter']['declared_public']")" = True
json ia/manifest.json "d['privacy']['statement']" | grep -q "declared free of this run's patients' data"

# The budget reached at the first step after a resume: the manifest counts the steps
# taken before it (not 0), and the statement says so.
"$bin" train "$r" "${base[@]}" privacy.target_epsilon=3 optim.steps=10 run.out=bud --stop-after 6 > /dev/null
"$bin" train "$r" "${base[@]}" privacy.target_epsilon=1 optim.steps=10 run.out=bud --resume > /dev/null
test "$(json bud/manifest.json "d['run']['steps_completed']")" = 6
test "$(json bud/manifest.json "d['privacy']['steps']")" = 6
json bud/manifest.json "d['privacy']['statement']" | grep -q " 6 steps"
test "$(json bud/manifest.json "d['run']['status']")" = "completed (privacy budget reached)"

# A resume that changes q makes a second phase; the manifest's epsilon composes both,
# and so does `privacy epsilon --manifest` (and --phases with the same numbers).
"$bin" train "$r" "${base[@]}" privacy.target_epsilon=8 optim.steps=8 run.out=two --stop-after 3 > /dev/null
"$bin" train "$r" "${base[@]}" privacy.target_epsilon=8 optim.steps=8 run.out=two privacy.expected_batch_size=24 --resume > /dev/null
test "$(json two/manifest.json "len(d['privacy']['phases'])")" = 2
"$bin" privacy epsilon --manifest two/manifest.json --json > two_eps.json
test "$(json two_eps.json "d['matches'] and d['phases'] == 2")" = True
"$bin" privacy epsilon --phases "$(json two/manifest.json "json.dumps(d['privacy']['phases'])")" \
    --delta "$(json two/manifest.json "repr(d['privacy']['delta'])")" --json > two_ph.json
test "$(json two_ph.json "d['epsilon']")" = "$(json two_eps.json "d['epsilon']")"

# Secure mode (the default; the demo recipe turns it off) draws its noise from the OS generator: two runs differ.
sec=(model.path=demo/model data.train=demo/corpus.h5 privacy.enabled=true privacy.secure_rng=true
     privacy.target_epsilon= privacy.noise_multiplier=1.0 optim.steps=2 optim.warmup_steps=0
     privacy.expected_batch_size=8 privacy.max_sequences_per_unit=2)
"$bin" train "$r" "${sec[@]}" run.out=s1 > /dev/null
"$bin" train "$r" "${sec[@]}" run.out=s2 > /dev/null
if cmp -s s1/adapter/adapter_model.safetensors s2/adapter/adapter_model.safetensors; then
  echo "secure mode repeated its noise"; exit 1; fi
test "$(json s1/manifest.json "d['privacy']['secure_rng']")" = True
# Only secure noise makes a guarantee: seeded noise (the base runs) can be regenerated
# from run.seed, so its statement and model card say there is none.
json s1/manifest.json "d['privacy']['statement']" | grep -q "^([0-9.e+-]*, [0-9.e+-]*)-differential privacy"
json a/manifest.json "d['privacy']['statement']" | grep -q "^NO GUARANTEE: privacy.secure_rng was false"
"$bin" export a --format peft -o a_exp > /dev/null
grep -q "No privacy guarantee: test setting" a_exp/peft/README.md
if grep -q "In plain words" a_exp/peft/README.md || grep -q "^- differential-privacy" a_exp/peft/README.md; then
  echo "the card of a seeded-noise run claims a guarantee"; exit 1; fi
"$bin" export s1 --format peft -o s1_exp > /dev/null
grep -q "In plain words" s1_exp/peft/README.md && grep -q "^- differential-privacy" s1_exp/peft/README.md

# A DP run resumed with privacy off is refused (its remaining steps would train without
# noise); following --stop-after's hint (the resolved recipe) keeps privacy on.
"$bin" train "$r" "${base[@]}" privacy.target_epsilon=8 optim.steps=6 run.out=off --stop-after 2 > off.log
if "$bin" train "$r" "${base[@]}" privacy.enabled=false optim.steps=6 run.out=off --resume > /dev/null 2> off.err; then
  echo "resumed a DP run without privacy"; exit 1; fi
grep -q "privacy.enabled false" off.err
# ...and so is one that switches the noise source: seeded steps stay reproducible
if "$bin" train "$r" "${base[@]}" privacy.target_epsilon=8 optim.steps=6 privacy.secure_rng=true run.out=off --resume \
    > /dev/null 2> rng.err; then echo "resumed seeded noise as secure"; exit 1; fi
grep -q "privacy.secure_rng (false, now true)" rng.err
"$bin" train off/config.resolved.yaml --resume > /dev/null
test "$(json off/manifest.json "d['privacy']['enabled'] and d['run']['status'].startswith('completed')")" = True

# Bad privacy settings: refused before training, nothing that looks complete.
refuse() { local pat=$1; shift
  if "$bin" train "$r" "${base[@]}" "$@" > out.log 2> err.log; then echo "accepted: $*"; exit 1; fi
  grep -q -- "$pat" err.log || { echo "message lacks '$pat':"; cat err.log; exit 1; }; }
refuse "1/N" privacy.target_epsilon=3 privacy.delta=0.5 run.out=bad1
test ! -e bad1/adapter
refuse "privacy.sample_rate" privacy.target_epsilon=3 privacy.expected_batch_size= privacy.sample_rate=1.5 run.out=bad2
refuse "noise_multiplier" privacy.target_epsilon= privacy.noise_multiplier=0 run.out=bad3
refuse "target_epsilon" privacy.target_epsilon=0.00001 optim.steps=50 run.out=bad4
test ! -e bad4/adapter
refuse "grad_accum" privacy.target_epsilon=3 optim.grad_accum=2 run.out=bad5
refuse "too small for any privacy guarantee" privacy.target_epsilon= privacy.noise_multiplier=1e-160 run.out=bad6
test ! -e bad6/adapter
refuse "9.2e18 steps" privacy.target_epsilon= privacy.noise_multiplier=1 optim.steps=0 privacy.epochs=1e300 run.out=bad7
# optim.epochs = 1e300 was cast to int64 (undefined) and trained one step
if "$bin" train "$r" model.path=demo/model data.train=demo/corpus.h5 optim.steps=0 optim.epochs=1e300 \
    run.out=bad8 > out.log 2> err.log; then echo "accepted optim.epochs=1e300"; exit 1; fi
grep -q "at most 2147483647" err.log
echo "dp ok"
