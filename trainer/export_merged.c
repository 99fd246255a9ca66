/* Merged export: the LoRA folded into the base weights (trainer/merge.h), plus the
 * base's config.json (dtype set to bfloat16) and tokenizer / generation files, so
 * the folder loads with AutoModelForCausalLM.from_pretrained as it is. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "trainer/export.h"

/* Files of an HF model folder that describe tokenisation and generation; copied
 * when the base has them. */
static const char *const COPIED[] = {
    "generation_config.json", "tokenizer.json",  "tokenizer_config.json",
    "special_tokens_map.json", "tokenizer.model", "added_tokens.json",
    "vocab.json",             "merges.txt",      "chat_template.jinja",
    "chat_template.json",
};

static int copy_file(const char *from, const char *to, et_error *err) {
    int in = open(from, O_RDONLY);
    if (in < 0) return et_fail(err, "%s: cannot open (%s)", from, strerror(errno));
    int out = open(to, O_WRONLY | O_CREAT | O_EXCL, 0600);
    if (out < 0) {
        close(in);
        return et_fail(err, "%s: cannot create (%s)", to, strerror(errno));
    }
    char buf[1 << 16];
    int bad = 0;
    for (;;) {
        ssize_t n = read(in, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            bad = 1;
            break;
        }
        if (n == 0) break;
        for (ssize_t off = 0; off < n;) {
            ssize_t k = write(out, buf + off, (size_t)(n - off));
            if (k < 0 && errno == EINTR) continue;
            if (k <= 0) {
                bad = 1;
                break;
            }
            off += k;
        }
        if (bad) break;
    }
    bad |= fsync(out) != 0;
    bad |= close(out) != 0;
    close(in);
    return bad ? et_fail(err, "%s: copy from %s failed (%s)", to, from, strerror(errno)) : 0;
}

/* config.json as the base has it, except the dtype, which now says what the
 * weights are (transformers v4 reads torch_dtype, v5 dtype). */
static int write_config(const char *base_dir, const char *dir, et_error *err) {
    char path[4400];
    snprintf(path, sizeof path, "%s/config.json", base_dir);
    FILE *f = fopen(path, "rb");
    if (!f) return et_fail(err, "%s: cannot open (%s)", path, strerror(errno));
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    rewind(f);
    char *text = (n >= 0 && n < (16L << 20)) ? malloc((size_t)n + 1) : NULL;
    size_t got = text ? fread(text, 1, (size_t)n, f) : 0;
    fclose(f);
    if (!text || got != (size_t)n) {
        free(text);
        return et_fail(err, "%s: read failed", path);
    }
    text[n] = 0;
    cJSON *c = cJSON_Parse(text);
    free(text);
    if (!cJSON_IsObject(c)) {
        cJSON_Delete(c);
        return et_fail(err, "%s: not a JSON object", path);
    }
    int has_v5 = cJSON_HasObjectItem(c, "dtype");
    cJSON_DeleteItemFromObjectCaseSensitive(c, "torch_dtype");
    cJSON_AddStringToObject(c, "torch_dtype", "bfloat16");
    if (has_v5) {
        cJSON_DeleteItemFromObjectCaseSensitive(c, "dtype");
        cJSON_AddStringToObject(c, "dtype", "bfloat16");
    }
    char *out = cJSON_Print(c);
    cJSON_Delete(c);
    if (!out) return et_fail(err, "out of memory");
    snprintf(path, sizeof path, "%s/config.json", dir);
    f = fopen(path, "wx");
    int bad = !f || fputs(out, f) < 0 || fputc('\n', f) < 0;
    if (f) bad = (fflush(f) != 0 || fsync(fileno(f)) != 0 || fclose(f) != 0) || bad;
    free(out);
    return bad ? et_fail(err, "%s: write failed (%s)", path, strerror(errno)) : 0;
}

int et_export_merged(const et_export_run *r, const char *dir, uint64_t max_shard_bytes,
                     et_merge_stats *st, et_error *err) {
    et_merge_source src;
    if (et_merge_source_open_hf(&src, r->base_dir, err)) return -1;
    et_merge_options o = {max_shard_bytes, (const char *const *)r->metadata, 0};
    int rc = et_merge_write(&src, &r->cfg, &r->lora, dir, &o, st, err);
    et_merge_source_close(&src);
    if (rc) return rc;
    if (write_config(r->base_dir, dir, err)) return -1;
    char from[4400], to[4400];
    struct stat sb;
    for (size_t i = 0; i < sizeof COPIED / sizeof *COPIED; i++) {
        snprintf(from, sizeof from, "%s/%s", r->base_dir, COPIED[i]);
        if (stat(from, &sb) != 0 || !S_ISREG(sb.st_mode)) continue;
        snprintf(to, sizeof to, "%s/%s", dir, COPIED[i]);
        if (copy_file(from, to, err)) return -1;
    }
    return 0;
}
