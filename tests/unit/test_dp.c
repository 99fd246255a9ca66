/* DP-SGD building blocks: per-example gradients against the naive one-example-at-a-
 * time path, a partial micro-batch against a plan of its own size, clipping on a toy
 * problem with a known answer, the noise's standard deviation, units (a patient with
 * five documents is one unit), Poisson sampling, and the ChaCha20 generator against
 * RFC 8439. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "data/corpus.h"
#include "data/sequences.h"
#include "trainer/dp.h"
#include "trainer/dp_rng.h"
#include "trainer/lora.h"
#include "trainer/model.h"

static double rel_err(const float *x, const float *y, int64_t n) {
    double num = 0, den = 0;
    for (int64_t i = 0; i < n; i++) {
        num += ((double)x[i] - y[i]) * ((double)x[i] - y[i]);
        den += (double)y[i] * y[i];
    }
    return sqrt(num) / sqrt(den > 0 ? den : 1e-300);
}

/* The committed Llama fixture (GQA, llama3 RoPE) and its PEFT adapter. */
static void load_fixture(et_model *m, et_lora *l) {
    char mdir[1100], adir[1100];
    snprintf(mdir, sizeof mdir, "%s/tests/fixtures/llama_gqa_llama3/model", EHRTUNE_SOURCE_DIR);
    snprintf(adir, sizeof adir, "%s/tests/fixtures/llama_gqa_llama3/adapter", EHRTUNE_SOURCE_DIR);
    et_error err;
    if (et_model_load(m, mdir, &err) || et_lora_load_peft(l, &m->cfg, adir, &err))
        fail_msg("%s", err.msg);
}

/* The batched per-example backward (one GEMM slice per example) must equal running
 * each example alone through the ordinary backward, with and without LoRA dropout,
 * and with per-row loss weights. */
static void per_example_matches_naive(void **state) {
    (void)state;
    et_error err;
    et_model m;
    et_lora l;
    load_fixture(&m, &l);
    enum { B = 3, T = 9 };
    int32_t ids[B * T], tg[B * T];
    for (int i = 0; i < B * T; i++) ids[i] = (i * 37 + 11) % m.cfg.vocab_size;
    for (int i = 0; i < B * T; i++) tg[i] = (i % T == T - 1 || i % 5 == 0) ? -1 : ids[i + 1];
    const float row_scale[B] = {0.25f, 1.0f / 7.0f, 0.5f};
    int64_t P = l.n_params;
    float *pe = calloc((size_t)(B * P), sizeof(float));
    for (int drop = 0; drop < 2; drop++) {
        l.dropout = drop ? 0.3f : 0.0f;
        et_acts *a, *a1;
        assert_int_equal(et_acts_create(&a, &m.cfg, &l, B, T, &err), 0);
        assert_int_equal(et_acts_create(&a1, &m.cfg, &l, 1, T, &err), 0);
        et_batch batch = {ids, tg, B, T, row_scale};
        double ls;
        int64_t nv;
        assert_int_equal(et_model_forward(&m, &l, a, &batch, 1, 77, 5, &ls, &nv, &err), 0);
        memset(pe, 0, sizeof(float) * (size_t)(B * P));
        memset(l.grads, 0, sizeof(float) * (size_t)P);
        et_model_backward_per_example(&m, &l, a, &batch, 1.0f, pe);
        for (int64_t i = 0; i < P; i++) assert_true(l.grads[i] == 0.0f); /* untouched */
        /* Naive path: each example alone through the ordinary backward. (With dropout
         * a lone row would draw its mask at other element offsets than inside the
         * batch, so there only the sum over examples is compared, below.) */
        for (int e = 0; e < B && !drop; e++) {
            et_batch one = {ids + e * T, tg + e * T, 1, T, row_scale + e};
            assert_int_equal(et_model_forward(&m, &l, a1, &one, 1, 77, 5, &ls, &nv, &err), 0);
            memset(l.grads, 0, sizeof(float) * (size_t)P);
            et_model_backward(&m, &l, a1, &one, 1.0f);
            double e_rel = rel_err(pe + (size_t)e * P, l.grads, P);
            if (!(e_rel < 1e-6)) fail_msg("example %d: relative error %.3g", e, e_rel);
        }
        float *sum = calloc((size_t)P, sizeof(float));
        /* Sum over examples equals the ordinary batched backward (dropout on or off). */
        for (int e = 0; e < B; e++)
            for (int64_t i = 0; i < P; i++) sum[i] += pe[(size_t)e * P + i];
        memset(l.grads, 0, sizeof(float) * (size_t)P);
        assert_int_equal(et_model_forward(&m, &l, a, &batch, 1, 77, 5, &ls, &nv, &err), 0);
        et_model_backward(&m, &l, a, &batch, 1.0f);
        double s_rel = rel_err(sum, l.grads, P);
        if (!(s_rel < 1e-6)) fail_msg("dropout %d: summed per-example relative error %.3g", drop, s_rel);
        free(sum);
        et_acts_free(a);
        et_acts_free(a1);
    }
    free(pe);
    et_lora_free(&l);
    et_model_free(&m);
}

/* DP's micro-batches hold as many rows as the sampled units have (Poisson sampling),
 * mostly fewer than the activations were planned for: a batch of b rows in a plan for
 * B > b must give the loss and gradients of a plan for exactly b (found 2026-11-26:
 * the final norm read the last layer's output at an offset computed from b, not B). */
static void partial_microbatch_matches_exact_plan(void **state) {
    (void)state;
    et_error err;
    et_model m;
    et_lora l;
    load_fixture(&m, &l);
    enum { B = 3, b = 2, T = 9 };
    int32_t ids[B * T], tg[B * T];
    for (int i = 0; i < B * T; i++) ids[i] = (i * 53 + 7) % m.cfg.vocab_size;
    for (int i = 0; i < B * T; i++) tg[i] = (i % T == T - 1 || i % 4 == 1) ? -1 : ids[i + 1];
    const int64_t P = l.n_params;
    float *g_exact = malloc(sizeof(float) * (size_t)P);
    et_acts *big, *exact;
    assert_int_equal(et_acts_create(&big, &m.cfg, &l, B, T, &err), 0);
    assert_int_equal(et_acts_create(&exact, &m.cfg, &l, b, T, &err), 0);
    et_batch batch = {ids, tg, b, T, NULL};
    double ls_big, ls_exact;
    int64_t nv_big, nv_exact;
    /* the big plan first runs a full batch, so its slots hold other rows' values */
    et_batch full = {ids, tg, B, T, NULL};
    assert_int_equal(et_model_forward(&m, &l, big, &full, 1, 3, 1, &ls_big, &nv_big, &err), 0);
    memset(l.grads, 0, sizeof(float) * (size_t)P);
    assert_int_equal(et_model_forward(&m, &l, exact, &batch, 1, 3, 1, &ls_exact, &nv_exact, &err), 0);
    et_model_backward(&m, &l, exact, &batch, 1.0f / (float)nv_exact);
    memcpy(g_exact, l.grads, sizeof(float) * (size_t)P);
    memset(l.grads, 0, sizeof(float) * (size_t)P);
    assert_int_equal(et_model_forward(&m, &l, big, &batch, 1, 3, 1, &ls_big, &nv_big, &err), 0);
    et_model_backward(&m, &l, big, &batch, 1.0f / (float)nv_big);
    assert_int_equal(nv_big, nv_exact);
    if (!(fabs(ls_big - ls_exact) <= 1e-6 * fabs(ls_exact)))
        fail_msg("loss of %d rows: %.9g in a plan for %d, %.9g in a plan for %d", b, ls_big, B,
                 ls_exact, b);
    double g_rel = rel_err(l.grads, g_exact, P);
    if (!(g_rel < 1e-6)) fail_msg("LoRA gradients: relative error %.3g", g_rel);
    free(g_exact);
    et_acts_free(big);
    et_acts_free(exact);
    et_lora_free(&l);
    et_model_free(&m);
}

/* Toy problem: three unit gradients with norms 5, 0.5 and 13 clipped at C = 1. */
static void clipped_sum_is_exact(void **state) {
    (void)state;
    const float g1[2] = {3, 4}, g2[2] = {0.3f, 0.4f}, g3[2] = {-5, 12};
    float sum[2] = {0, 0};
    double n1, n2, n3;
    double f1 = et_dp_clip_add(sum, g1, 2, 1.0, &n1);
    double f2 = et_dp_clip_add(sum, g2, 2, 1.0, &n2);
    double f3 = et_dp_clip_add(sum, g3, 2, 1.0, &n3);
    assert_float_equal(n1, 5.0, 1e-12);
    assert_float_equal(n2, 0.5, 1e-7);
    assert_float_equal(n3, 13.0, 1e-12);
    assert_float_equal(f1, 1.0 / (5.0 + 1e-6), 1e-15);
    assert_true(f2 == 1.0); /* below C: untouched */
    assert_float_equal(f3, 1.0 / (13.0 + 1e-6), 1e-15);
    /* 3/5 + 0.3 - 5/13 and 4/5 + 0.4 + 12/13, up to the 1e-6 guard. */
    assert_float_equal(sum[0], 0.6 + 0.3 - 5.0 / 13.0, 1e-6);
    assert_float_equal(sum[1], 0.8 + 0.4 + 12.0 / 13.0, 1e-6);
    /* a unit whose gradient overflowed adds nothing (0·inf would be NaN in every
     * coordinate of the noisy sum) and reads as norm +inf */
    const float ginf[2] = {INFINITY, 1}, gnan[2] = {NAN, 0};
    const float before0 = sum[0], before1 = sum[1];
    double ninf, nnan;
    assert_true(et_dp_clip_add(sum, ginf, 2, 1.0, &ninf) == 0.0);
    assert_true(et_dp_clip_add(sum, gnan, 2, 1.0, &nnan) == 0.0);
    assert_true(isinf(ninf) && ninf > 0 && isinf(nnan) && nnan > 0);
    assert_true(sum[0] == before0 && sum[1] == before1);
}

/* Under DP the LoRA-dropout seed comes from the DP generator, not from run.seed: with
 * a secret key the masks cannot be known, so no unit's presence shifts a mask anyone
 * can compute (found 2026-11-26: seeded, position-keyed masks moved the clipped sum
 * by 1.3C). Deterministic keys give deterministic seeds (resume, CPU/CUDA parity). */
static void dropout_seed_comes_from_the_dp_key(void **state) {
    (void)state;
    et_dp_rng a, b, s1, s2;
    et_error err;
    assert_int_equal(et_dp_rng_init(&a, 0, 1234, &err), 0);
    assert_int_equal(et_dp_rng_init(&b, 0, 1234, &err), 0);
    assert_int_equal(et_dp_rng_init(&s1, 1, 1234, &err), 0);
    assert_int_equal(et_dp_rng_init(&s2, 1, 1234, &err), 0);
    for (uint64_t step = 0; step < 4; step++) {
        assert_true(et_dp_dropout_seed(&a, step) == et_dp_dropout_seed(&b, step));
        assert_true(et_dp_dropout_seed(&a, step) != et_dropout_seed(1234, (int64_t)step));
        assert_true(et_dp_dropout_seed(&a, step) != et_dp_dropout_seed(&a, step + 1));
        assert_true(et_dp_dropout_seed(&s1, step) != et_dp_dropout_seed(&s2, step)); /* fresh keys */
    }
    /* its own stream: not the first noise or sampling words of the step */
    assert_true(et_dp_dropout_seed(&a, 3) >> 11 !=
                (uint64_t)(et_dp_uniform(&a, ET_DP_PURPOSE_SAMPLE, 3, 0) * 0x1.0p53));
}

/* N(0, σ²C²): empirical mean ~ 0, std ~ σC, and tails as a Gaussian's. */
static void noise_std_matches(void **state) {
    (void)state;
    et_dp_rng r;
    et_error err;
    assert_int_equal(et_dp_rng_init(&r, 0, 42, &err), 0);
    enum { N = 1 << 20 };
    float *x = calloc(N, sizeof(float));
    double sigma_c = 1.3 * 0.7;
    et_dp_add_noise(x, N, sigma_c, &r, 3);
    double s = 0, ss = 0;
    int64_t beyond2 = 0;
    for (int i = 0; i < N; i++) {
        s += x[i];
        ss += (double)x[i] * x[i];
        beyond2 += fabs(x[i]) > 2 * sigma_c;
    }
    double mean = s / N, sd = sqrt(ss / N - mean * mean);
    assert_true(fabs(mean) < 5 * sigma_c / sqrt(N));
    assert_true(fabs(sd / sigma_c - 1.0) < 0.005);          /* ~5 standard errors */
    assert_true(fabs((double)beyond2 / N - 0.0455) < 0.002); /* P(|Z| > 2) */
    /* Deterministic mode repeats; another step differs; secure mode differs per init. */
    float *y = calloc(N, sizeof(float));
    et_dp_add_noise(y, N, sigma_c, &r, 3);
    assert_memory_equal(x, y, sizeof(float) * 16);
    memset(y, 0, sizeof(float) * N);
    et_dp_add_noise(y, N, sigma_c, &r, 4);
    assert_true(memcmp(x, y, sizeof(float) * 16) != 0);
    et_dp_rng s1, s2;
    assert_int_equal(et_dp_rng_init(&s1, 1, 42, &err), 0);
    assert_int_equal(et_dp_rng_init(&s2, 1, 42, &err), 0);
    assert_true(memcmp(s1.key, s2.key, sizeof s1.key) != 0);
    free(x);
    free(y);
}

/* RFC 8439 §2.3.2 test vector for the ChaCha20 block function. */
/* Each sampled unit's row subset has its own draws: the ChaCha20 block number of
 * index (unit << 24) + j is 56 bits wide (found 2026-11-26: its top bits were dropped,
 * so units 2048 apart drew the same subset positions). */
static void subset_draws_differ_across_units(void **state) {
    (void)state;
    et_dp_rng r;
    et_error err;
    assert_int_equal(et_dp_rng_init(&r, 0, 42, &err), 0);
    for (uint64_t k = 0; k < 4; k++)
        for (uint64_t j = 0; j < 8; j++) {
            const double a = et_dp_uniform(&r, ET_DP_PURPOSE_SUBSET, 3, ((5 + k) << 24) + j);
            const double b = et_dp_uniform(&r, ET_DP_PURPOSE_SUBSET, 3, ((5 + k + 2048) << 24) + j);
            const double c = et_dp_uniform(&r, ET_DP_PURPOSE_SUBSET, 3, ((5 + k + 4096 * 7) << 24) + j);
            if (a == b || a == c) fail_msg("unit %d draw %d repeats 2048 units on", (int)(5 + k), (int)j);
        }
    /* below 2^32 blocks the stream is RFC 8439's plain counter: unchanged */
    const double low = et_dp_uniform(&r, ET_DP_PURPOSE_SAMPLE, 9, 17);
    uint32_t block[16], nonce[3] = {ET_DP_PURPOSE_SAMPLE, 9, 0};
    et_chacha20_block(block, r.key, 17 / 8, nonce);
    const int w = (17 % 8) * 2;
    const uint64_t bits = (((uint64_t)block[w] << 21) ^ (block[w + 1] >> 11)) & ((1ull << 53) - 1);
    assert_true(low == (double)bits * 0x1.0p-53);
}

/* LoRA dropout under DP draws each optimizer step's masks from its own key
 * (et_dropout_seed): steps whose old packed counter (step·65536 + micro-batch) wrapped
 * onto each other's now differ (found 2026-11-26: a 2-layer model's masks repeated
 * every 2048 steps, a 32-layer model's every 128). */
static void dropout_masks_differ_across_steps(void **state) {
    (void)state;
    et_error err;
    et_model m;
    et_lora l;
    load_fixture(&m, &l);
    l.dropout = 0.3f;
    enum { B = 2, T = 9 };
    int32_t ids[B * T], tg[B * T];
    for (int i = 0; i < B * T; i++) ids[i] = (i * 29 + 3) % m.cfg.vocab_size;
    for (int i = 0; i < B * T; i++) tg[i] = i % T == T - 1 ? -1 : ids[i + 1];
    et_acts *a;
    assert_int_equal(et_acts_create(&a, &m.cfg, &l, B, T, &err), 0);
    et_batch batch = {ids, tg, B, T, NULL};
    const int64_t steps[3] = {3, 3 + 2048, 3 + 128};
    double loss[3], again;
    int64_t nv;
    for (int i = 0; i < 3; i++)
        assert_int_equal(et_model_forward(&m, &l, a, &batch, 1, et_dropout_seed(7, steps[i]), 0,
                                          &loss[i], &nv, &err), 0);
    assert_int_equal(et_model_forward(&m, &l, a, &batch, 1, et_dropout_seed(7, 3), 0, &again, &nv, &err), 0);
    assert_true(again == loss[0]); /* a step's masks are a pure function of (seed, step) */
    if (loss[1] == loss[0] || loss[2] == loss[0])
        fail_msg("dropout masks repeat across steps: %.9g %.9g %.9g", loss[0], loss[1], loss[2]);
    et_acts_free(a);
    et_lora_free(&l);
    et_model_free(&m);
}

static void chacha20_rfc8439(void **state) {
    (void)state;
    uint32_t key[8], out[16];
    for (int i = 0; i < 8; i++)
        key[i] = (uint32_t)(4 * i) | (uint32_t)(4 * i + 1) << 8 | (uint32_t)(4 * i + 2) << 16 |
                 (uint32_t)(4 * i + 3) << 24;
    const uint32_t nonce[3] = {0x09000000u, 0x4a000000u, 0x00000000u};
    et_chacha20_block(out, key, 1, nonce);
    const uint32_t want[16] = {0xe4e7f110, 0x15593bd1, 0x1fdd0f50, 0xc47120a3,
                               0xc7f4d1c7, 0x0368c033, 0x9aaa2204, 0x4e6cd4c3,
                               0x466482d2, 0x09aa9f07, 0x05d7c214, 0xa2028bd9,
                               0xd19c12b5, 0xb94e16de, 0xe883d0cb, 0x4e3c50a2};
    assert_memory_equal(out, want, sizeof want);
}

/* A corpus where patient 7 has five documents and patients 8, 9 one each. */
static void five_documents_one_unit(void **state) {
    (void)state;
    char path[] = "/tmp/ehrtune-test-dp-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    unlink(path);
    et_error err;
    et_corpus_writer_options opt = {0};
    opt.tokenizer_sha256 = "";
    opt.source_sha256 = "";
    opt.phi_scan = "{}";
    opt.vocab_size = 50;
    et_corpus_writer *w;
    assert_int_equal(et_corpus_writer_open(&w, path, &opt, &err), 0);
    int32_t toks[6] = {1, 2, 3, 4, 5, 6};
    const int64_t pids[7] = {7, 7, 7, 7, 7, 8, 9};
    for (int d = 0; d < 7; d++) {
        et_corpus_doc doc = {0};
        doc.patient_id = pids[d];
        doc.tokens = toks;
        doc.n_tokens = 6;
        assert_int_equal(et_corpus_writer_add(w, &doc, &err), 0);
    }
    assert_int_equal(et_corpus_writer_finish(w, &err), 0);
    et_corpus c;
    assert_int_equal(et_corpus_open(&c, path, &err), 0);
    et_rows rows;
    assert_int_equal(et_rows_build(&rows, &c, 8, ET_SPLIT_ALL, 0, &err), 0);
    assert_int_equal(rows.n_rows, 7);
    et_dp_units u;
    assert_int_equal(et_dp_units_build(&u, &rows, ET_DP_UNIT_PATIENT, &err), 0);
    assert_int_equal(u.n_units, 3);
    int64_t sizes[3] = {u.offsets[1] - u.offsets[0], u.offsets[2] - u.offsets[1],
                        u.offsets[3] - u.offsets[2]};
    assert_true((sizes[0] == 5 && sizes[1] == 1 && sizes[2] == 1) ||
                (sizes[0] == 1 && sizes[1] == 5) || (sizes[1] == 1 && sizes[2] == 5));
    /* q = 1 takes every unit, at most 4 rows of the five-document patient. */
    et_dp_rng r;
    assert_int_equal(et_dp_rng_init(&r, 0, 1, &err), 0);
    et_dp_batch b = {0};
    assert_int_equal(et_dp_sample(&b, &u, 1.0, 4, &r, 0, &err), 0);
    assert_int_equal(b.n_units, 3);
    assert_int_equal(b.n_rows, 4 + 1 + 1);
    for (int64_t k = 0; k < b.n_units; k++) {
        int64_t unit = b.units[k];
        for (int64_t j = b.unit_first[k]; j < b.unit_first[k + 1]; j++) {
            int64_t row = b.rows[j], found = 0;
            for (int64_t x = u.offsets[unit]; x < u.offsets[unit + 1]; x++) found |= u.rows[x] == row;
            assert_true(found); /* every selected row belongs to its unit */
        }
    }
    et_dp_units doc_units;
    assert_int_equal(et_dp_units_build(&doc_units, &rows, ET_DP_UNIT_DOCUMENT, &err), 0);
    assert_int_equal(doc_units.n_units, 7);
    /* Poisson: over many steps the batch size averages q·N. */
    double total = 0;
    for (int step = 0; step < 2000; step++) {
        assert_int_equal(et_dp_sample(&b, &doc_units, 0.3, 4, &r, (uint64_t)step, &err), 0);
        total += (double)b.n_units;
    }
    assert_true(fabs(total / 2000 - 0.3 * 7) < 0.1);
    et_dp_batch_free(&b);
    et_dp_units_free(&u);
    et_dp_units_free(&doc_units);
    et_rows_free(&rows);
    et_corpus_close(&c);
    unlink(path);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(per_example_matches_naive),
        cmocka_unit_test(partial_microbatch_matches_exact_plan),
        cmocka_unit_test(clipped_sum_is_exact),
        cmocka_unit_test(noise_std_matches),
        cmocka_unit_test(dropout_seed_comes_from_the_dp_key),
        cmocka_unit_test(chacha20_rfc8439),
        cmocka_unit_test(five_documents_one_unit),
        cmocka_unit_test(subset_draws_differ_across_units),
        cmocka_unit_test(dropout_masks_differ_across_steps),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
