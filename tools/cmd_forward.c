/* ehrtune forward: one forward + backward pass of a model (and optional PEFT
 * adapter) on a JSON batch; writes logits, loss and LoRA gradients. Used by the
 * crosscheck tests and by scripts that need ehrtune's numbers. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/safetensors.h"
#include "tools/cli_args.h"
#include "tools/commands.h"
#include "trainer/model.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: ehrtune forward --model DIR [--adapter DIR] --tokens FILE -o OUT.safetensors\n"
            "\n"
            "FILE is JSON: {\"input_ids\": [[...], ...], \"loss_mask\": [[...], ...]?}, rows of\n"
            "equal length. Runs one forward and backward pass (dropout off) and writes\n"
            "  logits [B, T, V] fp32, loss (HF causal-LM loss: position t predicts t+1, mean\n"
            "  over targets whose loss_mask is 1), and d(loss)/d(w) for every LoRA weight of\n"
            "  --adapter under its PEFT name.\n");
}

typedef struct {
    int b, t;
    int32_t *ids, *targets;
} token_batch;

/* Parses the tokens file; targets[i] = ids[i+1] if loss_mask[i+1] (default 1) else -1. */
static int read_tokens(token_batch *tb, const char *path, int vocab, et_error *err) {
    FILE *f = fopen(path, "rb");
    if (!f) return et_fail(err, "%s: cannot open (%s)", path, strerror(errno));
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    rewind(f);
    if (len < 0 || len > (256L << 20)) {
        fclose(f);
        return et_fail(err, "%s: unreadable or larger than 256 MiB", path);
    }
    char *text = malloc((size_t)len + 1);
    size_t got = text ? fread(text, 1, (size_t)len, f) : 0;
    fclose(f);
    if (!text || got != (size_t)len) {
        free(text);
        return et_fail(err, "%s: read failed", path);
    }
    text[len] = 0;
    cJSON *root = cJSON_Parse(text);
    free(text);
    int rc = -1;
    const cJSON *ids = root ? cJSON_GetObjectItemCaseSensitive(root, "input_ids") : NULL;
    const cJSON *mask = root ? cJSON_GetObjectItemCaseSensitive(root, "loss_mask") : NULL;
    if (!cJSON_IsArray(ids) || cJSON_GetArraySize(ids) == 0 ||
        !cJSON_IsArray(cJSON_GetArrayItem(ids, 0))) {
        et_fail(err, "%s: expected {\"input_ids\": [[...], ...]} with at least one row", path);
        goto done;
    }
    tb->b = cJSON_GetArraySize(ids);
    tb->t = cJSON_GetArraySize(cJSON_GetArrayItem(ids, 0));
    if (tb->t < 1) {
        et_fail(err, "%s: input_ids rows are empty", path);
        goto done;
    }
    if (mask && (!cJSON_IsArray(mask) || cJSON_GetArraySize(mask) != tb->b)) {
        et_fail(err, "%s: loss_mask must have one row per input_ids row", path);
        goto done;
    }
    size_t n = (size_t)tb->b * tb->t;
    tb->ids = malloc(n * sizeof(int32_t));
    tb->targets = malloc(n * sizeof(int32_t));
    for (int r = 0; r < tb->b; r++) {
        const cJSON *row = cJSON_GetArrayItem(ids, r);
        const cJSON *mrow = mask ? cJSON_GetArrayItem(mask, r) : NULL;
        if (!cJSON_IsArray(row) || cJSON_GetArraySize(row) != tb->t ||
            (mrow && (!cJSON_IsArray(mrow) || cJSON_GetArraySize(mrow) != tb->t))) {
            et_fail(err, "%s: row %d has a different length than row 0 (all rows must have %d "
                         "tokens, loss_mask rows too)",
                    path, r, tb->t);
            goto done;
        }
        for (int i = 0; i < tb->t; i++) {
            const cJSON *v = cJSON_GetArrayItem(row, i);
            /* a whole number: 3.7 must not become token 3 */
            if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble >= vocab ||
                v->valuedouble != floor(v->valuedouble)) {
                et_fail(err, "%s: input_ids[%d][%d] is not a token id below the vocabulary "
                             "size %d",
                        path, r, i, vocab);
                goto done;
            }
            tb->ids[(size_t)r * tb->t + i] = v->valueint;
        }
        for (int i = 0; i < tb->t; i++) {
            int keep = 1;
            if (i + 1 >= tb->t) keep = 0;
            else if (mrow) keep = cJSON_GetArrayItem(mrow, i + 1)->valuedouble != 0;
            tb->targets[(size_t)r * tb->t + i] = keep ? tb->ids[(size_t)r * tb->t + i + 1] : -1;
        }
    }
    rc = 0;
done:
    cJSON_Delete(root);
    return rc;
}

int cmd_forward(int argc, char **argv) {
    const char *model_dir = NULL, *adapter = NULL, *tokens = NULL, *out = NULL;
    et_cli_seen seen = {0};
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        }
        const char **dst = !strcmp(argv[i], "--model")     ? &model_dir
                           : !strcmp(argv[i], "--adapter") ? &adapter
                           : !strcmp(argv[i], "--tokens")  ? &tokens
                           : !strcmp(argv[i], "-o")        ? &out
                                                           : NULL;
        if (!dst) {
            fprintf(stderr, "ehrtune forward: unexpected argument '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        }
        if (!(*dst = et_cli_value("ehrtune forward", &seen, argv[i], argc, argv, &i))) return 2;
    }
    if (!model_dir || !tokens || !out) {
        usage(stderr);
        return 2;
    }
    et_error err = {{0}};
    et_model m;
    et_lora l;
    int have_lora = 0, rc = 1;
    token_batch tb = {0};
    et_acts *acts = NULL;
    et_st_writer w;
    et_st_writer_init(&w);
    if (et_model_load(&m, model_dir, &err)) goto fail_nomodel;
    if (adapter) {
        if (et_lora_load_peft(&l, &m.cfg, adapter, &err)) goto fail;
        have_lora = 1;
    }
    if (read_tokens(&tb, tokens, m.cfg.vocab_size, &err)) goto fail;
    if (et_acts_create(&acts, &m.cfg, have_lora ? &l : NULL, tb.b, tb.t, &err)) goto fail;
    et_batch batch = {tb.ids, tb.targets, tb.b, tb.t, NULL};
    double loss_sum;
    int64_t n_valid;
    if (et_model_forward(&m, have_lora ? &l : NULL, acts, &batch, 0, 0, 0, &loss_sum, &n_valid,
                         &err))
        goto fail;
    if (n_valid == 0) {
        et_fail(&err, "%s: no position has a target (every loss_mask is 0 or rows have one "
                      "token), so the loss is undefined",
                tokens);
        goto fail;
    }
    float loss = (float)(loss_sum / (double)n_valid);
    if (have_lora) et_model_backward(&m, &l, acts, &batch, 1.0f / (float)n_valid);

    int64_t lshape[3] = {tb.b, tb.t, m.cfg.vocab_size};
    if (et_st_writer_add_f32(&w, "logits", ET_DT_F32, 3, lshape, et_acts_logits(acts), &err) ||
        et_st_writer_add_f32(&w, "loss", ET_DT_F32, 0, lshape, &loss, &err))
        goto fail;
    char (*keys)[256] = NULL;
    if (have_lora) {
        keys = calloc((size_t)l.num_layers * ET_PROJ_COUNT * 2, sizeof *keys);
        int k = 0;
        for (int layer = 0; layer < l.num_layers; layer++)
            for (int p = 0; p < ET_PROJ_COUNT; p++) {
                et_lora_slot *s = et_lora_slot_at(&l, layer, (et_proj)p);
                if (!s->a) continue;
                int64_t sa[2] = {l.r, s->in}, sb[2] = {s->out, l.r};
                et_lora_key(keys[k], 256, layer, (et_proj)p, 0);
                if (et_st_writer_add_f32(&w, keys[k++], ET_DT_F32, 2, sa, s->da, &err)) goto fail_keys;
                et_lora_key(keys[k], 256, layer, (et_proj)p, 1);
                if (et_st_writer_add_f32(&w, keys[k++], ET_DT_F32, 2, sb, s->db, &err)) goto fail_keys;
            }
    }
    if (et_st_writer_write(&w, out, 0, &err)) goto fail_keys;
    printf("loss %.6f over %lld targets; wrote %s\n", loss, (long long)n_valid, out);
    rc = 0;
fail_keys:
    free(keys);
fail:
    et_st_writer_free(&w);
    et_acts_free(acts);
    free(tb.ids);
    free(tb.targets);
    if (have_lora) et_lora_free(&l);
    et_model_free(&m);
fail_nomodel:
    if (rc) fprintf(stderr, "ehrtune forward: %s\n", err.msg);
    return rc;
}
