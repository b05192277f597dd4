"""The ctypes table agrees with include/hmt/*.h (the headers hmt.h includes
and the experimental tier, experimental.h): every declared function is
bound, with the right number and types of arguments and the right return
type; the Python enums have the header's values; the library loads as
documented and its version is checked."""
import ctypes
import os
import re
import subprocess
import sys
import unittest

from hmt_testutil import HEADER, ROOT, hmt

HEADER_DIR = os.path.dirname(HEADER)

from hmt import _capi

C_SCALARS = {
    "int": ctypes.c_int, "int32_t": ctypes.c_int32, "hmt_token": ctypes.c_int32,
    "int64_t": ctypes.c_int64, "uint32_t": ctypes.c_uint32, "uint64_t": ctypes.c_uint64,
    "size_t": ctypes.c_size_t, "double": ctypes.c_double, "float": ctypes.c_float,
    "uint8_t": ctypes.c_uint8, "char": ctypes.c_char,
    # enums are passed as int
    "hmt_param": ctypes.c_int, "hmt_log_level": ctypes.c_int, "hmt_status": ctypes.c_int,
    "hmt_mode": ctypes.c_int, "hmt_knn_dtype": ctypes.c_int, "hmt_compute_type": ctypes.c_int,
    "hmt_ditto_mode": ctypes.c_int, "hmt_ditto_scope": ctypes.c_int,
    "hmt_ditto_renorm": ctypes.c_int, "hmt_knn_lambda_mode": ctypes.c_int,
    "hmt_log_fn": _capi.hmt_log_fn, "hmt_abort_fn": _capi.hmt_abort_fn,
    "hmt_recall_fn": _capi.hmt_recall_fn, "hmt_knn_progress_fn": _capi.hmt_knn_progress_fn,
}
CALLBACKS = ["hmt_log_fn", "hmt_abort_fn", "hmt_recall_fn", "hmt_knn_progress_fn"]


def header_raw():
    """Every public header, without comments."""
    text = ""
    for name in sorted(os.listdir(HEADER_DIR)):
        if name.endswith(".h"):
            with open(os.path.join(HEADER_DIR, name)) as f:
                text += f.read() + "\n"
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    return re.sub(r"//[^\n]*", " ", text)


def header_text():
    """Every public header, without comments and preprocessor lines."""
    return re.sub(r"(?m)^\s*#.*(\\\n.*)*$", " ", header_raw())


def experimental_keys():
    """{HMT_P_NAME: value} of the keys experimental.h defines."""
    return {k: int(v) for k, v in
            re.findall(r"#define\s+(HMT_P_[A-Z0-9_]+)\s+\(\(hmt_param\)\s*(\d+)\)", header_raw())}


def declarations():
    """{name: (return type, [param types])} of every HMT_API function."""
    text = " ".join(header_text().split())
    out = {}
    for m in re.finditer(r"HMT_API\s+([^;]*?)\b(hmt_[a-z0-9_]+)\s*\(([^)]*)\)\s*;", text):
        ret = m.group(1).replace("HMT_NODISCARD", "").strip()
        params = [p.strip() for p in m.group(3).split(",")]
        if params == ["void"]:
            params = []
        out[m.group(2)] = (ret, params)
    return out


def expected_ctype(decl, what):
    """The ctypes type a C declaration ('const float *logits') must bind to."""
    decl = re.sub(r"\bconst\b", " ", decl)
    stars = decl.count("*")
    words = decl.replace("*", " ").split()
    if what == "param":
        words = words[:-1] if len(words) > 1 else words  # drop the parameter name
    base = words[0]
    if stars == 0:
        return [None] if base == "void" else [C_SCALARS[base]]
    if base == "void":
        assert stars == 1
        return [ctypes.c_void_p]
    if base in C_SCALARS:
        t = C_SCALARS[base]
        if base == "char" and stars == 1:
            return [ctypes.c_char_p, ctypes.POINTER(ctypes.c_char)]
    else:
        t = getattr(_capi, base)  # an opaque handle struct
    for _ in range(stars):
        t = ctypes.POINTER(t)
    return [t]


class TestTable(unittest.TestCase):
    def test_every_header_function_is_bound_once(self):
        decl = declarations()
        names = [f[0] for f in _capi.FUNCTIONS]
        self.assertGreater(len(decl), 60)
        self.assertEqual(len(names), len(set(names)), "duplicate entries in FUNCTIONS")
        self.assertEqual(sorted(set(decl) - set(names)), [], "declared in hmt.h, not bound")
        self.assertEqual(sorted(set(names) - set(decl)), [], "bound, not declared in hmt.h")

    def test_signatures_match_the_header(self):
        decl = declarations()
        for name, restype, argtypes, errcheck in _capi.FUNCTIONS:
            with self.subTest(name=name):
                ret, params = decl[name]
                self.assertEqual(len(argtypes), len(params), f"{name}: argument count")
                for i, (p, t) in enumerate(zip(params, argtypes)):
                    self.assertIn(t, expected_ctype(p, "param"), f"{name} argument {i}: {p}")
                self.assertIn(restype, expected_ctype(ret, "return"), f"{name} returns {ret}")
                if ret == "int":  # every int-returning function is a status
                    self.assertIn(errcheck, (_capi._status, _capi._status_buffer), name)

    def test_every_bound_function_is_exported(self):
        self.assertEqual(_capi.MISSING, [], "functions missing from the loaded library")
        for name, *_ in _capi.FUNCTIONS:
            self.assertTrue(hmt.capi.available(name), name)

    def test_callback_typedefs_match(self):
        text = " ".join(header_text().split())
        for name in CALLBACKS:
            proto = C_SCALARS[name]
            m = re.search(r"typedef\s+(\w+)\s*\(\s*\*\s*" + name + r"\s*\)\s*\(([^)]*)\)", text)
            self.assertIsNotNone(m, name)
            params = [p.strip() for p in m.group(2).split(",")]
            self.assertEqual(len(proto._argtypes_), len(params), name)
            for p, t in zip(params, proto._argtypes_):
                self.assertIn(t, expected_ctype(p, "param"), f"{name}: {p}")
            self.assertIn(proto._restype_, expected_ctype(m.group(1), "return"), name)


def header_enum(name):
    text = header_text()
    m = re.search(r"typedef\s+enum\s+" + name + r"\s*\{(.*?)\}", text, re.S)
    assert m, name
    return {k: int(v) for k, v in re.findall(r"\b(HMT_[A-Z0-9_]+)\s*=\s*(-?\d+)", m.group(1))}


class TestEnums(unittest.TestCase):
    def check(self, cname, pyenum, prefix):
        want = header_enum(cname)
        got = {prefix + m.name: int(m) for m in pyenum}
        self.assertEqual(got, want, cname)

    def test_proc_vtable_fields(self):
        text = " ".join(header_text().split())
        m = re.search(r"typedef struct hmt_proc_i \{(.*?)\} hmt_proc_i;", text)
        self.assertIsNotNone(m)
        fields = re.findall(r"(\w+)\s*;|\(\s*\*\s*(\w+)\s*\)", m.group(1))
        names = [a or b for a, b in fields]
        self.assertEqual([f[0] for f in _capi.hmt_proc_i._fields_], names)
        for fname, ftype in _capi.hmt_proc_i._fields_[2:]:
            fm = re.search(r"(\w+)\s*\(\s*\*\s*" + fname + r"\s*\)\s*\(([^)]*)\)", m.group(1))
            params = [p.strip() for p in fm.group(2).split(",")]
            self.assertEqual(len(ftype._argtypes_), len(params), fname)
            for p, t in zip(params, ftype._argtypes_):
                self.assertIn(t, expected_ctype(p, "param"), f"{fname}: {p}")
            self.assertIn(ftype._restype_, expected_ctype(fm.group(1), "return"), fname)

    def test_knn_dtype(self):
        self.check("hmt_knn_dtype", hmt.KnnDtype, "HMT_KNN_")

    def test_status(self):
        self.check("hmt_status", hmt.Status, "HMT_")

    def test_param(self):
        want = header_enum("hmt_param")
        exp = experimental_keys()
        self.assertGreaterEqual(len(exp), 11)
        self.assertTrue(all(v >= 1000 for v in exp.values()), exp)
        self.assertFalse(set(want) & set(exp))
        want.update(exp)
        got = {"HMT_P_" + m.name: int(m) for m in hmt.Param}
        self.assertEqual(got, want)
        for key in hmt.Param:  # the Python names are the library's
            self.assertEqual(hmt.param_name(key), key.name.lower())
        self.assertIsNone(hmt.param_name(206))  # 0.1's recall_bf16: gone

    def test_value_enums(self):
        self.check("hmt_compute_type", hmt.ComputeType, "HMT_COMPUTE_")
        self.check("hmt_kv_type", hmt.KvType, "HMT_KV_")
        self.check("hmt_ditto_mode", hmt.DittoMode, "HMT_DITTO_")
        self.check("hmt_ditto_scope", hmt.DittoScope, "HMT_DITTO_")
        self.check("hmt_ditto_renorm", hmt.DittoRenorm, "HMT_DITTO_RENORM_")
        self.check("hmt_knn_lambda_mode", hmt.KnnLambdaMode, "HMT_KNN_LAMBDA_")
        self.assertEqual((hmt.COMPUTE_F32, hmt.COMPUTE_BF16), (0, 1))

    def test_auto(self):
        m = re.search(r"#define\s+HMT_AUTO\s+\((-?\d+)\)", header_raw())
        self.assertIsNotNone(m)
        self.assertEqual(hmt.AUTO, int(m.group(1)))

    def test_mode(self):
        self.check("hmt_mode", hmt.Mode, "HMT_MODE_")

    def test_log_level(self):
        self.check("hmt_log_level", hmt.LogLevel, "HMT_LOG_")

    def test_flags(self):
        text = header_text()
        for name in ("TOKENIZE_ADD_BOS", "TOKENIZE_SPECIAL", "DETOKENIZE_SPECIAL", "OUT_LOGITS",
                     "OUT_HIDDEN", "OUT_FFN_INPUT"):
            m = re.search(r"\bHMT_" + name + r"\s*=\s*1u\s*<<\s*(\d+)", text)
            self.assertIsNotNone(m, name)
            self.assertEqual(getattr(hmt, name), 1 << int(m.group(1)), name)

    def test_every_status_has_text(self):
        for s in hmt.Status:
            self.assertNotEqual(hmt.strerror(s), "unknown status", s)
        self.assertEqual(hmt.strerror(-1000), "unknown status")

    def test_param_bounds(self):
        for key in hmt.Param:
            lo, hi, de, is_int = hmt.param_bounds(key)
            self.assertLessEqual(lo, de, key)
            self.assertLessEqual(de, hi, key)
        # the keys that take HMT_AUTO default to it and report it as lo
        auto = {"n_ctx", "n_threads", "segment_length", "sensory_length", "cache_size",
                "summary_length", "gen_summary_length", "window", "recall_bf16", "knn_nlist",
                "knn_pq_m", "knn_train_size"}
        for key in hmt.Param:
            lo, hi, de, is_int = hmt.param_bounds(key)
            if key.name.lower() in auto:
                self.assertEqual((lo, de), (hmt.AUTO, hmt.AUTO), key)
            else:
                self.assertNotEqual(de, hmt.AUTO, key)
        self.assertEqual(hmt.param_bounds("top_k")[3], True)
        self.assertEqual(hmt.param_bounds(hmt.Param.TEMPERATURE)[3], False)
        with self.assertRaises(hmt.HmtError) as cm:
            hmt.param_bounds(12345)
        self.assertEqual(cm.exception.code, hmt.Status.E_INVAL)


class TestVersion(unittest.TestCase):
    def header_define(self, name):
        with open(os.path.join(HEADER_DIR, "version.h")) as f:
            return int(re.search(r"#define " + name + r"\s+(\d+)", f.read()).group(1))

    def test_versions_agree(self):
        want = tuple(self.header_define(f"HMT_VERSION_{p}") for p in ("MAJOR", "MINOR", "PATCH"))
        self.assertEqual(hmt.version(), want)
        self.assertEqual(hmt.version_string(), ".".join(map(str, want)))
        self.assertEqual(hmt.abi_version(), self.header_define("HMT_ABI_VERSION"))
        self.assertEqual(hmt.ABI_VERSION, hmt.abi_version())
        self.assertEqual(hmt.__version__, hmt.version_string())

    def test_loaded_from_hmt_lib_path(self):
        env = os.environ.get("HMT_LIB_PATH")
        if not env:
            self.skipTest("HMT_LIB_PATH not set")
        self.assertEqual(os.path.realpath(hmt.LIB_PATH), os.path.realpath(env))

    def run_import(self, lib_path):
        env = dict(os.environ, HMT_LIB_PATH=lib_path, PYTHONPATH=os.path.join(ROOT, "python"))
        return subprocess.run([sys.executable, "-c", "import hmt; print(hmt.LIB_PATH)"], env=env,
                              capture_output=True, text=True, timeout=60)

    def test_bad_lib_path_is_a_clear_import_error(self):
        r = self.run_import("/nonexistent/libhmt.so.0")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("ImportError", r.stderr)
        self.assertIn("HMT_LIB_PATH", r.stderr)

    def test_directory_in_hmt_lib_path(self):
        if not os.environ.get("HMT_LIB_PATH"):
            self.skipTest("HMT_LIB_PATH not set")
        d = os.path.dirname(os.path.abspath(hmt.LIB_PATH))
        r = self.run_import(d)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(os.path.realpath(r.stdout.strip()),
                         os.path.realpath(os.path.join(d, hmt.capi.SONAME)))


if __name__ == "__main__":
    unittest.main()
