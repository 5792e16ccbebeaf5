/* The conformance probe, in C: a port of guests/rust/testing/probe.
 *
 * Same description, same scenarios, same `probe: <key> <value>` reports with
 * the same values (Rust's formatting is reproduced where it shows:
 * `Some(2)`, `"quoted names"`, floats without a trailing `.0`, I/O error
 * kinds), so tests/conformance.rs can hold every guest language to one set
 * of expectations.
 */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "lab.h"

static void report(const char *key, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void report(const char *key, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char *v = lab_vformat(fmt, ap);
    va_end(ap);
    lab_info("probe: %s %s", key, v);
    free(v);
}

#define outcome(call) lab_status_name(call)

/* ---- Rust formatting, so reports compare equal across languages -------- */

/* `format!("{s:?}")` of a Rust &str of `len` bytes (malloc'd). */
static char *rust_debug_str(const char *s, size_t len) {
    char *out = malloc(len * 8 + 3), *o = out;
    *o++ = '"';
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        switch (c) {
        case '"': o += sprintf(o, "\\\""); break;
        case '\\': o += sprintf(o, "\\\\"); break;
        case 0: o += sprintf(o, "\\0"); break;
        case '\t': o += sprintf(o, "\\t"); break;
        case '\n': o += sprintf(o, "\\n"); break;
        case '\r': o += sprintf(o, "\\r"); break;
        default:
            if (c < 0x20 || c == 0x7f) o += sprintf(o, "\\u{%x}", c);
            else *o++ = (char)c;
        }
    }
    *o++ = '"';
    *o = 0;
    return out;
}

/* `format!("{x}")` of a Rust f64: shortest round-trip, no `.0`. */
static const char *rust_f64(double x, char buf[64]) {
    if (x == (double)(long long)x && x > -1e17 && x < 1e17) {
        snprintf(buf, 64, "%lld", (long long)x);
        return buf;
    }
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, 64, "%.*g", prec, x);
        if (strtod(buf, NULL) == x) break;
    }
    return buf;
}

/* `format!("{x}")` of a Rust f32: the shortest decimal that reads back as
 * the same f32, in plain notation (no exponent, no `.0`). */
static const char *rust_f32(float x, char buf[64]) {
    if (x != x) return strcpy(buf, "NaN");
    if (x == (float)INFINITY) return strcpy(buf, "inf");
    if (x == -(float)INFINITY) return strcpy(buf, "-inf");
    if (x == 0) return strcpy(buf, signbit(x) ? "-0" : "0");
    char e[32];
    for (int prec = 1; prec <= 9; prec++) {
        snprintf(e, sizeof e, "%.*e", prec - 1, (double)x);
        if (strtof(e, NULL) == x) break;
    }
    /* e: [-]D[.DDD]e[+-]XX */
    char digits[16];
    size_t nd = 0;
    const char *c = e;
    bool negative = *c == '-';
    if (negative) c++;
    for (; *c && *c != 'e'; c++)
        if (*c != '.') digits[nd++] = *c;
    while (nd > 1 && digits[nd - 1] == '0') nd--;
    int point = atoi(c + 1) + 1; /* digits before the decimal point */
    char *o = buf;
    if (negative) *o++ = '-';
    if (point <= 0) {
        *o++ = '0';
        *o++ = '.';
        for (int i = 0; i < -point; i++) *o++ = '0';
        for (size_t i = 0; i < nd; i++) *o++ = digits[i];
    } else if ((size_t)point >= nd) {
        for (size_t i = 0; i < nd; i++) *o++ = digits[i];
        for (size_t i = nd; i < (size_t)point; i++) *o++ = '0';
    } else {
        for (size_t i = 0; i < nd; i++) {
            if (i == (size_t)point) *o++ = '.';
            *o++ = digits[i];
        }
    }
    *o = 0;
    return buf;
}

/* `format!("{:?}")` of an Option<u64>. */
static const char *rust_option_u64(plugin_option_u64_t v, char buf[32]) {
    if (v.is_some) snprintf(buf, 32, "Some(%llu)", (unsigned long long)v.val);
    else snprintf(buf, 32, "None");
    return buf;
}

/* std::io::ErrorKind's Display for the errors a sandboxed guest sees. */
static const char *io_kind(int e) {
    switch (e) {
    case ENOENT: return "entity not found";
    /* Debian's wasi-libc (a 2022 snapshot) fails a path that no preopen
     * covers with ENOTCAPABLE; newer wasi-libc (under Rust's wasip2 std and
     * componentize-py) with ENOENT. The WASI p2 adapter never produces
     * ENOTCAPABLE itself, so it means exactly that: not in the sandbox. */
    case ENOTCAPABLE: return "entity not found";
    case EACCES:
    case EPERM: return "permission denied";
    case EROFS: return "read-only filesystem or storage medium";
    case EEXIST: return "entity already exists";
    case EISDIR: return "is a directory";
    case ENOTDIR: return "not a directory";
    default: return "other error";
    }
}

/* ---- files -------------------------------------------------------------- */

/* Write `len` bytes to `path` (as std::fs::write); 0 or an errno. */
static int write_file(const char *path, const void *data, size_t len) {
    FILE *f = fopen(path, "wb");
    if (!f) return errno;
    size_t w = len ? fwrite(data, 1, len, f) : 0;
    int e = (w == len) ? 0 : (errno ? errno : EIO);
    if (fclose(f) != 0 && !e) e = errno ? errno : EIO;
    return e;
}

static int write_text(const char *path, const char *s) { return write_file(path, s, strlen(s)); }

static const char *allowed(const char *path) {
    return write_text(path, "x") == 0 ? "allowed" : "denied";
}

/* Whole file as a malloc'd string, or NULL with errno set. */
static char *read_file(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    for (;;) {
        size_t r = fread(buf + n, 1, cap - n - 1, f);
        n += r;
        if (r == 0) break;
        if (cap - n - 1 == 0) buf = realloc(buf, cap *= 2);
    }
    int err = ferror(f) ? (errno ? errno : EIO) : 0;
    fclose(f);
    if (err) {
        free(buf);
        errno = err;
        return NULL;
    }
    buf[n] = 0;
    return buf;
}

static const char *readable(const char *path) {
    char *c = read_file(path);
    free(c);
    return c ? "readable" : "unreadable";
}

static int mkdirs(const char *path) {
    char *p = strdup(path);
    for (char *s = p + 1; *s; s++) {
        if (*s == '/') {
            *s = 0;
            mkdir(p, 0777);
            *s = '/';
        }
    }
    int r = mkdir(p, 0777) == 0 || errno == EEXIST ? 0 : errno;
    free(p);
    return r;
}

static int io_error(const char *what, const char *path) {
    return lab_return_error("i/o error: %s %s: %s", what, path, strerror(errno));
}

#define TRY_IO(expr, what, path)              \
    do {                                      \
        if ((expr) != 0) {                    \
            return io_error((what), (path));  \
        }                                     \
    } while (0)

static char *work_path(const char *rel) {
    lab_job_info_t info;
    lab_job_info(&info);
    char *work = lab_cstr(&info.work_dir);
    lab_api_config_job_info_free(&info);
    char *p = lab_format("%s/%s", work, rel);
    free(work);
    return p;
}

/* ---- describe ----------------------------------------------------------- */

void lab_plugin_describe(lab_describe_t *d) {
    lab_describe_init(d, "probe", LAB_KIND_OTHER,
                      "Conformance probe: exercises the lab API per scenario");
    lab_describe_param(d, "scenario", LAB_PARAM_TEXT, "\"all-api\"", "What to do");
    lab_describe_param(d, "count", LAB_PARAM_INTEGER, "3", "A number some scenarios use");
    lab_describe_param(d, "ratio", LAB_PARAM_NUMBER, "0.5", "A number");
    lab_describe_param(d, "flag", LAB_PARAM_BOOLEAN, "false", "A boolean");
    lab_describe_param(d, "extra", LAB_PARAM_JSON, "{}", "Free JSON");
    lab_describe_param(d, "target", LAB_PARAM_TEXT, "\"\"",
                       "A path, id or name some scenarios use");
}

/* ---- scenarios ---------------------------------------------------------- */

/* Every lab call, with the results reported. */
static int all_api(void) {
    static const char *levels[] = {"Trace", "Debug", "Info", "Warn", "Error"};
    for (int l = 0; l < 5; l++) lab_log((lab_level_t)l, "level Level::%s", levels[l]);
    report("config", "%s", lab_config());
    lab_job_info_t info;
    lab_job_info(&info);
    report("job-id", "%.*s", (int)info.job_id.len, (const char *)info.job_id.ptr);
    report("experiment", "%.*s", (int)info.experiment.len, (const char *)info.experiment.ptr);
    report("work-dir", "%.*s", (int)info.work_dir.len, (const char *)info.work_dir.ptr);
    lab_api_config_job_info_free(&info);
    LAB_TRY(lab_progress(10.0f, "writing"));
    report("progress-over-100", "%s", outcome(lab_progress(150.0f, NULL)));
    report("progress-nan", "%s", outcome(lab_progress(__builtin_nanf(""), NULL)));
    for (uint64_t step = 0; step < 3; step++)
        LAB_TRY(lab_metric("loss", 1.0 / (double)(step + 1), &step));
    LAB_TRY(lab_metric("lr", 0.1, NULL));
    uint64_t nine = 9;
    report("metric-nan", "%s", outcome(lab_metric("loss", __builtin_nan(""), &nine)));

    char *p;
    TRY_IO(write_text(p = work_path("hello.txt"), "hello artifact\n"), "writing", p);
    free(p);
    TRY_IO(mkdirs(p = work_path("bundle/sub")), "creating", p);
    free(p);
    TRY_IO(write_text(p = work_path("bundle/a.txt"), "a"), "writing", p);
    free(p);
    TRY_IO(write_text(p = work_path("bundle/sub/b.txt"), "bb"), "writing", p);
    free(p);
    lab_stored_t a, b;
    LAB_TRY(lab_save_artifact("/work/hello.txt", NULL, &a));
    report("artifact", "%.*s %llu %.*s", (int)a.name.len, (const char *)a.name.ptr,
           (unsigned long long)a.size, (int)a.digest.len, (const char *)a.digest.ptr);
    lab_stored_free(&a);
    LAB_TRY(lab_save_artifact("bundle", "bundle-dir", &b));
    report("artifact", "%.*s %llu %.*s files=%u", (int)b.name.len, (const char *)b.name.ptr,
           (unsigned long long)b.size, (int)b.digest.len, (const char *)b.digest.ptr,
           (unsigned)b.files);
    lab_stored_free(&b);
    report("artifact-dup", "%s", outcome(lab_save_artifact("/work/hello.txt", NULL, NULL)));
    report("artifact-missing", "%s", outcome(lab_save_artifact("/work/nope.txt", NULL, NULL)));
    lab_api_artifacts_list_stored_t arts;
    lab_api_artifacts_list(&arts);
    report("artifacts", "%zu", arts.len);
    lab_api_artifacts_list_stored_free(&arts);
    LAB_TRY(lab_progress(40.0f, "checkpoints"));

    TRY_IO(write_text(p = work_path("ckpt.json"), "{\"step\":7}"), "writing", p);
    free(p);
    LAB_TRY(lab_save_checkpoint("/work/ckpt.json", "step-7", NULL));
    lab_api_checkpoints_list_stored_t cks;
    lab_api_checkpoints_list(&cks);
    size_t total = 1;
    for (size_t i = 0; i < cks.len; i++) total += cks.ptr[i].name.len + 1;
    char *names = calloc(1, total);
    for (size_t i = 0; i < cks.len; i++) {
        if (i) strcat(names, ",");
        strncat(names, (const char *)cks.ptr[i].name.ptr, cks.ptr[i].name.len);
    }
    report("checkpoints", "%s", names);
    free(names);
    lab_api_checkpoints_list_stored_free(&cks);
    lab_api_checkpoints_resume_point_t r;
    if (lab_api_checkpoints_resume_from(&r)) {
        char *path = lab_cstr(&r.path);
        char *content = read_file(path);
        if (!content) return io_error("reading", path);
        report("resume", "%.*s %.*s %s", (int)r.job_id.len, (const char *)r.job_id.ptr,
               (int)r.name.len, (const char *)r.name.ptr, content);
        report("resume-write", "%s", allowed(path));
        free(content);
        free(path);
        lab_api_checkpoints_resume_point_free(&r);
    } else {
        report("resume", "none");
    }

    TRY_IO(mkdirs(p = work_path("model")), "creating", p);
    free(p);
    static const unsigned char weights[] = {1, 2, 3, 4};
    TRY_IO(write_file(p = work_path("model/weights.bin"), weights, 4), "writing", p);
    free(p);
    lab_model_info_t m;
    LAB_TRY(lab_save_model("/work/model", "probe-model", "probe-arch", "text-classification",
                           "base-model", "{\"layers\":2}", &m));
    report("model", "%.*s %.*s files=%u", (int)m.id.len, (const char *)m.id.ptr,
           (int)m.name.len, (const char *)m.name.ptr, (unsigned)m.files.files);
    lab_model_info_free(&m);
    lab_api_models_list_model_info_t models;
    lab_api_models_list(&models);
    report("models", "%zu", models.len);
    lab_api_models_list_model_info_free(&models);
    report("model-bad-metadata", "%s",
           outcome(lab_save_model("/work/model", "probe-model-2", NULL, NULL, NULL, "[1,2]",
                                  NULL)));

    static const char *const rows[] = {"{\"label\":1,\"text\":\"a\"}",
                                       "{\"label\":0,\"text\":\"b\"}"};
    lab_dataset_info_t d;
    char buf[64];
    LAB_TRY(lab_save_dataset_rows("probe-rows", 2, rows, "two rows", "{\"source\":\"probe\"}",
                                  &d));
    report("dataset", "%.*s %.*s rows=%s", (int)d.id.len, (const char *)d.id.ptr,
           (int)d.name.len, (const char *)d.name.ptr, rust_option_u64(d.rows, buf));
    lab_dataset_info_free(&d);
    static const char *const bad_rows[] = {"[1]"};
    report("dataset-not-object", "%s",
           outcome(lab_save_dataset_rows("probe-bad", 1, bad_rows, NULL, "{}", NULL)));
    TRY_IO(write_text(p = work_path("data.csv"), "x,y\n1,2\n"), "writing", p);
    free(p);
    LAB_TRY(lab_save_dataset_file("/work/data.csv", "probe-file", NULL, "{}", &d));
    report("dataset-file", "%.*s rows=%s", (int)d.id.len, (const char *)d.id.ptr,
           rust_option_u64(d.rows, buf));
    lab_dataset_info_free(&d);
    lab_api_datasets_list_dataset_info_t dss;
    lab_api_datasets_list(&dss);
    report("datasets", "%zu", dss.len);
    lab_api_datasets_list_dataset_info_free(&dss);
    char *opened = NULL;
    report("open-ungranted", "%s", outcome(lab_open_dataset("probe-rows", &opened)));
    free(opened);

    const lab_eval_row_t eval_rows[] = {
        {"a", "1", "1", 1.0, "{\"p\":0.9}"},
        {"b, with comma", "1", "0", 0.0, "{\"p\":0.6}"},
        {"c", "0", NULL, 0.5, "{}"},
    };
    static const struct {
        const char *name;
        lab_table_format_t format;
    } tables[] = {{"probe-eval", LAB_TABLE_CSV}, {"probe-eval-jsonl", LAB_TABLE_JSONL}};
    for (int t = 0; t < 2; t++) {
        lab_eval_summary_t s;
        LAB_TRY(lab_save_eval(tables[t].name, 3, eval_rows, tables[t].format, &s));
        report("eval", "%.*s count=%llu mean=%s", (int)s.name.len, (const char *)s.name.ptr,
               (unsigned long long)s.count, rust_f64(s.mean_score, buf));
        lab_eval_summary_free(&s);
    }
    report("should-stop", "%s", lab_should_stop() ? "true" : "false");
    LAB_TRY(lab_progress(100.0f, "done"));
    const lab_score_t scores[] = {{"calls", 20.0}, {"mean", 0.5}};
    return lab_check(lab_finish("all calls made", 2, scores));
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Open the granted dataset/model named by `target` and report a file. */
static int open_granted(void) {
    char *target = lab_config_text("target", "");
    char *colon = strchr(target, ':');
    if (!colon) return lab_return_error("target must be dataset:ID or model:ID");
    *colon = 0;
    const char *id = colon + 1;
    char *path = NULL;
    if (strcmp(target, "dataset") == 0) LAB_TRY(lab_open_dataset(id, &path));
    else if (strcmp(target, "model") == 0) LAB_TRY(lab_open_model(id, &path));
    else return lab_return_error("target must be dataset:ID or model:ID");
    free(target);
    report("path", "%s", path);
    DIR *dir = opendir(path);
    if (!dir) return io_error("listing", path);
    char **names = NULL;
    size_t n = 0, len = 1;
    struct dirent *e;
    while ((e = readdir(dir))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        names = realloc(names, (n + 1) * sizeof *names);
        names[n++] = strdup(e->d_name);
        len += strlen(e->d_name) + 1;
    }
    closedir(dir);
    qsort(names, n, sizeof *names, cmp_str);
    char *joined = calloc(1, len);
    for (size_t i = 0; i < n; i++) {
        if (i) strcat(joined, ",");
        strcat(joined, names[i]);
        free(names[i]);
    }
    free(names);
    report("files", "%s", joined);
    free(joined);
    char *newf = lab_format("%s/new.txt", path);
    report("write", "%s", allowed(newf));
    free(newf);
    free(path);
    return lab_check(lab_finish("opened", 0, NULL));
}

/* Names that must be refused with invalid-argument. */
static int bad_names(void) {
    char *p = work_path("f.txt");
    TRY_IO(write_text(p, "x"), "writing", p);
    free(p);
    char longname[301];
    memset(longname, 'n', 300);
    longname[300] = 0;
    static const char nul[] = "nul\0byte";
    const struct {
        const char *s;
        size_t len;
    } names[] = {
        {"../x", 4}, {"a/b", 3}, {"", 0}, {nul, sizeof nul - 1},
        {"..", 2},   {".", 1},   {longname, 300}, {"/abs", 4},
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        lab_str_t path = lab_str("/work/f.txt"), name = lab_str_n(names[i].s, names[i].len);
        lab_stored_t st;
        lab_api_types_lab_error_t err;
        bool ok = lab_api_artifacts_save(&path, &name, &st, &err);
        if (ok) lab_stored_free(&st);
        char *key = rust_debug_str(names[i].s, names[i].len);
        char *k = lab_format("artifact-name %s", key);
        report(k, "%s", outcome(lab_status_of(ok, &err)));
        free(k);
        free(key);
    }
    report("checkpoint-name", "%s", outcome(lab_save_checkpoint("/work/f.txt", "../up", NULL)));
    report("model-name", "%s",
           outcome(lab_save_model("/work/f.txt", "a/b", NULL, NULL, NULL, "{}", NULL)));
    static const char *const empty_row[] = {"{}"};
    report("dataset-name", "%s",
           outcome(lab_save_dataset_rows("..", 1, empty_row, NULL, "{}", NULL)));
    report("eval-name", "%s", outcome(lab_save_eval("x/y", 0, NULL, LAB_TABLE_CSV, NULL)));
    report("metric-name", "%s", outcome(lab_metric("", 1.0, NULL)));
    lab_api_artifacts_list_stored_t arts;
    lab_api_artifacts_list(&arts);
    report("artifacts", "%zu", arts.len);
    lab_api_artifacts_list_stored_free(&arts);
    return lab_check(lab_finish("bad names tried", 0, NULL));
}

/* Paths that leave the grants, directly or through symlinks. */
static int escape(void) {
    report("etc-passwd", "%s", outcome(lab_save_artifact("/etc/passwd", NULL, NULL)));
    report("dotdot", "%s", outcome(lab_save_artifact("/work/../../etc/passwd", NULL, NULL)));
    report("relative-dotdot", "%s", outcome(lab_save_artifact("../etc/passwd", NULL, NULL)));
    report("open-etc", "%s", readable("/etc/passwd"));
    /* Symlinks out of a grant (`target` is a granted directory holding
     * `link` -> /etc/passwd and `dir/up` -> /etc): never followed. */
    char *target = lab_config_text("target", "");
    if (*target) {
        char *link = lab_format("%s/link", target), *dir = lab_format("%s/dir", target);
        report("symlink-file", "%s", outcome(lab_save_artifact(link, "link", NULL)));
        report("symlink-in-dir", "%s", outcome(lab_save_artifact(dir, "dir", NULL)));
        report("symlink-read", "%s", readable(link));
        free(link);
        free(dir);
    }
    free(target);
    lab_api_artifacts_list_stored_t arts;
    lab_api_artifacts_list(&arts);
    report("artifacts", "%zu", arts.len);
    lab_api_artifacts_list_stored_free(&arts);
    return lab_check(lab_finish("escapes tried", 0, NULL));
}

/* Read a file at `target` and report its content. */
static int read_target(void) {
    char *target = lab_config_text("target", "");
    char *c = read_file(target);
    if (c) {
        /* str::trim: leading and trailing whitespace. */
        char *s = c, *e = c + strlen(c);
        while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r' || *s == '\f' || *s == '\v') s++;
        while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n' || e[-1] == '\r' ||
                         e[-1] == '\f' || e[-1] == '\v'))
            e--;
        report("content", "%.*s", (int)(e - s), s);
        free(c);
    } else {
        report("read-error", "%s", io_kind(errno));
    }
    char *newf = lab_format("%s.new", target);
    report("write", "%s", write_text(newf, "x") == 0 ? "allowed" : "denied");
    free(newf);
    free(target);
    return lab_check(lab_finish("read", 0, NULL));
}

/* The calls new in lab:api 0.2.0: metadata, status, progress report,
 * secrets, HTTP (to `target`), dataset/model get. Metadata is reported as
 * the text the host returns. */
static int api_0_2(void) {
    char *meta = lab_get_metadata();
    report("meta0", "%s", meta);
    free(meta);
    LAB_TRY(lab_update_metadata("{\"a\":1,\"b\":{\"c\":2}}", &meta));
    report("meta1", "%s", meta);
    free(meta);
    LAB_TRY(lab_update_metadata("{\"b\":null,\"d\":\"x\"}", &meta));
    report("meta2", "%s", meta);
    free(meta);
    LAB_TRY(lab_reset_metadata("{\"r\":true}"));
    meta = lab_get_metadata();
    report("meta3", "%s", meta);
    free(meta);
    report("meta-err", "%s", outcome(lab_update_metadata("[1]", NULL)));

    LAB_TRY(lab_update_status("preparing", "{\"phase\":1}", NULL));
    report("status", "%s", outcome(lab_update_status("training", NULL, "warming up")));
    report("status-err", "%s", outcome(lab_update_status("", NULL, NULL)));

    const lab_score_t metrics[] = {{"loss", 0.5}, {"acc", 0.75}};
    uint64_t seven = 7;
    report("report", "%s", outcome(lab_report(50.0f, "half", 2, metrics, &seven)));
    report("report-err", "%s", outcome(lab_report(150.0f, NULL, 0, NULL, NULL)));

    char *secret = NULL;
    LAB_TRY(lab_get_secret("PROBE_SECRET", &secret));
    report("secret-len", "%zu", strlen(secret));
    /* Not a probe line: the host must redact the value. */
    lab_info("probe-secret %s", secret);
    free(secret);
    secret = NULL;
    report("secret-err", "%s", outcome(lab_get_secret("NOT_GRANTED", &secret)));
    free(secret);

    char *target = lab_config_text("target", "");
    const lab_http_header_t headers[] = {{"content-type", "application/json"}, {"x-probe", "1"}};
    static const char body[] = "{\"hello\":\"world\"}";
    lab_http_response_t resp;
    lab_status_t st = lab_http_send("POST", target, headers, 2, body, sizeof body - 1, NULL, &resp);
    free(target);
    LAB_TRY(st);
    report("http-status", "%u", (unsigned)resp.status);
    report("http-body", "%.*s", (int)resp.body.len, (const char *)resp.body.ptr);
    lab_http_response_free(&resp);
    report("http-denied", "%s",
           outcome(lab_http_send("GET", "http://example.invalid/", NULL, 0, NULL, 0, NULL, NULL)));

    static const char *const qa[] = {"{\"q\":\"1\"}", "{\"q\":\"2\"}"};
    LAB_TRY(lab_save_dataset_rows("qa", 2, qa, NULL, "{}", NULL));
    lab_dataset_info_t d;
    LAB_TRY(lab_get_dataset("qa", &d));
    if (d.rows.is_some)
        report("dataset-get", "%.*s %llu", (int)d.id.len, (const char *)d.id.ptr,
               (unsigned long long)d.rows.val);
    else
        report("dataset-get", "%.*s none", (int)d.id.len, (const char *)d.id.ptr);
    lab_dataset_info_free(&d);
    report("model-get-err", "%s", outcome(lab_get_model("no-such-model", NULL)));
    return lab_check(lab_finish("api-0-2 done", 0, NULL));
}

/* Append `text` to the malloc'd string *s (NULL: empty), after `sep` unless
 * *s is empty. */
static void append(char **s, const char *sep, const char *text) {
    char *r = *s ? lab_format("%s%s%s", *s, sep, text) : lab_format("%s", text);
    free(*s);
    *s = r;
}

/* Inference through wasi:nn on the granted model named by `target`, then the
 * error codes of bad inputs and refused loads. */
static int nn(void) {
    char *target = lab_config_text("target", "");
    lab_nn_model_t model;
    lab_nn_status_t st = lab_nn_load(target, &model);
    free(target);
    LAB_NN_TRY(st);
    static const uint32_t dims[] = {2, 3};
    static const float x[] = {1, 2, 3, 0, 0, -4};
    lab_nn_tensor_t input = lab_nn_tensor_f32("x", dims, 2, x, 6);
    lab_nn_outputs_t out;
    LAB_NN_TRY(lab_nn_run(&model, 1, &input, &out));

    char *shapes = NULL;
    for (size_t i = 0; i < out.len; i++) {
        const lab_nn_tensor_t *t = &out.tensors[i];
        char *dims_text = NULL, n[16];
        for (size_t d = 0; d < t->n_dims; d++) {
            snprintf(n, sizeof n, "%u", (unsigned)t->dims[d]);
            append(&dims_text, "x", n);
        }
        char *shape = lab_format("%s:%s:%s", t->name, lab_nn_type_name(t->ty),
                                 dims_text ? dims_text : "");
        append(&shapes, ",", shape);
        free(shape);
        free(dims_text);
    }
    report("nn_outputs", "%s", shapes ? shapes : "");
    free(shapes);

    const lab_nn_tensor_t *t;
    float *scores;
    int64_t *labels;
    size_t count;
    char *text = NULL, buf[64];
    LAB_NN_TRY(lab_nn_output(&out, "scores", &t));
    LAB_NN_TRY(lab_nn_to_f32(t, &scores, &count));
    for (size_t i = 0; i < count; i++) append(&text, ",", rust_f32(scores[i], buf));
    report("nn_scores", "%s", text ? text : "");
    free(text);
    free(scores);
    text = NULL;
    LAB_NN_TRY(lab_nn_output(&out, "label", &t));
    LAB_NN_TRY(lab_nn_to_i64(t, &labels, &count));
    for (size_t i = 0; i < count; i++) {
        snprintf(buf, sizeof buf, "%lld", (long long)labels[i]);
        append(&text, ",", buf);
    }
    report("nn_labels", "%s", text ? text : "");
    free(text);
    free(labels);
    lab_nn_outputs_free(&out);

    static const uint32_t bad_dims[] = {1, 4};
    static const float zeros[4] = {0};
    report("nn_bad_dims", "%s",
           lab_nn_status_name(lab_nn_run_f32(&model, "x", bad_dims, 2, zeros, 4, NULL)));
    lab_nn_model_free(&model);
    static const char *const loads[][2] = {
        {"nn_malformed", "garbage"}, {"nn_ungranted", "ungranted"}, {"nn_missing", "nosuch"}};
    for (size_t i = 0; i < 3; i++) {
        lab_nn_model_t m;
        lab_nn_status_t s = lab_nn_load(loads[i][1], &m);
        if (s == LAB_NN_OK) lab_nn_model_free(&m);
        report(loads[i][0], "%s", lab_nn_status_name(s));
    }
    static const uint8_t bytes[] = {1, 2, 3};
    lab_nn_model_t m;
    lab_nn_status_t s = lab_nn_load_bytes(bytes, sizeof bytes, &m);
    if (s == LAB_NN_OK) lab_nn_model_free(&m);
    report("nn_load_bytes", "%s", lab_nn_status_name(s));
    return lab_check(lab_finish("nn done", 0, NULL));
}

int lab_plugin_run(void) {
    char *scenario = lab_config_text("scenario", "");
    int rc;
    if (!strcmp(scenario, "all-api")) {
        rc = all_api();
    } else if (!strcmp(scenario, "open")) {
        rc = open_granted();
    } else if (!strcmp(scenario, "bad-names")) {
        rc = bad_names();
    } else if (!strcmp(scenario, "escape")) {
        rc = escape();
    } else if (!strcmp(scenario, "read")) {
        rc = read_target();
    } else if (!strcmp(scenario, "nn")) {
        rc = nn();
    } else if (!strcmp(scenario, "api-0-2")) {
        rc = api_0_2();
    } else if (!strcmp(scenario, "trap")) {
        /* As a Rust panic: the message on stderr, then `unreachable`. */
        fprintf(stderr, "probe panicked on purpose\n");
        __builtin_trap();
    } else if (!strcmp(scenario, "return-error")) {
        rc = lab_return_error("probe returned an error on purpose");
    } else if (!strcmp(scenario, "no-finish")) {
        rc = 0;
    } else if (!strcmp(scenario, "fail")) {
        rc = lab_check(lab_fail("probe failed on purpose"));
    } else if (!strcmp(scenario, "finish-twice")) {
        const lab_score_t first[] = {{"first", 1.0}};
        LAB_TRY(lab_finish("first finish", 1, first));
        report("second-finish", "%s", outcome(lab_finish("second finish", 0, NULL)));
        rc = 0;
    } else if (!strcmp(scenario, "cooperative")) {
        /* Wait for should-stop, then end by itself. */
        const struct timespec ms5 = {0, 5 * 1000 * 1000};
        while (!lab_should_stop()) nanosleep(&ms5, NULL);
        rc = lab_check(lab_fail("stopped on request"));
    } else if (!strcmp(scenario, "spin")) {
        volatile uint64_t n = 0;
        for (;;) n++;
    } else if (!strcmp(scenario, "alloc")) {
        long long mib = lab_config_int("count", 0);
        size_t got = 0;
        for (long long i = 0; i < mib; i++) {
            unsigned char *chunk = malloc(1 << 20);
            if (!chunk) abort(); /* as Rust's allocation failure: a trap */
            memset(chunk, 1, 1 << 20);
            /* Kept (as Rust's Vec of chunks): the compiler may not elide it. */
            __asm__ volatile("" : : "r"(chunk) : "memory");
            got++;
        }
        char *msg = lab_format("allocated %zu MiB", got);
        rc = lab_check(lab_finish(msg, 0, NULL));
        free(msg);
    } else if (!strcmp(scenario, "stdio")) {
        printf("hello from stdout\n");
        fprintf(stderr, "hello from stderr\n");
        printf("unterminated"); /* reaches the log: the SDK flushes after run() */
        rc = lab_check(lab_finish("printed", 0, NULL));
    } else if (!strcmp(scenario, "log-flood")) {
        char line[1001];
        memset(line, 'x', 1000);
        line[1000] = 0;
        long long count = lab_config_int("count", 0);
        for (long long i = 0; i < count; i++) lab_info("%s", line);
        rc = lab_check(lab_finish("flooded", 0, NULL));
    } else {
        rc = lab_return_error("unknown scenario `%s`", scenario);
    }
    free(scenario);
    return rc;
}
