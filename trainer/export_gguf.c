/* llama.cpp LoRA adapter (GGUF), as convert_lora_to_gguf.py writes one
 * (research/formats.md §6):
 *   general.type = "adapter", general.architecture = the base's llama.cpp arch,
 *   adapter.type = "lora", adapter.lora.alpha = float32;
 *   tensors "<gguf base name>.lora_a" = PEFT A [r, in] (ne [in, r]) and ".lora_b" =
 *   PEFT B [out, r] (ne [r, out]).
 * Two transforms keep llama.cpp's arithmetic equal to PEFT's:
 *   - llama.cpp scales by alpha / r and knows no rsLoRA, so an rsLoRA adapter
 *     (scale alpha / sqrt(r)) is written with alpha · sqrt(r);
 *   - llama.cpp's "llama" arch (Llama, Mistral) uses interleaved RoPE pairs, so the
 *     HF converter permutes the rows of q_proj / k_proj; the same permutation
 *     applies to lora_b's rows (B·A's rows are W's rows), lora_a is unchanged.
 *     Qwen2 runs NeoX RoPE in llama.cpp: no permutation. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/gguf_write.h"
#include "trainer/export.h"

const char *et_gguf_arch_name(et_arch a) { return a == ET_ARCH_QWEN2 ? "qwen2" : "llama"; }

static const char *const GGUF_PROJ[ET_PROJ_COUNT] = {
    "attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"};

/* llama.cpp's permute(w, n_head): w.reshape(n_head, 2, rows/n_head/2, cols)
 * .swapaxes(1, 2): within each head, row j·(hd/2) + i moves to i·2 + j. */
static void permute_rows(float *dst, const float *src, int rows, int cols, int n_head) {
    int hd = rows / n_head, half = hd / 2;
    for (int h = 0; h < n_head; h++)
        for (int i = 0; i < half; i++)
            for (int j = 0; j < 2; j++)
                memcpy(dst + ((size_t)h * hd + (size_t)i * 2 + j) * cols,
                       src + ((size_t)h * hd + (size_t)j * half + i) * cols,
                       sizeof(float) * (size_t)cols);
}

int et_export_gguf(const et_export_run *r, const char *dir, int bf16, et_error *err) {
    const et_lora *l = &r->lora;
    const et_hf_config *c = &r->cfg;
    et_ggml_type type = bf16 ? ET_GGML_BF16 : ET_GGML_F32;
    et_gguf_writer *w = et_gguf_writer_new();
    if (!w) return et_fail(err, "out of memory");
    int rc = -1;
    float *perm = NULL;
    float alpha = l->use_rslora ? (float)(r->recipe.lora.alpha * sqrt((double)l->r))
                                : (float)r->recipe.lora.alpha;
    char name[128];
    snprintf(name, sizeof name, "ehrtune LoRA r%d", l->r);
    if (et_gguf_add_string(w, "general.architecture", et_gguf_arch_name(c->arch), err) ||
        et_gguf_add_string(w, "general.type", "adapter", err) ||
        et_gguf_add_string(w, "general.name", name, err) ||
        /* LlamaFileType: ALL_F32 = 0, MOSTLY_BF16 = 32 */
        et_gguf_add_u32(w, "general.file_type", bf16 ? 32 : 0, err) ||
        et_gguf_add_u32(w, "general.quantization_version", 2, err) ||
        et_gguf_add_string(w, "adapter.type", "lora", err) ||
        et_gguf_add_f32(w, "adapter.lora.alpha", alpha, err))
        goto done;
    /* ehrtune's keys (same content as the safetensors metadata): "ehrtune_x" -> "ehrtune.x". */
    for (int i = 0; r->metadata[i] && r->metadata[i + 1]; i += 2) {
        char key[128];
        snprintf(key, sizeof key, "ehrtune.%s", r->metadata[i] + 8);
        if (et_gguf_add_string(w, key, r->metadata[i + 1], err)) goto done;
    }
    int max_out = 0;
    for (int p = 0; p < ET_PROJ_COUNT; p++) {
        int in, out;
        et_proj_shape(c, (et_proj)p, &in, &out);
        if (out > max_out) max_out = out;
    }
    perm = malloc(sizeof(float) * (size_t)max_out * l->r);
    if (!perm) {
        et_fail(err, "out of memory");
        goto done;
    }
    int permute = c->arch != ET_ARCH_QWEN2;
    for (int layer = 0; layer < l->num_layers; layer++)
        for (int p = 0; p < ET_PROJ_COUNT; p++) {
            const et_lora_slot *s = et_lora_slot_at(l, layer, (et_proj)p);
            if (!s->a) continue;
            int64_t sa[2] = {l->r, s->in}, sb[2] = {s->out, l->r};
            const float *b = s->b;
            if (permute && (p == ET_PROJ_Q || p == ET_PROJ_K)) {
                int heads = p == ET_PROJ_Q ? c->num_heads : c->num_kv_heads;
                permute_rows(perm, s->b, s->out, l->r, heads);
                b = perm;
            }
            char ta[96], tb[96];
            snprintf(ta, sizeof ta, "blk.%d.%s.weight.lora_a", layer, GGUF_PROJ[p]);
            snprintf(tb, sizeof tb, "blk.%d.%s.weight.lora_b", layer, GGUF_PROJ[p]);
            if (et_gguf_add_tensor_f32(w, ta, 2, sa, s->a, type, err) ||
                et_gguf_add_tensor_f32(w, tb, 2, sb, b, type, err))
                goto done;
        }
    char path[4400];
    snprintf(path, sizeof path, "%s/adapter.gguf", dir);
    rc = et_gguf_write(w, path, ET_GGUF_WRITE_PRIVATE, err);
done:
    free(perm);
    et_gguf_writer_free(w);
    return rc;
}
