/* Chat formatting by template family (rules in chat.h and docs/API.md;
 * the family is recognised in chat_detect.c).
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

#include <stdint.h>
#include <string.h>

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
                             "\"system\", \"user\" and \"assistant\" (tool calls and tool "
                             "results are not supported: format such a conversation yourself "
                             "and tokenize it with HMT_TOKENIZE_SPECIAL)",
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
