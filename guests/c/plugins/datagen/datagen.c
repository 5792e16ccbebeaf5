/* sentiment-datagen-c: generate a small synthetic sentiment dataset.
 *
 * A C port of guests/rust/plugins/datagen, usable as the first stage of the
 * example pipeline (this → `sentiment-trainer` → `sentiment-evaluator`).
 *
 * Each row is a short sentence about a film built from word lists, e.g.
 * "the movie was great and fun" (label 1) or "a dull boring plot" (label 0),
 * with neutral filler words mixed in. A `noise` fraction of the labels is
 * flipped so the task is not perfectly separable. Rows are split into
 * "train" and "test" and stored as a workspace dataset whose data.jsonl
 * holds one {"text", "label", "split"} object per line.
 *
 * Everything is derived from `seed` with splitmix64, so the same parameters
 * always give the same dataset (and, with the same draws in the same order
 * as the Rust generator, the same rows).
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lab.h"

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* ---- parameters --------------------------------------------------------- */

void lab_plugin_describe(lab_describe_t *d) {
    lab_describe_init(d, "sentiment-datagen-c", LAB_KIND_GENERATOR,
                      "Generates a synthetic binary sentiment dataset of short film reviews "
                      "(C port of sentiment-datagen)");
    lab_describe_param(d, "rows", LAB_PARAM_INTEGER, "400", "Number of rows to generate");
    lab_describe_param(d, "seed", LAB_PARAM_INTEGER, "7", "Seed of the random generator");
    lab_describe_param(d, "noise", LAB_PARAM_NUMBER, "0.1",
                       "Fraction of labels flipped at random (0 to 0.5)");
    lab_describe_param(d, "test_fraction", LAB_PARAM_NUMBER, "0.25",
                       "Fraction of rows in the test split");
    lab_describe_param(d, "dataset_name", LAB_PARAM_TEXT, "\"sentiment\"",
                       "Name of the dataset to save");
}

struct params {
    long long rows;
    long long seed;
    double noise;
    double test_fraction;
    char *dataset_name;
};

/* How many of the rows go to the test split. */
static long long test_rows(const struct params *p) {
    return llround((double)p->rows * p->test_fraction);
}

/* Read and sanity-check the parameters (the host filled in the defaults).
 * Returns NULL when they are fine, else the reason. */
static const char *load_params(struct params *p) {
    p->rows = lab_config_int("rows", 400);
    p->seed = lab_config_int("seed", 7);
    p->noise = lab_config_number("noise", 0.1);
    p->test_fraction = lab_config_number("test_fraction", 0.25);
    p->dataset_name = lab_config_text("dataset_name", "sentiment");
    if (p->rows < 1 || p->rows > 1000000) return "rows must be between 1 and 1000000";
    if (p->seed < 0) return "seed must not be negative";
    if (!(p->noise >= 0.0 && p->noise <= 0.5)) return "noise must be between 0 and 0.5";
    if (!(p->test_fraction >= 0.0 && p->test_fraction < 1.0))
        return "test_fraction must be at least 0 and below 1";
    if (test_rows(p) >= p->rows) return "test_fraction leaves no rows for the train split";
    return NULL;
}

/* ---- splitmix64 --------------------------------------------------------- */

typedef struct {
    uint64_t state;
} rng_t;

static uint64_t rng_next(rng_t *r) {
    uint64_t z = (r->state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* A uniform double in [0, 1). */
static double rng_unit(rng_t *r) { return (double)(rng_next(r) >> 11) / 9007199254740992.0; }

/* True with probability p. */
static bool rng_chance(rng_t *r, double p) { return rng_unit(r) < p; }

/* A uniform integer in [0, n), n > 0 (the modulo bias is negligible here). */
static size_t rng_below(rng_t *r, size_t n) { return (size_t)(rng_next(r) % n); }

#define PICK(r, list) ((list)[rng_below((r), COUNT(list))])

/* ---- sentences ---------------------------------------------------------- */

static const char *const subjects[] = {
    "the movie",      "this film",  "the plot", "the acting", "the story",
    "the soundtrack", "the ending", "the cast", "the script", "the director",
};
static const char *const nouns[] = {
    "movie", "film", "plot", "story", "performance", "script", "ending",
};
static const char *const verbs[] = {"was", "is", "felt", "seemed", "looked"};
static const char *const positive_words[] = {
    "great",     "fun",        "wonderful", "brilliant", "moving",   "charming",
    "excellent", "delightful", "clever",    "beautiful", "gripping", "superb",
};
static const char *const negative_words[] = {
    "dull",    "boring", "awful",       "terrible", "bland", "clumsy",
    "tedious", "weak",   "predictable", "painful",  "messy", "forgettable",
};
/* Sentiment-free words, so that not every token carries signal. */
static const char *const openers[] = {
    "honestly", "overall", "i think", "to be fair", "in the end", "well",
};
static const char *const intensifiers[] = {"really", "quite", "very", "rather", "so"};

/* The longest sentence is well under this (about 70 bytes). */
#define SENTENCE_MAX 160

static void add_word(char *buf, const char *word) {
    size_t n = strlen(buf);
    snprintf(buf + n, SENTENCE_MAX - n, "%s%s", n ? " " : "", word);
}

/* One short review sentence with the given true sentiment, into buf. The
 * draws happen in the same order as in the Rust generator. */
static void sentence(rng_t *r, bool positive, char buf[SENTENCE_MAX]) {
    const char *const *adjectives = positive ? positive_words : negative_words;
    const size_t n_adj = positive ? COUNT(positive_words) : COUNT(negative_words);
#define ADJ() adjectives[rng_below(r, n_adj)]
    buf[0] = 0;
    if (rng_chance(r, 0.3)) add_word(buf, PICK(r, openers));
    switch (rng_below(r, 3)) {
    case 0: /* "the movie was great and fun" */
        add_word(buf, PICK(r, subjects));
        add_word(buf, PICK(r, verbs));
        add_word(buf, ADJ());
        add_word(buf, "and");
        add_word(buf, ADJ());
        break;
    case 1: /* "the plot felt really clever" */
        add_word(buf, PICK(r, subjects));
        add_word(buf, PICK(r, verbs));
        add_word(buf, PICK(r, intensifiers));
        add_word(buf, ADJ());
        break;
    default: /* "a dull boring plot" */
        add_word(buf, "a");
        add_word(buf, ADJ());
        add_word(buf, ADJ());
        add_word(buf, PICK(r, nouns));
        break;
    }
#undef ADJ
}

/* ---- generation --------------------------------------------------------- */

struct stats {
    long long train, test, positive, flipped;
};

/* Generate all rows as JSON objects (malloc'd strings) into rows[]. Rows
 * are independent draws, so the last test_rows() of them form the test
 * split. Reports progress from 0 to 80 %. */
static lab_status_t generate(const struct params *p, char **rows, struct stats *st) {
    rng_t rng = {(uint64_t)p->seed};
    lab_json_t j = LAB_JSON_INIT;
    char text[SENTENCE_MAX];
    long long every = p->rows / 10 > 0 ? p->rows / 10 : 1;

    st->test = test_rows(p);
    st->train = p->rows - st->test;
    st->positive = st->flipped = 0;
    for (long long i = 0; i < p->rows; i++) {
        if (i > 0 && i % every == 0) {
            lab_status_t s = lab_progress((float)(80.0 * (double)i / (double)p->rows),
                                          "generating");
            if (s != LAB_OK) return s;
        }
        bool positive = rng_chance(&rng, 0.5);
        sentence(&rng, positive, text);
        bool flip = rng_chance(&rng, p->noise);
        int label = positive != flip;

        st->flipped += flip;
        st->positive += label;
        lab_json_begin_object(&j);
        lab_json_key(&j, "text");
        lab_json_string(&j, text);
        lab_json_key(&j, "label");
        lab_json_int(&j, label);
        lab_json_key(&j, "split");
        lab_json_string(&j, i < st->train ? "train" : "test");
        lab_json_end_object(&j);
        rows[i] = lab_json_take(&j);
    }
    return LAB_OK;
}

static char *metadata_json(const struct params *p, const struct stats *st,
                           double positive_fraction) {
    lab_json_t j = LAB_JSON_INIT;
    lab_json_begin_object(&j);
    lab_json_key(&j, "generator");
    lab_json_string(&j, "sentiment-datagen-c");
    lab_json_key(&j, "seed");
    lab_json_int(&j, p->seed);
    lab_json_key(&j, "rows");
    lab_json_int(&j, p->rows);
    lab_json_key(&j, "noise");
    lab_json_number(&j, p->noise);
    lab_json_key(&j, "test_fraction");
    lab_json_number(&j, p->test_fraction);
    lab_json_key(&j, "train_rows");
    lab_json_int(&j, st->train);
    lab_json_key(&j, "test_rows");
    lab_json_int(&j, st->test);
    lab_json_key(&j, "positive_fraction");
    lab_json_number(&j, positive_fraction);
    lab_json_end_object(&j);
    return lab_json_take(&j);
}

/* Everything after the parameters; frees nothing (see lab_plugin_run). */
static int run(const struct params *p, char **rows, char **description, char **metadata,
               char **message) {
    struct stats st;
    lab_info("generating %lld rows (seed %lld, noise %g, test fraction %g)", p->rows, p->seed,
             p->noise, p->test_fraction);

    LAB_TRY(lab_progress(0, "generating"));
    LAB_TRY(generate(p, rows, &st));
    lab_info("%lld train / %lld test rows, %lld positive, %lld labels flipped", st.train,
             st.test, st.positive, st.flipped);
    double positive_fraction = (double)st.positive / (double)p->rows;
    LAB_TRY(lab_metric("positive_fraction", positive_fraction, NULL));
    LAB_TRY(lab_metric("flipped_labels", (double)st.flipped, NULL));

    LAB_TRY(lab_progress(80, "saving"));
    *description = lab_format("Synthetic film-review sentiment: %lld rows, label 1 = positive",
                              p->rows);
    *metadata = metadata_json(p, &st, positive_fraction);
    lab_dataset_info_t info;
    LAB_TRY(lab_save_dataset_rows(p->dataset_name, (size_t)p->rows, (const char *const *)rows,
                                  *description, *metadata, &info));
    lab_info("saved dataset %.*s (%llu bytes)", (int)info.id.len, (const char *)info.id.ptr,
             (unsigned long long)info.files.size);
    *message = lab_format("generated %lld rows as dataset %.*s", p->rows, (int)info.id.len,
                          (const char *)info.id.ptr);
    lab_dataset_info_free(&info);
    LAB_TRY(lab_progress(100, "done"));

    const lab_score_t scores[] = {
        {"rows", (double)p->rows},
        {"train", (double)st.train},
        {"test", (double)st.test},
    };
    return lab_check(lab_finish(*message, COUNT(scores), scores));
}

int lab_plugin_run(void) {
    struct params p;
    const char *invalid = load_params(&p);
    if (invalid) {
        free(p.dataset_name);
        return lab_return_error("%s", invalid);
    }

    char **rows = calloc((size_t)p.rows, sizeof *rows);
    if (!rows) {
        free(p.dataset_name);
        return lab_return_error("out of memory for %lld rows", p.rows);
    }
    char *description = NULL, *metadata = NULL, *message = NULL;
    int rc = run(&p, rows, &description, &metadata, &message);

    for (long long i = 0; i < p.rows; i++) free(rows[i]);
    free(rows);
    free(description);
    free(metadata);
    free(message);
    free(p.dataset_name);
    return rc;
}
