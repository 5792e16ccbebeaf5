/* lab.c — the C SDK for labhost plugins; see lab.h. */
#include "lab.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- strings ------------------------------------------------------------ */

lab_str_t lab_str(const char *s) {
    lab_str_t r = {(uint8_t *)s, s ? strlen(s) : 0};
    return r;
}

lab_str_t lab_str_n(const char *s, size_t len) {
    lab_str_t r = {(uint8_t *)s, len};
    return r;
}

static void *xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) abort(); /* out of memory: trap, as a Rust guest does */
    return p;
}

static char *dup_n(const char *s, size_t n) {
    char *r = xmalloc(n + 1);
    if (n) memcpy(r, s, n);
    r[n] = 0;
    return r;
}

char *lab_cstr(const lab_str_t *s) { return dup_n((const char *)s->ptr, s->len); }

char *lab_vformat(const char *fmt, va_list ap) {
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0) n = 0;
    char *r = xmalloc((size_t)n + 1);
    vsnprintf(r, (size_t)n + 1, fmt, ap);
    return r;
}

char *lab_format(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char *r = lab_vformat(fmt, ap);
    va_end(ap);
    return r;
}

/* A lab string owning a malloc'd copy (for values handed back to the host
 * from an export, which the generated post-return code frees). */
static lab_str_t owned(const char *s) {
    size_t n = s ? strlen(s) : 0;
    lab_str_t r = {(uint8_t *)dup_n(s ? s : "", n), n};
    return r;
}

/* ---- lab errors --------------------------------------------------------- */

static char *last_error;

const char *lab_status_name(lab_status_t s) {
    switch (s) {
    case LAB_OK: return "ok";
    case LAB_INVALID_ARGUMENT: return "invalid-argument";
    case LAB_DENIED: return "denied";
    case LAB_NOT_FOUND: return "not-found";
    case LAB_LIMIT_EXCEEDED: return "limit-exceeded";
    case LAB_IO: return "io";
    case LAB_NETWORK: return "network";
    }
    return "unknown";
}

const char *lab_last_error(void) { return last_error ? last_error : ""; }

lab_status_t lab_status_of(bool ok, lab_api_types_lab_error_t *err) {
    if (ok) return LAB_OK;
    free(last_error);
    /* Every variant case holds one string at the same place. */
    last_error = lab_cstr(&err->val.invalid_argument);
    lab_status_t s = (lab_status_t)(err->tag + 1);
    lab_api_types_lab_error_free(err);
    return s;
}

/* ---- the exports -------------------------------------------------------- */

void lab_describe_init(lab_describe_t *d, const char *name, lab_kind_t kind,
                       const char *description) {
    memset(d, 0, sizeof *d);
    d->name = owned(name);
    d->version = owned("0.1.0");
    d->kind = kind;
    d->description = owned(description);
}

void lab_describe_version(lab_describe_t *d, const char *version) {
    plugin_string_free(&d->version);
    d->version = owned(version);
}

void lab_describe_param(lab_describe_t *d, const char *name, lab_param_type_t type,
                        const char *default_json, const char *description) {
    size_t n = d->params.len;
    lab_api_plugin_types_param_t *ps =
        realloc(d->params.ptr, (n + 1) * sizeof(lab_api_plugin_types_param_t));
    if (!ps) abort();
    lab_api_plugin_types_param_t *p = &ps[n];
    memset(p, 0, sizeof *p);
    p->name = owned(name);
    p->type = type;
    p->default_.is_some = default_json != NULL;
    if (default_json) p->default_.val = owned(default_json);
    p->description = owned(description);
    d->params.ptr = ps;
    d->params.len = n + 1;
}

void exports_plugin_describe(plugin_plugin_info_t *ret) { lab_plugin_describe(ret); }

static char *run_error;

int lab_return_error(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    free(run_error);
    run_error = lab_vformat(fmt, ap);
    va_end(ap);
    return 1;
}

int lab_return_status(lab_status_t s) {
    static const char *display[] = {"ok", "invalid argument", "denied", "not found",
                                     "limit exceeded", "io", "network"};
    const char *what = (unsigned)s < sizeof display / sizeof display[0] ? display[s] : "unknown";
    return lab_return_error("%s: %s", what, lab_last_error());
}

int lab_check(lab_status_t s) { return s == LAB_OK ? 0 : lab_return_status(s); }

bool exports_plugin_run(plugin_string_t *err) {
    free(run_error);
    run_error = NULL;
    /* Line-buffered stdout, as Rust's: each line reaches the log as printed. */
    setvbuf(stdout, NULL, _IOLBF, BUFSIZ);
    int rc = lab_plugin_run();
    /* A reactor never exits: flush what the plugin printed. */
    fflush(stdout);
    fflush(stderr);
    if (rc == 0) return true;
    *err = owned(run_error ? run_error : "plugin failed");
    return false;
}

/* ---- log, progress, metrics --------------------------------------------- */

void lab_vlog(lab_level_t level, const char *fmt, va_list ap) {
    char *m = lab_vformat(fmt, ap);
    lab_str_t s = lab_str(m);
    lab_api_log_write(level, &s);
    free(m);
}

void lab_log(lab_level_t level, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    lab_vlog(level, fmt, ap);
    va_end(ap);
}

lab_status_t lab_progress(float percent, const char *stage) {
    lab_str_t s = lab_str(stage);
    lab_api_types_lab_error_t err;
    return lab_status_of(lab_api_progress_update(percent, stage ? &s : NULL, &err), &err);
}

lab_status_t lab_metric(const char *name, double value, const uint64_t *step) {
    lab_str_t n = lab_str(name);
    uint64_t st = step ? *step : 0;
    lab_api_types_lab_error_t err;
    return lab_status_of(lab_api_metrics_record_metric(&n, value, step ? &st : NULL, &err), &err);
}

lab_status_t lab_report(float percent, const char *stage, size_t n_metrics,
                        const lab_score_t *metrics, const uint64_t *step) {
    lab_str_t s = lab_str(stage);
    uint64_t st = step ? *step : 0;
    plugin_tuple2_string_f64_t *ms = xmalloc(n_metrics * sizeof *ms);
    for (size_t i = 0; i < n_metrics; i++) {
        ms[i].f0 = lab_str(metrics[i].name);
        ms[i].f1 = metrics[i].value;
    }
    plugin_list_tuple2_string_f64_t list = {ms, n_metrics};
    lab_api_types_lab_error_t err;
    bool ok = lab_api_progress_report(percent, stage ? &s : NULL, &list, step ? &st : NULL, &err);
    free(ms);
    return lab_status_of(ok, &err);
}

/* ---- config: a small reader for top-level values of a JSON object ------- */

static char *config_json;

const char *lab_config(void) {
    if (!config_json) {
        lab_api_config_json_t j;
        lab_api_config_get(&j);
        config_json = lab_cstr(&j);
        lab_api_config_json_free(&j);
    }
    return config_json;
}

static const char *ws(const char *p) {
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') p++;
    return p;
}

/* Past a JSON string starting at its opening quote. */
static const char *skip_string(const char *p) {
    for (p++; *p && *p != '"'; p++)
        if (*p == '\\' && p[1]) p++;
    return *p ? p + 1 : p;
}

/* Past one JSON value. */
static const char *skip_value(const char *p) {
    p = ws(p);
    if (*p == '"') return skip_string(p);
    if (*p == '{' || *p == '[') {
        int depth = 0;
        while (*p) {
            if (*p == '"') {
                p = skip_string(p);
                continue;
            }
            if (*p == '{' || *p == '[') depth++;
            if (*p == '}' || *p == ']') {
                if (--depth == 0) return p + 1;
            }
            p++;
        }
        return p;
    }
    while (*p && *p != ',' && *p != '}' && *p != ']' && *p != ' ' && *p != '\n' &&
           *p != '\t' && *p != '\r')
        p++;
    return p;
}

static void put_utf8(char **o, unsigned cp) {
    char *q = *o;
    if (cp < 0x80) {
        *q++ = (char)cp;
    } else if (cp < 0x800) {
        *q++ = (char)(0xC0 | (cp >> 6));
        *q++ = (char)(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        *q++ = (char)(0xE0 | (cp >> 12));
        *q++ = (char)(0x80 | ((cp >> 6) & 0x3F));
        *q++ = (char)(0x80 | (cp & 0x3F));
    } else {
        *q++ = (char)(0xF0 | (cp >> 18));
        *q++ = (char)(0x80 | ((cp >> 12) & 0x3F));
        *q++ = (char)(0x80 | ((cp >> 6) & 0x3F));
        *q++ = (char)(0x80 | (cp & 0x3F));
    }
    *o = q;
}

static unsigned hex4(const char *p) {
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        v <<= 4;
        if (c >= '0' && c <= '9') v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f') v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') v |= (unsigned)(c - 'A' + 10);
        else return 0xFFFD;
    }
    return v;
}

/* Decode the JSON string at p (its opening quote) into a malloc'd string. */
static char *decode_string(const char *p) {
    const char *end = skip_string(p);
    char *out = xmalloc((size_t)(end - p) + 4), *o = out;
    for (p++; *p && *p != '"'; p++) {
        if (*p != '\\') {
            *o++ = *p;
            continue;
        }
        p++;
        switch (*p) {
        case 'b': *o++ = '\b'; break;
        case 'f': *o++ = '\f'; break;
        case 'n': *o++ = '\n'; break;
        case 'r': *o++ = '\r'; break;
        case 't': *o++ = '\t'; break;
        case 'u': {
            if (strlen(p + 1) < 4) goto done;
            unsigned cp = hex4(p + 1);
            p += 4;
            if (cp >= 0xD800 && cp < 0xDC00 && p[1] == '\\' && p[2] == 'u' && strlen(p + 3) >= 4) {
                unsigned lo = hex4(p + 3);
                if (lo >= 0xDC00 && lo < 0xE000) {
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                    p += 6;
                }
            }
            put_utf8(&o, cp);
            break;
        }
        case 0: goto done;
        default: *o++ = *p; /* \" \\ \/ */
        }
    }
done:
    *o = 0;
    return out;
}

/* Start of the value of top-level `key` in the config, or NULL. */
static const char *config_find(const char *key) {
    const char *p = ws(lab_config());
    if (*p != '{') return NULL;
    p = ws(p + 1);
    while (*p == '"') {
        char *k = decode_string(p);
        int match = strcmp(k, key) == 0;
        free(k);
        p = ws(skip_string(p));
        if (*p != ':') return NULL;
        p = ws(p + 1);
        if (match) return p;
        p = ws(skip_value(p));
        if (*p != ',') return NULL;
        p = ws(p + 1);
    }
    return NULL;
}

char *lab_config_raw(const char *key) {
    const char *v = config_find(key);
    return v ? dup_n(v, (size_t)(skip_value(v) - v)) : NULL;
}

char *lab_config_text(const char *key, const char *dflt) {
    const char *v = config_find(key);
    if (v && *v == '"') return decode_string(v);
    return dflt ? dup_n(dflt, strlen(dflt)) : NULL;
}

long long lab_config_int(const char *key, long long dflt) {
    const char *v = config_find(key);
    if (!v) return dflt;
    char *end;
    long long r = strtoll(v, &end, 10);
    return end == v || *end == '.' || *end == 'e' || *end == 'E' ? dflt : r;
}

double lab_config_number(const char *key, double dflt) {
    const char *v = config_find(key);
    if (!v) return dflt;
    char *end;
    double r = strtod(v, &end);
    return end == v ? dflt : r;
}

bool lab_config_bool(const char *key, bool dflt) {
    const char *v = config_find(key);
    if (v && strncmp(v, "true", 4) == 0) return true;
    if (v && strncmp(v, "false", 5) == 0) return false;
    return dflt;
}

void lab_job_info(lab_job_info_t *out) { lab_api_config_info(out); }

/* ---- stored files ------------------------------------------------------- */

lab_status_t lab_save_artifact(const char *path, const char *name, lab_stored_t *out) {
    lab_str_t p = lab_str(path), n = lab_str(name);
    lab_stored_t st;
    lab_api_types_lab_error_t err;
    bool ok = lab_api_artifacts_save(&p, name ? &n : NULL, &st, &err);
    if (ok) {
        if (out) *out = st;
        else lab_stored_free(&st);
    }
    return lab_status_of(ok, &err);
}

lab_status_t lab_save_checkpoint(const char *path, const char *name, lab_stored_t *out) {
    lab_str_t p = lab_str(path), n = lab_str(name);
    lab_stored_t st;
    lab_api_types_lab_error_t err;
    bool ok = lab_api_checkpoints_save(&p, &n, &st, &err);
    if (ok) {
        if (out) *out = st;
        else lab_stored_free(&st);
    }
    return lab_status_of(ok, &err);
}

static plugin_option_string_t opt(const char *s) {
    plugin_option_string_t o;
    o.is_some = s != NULL;
    o.val = lab_str(s);
    return o;
}

lab_status_t lab_save_model(const char *path, const char *name, const char *architecture,
                            const char *pipeline_tag, const char *parent_model,
                            const char *metadata_json, lab_model_info_t *out) {
    lab_str_t p = lab_str(path), n = lab_str(name);
    lab_api_models_model_meta_t meta = {
        .architecture = opt(architecture),
        .pipeline_tag = opt(pipeline_tag),
        .parent_model = opt(parent_model),
        .metadata = lab_str(metadata_json ? metadata_json : "{}"),
    };
    lab_model_info_t info;
    lab_api_types_lab_error_t err;
    bool ok = lab_api_models_save(&p, &n, &meta, &info, &err);
    if (ok) {
        if (out) *out = info;
        else lab_model_info_free(&info);
    }
    return lab_status_of(ok, &err);
}

lab_status_t lab_open_model(const char *id, char **path) {
    lab_str_t i = lab_str(id), r;
    lab_api_types_lab_error_t err;
    bool ok = lab_api_models_open(&i, &r, &err);
    if (ok) {
        *path = lab_cstr(&r);
        plugin_string_free(&r);
    }
    return lab_status_of(ok, &err);
}

lab_status_t lab_open_dataset(const char *id, char **path) {
    lab_str_t i = lab_str(id), r;
    lab_api_types_lab_error_t err;
    bool ok = lab_api_datasets_open(&i, &r, &err);
    if (ok) {
        *path = lab_cstr(&r);
        plugin_string_free(&r);
    }
    return lab_status_of(ok, &err);
}

lab_status_t lab_get_model(const char *id, lab_model_info_t *out) {
    lab_str_t i = lab_str(id);
    lab_model_info_t info;
    lab_api_types_lab_error_t err;
    bool ok = lab_api_models_get(&i, &info, &err);
    if (ok) {
        if (out) *out = info;
        else lab_model_info_free(&info);
    }
    return lab_status_of(ok, &err);
}

lab_status_t lab_get_dataset(const char *id, lab_dataset_info_t *out) {
    lab_str_t i = lab_str(id);
    lab_dataset_info_t info;
    lab_api_types_lab_error_t err;
    bool ok = lab_api_datasets_get(&i, &info, &err);
    if (ok) {
        if (out) *out = info;
        else lab_dataset_info_free(&info);
    }
    return lab_status_of(ok, &err);
}

lab_status_t lab_save_dataset_rows(const char *name, size_t n, const char *const *rows,
                                   const char *description, const char *metadata_json,
                                   lab_dataset_info_t *out) {
    lab_str_t nm = lab_str(name), d = lab_str(description),
              md = lab_str(metadata_json ? metadata_json : "{}");
    lab_str_t *rs = xmalloc(n * sizeof(lab_str_t));
    for (size_t i = 0; i < n; i++) rs[i] = lab_str(rows[i]);
    lab_api_datasets_list_json_t list = {rs, n};
    lab_dataset_info_t info;
    lab_api_types_lab_error_t err;
    bool ok = lab_api_datasets_save_rows(&nm, &list, description ? &d : NULL, &md, &info, &err);
    free(rs);
    if (ok) {
        if (out) *out = info;
        else lab_dataset_info_free(&info);
    }
    return lab_status_of(ok, &err);
}

lab_status_t lab_save_dataset_file(const char *path, const char *name,
                                   const char *description, const char *metadata_json,
                                   lab_dataset_info_t *out) {
    lab_str_t p = lab_str(path), nm = lab_str(name), d = lab_str(description),
              md = lab_str(metadata_json ? metadata_json : "{}");
    lab_dataset_info_t info;
    lab_api_types_lab_error_t err;
    bool ok = lab_api_datasets_save_file(&p, &nm, description ? &d : NULL, &md, &info, &err);
    if (ok) {
        if (out) *out = info;
        else lab_dataset_info_free(&info);
    }
    return lab_status_of(ok, &err);
}

/* ---- evals -------------------------------------------------------------- */

lab_status_t lab_save_eval(const char *name, size_t n, const lab_eval_row_t *rows,
                           lab_table_format_t format, lab_eval_summary_t *out) {
    lab_str_t nm = lab_str(name);
    lab_api_evals_eval_row_t *rs = xmalloc(n * sizeof *rs);
    for (size_t i = 0; i < n; i++) {
        rs[i].input = lab_str(rows[i].input);
        rs[i].output = lab_str(rows[i].output);
        rs[i].expected = opt(rows[i].expected);
        rs[i].score = rows[i].score;
        rs[i].extra = lab_str(rows[i].extra ? rows[i].extra : "{}");
    }
    lab_api_evals_list_eval_row_t list = {rs, n};
    lab_eval_summary_t sum;
    lab_api_types_lab_error_t err;
    bool ok = lab_api_evals_save(&nm, &list, format, &sum, &err);
    free(rs);
    if (ok) {
        if (out) *out = sum;
        else lab_eval_summary_free(&sum);
    }
    return lab_status_of(ok, &err);
}

/* ---- building JSON ------------------------------------------------------ */

static void json_reserve(lab_json_t *j, size_t extra) {
    if (j->len + extra + 1 <= j->cap) return;
    size_t cap = j->cap ? j->cap : 64;
    while (cap < j->len + extra + 1) cap *= 2;
    char *d = realloc(j->data, cap);
    if (!d) abort();
    j->data = d;
    j->cap = cap;
}

static void json_put(lab_json_t *j, const char *s, size_t n) {
    json_reserve(j, n);
    memcpy(j->data + j->len, s, n);
    j->len += n;
    j->data[j->len] = 0;
}

/* Before a key or value: a comma unless it opens the text, a container,
 * or is the value of the key just written. */
static void json_sep(lab_json_t *j) {
    if (j->len == 0) return;
    char last = j->data[j->len - 1];
    if (last != '{' && last != '[' && last != ':') json_put(j, ",", 1);
}

void lab_json_begin_object(lab_json_t *j) {
    json_sep(j);
    json_put(j, "{", 1);
}

void lab_json_end_object(lab_json_t *j) { json_put(j, "}", 1); }

void lab_json_begin_array(lab_json_t *j) {
    json_sep(j);
    json_put(j, "[", 1);
}

void lab_json_end_array(lab_json_t *j) { json_put(j, "]", 1); }

static void json_quoted(lab_json_t *j, const char *s, size_t len) {
    static const char hex[] = "0123456789abcdef";
    json_reserve(j, len + 2);
    json_put(j, "\"", 1);
    size_t run = 0; /* bytes copied as they are, flushed before an escape */
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        char esc[7];
        size_t n = 0;
        switch (c) {
        case '"': n = 2, esc[0] = '\\', esc[1] = '"'; break;
        case '\\': n = 2, esc[0] = '\\', esc[1] = '\\'; break;
        case '\n': n = 2, esc[0] = '\\', esc[1] = 'n'; break;
        case '\r': n = 2, esc[0] = '\\', esc[1] = 'r'; break;
        case '\t': n = 2, esc[0] = '\\', esc[1] = 't'; break;
        case '\b': n = 2, esc[0] = '\\', esc[1] = 'b'; break;
        case '\f': n = 2, esc[0] = '\\', esc[1] = 'f'; break;
        default:
            if (c < 0x20 || c == 0x7f) {
                memcpy(esc, "\\u00", 4);
                esc[4] = hex[c >> 4];
                esc[5] = hex[c & 15];
                n = 6;
            }
        }
        if (!n) {
            run++;
            continue;
        }
        json_put(j, s + i - run, run);
        run = 0;
        json_put(j, esc, n);
    }
    json_put(j, s + len - run, run);
    json_put(j, "\"", 1);
}

void lab_json_key(lab_json_t *j, const char *key) {
    json_sep(j);
    json_quoted(j, key, strlen(key));
    json_put(j, ":", 1);
}

void lab_json_string_n(lab_json_t *j, const char *s, size_t len) {
    json_sep(j);
    json_quoted(j, s, len);
}

void lab_json_string(lab_json_t *j, const char *s) { lab_json_string_n(j, s, strlen(s)); }

void lab_json_int(lab_json_t *j, long long v) {
    char buf[32];
    int n = snprintf(buf, sizeof buf, "%lld", v);
    json_sep(j);
    json_put(j, buf, (size_t)n);
}

void lab_json_uint(lab_json_t *j, unsigned long long v) {
    char buf[32];
    int n = snprintf(buf, sizeof buf, "%llu", v);
    json_sep(j);
    json_put(j, buf, (size_t)n);
}

void lab_json_number(lab_json_t *j, double v) {
    char buf[40];
    int n;
    if (v != v || v - v != 0) { /* NaN or infinite */
        lab_json_null(j);
        return;
    }
    if (v == (double)(long long)v && v > -1e16 && v < 1e16) {
        n = snprintf(buf, sizeof buf, "%.1f", v);
    } else {
        n = 0;
        for (int prec = 1; prec <= 17; prec++) {
            n = snprintf(buf, sizeof buf, "%.*g", prec, v);
            if (strtod(buf, NULL) == v) break;
        }
    }
    json_sep(j);
    json_put(j, buf, (size_t)n);
}

void lab_json_bool(lab_json_t *j, bool v) {
    json_sep(j);
    json_put(j, v ? "true" : "false", v ? 4 : 5);
}

void lab_json_null(lab_json_t *j) {
    json_sep(j);
    json_put(j, "null", 4);
}

void lab_json_raw(lab_json_t *j, const char *json) {
    json_sep(j);
    json_put(j, json, strlen(json));
}

char *lab_json_take(lab_json_t *j) {
    char *r = j->data ? j->data : dup_n("", 0);
    j->data = NULL;
    j->len = j->cap = 0;
    return r;
}

void lab_json_free(lab_json_t *j) { free(lab_json_take(j)); }

char *lab_json_quote(const char *s) {
    lab_json_t j = LAB_JSON_INIT;
    lab_json_string(&j, s);
    return lab_json_take(&j);
}

/* ---- job end ------------------------------------------------------------ */

lab_status_t lab_finish(const char *message, size_t n, const lab_score_t *scores) {
    lab_str_t m = lab_str(message);
    plugin_tuple2_string_f64_t *ts = xmalloc(n * sizeof *ts);
    for (size_t i = 0; i < n; i++) {
        ts[i].f0 = lab_str(scores[i].name);
        ts[i].f1 = scores[i].value;
    }
    plugin_list_tuple2_string_f64_t list = {ts, n};
    lab_api_types_lab_error_t err;
    bool ok = lab_api_job_finish(&m, &list, &err);
    free(ts);
    return lab_status_of(ok, &err);
}

lab_status_t lab_fail(const char *message) {
    lab_str_t m = lab_str(message);
    lab_api_types_lab_error_t err;
    return lab_status_of(lab_api_job_fail(&m, &err), &err);
}

bool lab_should_stop(void) { return lab_api_job_should_stop(); }

lab_status_t lab_update_status(const char *status, const char *metadata_json,
                               const char *error_message) {
    lab_str_t st = lab_str(status), md = lab_str(metadata_json), em = lab_str(error_message);
    lab_api_types_lab_error_t err;
    bool ok = lab_api_job_update_status(&st, metadata_json ? &md : NULL,
                                        error_message ? &em : NULL, &err);
    return lab_status_of(ok, &err);
}

/* ---- job metadata --------------------------------------------------------- */

char *lab_get_metadata(void) {
    lab_api_metadata_json_t j;
    lab_api_metadata_get(&j);
    char *r = lab_cstr(&j);
    lab_api_metadata_json_free(&j);
    return r;
}

lab_status_t lab_update_metadata(const char *patch_json, char **merged) {
    lab_str_t p = lab_str(patch_json), r;
    lab_api_types_lab_error_t err;
    bool ok = lab_api_metadata_update(&p, &r, &err);
    if (ok) {
        if (merged) *merged = lab_cstr(&r);
        plugin_string_free(&r);
    }
    return lab_status_of(ok, &err);
}

lab_status_t lab_reset_metadata(const char *value_json) {
    lab_str_t v = lab_str(value_json ? value_json : "{}");
    lab_api_types_lab_error_t err;
    return lab_status_of(lab_api_metadata_reset(&v, &err), &err);
}

/* ---- secrets -------------------------------------------------------------- */

lab_status_t lab_get_secret(const char *name, char **value) {
    lab_str_t n = lab_str(name), r;
    lab_api_types_lab_error_t err;
    bool ok = lab_api_secrets_get(&n, &r, &err);
    if (ok) {
        *value = lab_cstr(&r);
        plugin_string_free(&r);
    }
    return lab_status_of(ok, &err);
}

/* ---- http ----------------------------------------------------------------- */

lab_status_t lab_http_send(const char *method, const char *url,
                           const lab_http_header_t *headers, size_t n_headers,
                           const void *body, size_t body_len, const uint32_t *timeout_ms,
                           lab_http_response_t *out) {
    plugin_tuple2_string_string_t *hs = xmalloc(n_headers * sizeof *hs);
    for (size_t i = 0; i < n_headers; i++) {
        hs[i].f0 = lab_str(headers[i].name);
        hs[i].f1 = lab_str(headers[i].value);
    }
    lab_api_http_request_t req = {
        .method = lab_str(method),
        .url = lab_str(url),
        .headers = {hs, n_headers},
        .body = {(uint8_t *)body, body ? body_len : 0},
        .timeout_ms = {timeout_ms != NULL, timeout_ms ? *timeout_ms : 0},
    };
    lab_http_response_t resp;
    lab_api_types_lab_error_t err;
    bool ok = lab_api_http_send(&req, &resp, &err);
    free(hs);
    if (ok) {
        if (out) *out = resp;
        else lab_http_response_free(&resp);
    }
    return lab_status_of(ok, &err);
}

char *lab_http_header(const lab_http_response_t *r, const char *name) {
    size_t n = strlen(name);
    for (size_t i = 0; i < r->headers.len; i++) {
        const lab_str_t *k = &r->headers.ptr[i].f0;
        if (k->len == n && strncasecmp((const char *)k->ptr, name, n) == 0)
            return lab_cstr(&r->headers.ptr[i].f1);
    }
    return NULL;
}

/* ---- inference (wasi:nn) -------------------------------------------------- */

const char *lab_nn_status_name(lab_nn_status_t s) {
    switch (s) {
    case LAB_NN_OK: return "ok";
    case LAB_NN_INVALID_ARGUMENT: return "invalid-argument";
    case LAB_NN_INVALID_ENCODING: return "invalid-encoding";
    case LAB_NN_TIMEOUT: return "timeout";
    case LAB_NN_RUNTIME_ERROR: return "runtime-error";
    case LAB_NN_UNSUPPORTED_OPERATION: return "unsupported-operation";
    case LAB_NN_TOO_LARGE: return "too-large";
    case LAB_NN_NOT_FOUND: return "not-found";
    case LAB_NN_SECURITY: return "security";
    case LAB_NN_UNKNOWN: return "unknown";
    }
    return "unknown";
}

int lab_nn_return_status(lab_nn_status_t s) {
    return lab_return_error("%s: %s", lab_nn_status_name(s), lab_last_error());
}

const char *lab_nn_type_name(lab_nn_type_t ty) {
    switch (ty) {
    case LAB_NN_FP16: return "FP16";
    case LAB_NN_FP32: return "FP32";
    case LAB_NN_FP64: return "FP64";
    case LAB_NN_BF16: return "BF16";
    case LAB_NN_U8: return "U8";
    case LAB_NN_I32: return "I32";
    case LAB_NN_I64: return "I64";
    }
    return "?";
}

/* A status of the SDK's own making, with its message for lab_last_error(). */
static lab_nn_status_t nn_fail(lab_nn_status_t s, char *message) {
    free(last_error);
    last_error = message;
    return s;
}

/* The status of a wasi:nn error resource (taken and dropped), keeping its
 * message for lab_last_error(). */
static lab_nn_status_t nn_status_of(wasi_nn_errors_own_error_t err) {
    wasi_nn_errors_borrow_error_t b = wasi_nn_errors_borrow_error(err);
    wasi_nn_errors_error_code_t code = wasi_nn_errors_method_error_code(b);
    lab_str_t data;
    wasi_nn_errors_method_error_data(b, &data);
    char *message = lab_cstr(&data);
    plugin_string_free(&data);
    wasi_nn_errors_error_drop_own(err);
    lab_nn_status_t s = code <= WASI_NN_ERRORS_ERROR_CODE_UNKNOWN ? (lab_nn_status_t)(code + 1)
                                                                   : LAB_NN_UNKNOWN;
    return nn_fail(s, message);
}

lab_nn_tensor_t lab_nn_tensor_f32(const char *name, const uint32_t *dims, size_t n_dims,
                                  const float *values, size_t n) {
    lab_nn_tensor_t t = {name, dims, n_dims, LAB_NN_FP32, (const uint8_t *)values,
                         n * sizeof(float)};
    return t;
}

lab_nn_tensor_t lab_nn_tensor_i64(const char *name, const uint32_t *dims, size_t n_dims,
                                  const int64_t *values, size_t n) {
    lab_nn_tensor_t t = {name, dims, n_dims, LAB_NN_I64, (const uint8_t *)values,
                         n * sizeof(int64_t)};
    return t;
}

/* The values of `t` (type `ty`, `size`-byte elements) as a malloc'd copy.
 * wasm32 is little-endian, like the tensor data. */
static lab_nn_status_t nn_values(const lab_nn_tensor_t *t, lab_nn_type_t ty, size_t size,
                                 void **values, size_t *n) {
    if (t->ty != ty)
        return nn_fail(LAB_NN_INVALID_ARGUMENT,
                       lab_format("tensor `%s` is %s, not %s", t->name,
                                  lab_nn_type_name(t->ty), lab_nn_type_name(ty)));
    size_t count = t->len / size;
    void *v = xmalloc(count * size);
    if (count) memcpy(v, t->data, count * size);
    *values = v;
    *n = count;
    return LAB_NN_OK;
}

lab_nn_status_t lab_nn_to_f32(const lab_nn_tensor_t *t, float **values, size_t *n) {
    return nn_values(t, LAB_NN_FP32, sizeof(float), (void **)values, n);
}

lab_nn_status_t lab_nn_to_i64(const lab_nn_tensor_t *t, int64_t **values, size_t *n) {
    return nn_values(t, LAB_NN_I64, sizeof(int64_t), (void **)values, n);
}

lab_nn_status_t lab_nn_output(const lab_nn_outputs_t *o, const char *name,
                              const lab_nn_tensor_t **t) {
    for (size_t i = 0; i < o->len; i++) {
        if (strcmp(o->tensors[i].name, name) == 0) {
            *t = &o->tensors[i];
            return LAB_NN_OK;
        }
    }
    size_t size = 1;
    for (size_t i = 0; i < o->len; i++) size += strlen(o->tensors[i].name) + 2;
    char *list = xmalloc(size);
    list[0] = 0;
    for (size_t i = 0; i < o->len; i++) {
        if (i) strcat(list, ", ");
        strcat(list, o->tensors[i].name);
    }
    char *message = lab_format("no output `%s` (outputs: %s)", name, list);
    free(list);
    *t = NULL;
    return nn_fail(LAB_NN_NOT_FOUND, message);
}

void lab_nn_outputs_free(lab_nn_outputs_t *o) {
    for (size_t i = 0; i < o->len; i++) {
        free((char *)o->tensors[i].name);
        free((uint32_t *)o->tensors[i].dims);
        free((uint8_t *)o->tensors[i].data);
    }
    free(o->tensors);
    o->tensors = NULL;
    o->len = 0;
}

/* The execution context of a freshly loaded graph (taken), into *out. */
static lab_nn_status_t nn_model(bool ok, wasi_nn_graph_own_graph_t graph,
                                wasi_nn_errors_own_error_t err, lab_nn_model_t *out) {
    memset(out, 0, sizeof *out);
    if (!ok) return nn_status_of(err);
    wasi_nn_graph_own_graph_execution_context_t ctx;
    if (!wasi_nn_graph_method_graph_init_execution_context(wasi_nn_graph_borrow_graph(graph),
                                                           &ctx, &err)) {
        wasi_nn_graph_graph_drop_own(graph);
        return nn_status_of(err);
    }
    out->graph = graph;
    out->ctx = ctx;
    return LAB_NN_OK;
}

lab_nn_status_t lab_nn_load(const char *name, lab_nn_model_t *out) {
    lab_str_t n = lab_str(name);
    wasi_nn_graph_own_graph_t graph;
    wasi_nn_errors_own_error_t err;
    bool ok = wasi_nn_graph_load_by_name(&n, &graph, &err);
    return nn_model(ok, graph, err, out);
}

lab_nn_status_t lab_nn_load_bytes(const void *bytes, size_t len, lab_nn_model_t *out) {
    wasi_nn_graph_graph_builder_t part = {(uint8_t *)bytes, bytes ? len : 0};
    wasi_nn_graph_list_graph_builder_t builders = {&part, 1};
    wasi_nn_graph_own_graph_t graph;
    wasi_nn_errors_own_error_t err;
    bool ok = wasi_nn_graph_load(&builders, WASI_NN_GRAPH_GRAPH_ENCODING_ONNX,
                                 WASI_NN_GRAPH_EXECUTION_TARGET_CPU, &graph, &err);
    return nn_model(ok, graph, err, out);
}

lab_nn_status_t lab_nn_run(const lab_nn_model_t *m, size_t n_inputs,
                           const lab_nn_tensor_t *inputs, lab_nn_outputs_t *out) {
    if (out) memset(out, 0, sizeof *out);
    if (m->ctx.__handle == 0)
        return nn_fail(LAB_NN_INVALID_ARGUMENT, lab_format("the model was freed"));
    /* The tensors are created here and handed to compute (which owns them). */
    wasi_nn_inference_named_tensor_t *named = xmalloc(n_inputs * sizeof *named);
    for (size_t i = 0; i < n_inputs; i++) {
        const lab_nn_tensor_t *t = &inputs[i];
        wasi_nn_tensor_tensor_dimensions_t dims = {(uint32_t *)t->dims, t->n_dims};
        wasi_nn_tensor_tensor_data_t data = {(uint8_t *)t->data, t->len};
        named[i].f0 = lab_str(t->name);
        named[i].f1 = wasi_nn_tensor_constructor_tensor(&dims, t->ty, &data);
    }
    wasi_nn_inference_list_named_tensor_t list = {named, n_inputs}, ret;
    wasi_nn_errors_own_error_t err;
    bool ok = wasi_nn_inference_method_graph_execution_context_compute(
        wasi_nn_inference_borrow_graph_execution_context(m->ctx), &list, &ret, &err);
    free(named);
    if (!ok) return nn_status_of(err);
    lab_nn_tensor_t *ts = xmalloc(ret.len * sizeof *ts);
    for (size_t i = 0; i < ret.len; i++) {
        wasi_nn_tensor_borrow_tensor_t b = wasi_nn_tensor_borrow_tensor(ret.ptr[i].f1);
        wasi_nn_tensor_tensor_dimensions_t dims;
        wasi_nn_tensor_tensor_data_t data;
        wasi_nn_tensor_method_tensor_dimensions(b, &dims);
        wasi_nn_tensor_method_tensor_data(b, &data);
        ts[i].name = lab_cstr(&ret.ptr[i].f0);
        ts[i].dims = dims.ptr;
        ts[i].n_dims = dims.len;
        ts[i].ty = wasi_nn_tensor_method_tensor_ty(b);
        ts[i].data = data.ptr;
        ts[i].len = data.len;
        wasi_nn_tensor_tensor_drop_own(ret.ptr[i].f1);
    }
    lab_nn_outputs_t o = {ts, ret.len};
    wasi_nn_inference_list_named_tensor_free(&ret); /* the names and the list */
    if (out) *out = o;
    else lab_nn_outputs_free(&o);
    return LAB_NN_OK;
}

lab_nn_status_t lab_nn_run_f32(const lab_nn_model_t *m, const char *input,
                               const uint32_t *dims, size_t n_dims, const float *values,
                               size_t n, lab_nn_outputs_t *out) {
    lab_nn_tensor_t t = lab_nn_tensor_f32(input, dims, n_dims, values, n);
    return lab_nn_run(m, 1, &t, out);
}

void lab_nn_model_free(lab_nn_model_t *m) {
    if (m->ctx.__handle) wasi_nn_inference_graph_execution_context_drop_own(m->ctx);
    if (m->graph.__handle) wasi_nn_graph_graph_drop_own(m->graph);
    memset(m, 0, sizeof *m);
}
