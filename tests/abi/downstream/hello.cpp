// A downstream C++ program, built by tests/abi/check_downstream.sh with
// nothing but `pkg-config --cflags --libs hmt` against a staged install.
// RAII over the C handles, the way a C++ host wraps libhmt.
// usage: hello_cpp MODEL.gguf
#include <hmt/hmt.h>

#include <cmath>
#include <cstdio>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

struct ModelDeleter {
    void operator()(hmt_model *m) const { hmt_model_free(m); }
};
struct CtxDeleter {
    void operator()(hmt_ctx *c) const { hmt_ctx_free(c); }
};
struct ParamsDeleter {
    void operator()(hmt_params *p) const { hmt_params_free(p); }
};
using Model = std::unique_ptr<hmt_model, ModelDeleter>;
using Ctx = std::unique_ptr<hmt_ctx, CtxDeleter>;
using Params = std::unique_ptr<hmt_params, ParamsDeleter>;

struct Error : std::runtime_error {
    int code;
    Error(int c, const std::string &what) : std::runtime_error(what), code(c) {}
};

void check(int rc, const char *what) {
    if (rc != HMT_OK)
        throw Error(rc, std::string(what) + ": " + hmt_strerror(rc) + ": " + hmt_last_error_msg());
}

Model load(const char *path) {
    hmt_model *m = nullptr;
    check(hmt_model_load(&m, path, nullptr), "load");
    return Model(m);
}

std::vector<hmt_token> tokenize(const hmt_model *m, const std::string &text) {
    size_t n = 0;
    int rc = hmt_tokenize(m, text.data(), text.size(), HMT_TOKENIZE_ADD_BOS, nullptr, 0, &n);
    if (rc != HMT_OK && rc != HMT_E_BUFFER) check(rc, "tokenize (size)");
    std::vector<hmt_token> out(n);
    check(hmt_tokenize(m, text.data(), text.size(), HMT_TOKENIZE_ADD_BOS, out.data(), out.size(),
                       &n),
          "tokenize");
    return out;
}

std::string detokenize(const hmt_model *m, const std::vector<hmt_token> &toks) {
    size_t len = 0;
    int rc = hmt_detokenize(m, toks.data(), toks.size(), 0, nullptr, 0, &len);
    if (rc != HMT_OK && rc != HMT_E_BUFFER) check(rc, "detokenize (size)");
    std::string s(len + 1, '\0');
    check(hmt_detokenize(m, toks.data(), toks.size(), 0, &s[0], s.size(), &len), "detokenize");
    s.resize(len);
    return s;
}

}  // namespace

int main(int argc, char **argv) {
    if (argc != 2) return 2;
    try {
        if (hmt_version_number() != HMT_VERSION_NUMBER || hmt_abi_version() != HMT_ABI_VERSION)
            throw std::runtime_error("header and library versions differ");
        Model model = load(argv[1]);
        const std::string text = "Hello world";
        std::vector<hmt_token> toks = tokenize(model.get(), text);
        if (toks.size() < 2) throw std::runtime_error("too few tokens");
        if (detokenize(model.get(), toks).find(text) == std::string::npos)
            throw std::runtime_error("detokenize does not round-trip");

        hmt_params *p = nullptr;
        check(hmt_params_create(&p), "params");
        Params params(p);
        check(hmt_params_set_int(params.get(), HMT_P_N_THREADS, 2), "n_threads");
        hmt_ctx *c = nullptr;
        check(hmt_ctx_create(&c, model.get(), params.get()), "ctx");
        Ctx ctx(c);
        model.reset();  // the context keeps the model alive
        const int32_t n_vocab = hmt_model_n_vocab(hmt_ctx_model(ctx.get()));
        std::vector<uint8_t> outs(toks.size(), HMT_OUT_LOGITS);
        check(hmt_ctx_eval(ctx.get(), toks.data(), nullptr, toks.size(), nullptr, outs.data()),
              "eval");
        for (size_t i = 0; i < toks.size(); i++) {
            const float *l = hmt_ctx_logits(ctx.get(), static_cast<int32_t>(i));
            if (!l) throw std::runtime_error("missing logits");
            for (int32_t v = 0; v < n_vocab; v++)
                if (!std::isfinite(l[v])) throw std::runtime_error("non-finite logit");
        }
        try {
            check(hmt_ctx_kv_rewind(ctx.get(), static_cast<int32_t>(toks.size()) + 1), "rewind");
            throw std::runtime_error("rewind past n_past succeeded");
        } catch (const Error &e) {
            if (e.code != HMT_E_INVAL) throw;
        }
        std::printf("hello.cpp: libhmt %s, %zu tokens evaluated, n_past %d\n",
                    hmt_version_string(), toks.size(), static_cast<int>(hmt_ctx_n_past(ctx.get())));
    } catch (const std::exception &e) {
        std::fprintf(stderr, "hello.cpp: %s\n", e.what());
        return 1;
    }
    return 0;
}
