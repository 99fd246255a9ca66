/* The accountant's history of (σ, q, steps) phases, its checkpoint form, and the
 * dispatch to the RDP or PRV computation. */
#include "trainer/accountant.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

const char *et_accountant_kind_name(et_accountant_kind kind) {
    return kind == ET_ACCOUNTANT_RDP ? "rdp" : "prv";
}

int et_accountant_kind_parse(const char *name, et_accountant_kind *kind, et_error *err) {
    if (name && !strcmp(name, "rdp")) *kind = ET_ACCOUNTANT_RDP;
    else if (name && !strcmp(name, "prv")) *kind = ET_ACCOUNTANT_PRV;
    else return et_fail(err, "unknown accountant '%s' (expected 'rdp' or 'prv')",
                        name ? name : "(null)");
    return 0;
}

int et_dp_phase_check(const et_dp_phase *p, et_error *err) {
    if (!(p->noise_multiplier > 0) || !isfinite(p->noise_multiplier))
        return et_fail(err, "noise multiplier must be > 0 and finite, got %g",
                       p->noise_multiplier);
    /* Both accountants work with σ²: below ~1.5e-154 it is subnormal or 0 and their
     * arithmetic returns garbage (found 2026-11-26: σ = 1e-160 gave ε = −0.6 with PRV
     * and 2.67 with RDP, certified in a manifest) instead of the astronomic ε it is. */
    if (!isnormal(p->noise_multiplier * p->noise_multiplier))
        return et_fail(err, "noise multiplier %g is too small for any privacy guarantee (its "
                            "square underflows); DP-SGD needs a noise multiplier near 0.5 or "
                            "more to mean anything",
                       p->noise_multiplier);
    if (!(p->sample_rate > 0 && p->sample_rate <= 1))
        return et_fail(err, "sample rate must be in (0, 1], got %g", p->sample_rate);
    if (p->steps < 1)
        return et_fail(err, "steps must be >= 1, got %lld", (long long)p->steps);
    return 0;
}

void et_accountant_init(et_accountant *acc, et_accountant_kind kind) {
    memset(acc, 0, sizeof *acc);
    acc->kind = kind;
    acc->eps_error = 0.01;
    acc->delta_error = 0; /* δ/1000 at query time */
}

void et_accountant_free(et_accountant *acc) {
    free(acc->phases);
    acc->phases = NULL;
    acc->n_phases = acc->cap_phases = 0;
}

int et_accountant_step(et_accountant *acc, double sigma, double q, int64_t n_steps,
                       et_error *err) {
    et_dp_phase p = {sigma, q, n_steps};
    if (et_dp_phase_check(&p, err)) return -1;
    if (acc->n_phases > 0) {
        et_dp_phase *last = &acc->phases[acc->n_phases - 1];
        if (last->noise_multiplier == sigma && last->sample_rate == q) {
            if (last->steps > INT64_MAX - n_steps)
                return et_fail(err, "step count overflows int64");
            last->steps += n_steps;
            return 0;
        }
    }
    if (acc->n_phases == acc->cap_phases) {
        int cap = acc->cap_phases ? 2 * acc->cap_phases : 4;
        et_dp_phase *grown = realloc(acc->phases, sizeof *grown * (size_t)cap);
        if (!grown) return et_fail(err, "out of memory growing the accountant history");
        acc->phases = grown;
        acc->cap_phases = cap;
    }
    acc->phases[acc->n_phases++] = p;
    return 0;
}

int et_accountant_epsilon(const et_accountant *acc, double delta, double *eps,
                          double *best_order, et_error *err) {
    if (!(delta > 0 && delta < 1))
        return et_fail(err, "delta must be in (0, 1), got %g", delta);
    if (best_order) *best_order = NAN;
    if (acc->n_phases == 0) {
        *eps = 0;
        return 0;
    }
    for (int i = 0; i < acc->n_phases; i++)
        if (et_dp_phase_check(&acc->phases[i], err)) return -1;
    int rc = acc->kind == ET_ACCOUNTANT_RDP
                 ? et_rdp_epsilon(ET_RDP_OPACUS, acc->phases, acc->n_phases, NULL, 0, delta, eps,
                                  best_order, err)
                 : et_prv_epsilon(acc->phases, acc->n_phases, delta, acc->eps_error,
                                  acc->delta_error, eps, NULL, err);
    if (rc) return rc;
    /* an ε that is not a finite, non-negative number bounds nothing: never report it */
    if (!isfinite(*eps) || *eps < 0)
        return et_fail(err, "the %s accountant gives no finite epsilon for these settings "
                            "(got %g): raise the noise multiplier or lower the sample rate or steps",
                       et_accountant_kind_name(acc->kind), *eps);
    return 0;
}

cJSON *et_accountant_to_json(const et_accountant *acc) {
    cJSON *root = cJSON_CreateObject();
    if (!root) return NULL;
    cJSON_AddStringToObject(root, "accountant", et_accountant_kind_name(acc->kind));
    cJSON_AddNumberToObject(root, "eps_error", acc->eps_error);
    cJSON_AddNumberToObject(root, "delta_error", acc->delta_error);
    cJSON *hist = cJSON_AddArrayToObject(root, "history");
    for (int i = 0; hist && i < acc->n_phases; i++) {
        const et_dp_phase *p = &acc->phases[i];
        /* steps are exact in a double up to 2^53, far beyond any training run */
        double row[3] = {p->noise_multiplier, p->sample_rate, (double)p->steps};
        cJSON *entry = cJSON_CreateDoubleArray(row, 3);
        if (!entry || !cJSON_AddItemToArray(hist, entry)) hist = NULL;
    }
    if (!hist) {
        cJSON_Delete(root);
        return NULL;
    }
    return root;
}

static int json_number(const cJSON *obj, const char *key, double *out, et_error *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!cJSON_IsNumber(v)) return et_fail(err, "accountant: key '%s' must be a number", key);
    *out = v->valuedouble;
    return 0;
}

int et_accountant_from_json(const cJSON *json, et_accountant *acc, et_error *err) {
    if (!cJSON_IsObject(json)) return et_fail(err, "accountant: expected a JSON object");
    const cJSON *kind = cJSON_GetObjectItemCaseSensitive(json, "accountant");
    et_accountant_kind k = ET_ACCOUNTANT_RDP;
    if (!cJSON_IsString(kind) || et_accountant_kind_parse(kind->valuestring, &k, err))
        return et_fail(err, "accountant: key 'accountant' must be \"rdp\" or \"prv\"");
    double eps_error = 0, delta_error = 0;
    if (json_number(json, "eps_error", &eps_error, err) ||
        json_number(json, "delta_error", &delta_error, err))
        return -1;
    if (!(eps_error > 0) || !isfinite(eps_error) || !(delta_error >= 0 && delta_error < 1))
        return et_fail(err, "accountant: eps_error must be > 0 and delta_error in [0, 1)");
    const cJSON *hist = cJSON_GetObjectItemCaseSensitive(json, "history");
    if (!cJSON_IsArray(hist))
        return et_fail(err, "accountant: key 'history' must be an array of [sigma, q, steps]");
    et_accountant_init(acc, k);
    acc->eps_error = eps_error;
    acc->delta_error = delta_error;
    int i = 0;
    const cJSON *entry;
    cJSON_ArrayForEach(entry, hist) {
        const cJSON *s = cJSON_GetArrayItem(entry, 0), *q = cJSON_GetArrayItem(entry, 1),
                    *n = cJSON_GetArrayItem(entry, 2);
        if (!cJSON_IsArray(entry) || cJSON_GetArraySize(entry) != 3 || !cJSON_IsNumber(s) ||
            !cJSON_IsNumber(q) || !cJSON_IsNumber(n) || n->valuedouble != floor(n->valuedouble) ||
            !(n->valuedouble >= 1 && n->valuedouble <= 9007199254740992.0)) {
            et_accountant_free(acc);
            return et_fail(err, "accountant: history entry %d must be [sigma, q, steps] "
                                "with an integer steps >= 1", i);
        }
        if (et_accountant_step(acc, s->valuedouble, q->valuedouble,
                               (int64_t)n->valuedouble, err)) {
            et_accountant_free(acc);
            return et_wrap(err, "accountant: history entry %d", i);
        }
        i++;
    }
    return 0;
}

int64_t et_steps_for_epochs(double epochs, double sample_rate) {
    double steps = epochs / sample_rate;
    if (!(steps >= 0) || steps >= 9.2e18) return -1;
    return (int64_t)steps;
}
