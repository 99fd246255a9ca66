/* README.md model card for an exported model. See model_card.h. */
#include "trainer/model_card.h"

#include <errno.h>
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- small JSON helpers (the manifest is a cJSON tree) --------------------------- */
static const char *jstr(const cJSON *root, const char *dotted, const char *fallback) {
    const cJSON *v = et_export_manifest_get(root, dotted);
    return cJSON_IsString(v) ? v->valuestring : fallback;
}

static double jnum(const cJSON *root, const char *dotted) {
    return et_export_manifest_number(root, dotted);
}

/* "3.2 GB" style sizes for people; exact bytes are in the manifest. */
static void human_bytes(char *out, size_t n, double b) {
    const char *unit[] = {"B", "kB", "MB", "GB", "TB"};
    int u = 0;
    while (b >= 1000 && u < 4) b /= 1000, u++;
    snprintf(out, n, u ? "%.3g %s" : "%.0f %s", b, unit[u]);
}

/* ---- corpus metadata (attributes and dataset sizes only; no token is read) ------- */
typedef struct {
    int ok;
    char tokenizer_sha256[80], source_sha256[80], created[40], deid_basis[512];
    cJSON *phi_scan;
    long long n_docs, n_tokens;
} corpus_meta;

static int read_attr_str(hid_t file, const char *name, char *out, size_t n) {
    out[0] = 0;
    if (H5Aexists(file, name) <= 0) return -1;
    hid_t a = H5Aopen(file, name, H5P_DEFAULT);
    hid_t t = a >= 0 ? H5Aget_type(a) : -1, s = a >= 0 ? H5Aget_space(a) : -1;
    int rc = -1;
    if (t >= 0 && s >= 0 && H5Tget_class(t) == H5T_STRING && H5Tis_variable_str(t) > 0 &&
        H5Sget_simple_extent_npoints(s) == 1) {
        hid_t mt = H5Tcopy(H5T_C_S1);
        H5Tset_size(mt, H5T_VARIABLE);
        H5Tset_cset(mt, H5T_CSET_UTF8);
        char *v = NULL;
        if (H5Aread(a, mt, &v) >= 0 && v) {
            snprintf(out, n, "%s", v);
            H5free_memory(v);
            rc = 0;
        }
        H5Tclose(mt);
    }
    if (s >= 0) H5Sclose(s);
    if (t >= 0) H5Tclose(t);
    if (a >= 0) H5Aclose(a);
    return rc;
}

static long long dataset_len(hid_t file, const char *name) {
    if (H5Lexists(file, name, H5P_DEFAULT) <= 0) return -1;
    hid_t d = H5Dopen2(file, name, H5P_DEFAULT);
    hid_t s = d >= 0 ? H5Dget_space(d) : -1;
    hsize_t dims[1] = {0};
    long long n = -1;
    if (s >= 0 && H5Sget_simple_extent_ndims(s) == 1 && H5Sget_simple_extent_dims(s, dims, NULL) == 1)
        n = (long long)dims[0];
    if (s >= 0) H5Sclose(s);
    if (d >= 0) H5Dclose(d);
    return n;
}

/* Reads the corpus's metadata if the file is still where the manifest says and
 * has the recorded size (else the numbers might describe another corpus). */
static void read_corpus_meta(corpus_meta *c, const cJSON *manifest) {
    memset(c, 0, sizeof *c);
    const cJSON *f = et_export_manifest_file(manifest, "corpus");
    const char *path = jstr(f, "path", NULL);
    double bytes = jnum(f, "bytes");
    struct stat st;
    if (!path || stat(path, &st) != 0 || (double)st.st_size != bytes) return;
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    hid_t file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (file < 0) return;
    char format[64], phi[8192];
    if (read_attr_str(file, "format", format, sizeof format) == 0 &&
        !strcmp(format, "ehrtune-corpus")) {
        c->ok = 1;
        read_attr_str(file, "tokenizer_sha256", c->tokenizer_sha256, sizeof c->tokenizer_sha256);
        read_attr_str(file, "source_sha256", c->source_sha256, sizeof c->source_sha256);
        read_attr_str(file, "created", c->created, sizeof c->created);
        read_attr_str(file, "deid_basis", c->deid_basis, sizeof c->deid_basis);
        if (read_attr_str(file, "phi_scan", phi, sizeof phi) == 0) c->phi_scan = cJSON_Parse(phi);
        c->n_docs = dataset_len(file, "patient_ids");
        c->n_tokens = dataset_len(file, "tokens");
    }
    H5Fclose(file);
}

/* ---- sections ---------------------------------------------------------------------- */
static const char *format_title(et_export_format f) {
    return f == ET_EXPORT_PEFT     ? "LoRA adapter (PEFT format)"
           : f == ET_EXPORT_MERGED ? "merged model (LoRA folded into the base weights, BF16)"
                                   : "LoRA adapter for llama.cpp (GGUF)";
}

static void targets_text(char *out, size_t n, unsigned targets) {
    out[0] = 0;
    for (int p = 0; p < ET_PROJ_COUNT; p++)
        if (targets & (1u << p))
            snprintf(out + strlen(out), n - strlen(out), "%s%s", out[0] ? ", " : "",
                     et_proj_name((et_proj)p));
}

/* DP ran with seeded noise (privacy.secure_rng recorded false): no guarantee. */
static int test_noise(const et_export_run *r) {
    const cJSON *srng = et_export_manifest_get(r->manifest, "privacy.secure_rng");
    return cJSON_IsFalse(srng);
}

/* s as the inside of a double-quoted YAML scalar: backslash and quote escaped, control
 * characters dropped (a path in the recipe is the user's, not ours to trust). */
static void yaml_quoted(FILE *o, const char *s) {
    for (; *s; s++) {
        if (*s == '"' || *s == '\\') fputc('\\', o);
        if ((unsigned char)*s >= 0x20) fputc(*s, o);
    }
}

/* What (ε, δ) means for one patient, in words. */
static void plain_words(FILE *o, const et_export_privacy *p, const char *unit) {
    /* The odds an observer gives "this patient was in the training data" can grow by
     * at most e^epsilon (research/phi-and-patient-dp.md §5); worked for two priors. */
    double f = exp(p->epsilon);
    double from_half = f / (f + 1.0), from_1pct = 0.01 * f / (0.01 * f + 0.99);
    const char *tier = p->epsilon <= 1 ? "strong" : p->epsilon <= 10 ? "reasonable" : "weak";
    fprintf(o,
            "This model was trained with differentially private SGD. **In plain words:** "
            "nothing in these weights or any checkpoint of the run can raise anyone's odds "
            "that a given %s was in the "
            "training data by more than a factor e^ε = %.4g (except with the small "
            "probability δ = %.3g that the bound fails). Someone who thought it a 50-50 "
            "chance could end at most %.4g%% sure; someone who started at 1%% at most "
            "%.3g%%. As a rough scale (Ponomareva et al., \"How to DP-fy ML\", 2023): "
            "ε ≤ 1 is a strong guarantee, ε ≤ 10 a reasonable one, above 10 a weak one; "
            "this model's ε = %.4g is **%s**.\n\n",
            unit, f, p->delta, 100 * from_half, 100 * from_1pct, p->epsilon, tier);
}

static void section_privacy(FILE *o, const et_export_run *r) {
    const et_export_privacy *p = &r->privacy;
    fprintf(o, "## Privacy guarantee\n\n");
    if (!p->dp) {
        fprintf(o,
                "**No formal privacy guarantee.** This model was trained without differential "
                "privacy (DP-SGD). Fine-tuned language models can memorise and reproduce parts of "
                "their training text, including rare details of individual patients. Handle these "
                "weights like the patient data they were trained on: same access controls, same "
                "data-use agreements, no publication.\n\n");
        const char *rec = jstr(r->manifest, "privacy.statement", NULL);
        if (rec) fprintf(o, "The run's manifest records: \"%s\"\n\n", rec);
        return;
    }
    const char *unit = p->unit[0] ? p->unit : "unit";
    if (test_noise(r)) {
        /* seeded noise (privacy.secure_rng false): the seed travels with the run, so the
         * noise can be regenerated and subtracted; no claim about these weights */
        fprintf(o,
                "**No privacy guarantee: test setting.** DP-SGD ran, but its noise came from a "
                "generator seeded by the run's seed (privacy.secure_rng: false), which is recorded "
                "with the run; anyone who knows it can regenerate and remove the noise. The "
                "numbers below describe the mechanism that ran, not a property of these weights. "
                "Handle them like the patient data they were trained on, and train with "
                "privacy.secure_rng: true for a guarantee.\n\n");
    } else {
        plain_words(o, p, unit);
    }
    fprintf(o, "| | |\n|---|---|\n");
    fprintf(o, "| ε (epsilon) spent | %.4g |\n| δ (delta) | %.3g |\n", p->epsilon, p->delta);
    fprintf(o, "| unit of privacy | %s (all records of one %s; %s adjacency) |\n", unit, unit,
            p->adjacency[0] ? p->adjacency : "add/remove");
    fprintf(o, "| accountant | %s |\n", p->accountant[0] ? p->accountant : "(not recorded)");
    if (isfinite(p->noise_multiplier)) fprintf(o, "| noise multiplier σ | %.4g |\n", p->noise_multiplier);
    if (isfinite(p->sample_rate))
        fprintf(o, "| sampling | %s, rate q = %.4g |\n", p->sampling[0] ? p->sampling : "Poisson",
                p->sample_rate);
    if (isfinite(p->max_grad_norm)) fprintf(o, "| clipping bound C (per %s) | %.4g |\n", unit, p->max_grad_norm);
    if (isfinite(p->steps)) fprintf(o, "| noisy steps | %.0f |\n", p->steps);
    if (isfinite(p->n_units)) fprintf(o, "| %ss trained on (N: in the training split, with a training sequence) | %.0f |\n", unit, p->n_units);
    if (isfinite(p->max_sequences_per_unit))
        fprintf(o, "| sequences per %s per step (at most) | %.0f |\n", unit, p->max_sequences_per_unit);
    const cJSON *srng = et_export_manifest_get(r->manifest, "privacy.secure_rng");
    if (cJSON_IsBool(srng))
        fprintf(o, "| noise from a secure generator | %s |\n", cJSON_IsTrue(srng) ? "yes" : "**no — test setting**");
    fprintf(o, "\n");
    const char *rec = jstr(r->manifest, "privacy.statement", NULL);
    if (rec) fprintf(o, "The run's manifest states: \"%s\"\n\n", rec);
    fprintf(o,
            "The guarantee covers every checkpoint of the run, not only these weights. **It does "
            "not cover:** the base model's pre-training data and any public data; hyperparameter "
            "search or evaluation done on the same patients' data (unless accounted for "
            "separately); facts shared by many patients (a guarantee about one patient does not "
            "hide what is true of a group); the PHI scan at ingest, which is a heuristic filter "
            "with no formal guarantee; the run's training log (metrics.jsonl: each step's loss, "
            "token and unit counts and gradient-norm statistics, computed from the data without "
            "noise — keep it with the patient data; this card leaves the loss and token counts "
            "of training out); the dataset sizes shown under Training data (patients, training "
            "sequences, corpus documents and tokens) and the throughput under Training run, "
            "exact and without noise. The "
            "trust model is central DP: whoever ran training saw the de-identified notes.\n\n");
}

static void section_base(FILE *o, const et_export_run *r) {
    const et_hf_config *c = &r->cfg;
    fprintf(o, "## Base model\n\n");
    fprintf(o, "- recipe `model.path`: `%s`\n", r->recipe.model.path ? r->recipe.model.path : "");
    fprintf(o, "- architecture: %s — %d layers, hidden %d, %d attention heads (%d key/value), "
               "head dim %d, MLP %d, vocabulary %d\n",
            et_arch_name(c->arch), c->num_layers, c->hidden_size, c->num_heads, c->num_kv_heads,
            c->head_dim, c->intermediate_size, c->vocab_size);
    double total = 0;
    int n = 0;
    const cJSON *f;
    cJSON_ArrayForEach(f, cJSON_GetObjectItemCaseSensitive(r->manifest, "files")) {
        const char *role = jstr(f, "role", "");
        if (strncmp(role, "base_model/", 11)) continue;
        n++;
        total += jnum(f, "bytes");
        if (!strcmp(role, "base_model/config.json"))
            fprintf(o, "- `config.json` sha256 `%s`\n", jstr(f, "sha256", "?"));
    }
    char hb[32];
    human_bytes(hb, sizeof hb, total);
    fprintf(o, "- %d base model files, %s in all; each file's sha256 is in `manifest.json` "
               "(roles `base_model/...`). The adapter only makes sense with exactly these "
               "weights.\n\n", n, hb);
}

static void section_data(FILE *o, const et_export_run *r, const corpus_meta *cm) {
    fprintf(o, "## Training data\n\n");
    fprintf(o, "Counts and digests only: this card holds no text, token or identifier from "
               "the corpus.\n\n");
    const cJSON *f = et_export_manifest_file(r->manifest, "corpus");
    char hb[32];
    human_bytes(hb, sizeof hb, jnum(f, "bytes"));
    fprintf(o, "| | |\n|---|---|\n");
    fprintf(o, "| corpus file sha256 | `%s` (%s) |\n", jstr(f, "sha256", "(not recorded)"), hb);
    double patients = jnum(r->manifest, "data.patients");
    double rows = jnum(r->manifest, "data.training_rows");
    if (isfinite(patients)) fprintf(o, "| patients trained on (with a training sequence) | %.0f |\n", patients);
    if (isfinite(rows))
        fprintf(o, "| training sequences | %.0f of %d tokens |\n", rows, r->recipe.data.seq_len);
    fprintf(o, "| split trained on | %s |\n", et_recipe_split_names[r->recipe.data.split]);
    if (cm->ok) {
        if (cm->n_docs >= 0) fprintf(o, "| documents in the corpus (all splits) | %lld |\n", cm->n_docs);
        if (cm->n_tokens >= 0) fprintf(o, "| tokens in the corpus (all splits) | %lld |\n", cm->n_tokens);
        if (cm->tokenizer_sha256[0])
            fprintf(o, "| tokenizer.json sha256 | `%s` |\n", cm->tokenizer_sha256);
        if (cm->source_sha256[0]) fprintf(o, "| ingested source file sha256 | `%s` |\n", cm->source_sha256);
        if (cm->created[0]) fprintf(o, "| corpus created | %s |\n", cm->created);
    }
    /* under DP these are data statistics without noise: outside the guarantee */
    if (!r->privacy.dp && r->metrics.steps_logged > 0 && r->metrics.tokens > 0)
        fprintf(o, "| tokens processed in training (logged steps) | %.0f (%.0f loss targets) |\n",
                r->metrics.tokens, r->metrics.targets);
    fprintf(o, "\n");
    if (!cm->ok)
        fprintf(o, "The corpus file was not available (or has changed) at export time, so only "
                   "the manifest's figures are shown.\n\n");
}

/* Keys of a PHI-scan summary whose string values are descriptions written by code,
 * not findings; every other string is left out. */
static int phi_key_is_description(const char *k) {
    static const char *const ok[] = {"reason", "basis", "method", "tool", "version", "scanner"};
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++)
        if (!strcmp(k, ok[i])) return 1;
    return 0;
}

static void phi_leaves(FILE *o, const cJSON *j, const char *prefix, int *rows) {
    const cJSON *it;
    cJSON_ArrayForEach(it, j) {
        if (*rows >= 60 || !it->string) return;
        char key[256];
        snprintf(key, sizeof key, "%s%s%s", prefix, prefix[0] ? "." : "", it->string);
        if (cJSON_IsObject(it)) phi_leaves(o, it, key, rows);
        else if (cJSON_IsNumber(it)) fprintf(o, "| %s | %.10g |\n", key, it->valuedouble), ++*rows;
        else if (cJSON_IsBool(it))
            fprintf(o, "| %s%s | %s |\n", key,
                    !strcmp(key, "allowed") ? " (findings let through with --allow-phi-findings)" : "",
                    cJSON_IsTrue(it) ? "true" : "false"), ++*rows;
        else if (cJSON_IsString(it) && phi_key_is_description(it->string) && strlen(it->valuestring) < 200)
            fprintf(o, "| %s | %s |\n", key, it->valuestring), ++*rows;
    }
}

static void section_deid(FILE *o, const corpus_meta *cm) {
    fprintf(o, "## De-identification\n\n");
    if (cm->ok && cm->deid_basis[0])
        fprintf(o, "Basis recorded at ingest: **%s**\n\n", cm->deid_basis);
    else
        fprintf(o, "Basis recorded at ingest: **none recorded.** The corpus does not say whether "
                   "its notes were de-identified under HIPAA Safe Harbor (45 CFR §164.514(b)(2)) "
                   "or Expert Determination; the data owner must establish and document this "
                   "before the model is shared.\n\n");
    if (cm->ok && cm->phi_scan) {
        fprintf(o, "PHI scan summary recorded at ingest (numbers only):\n\n| | |\n|---|---|\n");
        int rows = 0;
        phi_leaves(o, cm->phi_scan, "", &rows);
        fprintf(o, "\n");
    }
    fprintf(o, "Differential privacy and de-identification are separate: DP training does not "
               "make the training notes de-identified, and the PHI scan is a second line of "
               "defence, not a guarantee.\n\n");
}

static void section_config(FILE *o, const et_export_run *r) {
    const et_recipe *rc = &r->recipe;
    const et_lora *l = &r->lora;
    char tg[128];
    targets_text(tg, sizeof tg, l->targets);
    fprintf(o, "## Training configuration\n\n| | |\n|---|---|\n");
    fprintf(o, "| LoRA | r = %d, alpha = %d, scaling = %.6g (%s), dropout %.3g |\n", l->r,
            rc->lora.alpha, l->scale, l->use_rslora ? "rsLoRA: alpha/√r" : "alpha/r",
            rc->lora.dropout);
    fprintf(o, "| target modules | %s (all %d layers) |\n", tg, l->num_layers);
    fprintf(o, "| trainable parameters | %lld |\n", (long long)l->n_params);
    fprintf(o, "| optimizer | AdamW, lr %.4g, %s schedule, %d warm-up steps, betas (%.4g, %.4g), "
               "eps %.3g, weight decay %.4g |\n",
            rc->optim.lr, et_recipe_schedule_names[rc->optim.schedule], rc->optim.warmup_steps,
            rc->optim.beta1, rc->optim.beta2, rc->optim.eps, rc->optim.weight_decay);
    if (!r->privacy.dp)
        fprintf(o, "| batch | %d sequences × %d accumulation, gradient clipping %.4g |\n",
                rc->run.micro_batch, rc->optim.grad_accum, rc->optim.max_grad_norm);
    else
        fprintf(o, "| batch | Poisson-sampled %ss, micro-batches of %d sequences |\n",
                r->privacy.unit[0] ? r->privacy.unit : "unit", rc->run.micro_batch);
    fprintf(o, "| sequence length | %d |\n| base weights | %s (quantize: %s) |\n| seed | %llu |\n",
            rc->data.seq_len, et_recipe_dtype_names[rc->model.dtype],
            et_recipe_quantize_names[rc->model.quantize], (unsigned long long)rc->run.seed);
    const cJSON *rf = et_export_manifest_file(r->manifest, "recipe_resolved");
    if (rf) fprintf(o, "| resolved recipe sha256 | `%s` |\n", jstr(rf, "sha256", "?"));
    fprintf(o, "\nThe full recipe, every key, is `config.resolved.yaml` in the run directory.\n\n");
}

static void section_outcome(FILE *o, const et_export_run *r) {
    const cJSON *m = r->manifest;
    fprintf(o, "## Training run\n\n| | |\n|---|---|\n");
    fprintf(o, "| status | %s |\n", jstr(m, "run.status", "?"));
    double steps = jnum(m, "run.steps_completed");
    if (isfinite(steps)) fprintf(o, "| optimizer steps | %.0f |\n", steps);
    if (!r->privacy.dp && r->metrics.steps_logged > 0)
        fprintf(o, "| training loss | %.4f (first logged step) → %.4f (step %lld) |\n",
                r->metrics.first_loss, r->metrics.last_loss, (long long)r->metrics.last_step);
    fprintf(o, "| started / finished (UTC) | %s / %s |\n", jstr(m, "run.started_utc", "?"),
            jstr(m, "run.finished_utc", "?"));
    fprintf(o, "| device | %s |\n", jstr(m, "run.device", "?"));
    double tps = jnum(m, "run.tokens_per_s");
    if (isfinite(tps)) fprintf(o, "| throughput | %.0f tokens/s |\n", tps);
    char mem[32];
    human_bytes(mem, sizeof mem, jnum(m, "host.memory_total_bytes"));
    fprintf(o, "| hardware | %s, %.0f logical cores, %s memory", jstr(m, "host.cpu_model", "CPU (not recorded)"),
            jnum(m, "host.logical_cores"), mem);
    const char *gpu = jstr(m, "host.gpu.name", NULL);
    if (gpu) {
        double count = jnum(m, "host.gpu.count");
        fprintf(o, "; %s", gpu);
        if (isfinite(count)) fprintf(o, " × %.0f", count);
    }
    fprintf(o, " |\n");
    double joules = jnum(m, "energy.gpu_joules");
    if (isfinite(joules)) fprintf(o, "| GPU energy (NVML) | %.4g kWh |\n", joules / 3.6e6);
    else fprintf(o, "| energy | not measured |\n");
    fprintf(o, "| ehrtune version | %s |\n\n", jstr(m, "code.version", "unknown"));
}

static void eval_leaves(FILE *o, const cJSON *j, const char *prefix, int *rows) {
    const cJSON *it;
    cJSON_ArrayForEach(it, j) {
        if (*rows >= 200) return;
        char key[256];
        if (it->string) snprintf(key, sizeof key, "%s%s%s", prefix, prefix[0] ? "." : "", it->string);
        else snprintf(key, sizeof key, "%s[%d]", prefix, *rows);
        if (cJSON_IsObject(it)) eval_leaves(o, it, key, rows);
        else if (cJSON_IsNumber(it)) fprintf(o, "| %s | %.6g |\n", key, it->valuedouble), ++*rows;
    }
}

static void section_eval(FILE *o, const et_export_run *r) {
    fprintf(o, "## Evaluation\n\n");
    if (!r->eval) {
        fprintf(o, "No evaluation results were recorded for this run (no `eval.json` in the run "
                   "directory). The training loss above is not evidence of clinical "
                   "usefulness.\n\n");
        return;
    }
    fprintf(o, "From `eval.json` in the run directory (numeric results only):\n\n"
               "| metric | value |\n|---|---|\n");
    int rows = 0;
    eval_leaves(o, r->eval, "", &rows);
    fprintf(o, "\n");
}

static void section_use(FILE *o) {
    fprintf(o,
            "## Intended use\n\n"
            "Research and development on clinical text inside the organisation that holds the "
            "training data, under its governance: for example drafting, summarising or "
            "classifying notes for review by qualified staff, and studying the model's "
            "behaviour.\n\n"
            "## Limitations\n\n"
            "- **Not a medical device.** It has not been cleared or approved by any regulator "
            "and must not be used to diagnose, treat or make decisions about patients. Every "
            "output needs review by a qualified professional.\n"
            "- Language models state falsehoods fluently; clinical facts, doses and codes in "
            "outputs may be wrong.\n"
            "- The model reflects its training notes: one institution's population, "
            "documentation habits and biases. Performance can differ between patient groups "
            "and will drift as practice changes.\n"
            "- Without a differential-privacy guarantee (see above) the weights may reveal "
            "details of training patients and must be protected accordingly.\n"
            "- The base model's own licence, usage policy and limitations apply.\n\n");
}

static void section_files(FILE *o, const et_export_run *r, et_export_format fmt,
                          const et_merge_stats *ms) {
    const char *base = r->recipe.model.path ? r->recipe.model.path : "BASE_MODEL";
    fprintf(o, "## Files and how to load them\n\n");
    if (fmt == ET_EXPORT_PEFT) {
        fprintf(o, "`adapter_config.json` and `adapter_model.safetensors` (PEFT LoRA; tensors "
                   "`base_model.model.<module>.lora_A.weight` [r, in] and `lora_B.weight` "
                   "[out, r]). `__metadata__` repeats the privacy statement and the manifest's "
                   "digest.\n\n```python\n"
                   "from transformers import AutoModelForCausalLM\nfrom peft import PeftModel\n"
                   "base = AutoModelForCausalLM.from_pretrained(\"%s\")\n"
                   "model = PeftModel.from_pretrained(base, \"path/to/this/folder\")\n```\n\n"
                   "With ehrtune: `ehrtune forward --model %s --adapter path/to/this/folder ...` "
                   "or `ehrtune train RECIPE --init-adapter path/to/this/folder`.\n\n",
                base, base);
    } else if (fmt == ET_EXPORT_MERGED) {
        char hb[32];
        human_bytes(hb, sizeof hb, ms ? (double)ms->tensor_bytes : 0);
        fprintf(o, "A complete Hugging Face model folder: `config.json` (dtype bfloat16), %s "
                   "(%d shard%s, %s of BF16 weights; W' = W + scaling · B · A on every targeted "
                   "projection), and the base model's tokenizer and generation files.\n\n"
                   "```python\nfrom transformers import AutoModelForCausalLM\n"
                   "model = AutoModelForCausalLM.from_pretrained(\"path/to/this/folder\", "
                   "dtype=\"bfloat16\")\n```\n\n",
                ms && ms->n_shards > 1 ? "`model-*-of-*.safetensors` + `model.safetensors.index.json`"
                                       : "`model.safetensors`",
                ms ? ms->n_shards : 1, ms && ms->n_shards == 1 ? "" : "s", hb);
    } else {
        fprintf(o, "`adapter.gguf`: a llama.cpp LoRA adapter (general.type \"adapter\", "
                   "architecture \"%s\"). It applies to a GGUF conversion of the base model "
                   "above:\n\n```sh\nllama-cli -m base-model.gguf --lora adapter.gguf ...\n```\n\n",
                et_gguf_arch_name(r->cfg.arch));
        if (r->lora.use_rslora)
            fprintf(o, "llama.cpp scales LoRA by alpha/r and has no rsLoRA switch, so "
                       "`adapter.lora.alpha` holds alpha·√r = %.6g to keep PEFT's alpha/√r.\n\n",
                    r->recipe.lora.alpha * sqrt((double)r->lora.r));
    }
}

static void section_provenance(FILE *o, const et_export_run *r) {
    fprintf(o, "## Provenance\n\n"
               "`manifest.json` is the training run's audit record, copied unchanged (sha256 "
               "`%s`, also stored in the weights' metadata): the sha256 of the corpus, of every "
               "base model file and of the recipe; the code version and the sha256 of the "
               "executable that trained (`%s`); the host; start and end times; the privacy "
               "parameters. Check the inputs on any machine with\n\n"
               "```sh\njq -r '.files[] | \"\\(.sha256)  \\(.path)\"' manifest.json | sha256sum -c\n```\n\n"
               "Exported by ehrtune %s.\n",
            r->manifest_sha256, jstr(r->manifest, "code.executable_sha256", "not recorded"),
            r->export_version);
}

int et_model_card_write(const et_export_run *r, et_export_format fmt, const et_merge_stats *merge,
                        const char *path, et_error *err) {
    FILE *o = fopen(path, "wx");
    if (!o) return et_fail(err, "%s: cannot create (%s)", path, strerror(errno));
    corpus_meta cm;
    read_corpus_meta(&cm, r->manifest);
    const char *base = r->recipe.model.path ? r->recipe.model.path : "";
    /* Hugging Face model-card metadata (YAML front matter). */
    fprintf(o, "---\nbase_model: \"");
    yaml_quoted(o, base);
    fprintf(o, "\"\n");
    if (fmt == ET_EXPORT_PEFT) fprintf(o, "library_name: peft\n");
    if (fmt == ET_EXPORT_MERGED) fprintf(o, "library_name: transformers\n");
    fprintf(o, "tags:\n- ehrtune\n- lora\n- clinical\n%s---\n\n",
            r->privacy.dp && !test_noise(r) ? "- differential-privacy\n" : "");
    fprintf(o, "# %s\n\n", format_title(fmt));
    fprintf(o, "Fine-tuned with ehrtune (LoRA) from `%s` on clinical notes (see "
               "*De-identification* for what was recorded about them). **Not a medical "
               "device**: not for diagnosis, treatment or any decision about a patient.\n\n",
            base);
    fprintf(o, "**Privacy:** %s\n\n", r->privacy.statement);
    section_privacy(o, r);
    section_base(o, r);
    section_data(o, r, &cm);
    section_deid(o, &cm);
    section_config(o, r);
    section_outcome(o, r);
    section_eval(o, r);
    section_use(o);
    section_files(o, r, fmt, merge);
    section_provenance(o, r);
    cJSON_Delete(cm.phi_scan);
    int bad = ferror(o) != 0;
    bad |= fflush(o) != 0 || fsync(fileno(o)) != 0;
    bad |= fclose(o) != 0;
    return bad ? et_fail(err, "%s: write failed (%s) — disk full?", path, strerror(errno)) : 0;
}
