/* Chat formatting by template family (rules in chat.h and docs/API.md).
 *
 * Detection follows llama.cpp's llm_chat_detect_template: the same
 * substrings in the same order, so a template is put in the family
 * llama.cpp would put it in; families libhmt does not write (and the
 * variants of a family whose Hugging Face output it does not reproduce)
 * are refused by name instead of being formatted approximately.
 *
 * Writing reproduces the Hugging Face templates (Jinja2 as transformers'
 * apply_chat_template runs it) with one convention: the BOS text a template
 * writes at the very start is left out, because tokenizing with
 * HMT_TOKENIZE_ADD_BOS adds the BOS token (a BOS text later in the
 * conversation, as Llama 2 writes before each user turn, is kept). Jinja's
 * trim and strip are Python's str.strip(): Unicode whitespace, not only
 * ASCII. Where a template would raise an exception, formatting fails with
 * HMT_E_INVAL and the template's reason; where it would silently drop or
 * print a message it has no place for (a system message in the middle of a
 * Llama 2, Mistral or Gemma conversation, or one with no user turn to go
 * into), it fails too. */
#include "text/chat.h"

#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/error.h"

/* ---------------------------------------------------------------------------
 * Output and whitespace
 * ------------------------------------------------------------------------- */
typedef struct {
    char *buf;
    size_t size, len;
} sink;

static void put_n(sink *o, const char *s, size_t n) {
    if (o->len < o->size) {
        size_t room = o->size - o->len;
        memcpy(o->buf + o->len, s, n < room ? n : room);
    }
    o->len += n;
}

static void put(sink *o, const char *s) { put_n(o, s, strlen(s)); }

/* Length of the whitespace character (Python's str.isspace) that starts s,
 * or 0. */
static size_t ws_head(const unsigned char *s, size_t n) {
    if (n >= 1 && ((s[0] >= 0x09 && s[0] <= 0x0D) || (s[0] >= 0x1C && s[0] <= 0x20))) return 1;
    if (n >= 2 && s[0] == 0xC2 && (s[1] == 0x85 || s[1] == 0xA0)) return 2;
    if (n >= 3) {
        uint32_t c = ((uint32_t)s[0] << 16) | ((uint32_t)s[1] << 8) | s[2];
        if (c == 0xE19A80 || (c >= 0xE28080 && c <= 0xE2808A) || c == 0xE280A8 ||
            c == 0xE280A9 || c == 0xE280AF || c == 0xE2819F || c == 0xE38080)
            return 3;
    }
    return 0;
}

/* Length of the whitespace character that ends s[0..n), or 0. */
static size_t ws_tail(const unsigned char *s, size_t n) {
    if (n >= 1 && ws_head(s + n - 1, 1) == 1) return 1;
    if (n >= 2 && ws_head(s + n - 2, 2) == 2) return 2;
    if (n >= 3 && ws_head(s + n - 3, 3) == 3) return 3;
    return 0;
}

/* Python's s.strip() on [*p, *p + *n). */
static void strip(const char **p, size_t *n, int lead, int trail) {
    const unsigned char *s = (const unsigned char *)*p;
    size_t k;
    while (lead && *n && (k = ws_head(s, *n)) != 0) {
        s += k;
        *n -= k;
    }
    while (trail && *n && (k = ws_tail(s, *n)) != 0) *n -= k;
    *p = (const char *)s;
}

static void put_stripped(sink *o, const char *s) {
    size_t n = strlen(s);
    strip(&s, &n, 1, 1);
    put_n(o, s, n);
}

static int is(const char *a, const char *b) { return strcmp(a, b) == 0; }

/* ---------------------------------------------------------------------------
 * Families
 * ------------------------------------------------------------------------- */
static int alternate_error(const char *family, int after_system) {
    return hmti_errf(HMT_E_INVAL,
                     "hmt_chat_apply: %s: %sconversation roles must alternate "
                     "user/assistant/user/assistant/... (the template raises an error)",
                     family, after_system ? "after the optional system message, " : "");
}

static int system_error(const char *family, size_t i) {
    return hmti_errf(HMT_E_INVAL,
                     "hmt_chat_apply: %s: message %zu is a system message; the template "
                     "takes one only as the first message",
                     family, i);
}

/* The template would drop the system message: it has no user turn to go into. */
static int dropped_system_error(const char *family, const char *where) {
    return hmti_errf(HMT_E_INVAL,
                     "hmt_chat_apply: %s: the template puts the system message into %s, "
                     "and there is none: it would leave the system message out",
                     family, where);
}

/* Llama-2-chat: [INST] <<SYS>> ... <</SYS>> ... [/INST] answer </s><s>[INST] ... */
static int fmt_llama2(sink *o, const char *const *roles, const char *const *contents, size_t n) {
    size_t start = is(roles[0], "system");
    const char *sys = start ? contents[0] : NULL;
    if (start && n == 1) return dropped_system_error("llama2", "the first user turn");
    for (size_t i = start; i < n; i++) {
        size_t k = i - start;
        if (is(roles[i], "system")) return system_error("llama2", i);
        if (is(roles[i], "user") != (k % 2 == 0)) return alternate_error("llama2", 0);
        const char *c = contents[i];
        size_t cn = strlen(c);
        if (is(roles[i], "user")) {
            if (k > 0) put(o, "<s>"); /* the first BOS comes from tokenization */
            put(o, "[INST] ");
            if (k == 0 && sys) {
                /* strip() of '<<SYS>>\n' + system + '\n<</SYS>>\n\n' + content:
                 * only the end can lose whitespace, past the content into "\n\n" */
                put(o, "<<SYS>>\n");
                put(o, sys);
                put(o, "\n<</SYS>>");
                strip(&c, &cn, 0, 1);
                if (cn) put(o, "\n\n");
            } else {
                strip(&c, &cn, 1, 1);
            }
            put_n(o, c, cn);
            put(o, " [/INST]");
        } else {
            put(o, " ");
            strip(&c, &cn, 1, 1);
            put_n(o, c, cn);
            put(o, " </s>");
        }
    }
    return HMT_OK;
}

/* Mistral-7B-Instruct-v0.2 ("v1" in llama.cpp and Mistral's docs). */
static int fmt_mistral_v1(sink *o, const char *const *roles, const char *const *contents,
                          size_t n) {
    size_t start = is(roles[0], "system");
    if (start && n == 1) return dropped_system_error("mistral-v1", "the first user turn");
    for (size_t i = start; i < n; i++) {
        size_t k = i - start;
        if (is(roles[i], "user") != (k % 2 == 0)) return alternate_error("mistral-v1", 1);
        if (is(roles[i], "system")) return system_error("mistral-v1", i);
        if (is(roles[i], "user")) {
            put(o, " [INST] ");
            if (k == 0 && start) {
                put(o, contents[0]);
                put(o, "\n\n");
            }
            put(o, contents[i]);
            put(o, " [/INST]");
        } else {
            put(o, " ");
            put(o, contents[i]);
            put(o, "</s>");
        }
    }
    return HMT_OK;
}

/* Mistral "v3" (Mistral-7B-Instruct-v0.3, Large 2407) and "v3-tekken"
 * (Nemo): the system message goes into the LAST message, which must be the
 * user's; v3 spaces [INST] and the (stripped) answer, tekken neither. */
static int fmt_mistral_v3(sink *o, const hmti_chat_style *st, const char *const *roles,
                          const char *const *contents, size_t n) {
    const char *fam = st->tekken ? "mistral-v3-tekken" : "mistral-v3";
    size_t start = is(roles[0], "system");
    for (size_t i = start; i < n; i++) {
        if (is(roles[i], "user") != ((i - start) % 2 == 0)) return alternate_error(fam, 1);
        if (is(roles[i], "system")) return system_error(fam, i);
    }
    if (start && !is(roles[n - 1], "user")) return dropped_system_error(fam, "the last message");
    const char *sp = st->tekken ? "" : " ";
    for (size_t i = start; i < n; i++) {
        if (is(roles[i], "user")) {
            put(o, "[INST]");
            put(o, sp);
            if (start && i == n - 1) {
                put(o, contents[0]);
                put(o, "\n\n");
            }
            put(o, contents[i]);
            put(o, "[/INST]");
        } else {
            put(o, sp);
            if (st->tekken)
                put(o, contents[i]);
            else
                put_stripped(o, contents[i]);
            put(o, "</s>");
        }
    }
    return HMT_OK;
}

/* Mistral "v7-tekken" (Small 3.1): a system turn first, the conversation's
 * or the template's default; no other system message; no spaces. (Its
 * template's alternation check never runs: the list it checks is built
 * inside a loop, and Jinja's scoping leaves it empty.) */
static int fmt_mistral_v7_tekken(sink *o, const hmti_chat_style *st, const char *const *roles,
                                 const char *const *contents, size_t n) {
    size_t start = is(roles[0], "system");
    const char *sys = start ? contents[0] : st->default_system;
    for (size_t i = start; i < n; i++)
        if (is(roles[i], "system")) return system_error("mistral-v7-tekken", i);
    if (start || sys[0]) {
        put(o, "[SYSTEM_PROMPT]");
        put(o, sys);
        put(o, "[/SYSTEM_PROMPT]");
    }
    for (size_t i = start; i < n; i++) {
        int user = is(roles[i], "user");
        if (user) put(o, "[INST]");
        put(o, contents[i]);
        put(o, user ? "[/INST]" : "</s>");
    }
    return HMT_OK;
}

/* Mistral "v7" (Large 2411): every message in order, system ones anywhere. */
static void fmt_mistral_v7(sink *o, const char *const *roles, const char *const *contents,
                           size_t n) {
    for (size_t i = 0; i < n; i++) {
        if (is(roles[i], "system")) {
            put(o, "[SYSTEM_PROMPT] ");
            put(o, contents[i]);
            put(o, "[/SYSTEM_PROMPT]");
        } else if (is(roles[i], "user")) {
            put(o, "[INST] ");
            put(o, contents[i]);
            put(o, "[/INST]");
        } else {
            put(o, " ");
            put(o, contents[i]);
            put(o, "</s>");
        }
    }
}

/* gemma-2-it: no system role; the assistant is "model". Gemma 3's template
 * opens the first user turn with the system message (not stripped) and two
 * newlines instead. */
static int fmt_gemma(sink *o, const hmti_chat_style *st, const char *const *roles,
                     const char *const *contents, size_t n, int add_gen) {
    size_t start = is(roles[0], "system");
    if (start && !st->gemma_system_prefix)
        return hmti_errf(HMT_E_INVAL, "hmt_chat_apply: gemma: system role not supported "
                                      "(the template raises an error)");
    if (start && n == 1) return dropped_system_error("gemma", "the first user turn");
    for (size_t i = start; i < n; i++) {
        if (is(roles[i], "user") != ((i - start) % 2 == 0)) return alternate_error("gemma", 0);
        if (is(roles[i], "system")) return system_error("gemma", i);
        put(o, "<start_of_turn>");
        put(o, is(roles[i], "assistant") ? "model" : roles[i]);
        put(o, "\n");
        if (start && i == 1) {
            put(o, contents[0]);
            put(o, "\n\n");
        }
        put_stripped(o, contents[i]);
        put(o, "<end_of_turn>\n");
    }
    if (add_gen) put(o, "<start_of_turn>model\n");
    return HMT_OK;
}

static int fmt_llama3(sink *o, const hmti_chat_style *st, const char *const *roles,
                      const char *const *contents, size_t n, int add_gen) {
    size_t first = 0;
    if (st->today_date[0]) { /* Llama 3.1+: a system turn with the dates, always */
        put(o, "<|start_header_id|>system<|end_header_id|>\n\n"
               "Cutting Knowledge Date: December 2023\nToday Date: ");
        put(o, st->today_date);
        put(o, "\n\n");
        if (is(roles[0], "system")) {
            put_stripped(o, contents[0]);
            first = 1;
        }
        put(o, "<|eot_id|>");
    }
    for (size_t i = first; i < n; i++) {
        put(o, "<|start_header_id|>");
        put(o, roles[i]);
        put(o, "<|end_header_id|>\n\n");
        put_stripped(o, contents[i]);
        put(o, "<|eot_id|>");
    }
    if (add_gen) put(o, "<|start_header_id|>assistant<|end_header_id|>\n\n");
    return HMT_OK;
}

/* Python's s.lstrip('\n') / s.rstrip('\n') on [*p, *p + *n). */
static void strip_nl(const char **p, size_t *n, int lead, int trail) {
    while (lead && *n && **p == '\n') (*p)++, (*n)--;
    while (trail && *n && (*p)[*n - 1] == '\n') (*n)--;
}

/* Qwen3's answer: content = the text after the last </think> without
 * leading newlines; reasoning = the text before the first </think>, after
 * the last <think> in it, newlines trimmed. With a <think> block when it
 * comes after the last user turn and is the last message or has reasoning. */
static void qwen3_answer(sink *o, const char *c, int after_query, int last) {
    const char *content = c, *rs = "", *close = strstr(c, "</think>"), *q;
    size_t rn = 0, cn;
    if (close) {
        for (content = close + 8; (q = strstr(content, "</think>")) != NULL;) content = q + 8;
        size_t pre = (size_t)(close - c);
        strip_nl(&c, &pre, 0, 1);
        rs = c;
        for (q = strstr(c, "<think>"); q && q + 7 <= c + pre; q = strstr(q + 1, "<think>"))
            rs = q + 7;
        rn = (size_t)(c + pre - rs);
        strip_nl(&rs, &rn, 1, 0);
    }
    cn = strlen(content);
    if (close) strip_nl(&content, &cn, 1, 0);
    put(o, "<|im_start|>assistant\n");
    if (after_query && (last || rn)) {
        strip_nl(&rs, &rn, 1, 1);
        put(o, "<think>\n");
        put_n(o, rs, rn);
        put(o, "\n</think>\n\n");
        strip_nl(&content, &cn, 1, 0);
    }
    put_n(o, content, cn);
    put(o, "<|im_end|>\n");
}

/* A user turn Qwen3 takes for a tool's output (not the last query). */
static int tool_response(const char *s) {
    size_t n = strlen(s), k = sizeof "</tool_response>" - 1;
    return !strncmp(s, "<tool_response>", 15) && n >= k && !strcmp(s + n - k, "</tool_response>");
}

static int fmt_chatml(sink *o, const hmti_chat_style *st, const char *const *roles,
                      const char *const *contents, size_t n, int add_gen) {
    size_t last_query = n - 1;
    for (size_t i = n; st->qwen3_reasoning && i-- > 0;)
        if (is(roles[i], "user") && !tool_response(contents[i])) {
            last_query = i;
            break;
        }
    if (st->default_system[0] && !is(roles[0], "system")) {
        put(o, "<|im_start|>system\n");
        put(o, st->default_system);
        put(o, "<|im_end|>\n");
    }
    for (size_t i = 0; i < n; i++) {
        if (st->qwen3_reasoning && is(roles[i], "assistant")) {
            qwen3_answer(o, contents[i], i > last_query, i == n - 1);
            continue;
        }
        put(o, "<|im_start|>");
        put(o, roles[i]);
        put(o, "\n");
        put(o, contents[i]);
        put(o, "<|im_end|>\n");
    }
    if (add_gen) put(o, "<|im_start|>assistant\n");
    return HMT_OK;
}

static int fmt_phi3(sink *o, const hmti_chat_style *st, const char *const *roles,
                    const char *const *contents, size_t n, int add_gen) {
    for (size_t i = 0; i < n; i++) {
        if (st->phi3_skip_empty_system && is(roles[i], "system") && !contents[i][0]) continue;
        put(o, "<|");
        put(o, roles[i]);
        put(o, "|>\n");
        put(o, contents[i]);
        put(o, "<|end|>\n");
    }
    if (add_gen)
        put(o, "<|assistant|>\n");
    else if (st->phi3_eos_at_end)
        put(o, "<|endoftext|>");
    return HMT_OK;
}

/* phi-4: chatml with <|im_sep|> after the role and nothing between turns. */
static void fmt_phi4(sink *o, const hmti_chat_style *st, const char *const *roles,
                     const char *const *contents, size_t n, int add_gen) {
    for (size_t i = 0; i < n; i++) {
        if (!st->phi4_first_revision || !is(roles[i], "assistant")) {
            put(o, "<|im_start|>");
            put(o, roles[i]);
            put(o, "<|im_sep|>");
        }
        put(o, contents[i]);
        put(o, "<|im_end|>");
        if (st->phi4_first_revision && is(roles[i], "user")) put(o, "<|im_start|>assistant<|im_sep|>");
    }
    if (add_gen && !st->phi4_first_revision) put(o, "<|im_start|>assistant<|im_sep|>");
}

/* DeepSeek's fullwidth-bar texts (U+FF5C, and U+2581 for the spaces) */
#define DS_BAR "\xEF\xBD\x9C"
#define DS_USER "<" DS_BAR "User" DS_BAR ">"
#define DS_ASSISTANT "<" DS_BAR "Assistant" DS_BAR ">"
#define DS_EOS "<" DS_BAR "end\xE2\x96\x81of\xE2\x96\x81sentence" DS_BAR ">"

/* DeepSeek-R1's distilled models: the system message first and bare, then
 * <｜User｜>text and <｜Assistant｜>answer<｜end▁of▁sentence｜>. The template
 * takes the last system message wherever it is; libhmt takes only a first
 * one (any other would be moved or dropped). */
static int fmt_deepseek3(sink *o, const hmti_chat_style *st, const char *const *roles,
                         const char *const *contents, size_t n, int add_gen) {
    size_t start = is(roles[0], "system");
    for (size_t i = start; i < n; i++)
        if (is(roles[i], "system")) return system_error("deepseek3", i);
    if (start) put(o, contents[0]);
    for (size_t i = start; i < n; i++) {
        if (is(roles[i], "user")) {
            put(o, DS_USER);
            put(o, contents[i]);
            continue;
        }
        const char *c = contents[i], *cut;
        while (st->deepseek_cut_reasoning && (cut = strstr(c, "</think>")) != NULL) c = cut + 8;
        put(o, DS_ASSISTANT);
        put(o, c);
        put(o, DS_EOS);
    }
    if (add_gen) {
        put(o, DS_ASSISTANT);
        if (st->deepseek_think) put(o, "<think>\n");
    }
    return HMT_OK;
}

int hmti_chat_format(const hmti_chat_style *st, const char *const *roles,
                     const char *const *contents, size_t n, int add_generation_prompt,
                     char *buf, size_t size, size_t *len) {
    for (size_t i = 0; i < n; i++) {
        if (!roles[i] || !contents[i])
            return hmti_errf(HMT_E_INVAL, "hmt_chat_apply: %s[%zu] is NULL",
                             !roles[i] ? "roles" : "contents", i);
        if (!is(roles[i], "system") && !is(roles[i], "user") && !is(roles[i], "assistant"))
            return hmti_errf(HMT_E_INVAL,
                             "hmt_chat_apply: roles[%zu] is '%.32s'; the roles are "
                             "\"system\", \"user\" and \"assistant\"",
                             i, roles[i]);
    }
    sink o = {buf, size, 0};
    int add = add_generation_prompt != 0, rc;
    switch (st->family) {
    case HMTI_CHAT_LLAMA2: rc = fmt_llama2(&o, roles, contents, n); break;
    case HMTI_CHAT_MISTRAL_V1: rc = fmt_mistral_v1(&o, roles, contents, n); break;
    case HMTI_CHAT_MISTRAL_V3: rc = fmt_mistral_v3(&o, st, roles, contents, n); break;
    case HMTI_CHAT_MISTRAL_V7:
        if (st->tekken)
            rc = fmt_mistral_v7_tekken(&o, st, roles, contents, n);
        else
            fmt_mistral_v7(&o, roles, contents, n), rc = HMT_OK;
        break;
    case HMTI_CHAT_PHI4: fmt_phi4(&o, st, roles, contents, n, add), rc = HMT_OK; break;
    case HMTI_CHAT_GEMMA: rc = fmt_gemma(&o, st, roles, contents, n, add); break;
    case HMTI_CHAT_DEEPSEEK3: rc = fmt_deepseek3(&o, st, roles, contents, n, add); break;
    case HMTI_CHAT_LLAMA3: rc = fmt_llama3(&o, st, roles, contents, n, add); break;
    case HMTI_CHAT_CHATML: rc = fmt_chatml(&o, st, roles, contents, n, add); break;
    case HMTI_CHAT_PHI3: rc = fmt_phi3(&o, st, roles, contents, n, add); break;
    default: return hmti_errf(HMT_E_INVAL, "hmt_chat_apply: bad template style");
    }
    if (rc) {
        if (size) buf[0] = 0; /* nothing half-written is left for the caller */
        return rc;
    }
    if (size) buf[o.len < size ? o.len : size - 1] = 0;
    *len = o.len;
    if (o.len >= size)
        return hmti_errf(HMT_E_BUFFER, "hmt_chat_apply: the text needs %zu bytes", o.len + 1);
    return HMT_OK;
}

/* ---------------------------------------------------------------------------
 * Detection
 * ------------------------------------------------------------------------- */
static const char *const SUPPORTED = "llama2, llama3, chatml, gemma, phi3, phi4, mistral-v1, "
                                      "mistral-v3, mistral-v3-tekken, mistral-v7, "
                                      "mistral-v7-tekken, deepseek3";

static int has(const char *t, const char *s) { return strstr(t, s) != NULL; }

static int unsupported(const char *seen) {
    return hmti_errf(HMT_E_UNSUPPORTED,
                     "hmt_chat_apply: %s%s%s; libhmt formats %s: format the conversation "
                     "yourself and tokenize the text with HMT_TOKENIZE_SPECIAL",
                     seen ? "the chat template is llama.cpp's '" : "the chat template is not "
                                                                  "one libhmt recognises",
                     seen ? seen : "", seen ? "', which libhmt does not format" : "", SUPPORTED);
}

static void style(hmti_chat_style *out, hmti_chat_family f, const char *name) {
    memset(out, 0, sizeof *out);
    out->family = f;
    out->name = name;
}

/* A chatml template that writes a literal system turn
 * '<|im_start|>system\n...<|im_end|>' (Qwen2.5's "You are Qwen, created by
 * Alibaba Cloud. ..."; SmolLM2's, whose literal holds a real newline rather
 * than the escape) writes it when the conversation starts without one; the
 * text must be plain (no quote, brace or escape). */
static void chatml_default_system(hmti_chat_style *st, const char *t) {
    static const char open[] = "<|im_start|>system";
    for (const char *p = strstr(t, open); p; p = strstr(p + 1, open)) {
        const char *s = p + sizeof open - 1;
        if (s[0] == '\n')
            s += 1;
        else if (s[0] == '\\' && s[1] == 'n')
            s += 2;
        else
            continue;
        const char *e = strstr(s, "<|im_end|>");
        if (!e || e == s || (size_t)(e - s) >= sizeof st->default_system) continue;
        size_t k = 0;
        while (s + k < e && !strchr("'\"\\{}", s[k])) k++;
        if (s + k != e) continue;
        memcpy(st->default_system, s, k);
        st->default_system[k] = 0;
        return;
    }
}

/* Today, local time (as transformers' strftime_now). */
static int local_today(struct tm *tm) {
    time_t now = time(NULL);
    return localtime_r(&now, tm) && tm->tm_mon >= 0 && tm->tm_mon <= 11;
}

/* Mistral Small 3's default system prompt, from
 * `set default_system_message = "..." + today + "..." %}`: string literals
 * (with Python's escapes \n \t \r \\ \' \"; any other refuses) joined
 * by `+`, and `today` when the template sets it to strftime_now("%Y-%m-%d").
 * 1 when read or absent, 0 when the template has one libhmt cannot read. */
static int read_default_system(hmti_chat_style *st, const char *t) {
    static const char key[] = "set default_system_message =";
    const char *p = strstr(t, key);
    if (!p) return 1;
    p += sizeof key - 1;
    char today[48] = "";
    struct tm tm;
    if (has(t, "set today = strftime_now(\"%Y-%m-%d\")") && local_today(&tm))
        snprintf(today, sizeof today, "%04d-%02d-%02d", tm.tm_year + 1900, tm.tm_mon + 1,
                 tm.tm_mday);
    size_t k = 0, cap = sizeof st->default_system;
    for (;;) {
        while (*p == ' ') p++;
        if (*p == '"' || *p == '\'') {
            char q = *p++;
            for (; *p && *p != q; p++) {
                char c = *p;
                if (c == '\\') {
                    switch (*++p) {
                    case 'n': c = '\n'; break;
                    case 't': c = '\t'; break;
                    case 'r': c = '\r'; break;
                    case '\\': case '\'': case '"': c = *p; break;
                    default: return 0; /* \x, \u, octal...: not read */
                    }
                }
                if (k + 1 >= cap) return 0;
                st->default_system[k++] = c;
            }
            if (*p++ != q) return 0;
        } else if (!strncmp(p, "today", 5) && !isalnum((unsigned char)p[5]) && p[5] != '_') {
            size_t n = strlen(today);
            if (!n || k + n >= cap) return 0;
            memcpy(st->default_system + k, today, n);
            k += n;
            p += 5;
        } else {
            return 0;
        }
        while (*p == ' ') p++;
        if (*p == '+') {
            p++;
            continue;
        }
        if ((p[0] == '%' && p[1] == '}') || (p[0] == '-' && p[1] == '%' && p[2] == '}')) break;
        return 0;
    }
    st->default_system[k] = 0;
    return 1;
}

/* Llama 3.1 to 3.3: the date of the system turn. Llama 3.2's template takes
 * today's (strftime_now("%d %b %Y"), as transformers provides it: local
 * time, English month), 3.1's and 3.3's their date_string default. */
static int llama31_date(hmti_chat_style *st, const char *t) {
    static const char month[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                      "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    if (has(t, "strftime_now(\"%d %b %Y\")")) {
        struct tm tm;
        if (!local_today(&tm)) return 0;
        snprintf(st->today_date, sizeof st->today_date, "%02d %s %04d", tm.tm_mday,
                 month[tm.tm_mon], tm.tm_year + 1900);
        return 1;
    }
    static const char key[] = "set date_string = \"";
    const char *p = strstr(t, key);
    if (!p) return 0;
    p += sizeof key - 1;
    size_t k = 0;
    while (p[k] && p[k] != '"' && p[k] != '\\' && p[k] != '{' && k + 1 < sizeof st->today_date)
        k++;
    if (!k || p[k] != '"') return 0;
    memcpy(st->today_date, p, k);
    st->today_date[k] = 0;
    return 1;
}

int hmti_chat_detect(const char *t, hmti_chat_style *out) {
    static const struct {
        const char *name;
        hmti_chat_family f;
    } names[] = {{"llama2", HMTI_CHAT_LLAMA2},         {"llama3", HMTI_CHAT_LLAMA3},
                 {"chatml", HMTI_CHAT_CHATML},         {"gemma", HMTI_CHAT_GEMMA},
                 {"phi3", HMTI_CHAT_PHI3},             {"phi4", HMTI_CHAT_PHI4},
                 {"mistral-v1", HMTI_CHAT_MISTRAL_V1}, {"mistral-v3", HMTI_CHAT_MISTRAL_V3},
                 {"mistral-v3-tekken", HMTI_CHAT_MISTRAL_V3},
                 {"mistral-v7", HMTI_CHAT_MISTRAL_V7},
                 {"mistral-v7-tekken", HMTI_CHAT_MISTRAL_V7},
                 {"deepseek3", HMTI_CHAT_DEEPSEEK3}};
    /* llama.cpp's other template names ("llama2" there is the variant
     * without a system prompt; here it is Llama-2-chat's template) */
    static const char *const other_names[] = {
        "llama2-sys", "llama2-sys-bos", "llama2-sys-strip", "falcon3",
        "zephyr", "monarch", "orion", "openchat", "vicuna", "vicuna-orca", "deepseek",
        "deepseek2", "command-r", "chatglm3", "chatglm4", "glmedge", "minicpm",
        "exaone3", "exaone4", "rwkv-world", "granite", "gigachat", "megrez", "yandex",
        "bailing", "llama4", "smolvlm", "hunyuan-moe", "hunyuan-dense", "kimi-k2"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (is(t, names[i].name)) {
            style(out, names[i].f, names[i].name);
            out->phi3_eos_at_end = out->family == HMTI_CHAT_PHI3;
            out->tekken = is(t, "mistral-v3-tekken") || is(t, "mistral-v7-tekken");
            /* by name, Gemma 3's template: a system message opens the first
             * user turn (Gemma 2's refuses one; without one they agree) */
            out->gemma_system_prefix = out->family == HMTI_CHAT_GEMMA;
            /* by name, the R1 distilled models' template */
            out->deepseek_cut_reasoning = out->deepseek_think =
                out->family == HMTI_CHAT_DEEPSEEK3;
            return HMT_OK;
        }
    }
    for (size_t i = 0; i < sizeof other_names / sizeof other_names[0]; i++)
        if (is(t, other_names[i])) return unsupported(other_names[i]);
    if (has(t, "<|im_start|>")) {
        if (has(t, "<|im_sep|>")) {
            style(out, HMTI_CHAT_PHI4, "phi4");
            out->phi4_first_revision = !has(t, "add_generation_prompt") &&
                                       has(t, "<|im_end|><|im_start|>assistant<|im_sep|>");
            return HMT_OK;
        }
        if (has(t, "<end_of_utterance>")) return unsupported("smolvlm");
        style(out, HMTI_CHAT_CHATML, "chatml");
        chatml_default_system(out, t);
        /* Qwen3's answers: reasoning kept only after the last user turn */
        out->qwen3_reasoning = has(t, "ns.last_query_index") && has(t, "reasoning_content");
        return HMT_OK;
    }
    if (strncmp(t, "mistral", 7) == 0 || has(t, "[INST]")) {
        if (has(t, "[SYSTEM_PROMPT]")) {
            /* Large 2411 spaces the texts; the tekken ones (Mistral Small 3)
             * do not, and write a default system prompt with the date; the
             * reasoning ones (Magistral: [THINK]) are not written here */
            if (has(t, "[THINK]")) return unsupported("mistral-v7-tekken with [THINK] (Magistral)");
            int tekken = !has(t, "[INST] ");
            style(out, HMTI_CHAT_MISTRAL_V7, tekken ? "mistral-v7-tekken" : "mistral-v7");
            out->tekken = tekken;
            if (tekken && !read_default_system(out, t))
                return unsupported("mistral-v7-tekken with a default system prompt libhmt "
                                   "cannot read");
            return HMT_OK;
        }
        if (has(t, "' [INST] ' + system_message") || has(t, "[AVAILABLE_TOOLS]")) {
            if (has(t, " [INST]")) {
                style(out, HMTI_CHAT_MISTRAL_V1, "mistral-v1");
                return HMT_OK;
            }
            int tekken = has(t, "\"[INST]\"");
            const char *fam = tekken ? "mistral-v3-tekken" : "mistral-v3";
            /* the revision checked puts the system message into the last
             * message; others put it elsewhere */
            if (!has(t, "loop.last and system_message is defined"))
                return unsupported(tekken ? "mistral-v3-tekken (a revision libhmt has not checked)"
                                          : "mistral-v3 (a revision libhmt has not checked)");
            style(out, HMTI_CHAT_MISTRAL_V3, fam);
            out->tekken = tekken;
            return HMT_OK;
        }
        /* llama.cpp's llama2 variants; the one written here is Llama-2-chat's
         * (system prompt, BOS inside the history, stripped messages) */
        int sys = has(t, "<<SYS>>"), bos = has(t, "bos_token + '[INST]"),
            strip_msg = has(t, "content.strip()");
        if (sys && bos && strip_msg) {
            style(out, HMTI_CHAT_LLAMA2, "llama2");
            return HMT_OK;
        }
        return unsupported(strip_msg ? "llama2-sys-strip" : bos ? "llama2-sys-bos"
                           : sys     ? "llama2-sys"
                                     : "llama2");
    }
    if (has(t, "<|assistant|>") && has(t, "<|end|>")) {
        style(out, HMTI_CHAT_PHI3, "phi3");
        out->phi3_skip_empty_system = has(t, "'system' and message['content']");
        out->phi3_eos_at_end = has(t, "eos_token");
        return HMT_OK;
    }
    /* what llama.cpp checks before gemma and llama3 */
    if (has(t, "[gMASK]<sop>")) return unsupported("chatglm4");
    if (has(t, "<|assistant|>") && has(t, "<|user|>"))
        return unsupported(has(t, "</s>") ? "falcon3" : "glmedge");
    if (has(t, "<|user|>") && has(t, "<|endoftext|>")) return unsupported("zephyr");
    if (has(t, "bos_token + message['role']")) return unsupported("monarch");
    if (has(t, "<start_of_turn>")) {
        style(out, HMTI_CHAT_GEMMA, "gemma");
        out->gemma_system_prefix = has(t, "first_user_prefix");
        return HMT_OK;
    }
    if (has(t, "'\\n\\nAssistant: ' + eos_token")) return unsupported("orion");
    if (has(t, "GPT4 Correct ")) return unsupported("openchat");
    if (has(t, "USER: ") && has(t, "ASSISTANT: ")) return unsupported("vicuna");
    if (has(t, "### Instruction:") && has(t, "<|EOT|>")) return unsupported("deepseek");
    if (has(t, "<|START_OF_TURN_TOKEN|>") && has(t, "<|USER_TOKEN|>"))
        return unsupported("command-r");
    if (has(t, "<|start_header_id|>") && has(t, "<|end_header_id|>")) {
        style(out, HMTI_CHAT_LLAMA3, "llama3");
        if (has(t, "Cutting Knowledge Date: December 2023") && !llama31_date(out, t))
            return unsupported("llama3 with a date header whose date libhmt cannot read");
        return HMT_OK;
    }
    if (has(t, "[gMASK]sop")) return unsupported("chatglm3");
    if (has(t, "<\xE7\x94\xA8\xE6\x88\xB7>")) return unsupported("minicpm"); /* <用户> */
    if (has(t, "'Assistant: ' + message['content'] + eos_token")) return unsupported("deepseek2");
    if (has(t, DS_ASSISTANT) && has(t, DS_USER) && has(t, DS_EOS)) {
        style(out, HMTI_CHAT_DEEPSEEK3, "deepseek3");
        out->deepseek_cut_reasoning = has(t, "split('</think>')[-1]");
        out->deepseek_think = has(t, "'" DS_ASSISTANT "<think>\\n'");
        return HMT_OK;
    }
    if (has(t, "<|header_start|>") && has(t, "<|header_end|>")) return unsupported("llama4");
    return unsupported(NULL);
}
