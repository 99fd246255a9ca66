/* Corpus HDF5 (schema v1), its zstd filter, training rows, and `ehrtune ingest`.
 * References: values recomputed here by formula, a file written by h5py +
 * hdf5plugin (tests/fixtures/corpus_hdf5plugin.h5, see
 * tests/crosscheck/make_hdf5plugin_fixture.py), and digests computed with
 * Python's hashlib (quoted where used). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <dirent.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <hdf5.h>
#include <zstd.h>

#include "data/corpus.h"
#include "data/sequences.h"
#include "data/zstd_filter.h"

/* ------------------------------------------------------------ helpers --- */

static char tmpdir[256];

static int make_tmpdir(void **state) {
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/et_test_corpus_XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int remove_tmpdir(void **state) {
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static void tmp_path(char *out, size_t n, const char *name) { snprintf(out, n, "%s/%s", tmpdir, name); }

/* Files in tmpdir whose name contains `part` (e.g. ".tmp-": leftovers). */
static int count_files_containing(const char *part) {
    DIR *d = opendir(tmpdir);
    int n = 0;
    for (struct dirent *e; d && (e = readdir(d));) n += strstr(e->d_name, part) != NULL;
    if (d) closedir(d);
    return n;
}

/* ------------------------------------------------------- zstd filter --- */

static void *h5_copy(const void *src, size_t n) {
    void *p = H5allocate_memory(n, 0);
    memcpy(p, src, n);
    return p;
}

static void zstd_filter_round_trip_is_a_plain_zstd_frame(void **state) {
    (void)state;
    enum { N = 5000 };
    int32_t data[N];
    for (int i = 0; i < N; i++) data[i] = (i * 37) % 501;
    void *buf = h5_copy(data, sizeof data);
    size_t buf_size = sizeof data;
    const unsigned level = 7;
    size_t n = et_zstd_filter(0, 1, &level, sizeof data, &buf_size, &buf);
    assert_true(n > 0 && n < sizeof data);
    /* Wire format: one zstd frame that records its content size, decodable by
     * libzstd alone (what hdf5plugin's decoder does). */
    assert_int_equal(ZSTD_getFrameContentSize(buf, n), sizeof data);
    assert_int_equal(ZSTD_findFrameCompressedSize(buf, n), n);
    int32_t plain[N];
    assert_int_equal(ZSTD_decompress(plain, sizeof plain, buf, n), sizeof data);
    assert_memory_equal(plain, data, sizeof data);
    /* And our decoder inverts it. */
    size_t m = et_zstd_filter(H5Z_FLAG_REVERSE, 1, &level, n, &buf_size, &buf);
    assert_int_equal(m, sizeof data);
    assert_memory_equal(buf, data, sizeof data);
    H5free_memory(buf);
}

static void zstd_filter_refuses_frames_without_content_size(void **state) {
    (void)state;
    char data[1000];
    memset(data, 'x', sizeof data);
    char frame[2000];
    ZSTD_CCtx *cc = ZSTD_createCCtx();
    ZSTD_CCtx_setParameter(cc, ZSTD_c_contentSizeFlag, 0);
    size_t n = ZSTD_compress2(cc, frame, sizeof frame, data, sizeof data);
    ZSTD_freeCCtx(cc);
    assert_false(ZSTD_isError(n));
    assert_int_equal(ZSTD_getFrameContentSize(frame, n), ZSTD_CONTENTSIZE_UNKNOWN);
    void *buf = h5_copy(frame, n), *before = buf;
    size_t buf_size = n;
    assert_int_equal(et_zstd_filter(H5Z_FLAG_REVERSE, 0, NULL, n, &buf_size, &buf), 0);
    assert_ptr_equal(buf, before); /* untouched on failure */
    assert_non_null(strstr(et_zstd_filter_last_failure(), "decompressed size"));
    H5free_memory(buf);
}

static void zstd_filter_refuses_oversized_and_corrupt_frames(void **state) {
    (void)state;
    /* Frame header claiming 2^32 bytes, one past HDF5's chunk limit: magic, descriptor 0xE0 (8-byte content
     * size, single segment), the size, then a last raw block of 0 bytes. */
    uint8_t huge[16] = {0x28, 0xB5, 0x2F, 0xFD, 0xE0, 0, 0, 0, 0, 0x01, 0, 0, 0, 0x01, 0, 0};
    assert_int_equal(ZSTD_getFrameContentSize(huge, 13), 1ull << 32); /* UINT32_MAX + 1 */
    void *buf = h5_copy(huge, sizeof huge);
    size_t buf_size = sizeof huge;
    assert_int_equal(et_zstd_filter(H5Z_FLAG_REVERSE, 0, NULL, sizeof huge, &buf_size, &buf), 0);
    assert_non_null(strstr(et_zstd_filter_last_failure(), "4 GiB"));
    H5free_memory(buf);

    const char junk[] = "definitely not zstd";
    buf = h5_copy(junk, sizeof junk);
    assert_int_equal(et_zstd_filter(H5Z_FLAG_REVERSE, 0, NULL, sizeof junk, &buf_size, &buf), 0);
    assert_non_null(strstr(et_zstd_filter_last_failure(), "not a zstd frame"));
    H5free_memory(buf);

    /* A real frame cut short: header intact, body missing. */
    int32_t data[256];
    for (int i = 0; i < 256; i++) data[i] = i * i;
    char frame[2048];
    size_t n = ZSTD_compress(frame, sizeof frame, data, sizeof data, 3);
    buf = h5_copy(frame, n / 2);
    assert_int_equal(et_zstd_filter(H5Z_FLAG_REVERSE, 0, NULL, n / 2, &buf_size, &buf), 0);
    assert_non_null(strstr(et_zstd_filter_last_failure(), "declared size"));
    H5free_memory(buf);
}

/* ------------------------------------------------- writer and reader --- */

/* Document d of the round-trip corpus: length, token i, mask i. */
static const int64_t RT_LEN[8] = {5, 0, 13, 1, 9, 20, 3, 7};
static int32_t rt_token(int d, int i) { return (d * 100 + i * 17) % 250; }
static uint8_t rt_mask(int d, int i) { return d % 2 ? (uint8_t)(i % 4 != 0) : 1; }

static int write_rt_corpus(const char *path, int force, et_error *err) {
    const char *snames[2] = {"age", "bmi"};
    et_corpus_writer_options opt = {
        .tokenizer_sha256 = "ab12",
        .vocab_size = 0, /* -> max token + 1 */
        .source_sha256 = "cd34",
        .phi_scan = "{\"scanned\": true, \"findings\": 0}",
        .created = "2025-06-01T12:00:00Z",
        .n_structured = 2,
        .structured_names = snames,
        .chunk_tokens = 7, /* tiny chunks: documents straddle several */
        .chunk_docs = 3,
        .force = force,
    };
    et_corpus_writer *w;
    if (et_corpus_writer_open(&w, path, &opt, err)) return -1;
    for (int d = 0; d < 8; d++) {
        int32_t tok[32];
        uint8_t mask[32];
        for (int i = 0; i < RT_LEN[d]; i++) tok[i] = rt_token(d, i), mask[i] = rt_mask(d, i);
        /* "sex" from doc 0; "race" first appears at doc 4, after a flush. */
        const char *gn[2] = {"sex", "race"};
        const char *sex = d % 3 == 0 ? "F" : d % 3 == 1 ? "M" : NULL;
        const char *race = d >= 4 ? (d % 2 ? "b" : "a") : NULL;
        const char *gl[2] = {sex, race};
        float st[2] = {(float)d, (float)(d * 2)};
        et_corpus_doc doc = {
            .patient_id = 1000 + d / 2,
            .split = d / 2 % 3, /* per patient, as the reader requires */
            .tokens = tok,
            .n_tokens = RT_LEN[d],
            .loss_mask = d % 2 ? mask : NULL,
            .n_groups = d >= 4 ? 2 : 1,
            .group_names = gn,
            .group_labels = gl,
            .structured = d == 3 ? NULL : st,
        };
        if (et_corpus_writer_add(w, &doc, err)) {
            et_corpus_writer_abort(w);
            return -1;
        }
    }
    return et_corpus_writer_finish(w, err);
}

static void corpus_round_trip(void **state) {
    (void)state;
    char path[300];
    tmp_path(path, sizeof path, "rt.h5");
    et_error err = {{0}};
    assert_int_equal(write_rt_corpus(path, 0, &err), 0);
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
    assert_int_equal(count_files_containing(".tmp-"), 0);

    et_corpus c;
    if (et_corpus_open(&c, path, &err)) fail_msg("%s", err.msg);
    assert_int_equal(c.n_docs, 8);
    int64_t total = 0;
    int32_t max_tok = 0;
    for (int d = 0; d < 8; d++) {
        assert_int_equal(c.doc_offsets[d], total);
        assert_int_equal(et_corpus_doc_len(&c, d), RT_LEN[d]);
        for (int i = 0; i < RT_LEN[d]; i++) {
            assert_int_equal(et_corpus_doc_tokens(&c, d)[i], rt_token(d, i));
            assert_int_equal(et_corpus_doc_mask(&c, d)[i], rt_mask(d, i));
            if (rt_token(d, i) > max_tok) max_tok = rt_token(d, i);
        }
        total += RT_LEN[d];
        assert_int_equal(c.patient_ids[d], 1000 + d / 2);
        assert_int_equal(c.split[d], d / 2 % 3);
    }
    assert_int_equal(c.n_tokens, total);
    assert_int_equal(c.vocab_size, max_tok + 1);
    assert_string_equal(c.tokenizer_sha256, "ab12");
    assert_string_equal(c.source_sha256, "cd34");
    assert_string_equal(c.phi_scan, "{\"scanned\": true, \"findings\": 0}");
    assert_string_equal(c.created, "2025-06-01T12:00:00Z");

    assert_int_equal(c.n_groups, 2);
    const et_corpus_group *sex = et_corpus_find_group(&c, "sex"), *race = et_corpus_find_group(&c, "race");
    assert_non_null(sex);
    assert_non_null(race);
    assert_null(et_corpus_find_group(&c, "age"));
    assert_int_equal(sex->n_labels, 2);
    assert_string_equal(sex->labels[0], "F");
    assert_string_equal(sex->labels[1], "M");
    assert_int_equal(race->n_labels, 2);
    assert_string_equal(race->labels[0], "a"); /* doc 4 introduced "a" */
    assert_string_equal(race->labels[1], "b");
    for (int d = 0; d < 8; d++) {
        assert_int_equal(sex->codes[d], d % 3 == 0 ? 0 : d % 3 == 1 ? 1 : -1);
        assert_int_equal(race->codes[d], d < 4 ? -1 : d % 2 ? 1 : 0);
    }
    assert_int_equal(c.n_structured, 2);
    assert_string_equal(c.structured_names[0], "age");
    assert_string_equal(c.structured_names[1], "bmi");
    for (int d = 0; d < 8; d++) {
        if (d == 3) {
            assert_true(isnan(c.structured[2 * d]) && isnan(c.structured[2 * d + 1]));
        } else {
            assert_true(c.structured[2 * d] == (float)d);
            assert_true(c.structured[2 * d + 1] == (float)(2 * d));
        }
    }
    et_corpus_close(&c);

    /* The on-disk encoding is the registered zstd filter with the level. */
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    hid_t ds = H5Dopen2(f, "tokens", H5P_DEFAULT), dcpl = H5Dget_create_plist(ds);
    unsigned flags, cd[4];
    size_t ncd = 4;
    assert_int_equal(H5Pget_filter2(dcpl, 0, &flags, &ncd, cd, 0, NULL, NULL), ET_ZSTD_FILTER_ID);
    assert_int_equal(ncd, 1);
    assert_int_equal(cd[0], ET_ZSTD_DEFAULT_LEVEL);
    H5Pclose(dcpl);
    H5Dclose(ds);
    H5Fclose(f);
}

static void writer_refuses_existing_output_unless_forced(void **state) {
    (void)state;
    char path[300];
    tmp_path(path, sizeof path, "exists.h5");
    FILE *fp = fopen(path, "w");
    fputs("precious", fp);
    fclose(fp);
    et_error err = {{0}};
    assert_int_not_equal(write_rt_corpus(path, 0, &err), 0);
    assert_non_null(strstr(err.msg, "already exists"));
    assert_non_null(strstr(err.msg, path));
    char back[16] = {0};
    fp = fopen(path, "r");
    assert_non_null(fgets(back, sizeof back, fp));
    fclose(fp);
    assert_string_equal(back, "precious");
    assert_int_equal(write_rt_corpus(path, 1, &err), 0);
    et_corpus c;
    assert_int_equal(et_corpus_open(&c, path, &err), 0);
    assert_int_equal(c.n_docs, 8);
    et_corpus_close(&c);
    assert_int_equal(count_files_containing(".tmp-"), 0);
}

static void writer_rejects_bad_token_and_leaves_nothing(void **state) {
    (void)state;
    char path[300];
    tmp_path(path, sizeof path, "bad.h5");
    et_corpus_writer_options opt = {.vocab_size = 10};
    et_corpus_writer *w;
    et_error err = {{0}};
    assert_int_equal(et_corpus_writer_open(&w, path, &opt, &err), 0);
    assert_int_equal(count_files_containing("bad.h5.tmp-"), 1);
    int32_t ok[3] = {1, 2, 9}, bad[3] = {1, 2, 10};
    et_corpus_doc doc = {.patient_id = 1, .tokens = ok, .n_tokens = 3};
    assert_int_equal(et_corpus_writer_add(w, &doc, &err), 0);
    doc.tokens = bad;
    assert_int_not_equal(et_corpus_writer_add(w, &doc, &err), 0);
    assert_non_null(strstr(err.msg, "document 1: token 2 is outside [0, 10)"));
    et_corpus_writer_abort(w);
    assert_int_equal(access(path, F_OK), -1);
    assert_int_equal(count_files_containing("bad.h5"), 0);

    /* No documents at all: refused at finish, nothing left either. */
    assert_int_equal(et_corpus_writer_open(&w, path, &opt, &err), 0);
    assert_int_not_equal(et_corpus_writer_finish(w, &err), 0);
    assert_non_null(strstr(err.msg, "no documents"));
    assert_int_equal(count_files_containing("bad.h5"), 0);
}

/* Writes the round-trip corpus to `name`, then lets `edit` damage it. */
static void damaged_corpus(const char *name, char *path, size_t n, void (*edit)(hid_t file)) {
    tmp_path(path, n, name);
    et_error err = {{0}};
    assert_int_equal(write_rt_corpus(path, 0, &err), 0);
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    assert_true(f >= 0);
    edit(f);
    assert_true(H5Fclose(f) >= 0);
}

static void delete_loss_mask(hid_t f) { assert_true(H5Ldelete(f, "loss_mask", H5P_DEFAULT) >= 0); }

static void write_doc_offset(hid_t f, hsize_t index, int64_t value) {
    hid_t ds = H5Dopen2(f, "doc_offsets", H5P_DEFAULT), fs = H5Dget_space(ds);
    hsize_t one = 1;
    hid_t ms = H5Screate_simple(1, &one, NULL);
    H5Sselect_hyperslab(fs, H5S_SELECT_SET, &index, NULL, &one, NULL);
    assert_true(H5Dwrite(ds, H5T_NATIVE_INT64, ms, fs, H5P_DEFAULT, &value) >= 0);
    H5Sclose(ms);
    H5Sclose(fs);
    H5Dclose(ds);
}
static void make_offsets_decrease(hid_t f) { write_doc_offset(f, 3, 2); } /* 18 -> 2 */
static void make_offsets_short(hid_t f) { write_doc_offset(f, 8, 60); }   /* last: 58 -> 60 */
static void mislabel_format(hid_t f) {
    H5Adelete(f, "format");
    hid_t t = H5Tcopy(H5T_C_S1), s = H5Screate(H5S_SCALAR);
    H5Tset_size(t, H5T_VARIABLE);
    const char *v = "something-else";
    hid_t a = H5Acreate2(f, "format", t, s, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, t, &v);
    H5Aclose(a);
    H5Sclose(s);
    H5Tclose(t);
}
static void bump_version(hid_t f) {
    hid_t a = H5Aopen(f, "version", H5P_DEFAULT);
    int64_t v = 2;
    H5Awrite(a, H5T_NATIVE_INT64, &v);
    H5Aclose(a);
}
static void bad_group_code(hid_t f) {
    hid_t ds = H5Dopen2(f, "groups/sex", H5P_DEFAULT);
    int16_t codes[8] = {0, 1, 5, 0, 1, -1, 0, 1};
    H5Dwrite(ds, H5T_NATIVE_INT16, H5S_ALL, H5S_ALL, H5P_DEFAULT, codes);
    H5Dclose(ds);
}

/* One patient's documents in two splits (a corpus not written by ingest). */
static void split_one_patient(hid_t f) {
    hid_t ds = H5Dopen2(f, "split", H5P_DEFAULT);
    uint8_t split[8] = {0, 1, 1, 1, 2, 2, 0, 0}; /* docs 0 and 1: patient 1000 */
    H5Dwrite(ds, H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, split);
    H5Dclose(ds);
}

static void expect_open_error(const char *path, const char *needle) {
    et_corpus c;
    et_error err = {{0}};
    assert_int_not_equal(et_corpus_open(&c, path, &err), 0);
    if (getenv("ET_TEST_VERBOSE")) print_message("%s\n", err.msg);
    if (!strstr(err.msg, needle)) fail_msg("error '%s' lacks '%s'", err.msg, needle);
    assert_non_null(strstr(err.msg, path)); /* names the file */
    assert_null(c.tokens);                 /* left empty */
}

static void reader_names_file_and_dataset_on_damage(void **state) {
    (void)state;
    char path[300];
    damaged_corpus("nomask.h5", path, sizeof path, delete_loss_mask);
    expect_open_error(path, "dataset /loss_mask missing — was it written by `ehrtune ingest`?");
    damaged_corpus("decrease.h5", path, sizeof path, make_offsets_decrease);
    expect_open_error(path, "dataset /doc_offsets decreases at index 3");
    damaged_corpus("short.h5", path, sizeof path, make_offsets_short);
    expect_open_error(path, "dataset /doc_offsets ends at 60 but /tokens has 58 values");
    damaged_corpus("format.h5", path, sizeof path, mislabel_format);
    expect_open_error(path, "not an ehrtune corpus");
    damaged_corpus("version.h5", path, sizeof path, bump_version);
    expect_open_error(path, "schema version 2");
    damaged_corpus("split.h5", path, sizeof path, split_one_patient);
    expect_open_error(path, "documents 0 and 1 belong to one patient but to splits 0 and 1");
    damaged_corpus("codes.h5", path, sizeof path, bad_group_code);
    expect_open_error(path, "dataset /groups entry 1: code at document 2 is outside [-1, 2)");

    tmp_path(path, sizeof path, "text.h5");
    FILE *fp = fopen(path, "w");
    fputs("not hdf5\n", fp);
    fclose(fp);
    expect_open_error(path, "not an HDF5 file");
    tmp_path(path, sizeof path, "absent.h5");
    expect_open_error(path, "cannot open");
}

static void reader_reports_corrupt_zstd_chunk(void **state) {
    (void)state;
    char path[300];
    tmp_path(path, sizeof path, "corrupt.h5");
    et_error err = {{0}};
    assert_int_equal(write_rt_corpus(path, 0, &err), 0);
    /* Overwrite the first /tokens chunk with bytes that are not a zstd frame. */
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    hid_t ds = H5Dopen2(f, "tokens", H5P_DEFAULT);
    hsize_t origin = 0;
    const char junk[12] = "garbage!!!!";
    assert_true(H5Dwrite_chunk(ds, H5P_DEFAULT, 0, &origin, sizeof junk, junk) >= 0);
    H5Dclose(ds);
    H5Fclose(f);
    expect_open_error(path, "reading dataset /tokens failed (HDF5: zstd chunk is not a zstd frame");
}

/* A valid zstd frame of the wrong size in place of a chunk: HDF5 would copy a whole
 * chunk out of the shorter buffer (found 2026-11-26 under ASan: a heap over-read), and
 * a longer one is a decompression bomb; the reader tells the filter the chunk size. */
static void reader_refuses_chunk_of_wrong_size(void **state) {
    (void)state;
    for (int longer = 0; longer < 2; longer++) {
        char path[300];
        tmp_path(path, sizeof path, longer ? "bomb.h5" : "shortchunk.h5");
        et_error err = {{0}};
        assert_int_equal(write_rt_corpus(path, 1, &err), 0);
        hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
        hid_t ds = H5Dopen2(f, "tokens", H5P_DEFAULT);
        /* chunks of 7 int32 tokens = 28 bytes: a frame of 16 bytes, or of 1 MiB */
        const size_t decoded = longer ? (size_t)1 << 20 : 16;
        char *raw = calloc(decoded, 1), frame[4096];
        const size_t n = ZSTD_compress(frame, sizeof frame, raw, decoded, 3);
        assert_false(ZSTD_isError(n));
        hsize_t origin = 0;
        assert_true(H5Dwrite_chunk(ds, H5P_DEFAULT, 0, &origin, n, frame) >= 0);
        free(raw);
        H5Dclose(ds);
        H5Fclose(f);
        expect_open_error(path, "zstd chunk decodes to another size than the dataset's chunks");
    }
}

/* A corpus written by h5py + hdf5plugin.Zstd (the reference filter). */
static void reads_hdf5plugin_fixture(void **state) {
    (void)state;
    const char *path = EHRTUNE_SOURCE_DIR "/tests/fixtures/corpus_hdf5plugin.h5";
    et_corpus c;
    et_error err = {{0}};
    if (et_corpus_open(&c, path, &err)) fail_msg("%s", err.msg);
    assert_int_equal(c.n_tokens, 100);
    assert_int_equal(c.n_docs, 3);
    for (int i = 0; i < 100; i++) {
        assert_int_equal(c.tokens[i], (i * 7919) % 1000);
        assert_int_equal(c.loss_mask[i], i % 3 != 0);
    }
    const int64_t off[4] = {0, 10, 47, 100}, pid[3] = {11, -4, (1LL << 62) + 5};
    for (int d = 0; d < 3; d++) {
        assert_int_equal(c.doc_offsets[d + 1], off[d + 1]);
        assert_int_equal(c.patient_ids[d], pid[d]);
        assert_int_equal(c.split[d], d);
    }
    assert_int_equal(c.vocab_size, 1000);
    assert_string_equal(c.created, "2025-01-01T00:00:00Z"); /* fixed-length string */
    const et_corpus_group *sex = et_corpus_find_group(&c, "sex");
    assert_non_null(sex);
    assert_int_equal(sex->n_labels, 2);
    assert_string_equal(sex->labels[1], "M");
    assert_int_equal(sex->codes[0], 1);
    assert_int_equal(sex->codes[1], -1);
    assert_int_equal(c.n_structured, 2);
    assert_string_equal(c.structured_names[1], "bmi");
    assert_true(c.structured[0] == 0.5f && isnan(c.structured[1]) && c.structured[5] == -1.0f);
    et_corpus_close(&c);
}

/* --------------------------------------------------------------- rows --- */

/* doc0 p7 [10..15] all masked in (a note: chunked); doc1 p3 [20..27] first three not
 * targets (a prompt/response: conditional, kept to its first seq_len tokens); doc2 p7
 * [30] (one token: no target); doc3 p5 [40..43] split val; doc4 p9 [50..55] whose one
 * target lies past seq_len (conditional, truncated, nothing left). */
static void write_rows_corpus(const char *path) {
    et_corpus_writer_options opt = {.vocab_size = 100};
    et_corpus_writer *w;
    et_error err = {{0}};
    assert_int_equal(et_corpus_writer_open(&w, path, &opt, &err), 0);
    int32_t t0[6] = {10, 11, 12, 13, 14, 15}, t1[8] = {20, 21, 22, 23, 24, 25, 26, 27}, t2[1] = {30},
            t3[4] = {40, 41, 42, 43}, t4[6] = {50, 51, 52, 53, 54, 55};
    uint8_t m1[8] = {0, 0, 0, 1, 1, 1, 1, 1}, m4[6] = {0, 0, 0, 0, 0, 1};
    et_corpus_doc docs[5] = {
        {.patient_id = 7, .split = 0, .tokens = t0, .n_tokens = 6},
        {.patient_id = 3, .split = 0, .tokens = t1, .n_tokens = 8, .loss_mask = m1},
        {.patient_id = 7, .split = 0, .tokens = t2, .n_tokens = 1},
        {.patient_id = 5, .split = 1, .tokens = t3, .n_tokens = 4},
        {.patient_id = 9, .split = 0, .tokens = t4, .n_tokens = 6, .loss_mask = m4},
    };
    for (int d = 0; d < 5; d++) assert_int_equal(et_corpus_writer_add(w, &docs[d], &err), 0);
    assert_int_equal(et_corpus_writer_finish(w, &err), 0);
}

static void rows_chunk_pad_and_shift_targets(void **state) {
    (void)state;
    char path[300];
    tmp_path(path, sizeof path, "rows.h5");
    write_rows_corpus(path);
    et_corpus c;
    et_error err = {{0}};
    assert_int_equal(et_corpus_open(&c, path, &err), 0);
    et_rows r;
    assert_int_equal(et_rows_build(&r, &c, 4, ET_SPLIT_ALL, 99, &err), 0);
    const int32_t ids[4][4] = {{10, 11, 12, 13}, {14, 15, 99, 99}, {20, 21, 22, 23}, {40, 41, 42, 43}};
    const int32_t tgt[4][4] = {{11, 12, 13, -1}, {15, -1, -1, -1}, {-1, -1, 23, -1}, {41, 42, 43, -1}};
    const int64_t doc[4] = {0, 0, 1, 3}, start[4] = {0, 4, 0, 0}, pat[4] = {7, 7, 3, 5};
    const int32_t valid[4] = {4, 2, 4, 4}, ntg[4] = {3, 1, 1, 3};
    assert_int_equal(r.n_rows, 4);
    assert_int_equal(r.n_dropped, 2);         /* doc2: one token; doc4: its target was cut */
    assert_int_equal(r.n_truncated, 2);       /* doc1 and doc4: conditional, longer than 4 */
    assert_int_equal(r.n_truncated_empty, 1); /* doc4 */
    for (int k = 0; k < 4; k++) {
        assert_memory_equal(et_rows_input_ids(&r, k), ids[k], sizeof ids[k]);
        assert_memory_equal(et_rows_targets(&r, k), tgt[k], sizeof tgt[k]);
        assert_int_equal(r.row_doc[k], doc[k]);
        assert_int_equal(r.row_start[k], start[k]);
        assert_int_equal(r.row_patient[k], pat[k]);
        assert_int_equal(r.row_n_valid[k], valid[k]);
        assert_int_equal(r.row_n_targets[k], ntg[k]);
    }
    /* Dense units: rank of the patient id among {3, 5, 7}. */
    assert_int_equal(r.n_patients, 3);
    const int64_t unit[4] = {2, 2, 0, 1};
    for (int k = 0; k < 4; k++) assert_int_equal(r.row_unit[k], unit[k]);
    et_rows_free(&r);
    /* seq_len 8: doc1 fits whole (no truncation); doc4's target is in reach again */
    assert_int_equal(et_rows_build(&r, &c, 8, ET_SPLIT_ALL, 99, &err), 0);
    assert_int_equal(r.n_truncated, 0);
    assert_int_equal(r.n_rows, 4); /* doc0, doc1, doc3, doc4 */
    et_rows_free(&r);

    assert_int_equal(et_rows_build(&r, &c, 4, ET_SPLIT_VAL, 0, &err), 0);
    assert_int_equal(r.n_rows, 1);
    assert_int_equal(r.row_doc[0], 3);
    assert_int_equal(r.row_unit[0], 0);
    et_rows_free(&r);
    assert_int_equal(et_rows_build(&r, &c, 4, ET_SPLIT_TEST, 0, &err), 0);
    assert_int_equal(r.n_rows, 0);
    et_rows_free(&r);
    assert_int_not_equal(et_rows_build(&r, &c, 1, ET_SPLIT_ALL, 0, &err), 0);
    assert_non_null(strstr(err.msg, "seq_len 1"));
    et_corpus_close(&c);
}

/* Every row of a random corpus is a slice of exactly one document. */
static void rows_never_cross_documents(void **state) {
    (void)state;
    char path[300];
    tmp_path(path, sizeof path, "rand.h5");
    et_corpus_writer_options opt = {.vocab_size = 1000, .chunk_tokens = 64, .chunk_docs = 16};
    et_corpus_writer *w;
    et_error err = {{0}};
    assert_int_equal(et_corpus_writer_open(&w, path, &opt, &err), 0);
    uint64_t s = 42;
    int32_t tok[300];
    uint8_t mask[300];
    for (int d = 0; d < 60; d++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        int len = 1 + (int)((s >> 33) % 300);
        for (int i = 0; i < len; i++) {
            s = s * 6364136223846793005ull + 1442695040888963407ull;
            tok[i] = (int32_t)((s >> 33) % 1000);
            mask[i] = d % 2 || (s >> 20) % 5 != 0; /* odd docs: notes, all targets */
        }
        if (d % 4 == 0 && len > 1) mask[1] = 0; /* a masked prefix: conditional */
        if (d % 4 == 2 && len > 1) mask[1] = 1; /* masked spans inside only: a note */
        et_corpus_doc doc = {.patient_id = d / 3, .tokens = tok, .n_tokens = len, .loss_mask = mask};
        assert_int_equal(et_corpus_writer_add(w, &doc, &err), 0);
    }
    assert_int_equal(et_corpus_writer_finish(w, &err), 0);
    et_corpus c;
    assert_int_equal(et_corpus_open(&c, path, &err), 0);
    const int T = 32;
    et_rows r;
    assert_int_equal(et_rows_build(&r, &c, T, ET_SPLIT_ALL, 0, &err), 0);
    int64_t targets = 0, expected_targets = 0;
    for (int64_t k = 0; k < r.n_rows; k++) {
        int64_t d = r.row_doc[k], st = r.row_start[k];
        int n = r.row_n_valid[k];
        assert_true(st % T == 0 && st + n <= et_corpus_doc_len(&c, d));
        assert_int_equal(r.row_patient[k], c.patient_ids[d]);
        const int32_t *ids = et_rows_input_ids(&r, k), *tg = et_rows_targets(&r, k);
        for (int t = 0; t < T; t++) {
            if (t < n) assert_int_equal(ids[t], et_corpus_doc_tokens(&c, d)[st + t]);
            else assert_int_equal(ids[t], 0);
            int want = t + 1 < n && et_corpus_doc_mask(&c, d)[st + t + 1];
            assert_int_equal(tg[t], want ? et_corpus_doc_tokens(&c, d)[st + t + 1] : -1);
            targets += tg[t] >= 0;
        }
    }
    /* Stride T: every masked-in token is a target except a chunk's first; a conditional
     * document (a masked token after the first, then a target) only within its first T. */
    int n_conditional_long = 0;
    for (int64_t d = 0; d < c.n_docs; d++) {
        const uint8_t *m = et_corpus_doc_mask(&c, d);
        int64_t len = et_corpus_doc_len(&c, d), conditional = 0;
        for (int64_t i = 2; i < len && len > 1 && !m[1]; i++) conditional |= m[i];
        int64_t used = conditional && len > T ? T : len;
        n_conditional_long += conditional && len > T;
        for (int64_t i = 1; i < used; i++) expected_targets += m[i] && i % T != 0;
    }
    assert_int_equal(targets, expected_targets);
    assert_int_equal(r.n_truncated, n_conditional_long);
    assert_true(n_conditional_long > 5); /* both kinds occur */
    et_rows_free(&r);
    et_corpus_close(&c);
}

/* ------------------------------------------------------ ehrtune ingest --- */

static void ingest_cli_round_trip(void **state) {
    (void)state;
    char in[300], out[300], cmd[1024];
    tmp_path(in, sizeof in, "notes.jsonl");
    tmp_path(out, sizeof out, "notes.h5");
    const char *jsonl =
        "{\"patient_id\": 12, \"tokens\": [5, 6, 7], \"group\": {\"sex\": \"F\"}}\n"
        "{\"patient_id\": \"MRN-9\", \"tokens\": [1, 2], \"loss_mask\": [0, 1]}\n"
        "\n"
        "{\"patient_id\": \"12\", \"tokens\": [8], \"loss_mask\": [true], \"group\": {\"sex\": null}}\n"
        "{\"patient_id\": \"007\", \"tokens\": [9, 9, 9, 9]}\n";
    FILE *fp = fopen(in, "w");
    fputs(jsonl, fp);
    fclose(fp);
    snprintf(cmd, sizeof cmd,
             "'%s' ingest --pretokenized '%s' -o '%s' --vocab-size 10 --val-frac 0.5 "
             "--split-seed 3 > '%s/ingest.out' 2>&1",
             EHRTUNE_BINARY, in, out, tmpdir);
    assert_int_equal(system(cmd), 0);
    et_corpus c;
    et_error err = {{0}};
    if (et_corpus_open(&c, out, &err)) fail_msg("%s", err.msg);
    assert_int_equal(c.n_docs, 4);
    const int32_t tokens[10] = {5, 6, 7, 1, 2, 8, 9, 9, 9, 9};
    const uint8_t mask[10] = {1, 1, 1, 0, 1, 1, 1, 1, 1, 1};
    const int64_t off[5] = {0, 3, 5, 6, 10};
    assert_memory_equal(c.tokens, tokens, sizeof tokens);
    assert_memory_equal(c.loss_mask, mask, sizeof mask);
    assert_memory_equal(c.doc_offsets, off, sizeof off);
    /* Python: (int.from_bytes(sha256(s).digest()[:8], "big") & (2**62-1)) | 2**62 */
    assert_int_equal(c.patient_ids[0], 12);
    assert_int_equal(c.patient_ids[1], 7751203869712766696LL); /* "MRN-9" */
    assert_int_equal(c.patient_ids[2], 12);                    /* "12" is canonical decimal */
    assert_int_equal(c.patient_ids[3], 7106483370208201996LL); /* "007" is not: hashed */
    assert_int_equal(c.split[0], c.split[2]); /* same patient, same split */
    /* Python: u = (splitmix64(splitmix64(3) ^ id) >> 11) / 2**53; val iff u < 0.5 */
    assert_int_equal(c.split[0], ET_SPLIT_VAL);   /* u = 0.0122 */
    assert_int_equal(c.split[1], ET_SPLIT_TRAIN); /* u = 0.5749 */
    assert_int_equal(c.split[3], ET_SPLIT_TRAIN); /* u = 0.8307 */
    assert_int_equal(c.vocab_size, 10);
    assert_string_equal(c.tokenizer_sha256, "");
    assert_string_equal(c.phi_scan, "{\"scanned\": false, \"reason\": \"pretokenized input\"}");
    /* Python: hashlib.sha256(jsonl.encode()).hexdigest() */
    assert_string_equal(c.source_sha256,
                        "8402ee0c98942c0965e5a7c4c965c7feb179982300a962dc91fb9254139f6e8b");
    const et_corpus_group *sex = et_corpus_find_group(&c, "sex");
    assert_non_null(sex);
    assert_int_equal(sex->n_labels, 1);
    assert_int_equal(sex->codes[0], 0);
    assert_int_equal(sex->codes[1], -1);
    assert_int_equal(sex->codes[2], -1);
    assert_int_equal(strlen(c.created), 20);
    assert_int_equal(c.created[10], 'T');
    et_corpus_close(&c);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(zstd_filter_round_trip_is_a_plain_zstd_frame),
        cmocka_unit_test(zstd_filter_refuses_frames_without_content_size),
        cmocka_unit_test(zstd_filter_refuses_oversized_and_corrupt_frames),
        cmocka_unit_test(corpus_round_trip),
        cmocka_unit_test(writer_refuses_existing_output_unless_forced),
        cmocka_unit_test(writer_rejects_bad_token_and_leaves_nothing),
        cmocka_unit_test(reader_names_file_and_dataset_on_damage),
        cmocka_unit_test(reader_reports_corrupt_zstd_chunk),
        cmocka_unit_test(reader_refuses_chunk_of_wrong_size),
        cmocka_unit_test(reads_hdf5plugin_fixture),
        cmocka_unit_test(rows_chunk_pad_and_shift_targets),
        cmocka_unit_test(rows_never_cross_documents),
        cmocka_unit_test(ingest_cli_round_trip),
    };
    return cmocka_run_group_tests(tests, make_tmpdir, remove_tmpdir);
}
