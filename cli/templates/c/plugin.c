/* {{name}}: a labhost plugin. Build with ./build.sh, run with
 * `labhost run {{name}}.wasm -c greeting=hi`. */
#include <stdio.h>
#include <stdlib.h>

#include "lab.h"

void lab_plugin_describe(lab_describe_t *d) {
    lab_describe_init(d, "{{name}}", {{kind_c}}, "Describe what {{name}} does");
    lab_describe_param(d, "greeting", LAB_PARAM_TEXT, "\"hello\"", "What to write");
    lab_describe_param(d, "repeat", LAB_PARAM_INTEGER, "3", "How many lines");
}

int lab_plugin_run(void) {
    char *greeting = lab_config_text("greeting", "hello");
    long long repeat = lab_config_int("repeat", 1);
    lab_info("writing %lld lines", repeat);
    FILE *f = fopen("/work/out.txt", "w");
    if (!f) return lab_return_error("cannot create /work/out.txt");
    for (long long i = 0; i < repeat; i++) {
        if (lab_should_stop()) {
            fclose(f);
            return lab_check(lab_fail("stopped on request"));
        }
        fprintf(f, "%s %lld\n", greeting, i);
        LAB_TRY(lab_progress(100.0f * (float)(i + 1) / (float)repeat, "writing"));
    }
    fclose(f);
    free(greeting);
    lab_stored_t stored;
    LAB_TRY(lab_save_artifact("/work/out.txt", NULL, &stored));
    char *message = lab_format("wrote %llu bytes", (unsigned long long)stored.size);
    lab_stored_free(&stored);
    lab_score_t scores[] = {{"lines", (double)repeat}};
    lab_status_t s = lab_finish(message, 1, scores);
    free(message);
    return lab_check(s);
}
