/* Recognising a chat template (rules in chat.h and docs/API.md).
 *
 * Detection follows llama.cpp's llm_chat_detect_template: the same
 * substrings in the same order, so a template is put in the family
 * llama.cpp would put it in; families libhmt does not write (and the
 * variants of a family whose Hugging Face output it does not reproduce)
 * are refused by name instead of being formatted approximately. What the
 * family's writer needs from the text (a default system prompt, a date,
 * which revision) is read here too. */
#include "text/chat.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/error.h"

static int is(const char *a, const char *b) { return strcmp(a, b) == 0; }

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
