/* Chat templates and end-of-generation tokens.
 *
 * Chat: every template of tests/data/chat/ (the real Hugging Face templates,
 * written there by tests/reference/chat_golden.py with the golden strings
 * Jinja2 renders from them, transformers' way) is recognised as its family,
 * and hmt_chat_apply reproduces every golden string byte for byte (with the
 * template text, and with the family name where that is the same), or fails
 * with HMT_E_INVAL where the template raises. Then errors and buffer sizing.
 *
 * EOG: vocabularies built in memory check llama.cpp's rules (metadata ids,
 * texts of any token type, FIM tokens, the two exceptions, ids out of range,
 * the end-of-turn token), and the public functions on a real model file. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/error.h"
#include "hmt/hmt.h"
#include "io/gguf.h"
#include "text/chat.h"
#include "text/tokenizer.h"
#include "util/gguf_build.h"
#include "util/testutil.h"

#define DATA "tests/data/chat/"
#define MAX_MSG 8
#define MAX_CONV 32

enum { GT_INT32 = 5, GT_FLOAT32 = 6 };

/* ---------------------------------------------------------------------------
 * Test data
 * ------------------------------------------------------------------------- */
static char *read_text(const char *name) {
    char path[512];
    snprintf(path, sizeof path, DATA "%s", name);
    char *s = hmt_test_read_file(path, NULL);
    ck_assert_msg(s != NULL, "cannot read %s (run tests/reference/chat_golden.py)", path);
    return s;
}

static char *unhex(const char *h, size_t n) {
    char *o = malloc(n / 2 + 1);
    ck_assert_ptr_nonnull(o);
    if (n == 1 && h[0] == '-') n = 0; /* "-": the empty string */
    for (size_t i = 0; i + 1 < n; i += 2) {
        unsigned x;
        ck_assert_int_eq(sscanf(h + i, "%2x", &x), 1);
        o[i / 2] = (char)x;
    }
    o[n / 2] = 0;
    return o;
}

typedef struct {
    char name[64];
    size_t n;
    const char *roles[MAX_MSG];
    char *contents[MAX_MSG];
} conversation;

static conversation convs[MAX_CONV];
static size_t n_convs;

static void load_conversations(void) {
    char *f = read_text("conversations.txt");
    n_convs = 0;
    conversation *c = NULL;
    for (char *line = strtok(f, "\n"); line; line = strtok(NULL, "\n")) {
        if (line[0] == '#') continue;
        char a[64], b[64];
        unsigned long k;
        if (sscanf(line, "conv %63s %lu", a, &k) == 2) {
            ck_assert_uint_lt(n_convs, MAX_CONV);
            c = &convs[n_convs++];
            snprintf(c->name, sizeof c->name, "%s", a);
            c->n = 0;
            continue;
        }
        ck_assert_msg(c && sscanf(line, "msg %63s", b) == 1, "bad line: %s", line);
        ck_assert_uint_lt(c->n, MAX_MSG);
        c->roles[c->n] = !strcmp(b, "system") ? "system" : !strcmp(b, "user") ? "user" : "assistant";
        const char *hex = strchr(line + 4, ' ') + 1;
        c->contents[c->n] = unhex(hex, strlen(hex));
        c->n++;
    }
    free(f);
}

static const conversation *find_conv(const char *name) {
    for (size_t i = 0; i < n_convs; i++)
        if (!strcmp(convs[i].name, name)) return &convs[i];
    ck_abort_msg("no conversation %s", name);
    return NULL;
}

/* Format into a malloc'd string (measured first); returns the status. */
static int apply(const hmt_model *m, const char *tmpl, const conversation *c, int gen,
                 char **out, size_t *len) {
    *out = NULL;
    size_t need = 0;
    int rc = hmt_chat_apply(m, tmpl, c->roles, (const char *const *)c->contents, c->n, gen, NULL,
                            0, &need);
    if (rc != HMT_E_BUFFER) return rc;
    char *buf = malloc(need + 1);
    ck_assert_ptr_nonnull(buf);
    size_t got = 0;
    rc = hmt_chat_apply(m, tmpl, c->roles, (const char *const *)c->contents, c->n, gen, buf,
                        need + 1, &got);
    ck_assert_int_eq(rc, HMT_OK);
    ck_assert_uint_eq(got, need);
    ck_assert_uint_eq(strlen(buf), need);
    *out = buf;
    *len = got;
    return HMT_OK;
}

/* Replace every occurrence of from with to (the same length) in s. */
static void replace_same_length(char *s, const char *from, const char *to) {
    size_t n = strlen(from);
    ck_assert_uint_eq(strlen(to), n);
    for (char *p = strstr(s, from); p; p = strstr(p + n, from)) memcpy(p, to, n);
}

/* Every golden case of one template, through tmpl (text or name). A
 * template that writes today's date has "# date-format F" and "# date D"
 * lines: D, the date of the golden run, is replaced by today's in format F
 * (local time, the C locale's English month names, as strftime_now). */
static int check_golden(const char *name, const char *tmpl) {
    char file[128], date[32] = "", today[32] = "";
    snprintf(file, sizeof file, "%s.golden", name);
    char *g = read_text(file);
    int cases = 0;
    hmti_chat_style st;
    ck_assert_int_eq(hmti_chat_detect(tmpl, &st), HMT_OK);
    for (char *line = strtok(g, "\n"); line; line = strtok(NULL, "\n")) {
        if (!strncmp(line, "# date-format ", 14)) {
            time_t now = time(NULL);
            struct tm tm;
            ck_assert_ptr_nonnull(localtime_r(&now, &tm));
            ck_assert_uint_gt(strftime(today, sizeof today, line + 14, &tm), 0);
        }
        if (!strncmp(line, "# date ", 7)) snprintf(date, sizeof date, "%s", line + 7);
        if (line[0] == '#') continue;
        char cname[64], status[16];
        int gen, off = 0;
        ck_assert_int_eq(sscanf(line, "%63s %d %15s %n", cname, &gen, status, &off), 3);
        const conversation *c = find_conv(cname);
        char *text = NULL;
        size_t len = 0;
        int rc = apply(NULL, tmpl, c, gen, &text, &len);
        if (!strcmp(status, "error")) {
            ck_assert_msg(rc == HMT_E_INVAL, "%s %s gen=%d: the template refuses it, got %d",
                          name, cname, gen, rc);
            ck_assert_msg(strlen(hmt_last_error_msg()) > 0, "no message");
        } else {
            ck_assert_msg(rc == HMT_OK, "%s %s gen=%d: %d %s", name, cname, gen, rc,
                          hmt_last_error_msg());
            const char *hex = line + off;
            char *want = unhex(hex, strlen(hex));
            if (date[0]) replace_same_length(want, date, today);
            ck_assert_msg(strcmp(text, want) == 0, "%s %s gen=%d:\n got  [%s]\n want [%s]", name,
                          cname, gen, text, want);
            free(want);
        }
        free(text);
        cases++;
    }
    free(g);
    return cases;
}

static void free_conversations(void) {
    for (size_t i = 0; i < n_convs; i++)
        for (size_t k = 0; k < convs[i].n; k++) free(convs[i].contents[k]);
    n_convs = 0;
}

/* ---------------------------------------------------------------------------
 * Chat
 * ------------------------------------------------------------------------- */
START_TEST(golden_all_templates) {
    load_conversations();
    char *list = read_text("templates.txt");
    int n_templates = 0, n_cases = 0;
    char *save = NULL;
    for (char *line = strtok_r(list, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (line[0] == '#') continue;
        char name[96], family[32], file[128];
        int by_name;
        ck_assert_int_eq(sscanf(line, "%95s %31s %d", name, family, &by_name), 3);
        snprintf(file, sizeof file, "%s.jinja", name);
        char *tmpl = read_text(file);
        hmti_chat_style st;
        ck_assert_msg(hmti_chat_detect(tmpl, &st) == HMT_OK, "%s: %s", name, hmti_tls_errmsg());
        ck_assert_msg(!strcmp(st.name, family), "%s detected as %s, not %s", name, st.name,
                      family);
        n_cases += check_golden(name, tmpl);
        if (by_name) n_cases += check_golden(name, family);
        free(tmpl);
        n_templates++;
    }
    free(list);
    free_conversations();
    ck_assert_int_eq(n_templates, 19);
    ck_assert_int_ge(n_cases, 19 * 15 * 2);
}
END_TEST

/* Qwen2.5's default system prompt is read from its template text. */
START_TEST(chatml_default_system) {
    char *tmpl = read_text("qwen2.5-instruct.jinja");
    hmti_chat_style st;
    ck_assert_int_eq(hmti_chat_detect(tmpl, &st), HMT_OK);
    ck_assert_str_eq(st.default_system,
                     "You are Qwen, created by Alibaba Cloud. You are a helpful assistant.");
    free(tmpl);
    /* SmolLM2's literal holds a real newline, not the escape */
    tmpl = read_text("smollm2-instruct.jinja");
    ck_assert_int_eq(hmti_chat_detect(tmpl, &st), HMT_OK);
    ck_assert_str_eq(st.default_system,
                     "You are a helpful AI assistant named SmolLM, trained by Hugging Face");
    free(tmpl);
    ck_assert_int_eq(hmti_chat_detect("chatml", &st), HMT_OK);
    ck_assert_str_eq(st.default_system, "");
    /* a literal with a quote or a variable in it is not a default */
    ck_assert_int_eq(hmti_chat_detect("{{ '<|im_start|>system\\n' + x + '<|im_end|>' }}", &st),
                     HMT_OK);
    ck_assert_str_eq(st.default_system, "");
}
END_TEST

/* Mistral Small 3's default system prompt: literals with Python's escapes
 * and today's date joined by +; by name, none. */
START_TEST(mistral_default_system) {
    hmti_chat_style st;
    ck_assert_int_eq(hmti_chat_detect("'[INST]' [SYSTEM_PROMPT] {%- set default_system_message = "
                                      "'It\\'s \\\"x\\\"\\n' + \"\\ty\\\\\" -%}",
                                      &st),
                     HMT_OK);
    ck_assert_str_eq(st.name, "mistral-v7-tekken");
    ck_assert_str_eq(st.default_system, "It's \"x\"\n\ty\\");
    char *tmpl = read_text("mistral-small-3.1-24b-instruct-2503.jinja");
    ck_assert_int_eq(hmti_chat_detect(tmpl, &st), HMT_OK);
    free(tmpl);
    char want[64];
    time_t now = time(NULL);
    struct tm tm;
    ck_assert_ptr_nonnull(localtime_r(&now, &tm));
    strftime(want, sizeof want, "The current date is %Y-%m-%d.\n\nWhen", &tm);
    ck_assert_ptr_nonnull(strstr(st.default_system, want));
    ck_assert_ptr_nonnull(strstr(st.default_system, "(e.g. \"What are some good restaurants"));
    ck_assert_int_eq(hmti_chat_detect("mistral-v7-tekken", &st), HMT_OK);
    ck_assert_str_eq(st.default_system, "");
}
END_TEST

/* Llama 3.1+: the system turn with the dates; 3.3's fixed date, 3.2's today. */
START_TEST(llama3_dates) {
    hmti_chat_style st;
    char *tmpl = read_text("llama-3.3-70b-instruct.jinja");
    ck_assert_int_eq(hmti_chat_detect(tmpl, &st), HMT_OK);
    ck_assert_str_eq(st.today_date, "26 Jul 2024");
    free(tmpl);
    tmpl = read_text("llama-3.2-3b-instruct.jinja");
    ck_assert_int_eq(hmti_chat_detect(tmpl, &st), HMT_OK);
    char want[32];
    time_t now = time(NULL);
    struct tm tm;
    ck_assert_ptr_nonnull(localtime_r(&now, &tm));
    strftime(want, sizeof want, "%d %b %Y", &tm); /* the C locale: English */
    ck_assert_str_eq(st.today_date, want);
    free(tmpl);
    ck_assert_int_eq(hmti_chat_detect("llama3", &st), HMT_OK);
    ck_assert_str_eq(st.today_date, "");
    /* a date header whose date cannot be read is refused, not guessed */
    ck_assert_int_eq(hmti_chat_detect("<|start_header_id|><|end_header_id|> Cutting Knowledge "
                                      "Date: December 2023 {{ date }}", &st),
                     HMT_E_UNSUPPORTED);
}
END_TEST

/* Detection follows llama.cpp's order and refuses what libhmt does not write. */
START_TEST(detect_refuses) {
    static const struct {
        const char *tmpl, *name; /* NULL name: unsupported */
    } cases[] = {
        /* mistral-v7-tekken: Magistral's, a default system prompt not read */
        {"'[INST]' [SYSTEM_PROMPT] [THINK]", NULL},
        {"'[INST]' [SYSTEM_PROMPT] {%- set default_system_message = x %}", NULL},
        {"'[INST]' [SYSTEM_PROMPT] {%- set default_system_message = 'a\\x41' %}", NULL},
        {"'[INST]' [SYSTEM_PROMPT] {%- set default_system_message = 'Today: ' + today %}", NULL},
        /* mistral-v3 revisions other than the checked one */
        {"\"[INST]\" [AVAILABLE_TOOLS] user_messages[-1]) and system_message", NULL},
        {"[INST] [AVAILABLE_TOOLS]", NULL},
        {"{{ '[INST] ' + content }}", NULL},                   /* llama2 without <<SYS>> */
        {"<<SYS>> [INST] content.strip()", NULL},              /* a llama2 variant */
        {"<|user|> <|endoftext|>", NULL},                      /* zephyr */
        {"<|assistant|> <|user|>", NULL},                      /* glmedge */
        {"USER: ASSISTANT: ", NULL},                           /* vicuna */
        {"<|START_OF_TURN_TOKEN|><|USER_TOKEN|>", NULL},       /* command-r */
        {"{{ messages }}", NULL},                              /* nothing known */
        {"", NULL},
        {"zephyr", NULL},
        {"llama4", NULL},
        {"<|header_start|> <|header_end|>", NULL},             /* llama4 */
        {"[gMASK]sop", NULL},                                  /* chatglm3 */
        {"<|start_header_id|>x<|end_header_id|>", "llama3"},
        {"<start_of_turn>", "gemma"},
        {"<|assistant|> <|end|>", "phi3"},
        {"<|im_start|>", "chatml"},
        {"' [INST] ' + system_message", "mistral-v1"},
        {"[INST] [AVAILABLE_TOOLS] loop.last and system_message is defined", "mistral-v3"},
        {"\"[INST]\" [AVAILABLE_TOOLS] loop.last and system_message is defined",
         "mistral-v3-tekken"},
        {"'[INST] ' [SYSTEM_PROMPT]", "mistral-v7"},
        {"{{ '<|im_start|>' }}<|im_sep|>", "phi4"},
        {"mistral-v3-tekken", "mistral-v3-tekken"},
        {"phi4", "phi4"},
        {"mistral-v7-tekken", "mistral-v7-tekken"},
        {"deepseek3", "deepseek3"},
        {"<\xEF\xBD\x9C" "Assistant\xEF\xBD\x9C> <\xEF\xBD\x9C" "User\xEF\xBD\x9C> "
         "<\xEF\xBD\x9C" "end\xE2\x96\x81of\xE2\x96\x81sentence\xEF\xBD\x9C>",
         "deepseek3"},
        {"'[INST]' [SYSTEM_PROMPT]", "mistral-v7-tekken"},
        /* llama.cpp's order: chatml before llama3 */
        {"<|im_start|> <|start_header_id|> <|end_header_id|>", "chatml"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        hmti_chat_style st;
        hmt_last_error_clear();
        int rc = hmti_chat_detect(cases[i].tmpl, &st);
        if (cases[i].name) {
            ck_assert_msg(rc == HMT_OK, "%s: %d", cases[i].tmpl, rc);
            ck_assert_str_eq(st.name, cases[i].name);
        } else {
            ck_assert_msg(rc == HMT_E_UNSUPPORTED, "%s: %d", cases[i].tmpl, rc);
            ck_assert_ptr_nonnull(strstr(hmti_tls_errmsg(), "HMT_TOKENIZE_SPECIAL"));
        }
    }
}
END_TEST

/* Templates come from model files: every real template, truncated and with
 * bytes changed (quotes, backslashes, NULs), is recognised or refused with
 * a status, and formats within its buffer (run under ASan by `make asan`). */
START_TEST(detect_mutated_templates) {
    load_conversations();
    char *list = read_text("templates.txt");
    uint64_t x = 0x9E3779B97F4A7C15u; /* xorshift64, fixed seed */
    int n_ok = 0, n_refused = 0;
    char *save = NULL;
    for (char *line = strtok_r(list, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (line[0] == '#') continue;
        char name[96], file[128];
        ck_assert_int_eq(sscanf(line, "%95s", name), 1);
        snprintf(file, sizeof file, "%s.jinja", name);
        char *tmpl = read_text(file);
        size_t len = strlen(tmpl);
        char *m = malloc(len + 1);
        ck_assert_ptr_nonnull(m);
        for (int it = 0; it < 300; it++) {
            memcpy(m, tmpl, len + 1);
            for (int k = 0; k < 1 + it % 4; k++) {
                x ^= x << 13, x ^= x >> 7, x ^= x << 17;
                static const char bytes[] = "\\'\"{}%+\n\0abt";
                m[x % len] = bytes[(x >> 32) % (sizeof bytes - 1)];
            }
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            if (it % 3 == 0) m[x % len] = 0; /* truncated */
            hmti_chat_style st;
            int rc = hmti_chat_detect(m, &st);
            ck_assert_msg(rc == HMT_OK || rc == HMT_E_UNSUPPORTED, "%s: %d", name, rc);
            if (rc) {
                n_refused++;
                continue;
            }
            n_ok++;
            ck_assert_uint_lt(strlen(st.default_system), sizeof st.default_system);
            const conversation *c = &convs[(size_t)(x >> 40) % n_convs];
            char buf[64];
            size_t got = 0;
            rc = hmti_chat_format(&st, c->roles, (const char *const *)c->contents, c->n, 1, buf,
                                  sizeof buf, &got);
            ck_assert_msg(rc == HMT_OK || rc == HMT_E_BUFFER || rc == HMT_E_INVAL, "%d", rc);
            ck_assert_uint_lt(strlen(buf), sizeof buf);
        }
        free(m);
        free(tmpl);
    }
    free(list);
    free_conversations();
    ck_assert_int_gt(n_ok, 0);
    ck_assert_int_gt(n_refused, 0);
}
END_TEST

static const char *const R2[] = {"system", "user"};
static const char *const C2[] = {"Be brief.", "Hi"};

START_TEST(buffer_sizing) {
    size_t need = 0, len = 7;
    ck_assert_int_eq(hmt_chat_apply(NULL, "chatml", R2, C2, 2, 1, NULL, 0, &need), HMT_E_BUFFER);
    const char *want = "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
                       "<|im_start|>assistant\n";
    ck_assert_uint_eq(need, strlen(want));
    char buf[256];
    /* every size below need+1: truncated prefix, NUL-terminated, length reported */
    for (size_t size = 1; size <= need; size++) {
        memset(buf, 'x', sizeof buf);
        ck_assert_int_eq(hmt_chat_apply(NULL, "chatml", R2, C2, 2, 1, buf, size, &len),
                         HMT_E_BUFFER);
        ck_assert_uint_eq(len, need);
        ck_assert_uint_eq(strlen(buf), size - 1);
        ck_assert_int_eq(memcmp(buf, want, size - 1), 0);
        ck_assert_int_eq(buf[size], 'x');
    }
    ck_assert_int_eq(hmt_chat_apply(NULL, "chatml", R2, C2, 2, 1, buf, need + 1, &len), HMT_OK);
    ck_assert_str_eq(buf, want);
    ck_assert_uint_eq(len, need);
}
END_TEST

START_TEST(argument_errors) {
    char buf[256];
    size_t len = 0;
    static const char *const bad_role[] = {"system", "tool"};
    static const char *const null_content[] = {"x", NULL};
    static const char *const null_role[] = {NULL, "user"};
    ck_assert_int_eq(hmt_chat_apply(NULL, "chatml", R2, C2, 2, 1, buf, sizeof buf, NULL),
                     HMT_E_INVAL);
    ck_assert_int_eq(hmt_chat_apply(NULL, "chatml", NULL, C2, 2, 1, buf, sizeof buf, &len),
                     HMT_E_INVAL);
    ck_assert_int_eq(hmt_chat_apply(NULL, "chatml", R2, NULL, 2, 1, buf, sizeof buf, &len),
                     HMT_E_INVAL);
    ck_assert_int_eq(hmt_chat_apply(NULL, "chatml", R2, C2, 2, 1, NULL, 8, &len), HMT_E_INVAL);
    ck_assert_int_eq(hmt_chat_apply(NULL, "chatml", R2, C2, 0, 1, buf, sizeof buf, &len),
                     HMT_E_INVAL);
    ck_assert_int_eq(hmt_chat_apply(NULL, NULL, R2, C2, 2, 1, buf, sizeof buf, &len),
                     HMT_E_INVAL);
    ck_assert_int_eq(hmt_chat_apply(NULL, "chatml", bad_role, C2, 2, 1, buf, sizeof buf, &len),
                     HMT_E_INVAL);
    ck_assert_ptr_nonnull(strstr(hmt_last_error_msg(), "roles[1] is 'tool'"));
    ck_assert_ptr_nonnull(strstr(hmt_last_error_msg(), "tool calls and tool results are not"));
    ck_assert_int_eq(hmt_chat_apply(NULL, "llama3", R2, null_content, 2, 1, buf, sizeof buf, &len),
                     HMT_E_INVAL);
    ck_assert_int_eq(hmt_chat_apply(NULL, "llama3", null_role, C2, 2, 1, buf, sizeof buf, &len),
                     HMT_E_INVAL);
    /* templates that refuse an order (where Hugging Face's would raise or
     * silently drop a message) */
    static const char *const mid_system[] = {"user", "system"};
    ck_assert_int_eq(hmt_chat_apply(NULL, "gemma", mid_system, C2, 2, 1, buf, sizeof buf, &len),
                     HMT_E_INVAL);
    strcpy(buf, "old");
    len = 99;
    /* Gemma 2's template (no first_user_prefix) refuses a system message */
    ck_assert_int_eq(hmt_chat_apply(NULL, "<start_of_turn>", R2, C2, 2, 1, buf, sizeof buf, &len),
                     HMT_E_INVAL);
    ck_assert_ptr_nonnull(strstr(hmt_last_error_msg(), "system"));
    ck_assert_str_eq(buf, ""); /* nothing half-written; len untouched */
    ck_assert_uint_eq(len, 99);
    /* refused after part of the text was written: still "" */
    static const char *const r4[] = {"user", "assistant", "user", "user"};
    static const char *const c4[] = {"a", "b", "c", "d"};
    ck_assert_int_eq(hmt_chat_apply(NULL, "llama2", r4, c4, 4, 1, buf, sizeof buf, &len),
                     HMT_E_INVAL);
    ck_assert_str_eq(buf, "");
    static const char *const r3[] = {"user", "assistant", "system"};
    static const char *const c3[] = {"a", "b", "c"};
    ck_assert_int_eq(hmt_chat_apply(NULL, "llama2", r3, c3, 3, 1, buf, sizeof buf, &len),
                     HMT_E_INVAL);
    ck_assert_int_eq(hmt_chat_apply(NULL, "mistral-v1", r3, c3, 3, 1, buf, sizeof buf, &len),
                     HMT_E_INVAL);
    ck_assert_int_eq(hmt_chat_apply(NULL, "mistral-v3", r3, c3, 3, 1, buf, sizeof buf, &len),
                     HMT_E_INVAL);
    /* a system message the template would leave out: refused, with the reason */
    static const char *const sys_last_asst[] = {"system", "user", "assistant"};
    ck_assert_int_eq(hmt_chat_apply(NULL, "mistral-v3-tekken", sys_last_asst, c3, 3, 1, buf,
                                    sizeof buf, &len),
                     HMT_E_INVAL);
    ck_assert_ptr_nonnull(strstr(hmt_last_error_msg(), "leave the system message out"));
    ck_assert_int_eq(hmt_chat_apply(NULL, "llama2", R2, C2, 1, 1, buf, sizeof buf, &len),
                     HMT_E_INVAL);
    ck_assert_int_eq(hmt_chat_apply(NULL, "gemma", R2, C2, 1, 1, buf, sizeof buf, &len),
                     HMT_E_INVAL);
    /* deepseek3 takes a system message only first (the template moves a
     * later one to the front) */
    ck_assert_int_eq(hmt_chat_apply(NULL, "deepseek3", r3, c3, 3, 1, buf, sizeof buf, &len),
                     HMT_E_INVAL);
    /* mistral-v7 writes a system message anywhere */
    ck_assert_int_eq(hmt_chat_apply(NULL, "mistral-v7", r3, c3, 3, 1, buf, sizeof buf, &len),
                     HMT_OK);
    ck_assert_str_eq(buf, "[INST] a[/INST] b</s>[SYSTEM_PROMPT] c[/SYSTEM_PROMPT]");
    /* unrecognised template: the message tells the host what to do */
    ck_assert_int_eq(hmt_chat_apply(NULL, "{{ messages }}", R2, C2, 2, 1, buf, sizeof buf, &len),
                     HMT_E_UNSUPPORTED);
    ck_assert_ptr_nonnull(strstr(hmt_last_error_msg(), "HMT_TOKENIZE_SPECIAL"));
    /* a success leaves the last error alone */
    ck_assert_int_eq(hmt_chat_apply(NULL, "llama3", R2, C2, 2, 0, buf, sizeof buf, &len), HMT_OK);
    ck_assert_ptr_nonnull(strstr(hmt_last_error_msg(), "HMT_TOKENIZE_SPECIAL"));
    ck_assert_str_eq(buf, "<|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>"
                          "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>");
}
END_TEST

/* A model without tokenizer.chat_template: NULL template, UNSUPPORTED by
 * default, formatting by family name works with the model given. */
START_TEST(model_without_template) {
    hmt_model *m = NULL;
    ck_assert_int_eq(hmt_model_load(&m, "models/demo-random-f16.gguf", NULL), HMT_OK);
    ck_assert_ptr_null(hmt_model_chat_template(m));
    char buf[256];
    size_t len = 0;
    ck_assert_int_eq(hmt_chat_apply(m, NULL, R2, C2, 2, 1, buf, sizeof buf, &len),
                     HMT_E_UNSUPPORTED);
    ck_assert_ptr_nonnull(strstr(hmt_last_error_msg(), "no tokenizer.chat_template"));
    ck_assert_int_eq(hmt_chat_apply(m, "phi3", R2, C2, 2, 1, buf, sizeof buf, &len), HMT_OK);
    ck_assert_str_eq(buf, "<|system|>\nBe brief.<|end|>\n<|user|>\nHi<|end|>\n<|assistant|>\n");
    hmt_model_free(m);
    ck_assert_ptr_null(hmt_model_chat_template(NULL));
}
END_TEST

/* ---------------------------------------------------------------------------
 * End of generation
 * ------------------------------------------------------------------------- */
typedef struct {
    const char *const *tokens;
    int n;
    const int32_t *types; /* NULL: all normal but 0 (unknown), 1, 2 (control) */
    int64_t eot, eom, fim_pad, eos; /* -2: key absent */
    const char *chat_template;
    int eot_as_string;
} vspec;

static hmti_vocab *build_vocab(const vspec *s, int *rc_out, hmti_gguf **g_out, uint8_t **data_out) {
    gguf_builder b;
    gguf_build_init(&b);
    gguf_build_string(&b, "tokenizer.ggml.model", "llama");
    gguf_build_arr_str(&b, "tokenizer.ggml.tokens", s->tokens, (uint64_t)s->n);
    float sc[64];
    int32_t ty[64];
    for (int i = 0; i < s->n; i++) {
        sc[i] = -(float)i;
        ty[i] = s->types ? s->types[i] : i == 0 ? 2 : i <= 2 ? 3 : 1;
    }
    gguf_build_arr(&b, "tokenizer.ggml.scores", GT_FLOAT32, sc, (uint64_t)s->n, 4);
    gguf_build_arr(&b, "tokenizer.ggml.token_type", GT_INT32, ty, (uint64_t)s->n, 4);
    if (s->eot_as_string) gguf_build_string(&b, "tokenizer.ggml.eot_token_id", "five");
    else if (s->eot != -2) gguf_build_u32(&b, "tokenizer.ggml.eot_token_id", (uint32_t)s->eot);
    if (s->eom != -2) gguf_build_u32(&b, "tokenizer.ggml.eom_token_id", (uint32_t)s->eom);
    if (s->fim_pad != -2) gguf_build_u32(&b, "tokenizer.ggml.fim_pad_token_id", (uint32_t)s->fim_pad);
    if (s->eos != -2) gguf_build_u32(&b, "tokenizer.ggml.eos_token_id", (uint32_t)s->eos);
    if (s->chat_template) gguf_build_string(&b, "tokenizer.chat_template", s->chat_template);
    size_t len;
    uint8_t *data = gguf_build_finish(&b, &len);
    gguf_build_free(&b);
    hmti_gguf *g = NULL;
    ck_assert_int_eq(hmti_gguf_open_buffer(&g, data, len), HMT_OK);
    hmti_vocab *v = NULL;
    *rc_out = hmti_vocab_load(&v, g);
    *g_out = g;
    *data_out = data;
    return v;
}

static hmti_vocab *vocab_ok(const vspec *s) {
    int rc;
    hmti_gguf *g;
    uint8_t *data;
    hmti_vocab *v = build_vocab(s, &rc, &g, &data);
    ck_assert_msg(rc == HMT_OK, "%s", hmti_tls_errmsg());
    hmti_gguf_close(g); /* the vocabulary keeps nothing of the file */
    free(data);
    return v;
}

/* The set, as a string of 0/1 per id. */
static void eog_set(const hmti_vocab *v, char *out) {
    int n = hmti_vocab_n_tokens(v);
    for (int i = 0; i < n; i++) out[i] = (char)('0' + hmti_vocab_is_eog(v, i));
    out[n] = 0;
}

static const char *const TOKS[] = {
    "<unk>", "<s>", "</s>", "a", "<|end|>", "<|eot_id|>", "<|eom_id|>", "<|im_end|>",
    "<end_of_turn>", "<|endoftext|>", "<|fim_pad|>", "<|file_sep|>", "<|repo_name|>", "b",
    "<EOT>", "<|fim_prefix|>"};
enum { NT = sizeof TOKS / sizeof TOKS[0] };

START_TEST(eog_texts_and_ids) {
    hmt_last_error_clear();
    vspec s = {TOKS, NT, NULL, -2, -2, -2, -2, NULL, 0};
    hmti_vocab *v = vocab_ok(&s);
    char set[64];
    eog_set(v, set);
    /* </s> (eos and a listed text), every end-of-turn text (whatever its
     * type: these are normal tokens here), the FIM pad/sep/repo tokens; not
     * <unk>, <s>, a, b, <|fim_prefix|> */
    ck_assert_str_eq(set, "0010111111111010");
    ck_assert_int_eq(hmti_vocab_eot(v), 4); /* lowest id among the EOT texts: <|end|> */
    ck_assert_int_eq(hmti_vocab_is_eog(v, -1), 0);
    ck_assert_int_eq(hmti_vocab_is_eog(v, NT), 0);
    ck_assert_int_eq(hmti_vocab_is_eog(v, 1 << 30), 0);
    hmti_vocab_free(v);
    ck_assert_str_eq(hmt_last_error_msg(), ""); /* optional keys probed without a message */

    /* metadata ids join the set: "a" as eot, "b" as eom, 15 as FIM pad;
     * "<|fim_pad|>" (10) is then not the FIM pad, and not an EOG text */
    vspec m = {TOKS, NT, NULL, 3, 13, 15, -2, NULL, 0};
    v = vocab_ok(&m);
    eog_set(v, set);
    ck_assert_str_eq(set, "0011111111011111");
    ck_assert_int_eq(hmti_vocab_eot(v), 3);
    hmti_vocab_free(v);

    /* ids outside the vocabulary are ignored (llama.cpp warns), and "none" */
    vspec o = {TOKS, NT, NULL, 1000, UINT32_MAX, 99, -2, NULL, 0};
    v = vocab_ok(&o);
    ck_assert_int_eq(hmti_vocab_eot(v), 4);
    ck_assert_int_eq(hmti_vocab_is_eog(v, 15), 0);
    hmti_vocab_free(v);
    ck_assert_str_eq(hmt_last_error_msg(), "");
}
END_TEST

START_TEST(eog_plain_vocab) {
    static const char *const toks[] = {"<unk>", "<s>", "</s>", "a", "b", "<|im_start|>"};
    vspec s = {toks, 6, NULL, -2, -2, -2, -2, NULL, 0};
    hmti_vocab *v = vocab_ok(&s);
    char set[16];
    eog_set(v, set);
    ck_assert_str_eq(set, "001000"); /* only eos */
    ck_assert_int_eq(hmti_vocab_eot(v), -1);
    hmti_vocab_free(v);
    /* eos elsewhere: both it and the "</s>" text */
    vspec e = {toks, 6, NULL, -2, -2, -2, 4, NULL, 0};
    v = vocab_ok(&e);
    eog_set(v, set);
    ck_assert_str_eq(set, "001010");
    hmti_vocab_free(v);
}
END_TEST

/* llama.cpp's exceptions: harmony's <|end|> and gemma4's </s>. */
START_TEST(eog_exceptions) {
    static const char *const harmony[] = {"<unk>", "<s>", "</s>", "<|end|>", "<|return|>",
                                          "<|call|>", "x"};
    vspec h = {harmony, 7, NULL, -2, -2, -2, -2, NULL, 0};
    hmti_vocab *v = vocab_ok(&h);
    char set[16];
    eog_set(v, set);
    ck_assert_str_eq(set, "0010110");
    hmti_vocab_free(v);
    static const char *const solar[] = {"<unk>", "<s>", "</s>", "<|end|>", "<|flush|>",
                                        "<|calls|>", "x"};
    vspec s = {solar, 7, NULL, -2, -2, -2, -2, NULL, 0};
    v = vocab_ok(&s);
    eog_set(v, set);
    ck_assert_str_eq(set, "0010110");
    hmti_vocab_free(v);
    /* <|end|> with only <|return|> stays */
    static const char *const half[] = {"<unk>", "<s>", "</s>", "<|end|>", "<|return|>", "x", "y"};
    vspec hh = {half, 7, NULL, -2, -2, -2, -2, NULL, 0};
    v = vocab_ok(&hh);
    eog_set(v, set);
    ck_assert_str_eq(set, "0011100");
    hmti_vocab_free(v);
    static const char *const gemma4[] = {"<unk>", "<s>", "</s>", "<|tool_response>", "<eos>",
                                         "<turn|>", "x"};
    vspec g = {gemma4, 7, NULL, -2, -2, -2, -2, NULL, 0};
    v = vocab_ok(&g);
    eog_set(v, set);
    ck_assert_str_eq(set, "0001110"); /* </s> left out, even as eos */
    hmti_vocab_free(v);
}
END_TEST

START_TEST(eog_bad_metadata) {
    vspec s = {TOKS, NT, NULL, -2, -2, -2, -2, NULL, 1};
    int rc;
    hmti_gguf *g;
    uint8_t *data;
    hmti_vocab *v = build_vocab(&s, &rc, &g, &data);
    ck_assert_int_eq(rc, HMT_E_FORMAT);
    ck_assert_ptr_null(v);
    ck_assert_ptr_nonnull(strstr(hmti_tls_errmsg(), "eot_token_id"));
    hmti_gguf_close(g);
    free(data);
}
END_TEST

START_TEST(chat_template_kept) {
    vspec s = {TOKS, NT, NULL, -2, -2, -2, -2, "{% for m in messages %}<|im_start|>{% endfor %}", 0};
    hmti_vocab *v = vocab_ok(&s);
    ck_assert_str_eq(hmti_vocab_chat_template(v), "{% for m in messages %}<|im_start|>{% endfor %}");
    hmti_vocab_free(v);
    vspec n = {TOKS, NT, NULL, -2, -2, -2, -2, NULL, 0};
    v = vocab_ok(&n);
    ck_assert_ptr_null(hmti_vocab_chat_template(v));
    hmti_vocab_free(v);
}
END_TEST

/* The public functions on a model file. */
START_TEST(eog_public) {
    hmt_model *m = NULL;
    ck_assert_int_eq(hmt_model_load(&m, "models/demo-random-f16.gguf", NULL), HMT_OK);
    hmt_token eos = hmt_model_token_eos(m);
    ck_assert_int_ge(eos, 0);
    ck_assert_int_eq(hmt_token_is_eog(m, eos), 1);
    ck_assert_int_eq(hmt_token_is_eog(m, -1), 0);
    ck_assert_int_eq(hmt_token_is_eog(m, hmt_model_n_vocab(m)), 0);
    ck_assert_int_eq(hmt_token_is_eog(NULL, eos), 0);
    ck_assert_int_eq(hmt_model_token_eot(NULL), -1);
    int n_eog = 0;
    for (hmt_token t = 0; t < hmt_model_n_vocab(m); t++) n_eog += hmt_token_is_eog(m, t);
    ck_assert_int_ge(n_eog, 1);
    hmt_model_free(m);
}
END_TEST

Suite *hmt_suite_chat(void);
Suite *hmt_suite_chat(void) {
    Suite *s = suite_create("chat");
    TCase *tc = tcase_create("templates");
    tcase_add_test(tc, golden_all_templates);
    tcase_add_test(tc, chatml_default_system);
    tcase_add_test(tc, llama3_dates);
    tcase_add_test(tc, mistral_default_system);
    tcase_add_test(tc, detect_refuses);
    tcase_add_test(tc, detect_mutated_templates);
    tcase_add_test(tc, buffer_sizing);
    tcase_add_test(tc, argument_errors);
    tcase_add_test(tc, model_without_template);
    suite_add_tcase(s, tc);
    tc = tcase_create("eog");
    tcase_add_test(tc, eog_texts_and_ids);
    tcase_add_test(tc, eog_plain_vocab);
    tcase_add_test(tc, eog_exceptions);
    tcase_add_test(tc, eog_bad_metadata);
    tcase_add_test(tc, chat_template_kept);
    tcase_add_test(tc, eog_public);
    suite_add_tcase(s, tc);
    return s;
}
