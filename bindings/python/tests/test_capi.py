"""The generated ctypes declarations: fresh against the header, and a generator (the C
preprocessor and pycparser) that understands what cbindgen writes and refuses what ctypes
cannot express."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
GEN = HERE.parent / "gen_capi.py"
HEADER = HERE.parents[2] / "include" / "thresher.h"
CHECKED_IN = HERE.parent / "thresher" / "_capi.py"


@pytest.fixture(scope="module")
def gen():
    spec = importlib.util.spec_from_file_location("gen_capi", GEN)
    module = importlib.util.module_from_spec(spec)
    sys.modules["gen_capi"] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def cheader(gen):
    """The header model gen_capi renders (bindings/tools/cheader.py, shared with the Julia
    check)."""
    return gen.cheader


def test_checked_in_capi_matches_header(gen):
    fresh = gen.generate(HEADER)
    assert CHECKED_IN.read_text(encoding="utf-8") == fresh, (
        "bindings/python/thresher/_capi.py is stale: run `python bindings/python/gen_capi.py`"
    )


def test_every_header_function_is_declared_and_present_in_the_library(cheader):
    from thresher import _capi, _library

    header = cheader.parse_file(HEADER)
    assert len(header.functions) >= 15
    for fn in header.functions:
        assert hasattr(_capi, fn.name), fn.name
        assert hasattr(_library.lib, fn.name), f"{_library.path} lacks {fn.name}"


def test_installed_capi_is_the_checked_in_one():
    # The wheel must ship exactly the declarations the tests here check.
    import thresher._capi as capi

    assert Path(capi.__file__).read_text(encoding="utf-8") == CHECKED_IN.read_text(encoding="utf-8")


def test_abi_and_version_agree():
    import thresher
    from thresher import _capi

    assert _capi.thresher_abi_version() == _capi.THRESHER_ABI_VERSION == thresher.ABI_VERSION
    assert thresher.__version__ == _capi.THRESHER_VERSION
    major, minor, patch = (int(x) for x in thresher.__version__.split("."))
    assert (major, minor, patch) == (
        _capi.THRESHER_VERSION_MAJOR, _capi.THRESHER_VERSION_MINOR, _capi.THRESHER_VERSION_PATCH)


SAMPLE = r'''
/* plain comment, ignored */
#ifndef X_H
#define X_H
#include <stddef.h>
#include <stdint.h>
/** Buffer length. */
#define X_LEN 3
#define X_NAME "/** in a string: no doc comment */"
#define X_NEXT 2
#define X_GUARD_ONLY
typedef enum {
  /** First. */
  X_A = 0,
  X_B,
  /**
   * Hex.
   */
  X_C = 0x10,
} x_kind;
/** Opaque. */
typedef struct x_obj x_obj;
typedef struct {
  /** A pointer to a handle. */
  x_obj **objs;
  const char *name;
  char buf[X_LEN];
  int64_t grid[2][3];
  x_kind kind;
} x_view;
#ifdef __cplusplus
extern "C" {
#endif // __cplusplus
/**
 * Spans lines.
 */
x_kind x_make(const x_view *view,
              uint32_t flags,
              void **out);
/* not a doc comment */
const char *x_name(void);
void x_free(x_obj *obj);
size_t x_error(char *buf, size_t);
#ifdef __cplusplus
}  // extern "C"
#endif  // __cplusplus
#endif
'''


def test_parser_on_cbindgen_shapes(gen, cheader):
    h = cheader.parse(SAMPLE)
    # The include guard has no value and is no constant; X_LEN reached the array through the
    # preprocessor.
    assert [(d.name, d.value, d.doc) for d in h.defines] == [
        ("X_LEN", 3, "Buffer length."),
        ("X_NAME", "/** in a string: no doc comment */", ""),
        ("X_NEXT", 2, ""),
    ]
    (kind,) = h.enums
    assert [(m[0], m[1]) for m in kind.members] == [("X_A", 0), ("X_B", 1), ("X_C", 16)]
    assert kind.members[2][2] == "Hex."
    opaque, view = h.structs
    assert opaque.fields is None and opaque.doc == "Opaque."
    assert [(f.name, gen.ctype(f.type)) for f in view.fields] == [
        ("objs", "POINTER(POINTER(x_obj))"),
        ("name", "c_char_p"),
        ("buf", "(c_char * 3)"),
        ("grid", "((c_int64 * 3) * 2)"),
        ("kind", "x_kind"),
    ]
    assert view.fields[0].doc == "A pointer to a handle." and view.fields[1].doc == ""
    fns = {f.name: f for f in h.functions}
    assert gen.signature(fns["x_make"]) == ("x_kind", [
        ("view", "POINTER(x_view)"), ("flags", "c_uint32"), ("out", "POINTER(c_void_p)")])
    assert fns["x_make"].doc == "Spans lines."
    assert gen.signature(fns["x_name"]) == ("c_char_p", [])
    assert fns["x_name"].doc == ""  # a plain /* */ comment documents nothing
    assert gen.signature(fns["x_free"])[0] == "None"
    assert gen.signature(fns["x_error"])[1] == [("buf", "POINTER(c_char)"), ("arg1", "c_size_t")]
    # The rendered module is valid Python that declares everything.
    code = gen.render(h, "sample.h")
    compile(code, "sample", "exec")
    assert "x_make = bind('x_make', x_kind, [POINTER(x_view), c_uint32, POINTER(c_void_p)]" in code


SIZED = r'''
#include <stdint.h>
#define X_MAJOR 1
#define X_MINOR 2
/** Packed, as rustls does it. */
#define X_VERSION_NUMBER ((X_MAJOR << 16) | (X_MINOR << 8) | 0x3u)
enum x_status {
  X_OK = 0,
  X_FAIL = 7,
};
typedef uint32_t x_status;
struct x_pair {
  x_status status;
  uint8_t flag;
};
typedef struct x_pair x_pair;
typedef uint64_t x_id;
x_status x_get(struct x_pair *p, x_id id);
'''


def test_parser_on_cbindgen_tag_style_and_sized_enums(gen, cheader):
    h = cheader.parse(SIZED)
    (status,) = h.enums
    assert gen.ctype(status.underlying) == "c_uint32"
    assert [m[:2] for m in status.members] == [("X_OK", 0), ("X_FAIL", 7)]
    (pair,) = h.structs
    assert [(f.name, gen.ctype(f.type)) for f in pair.fields] == [
        ("status", "x_status"), ("flag", "c_uint8")]
    assert [(a.name, gen.ctype(a.type)) for a in h.aliases] == [("x_id", "c_uint64")]
    assert gen.signature(h.functions[0])[1] == [("p", "POINTER(x_pair)"), ("id", "x_id")]
    namespace: dict = {}
    code = gen.render(h, "sized.h").replace("from ._library import bind",
                                            "bind = lambda *a: a")
    exec(compile(code, "sized", "exec"), namespace)
    assert namespace["X_VERSION_NUMBER"] == (1 << 16) | (2 << 8) | 3
    assert h.defines[2].doc == "Packed, as rustls does it."


@pytest.mark.parametrize("bad", [
    "typedef void (*x_cb)(int);",
    "union x_u { int a; float b; };",
    "x_unknown_t x_f(void);",
    "int x_g(int (*cb)(int));",
    "#define X_FROM_ELSEWHERE (SOME_OTHER_MACRO + 1)",
    "#define X_SQUARE(a) ((a) * (a))",
    "extern int x_global;",
    "int x_printf(const char *fmt, ...);",
    "typedef struct { unsigned a : 3; } x_bits;",
    "void x_twice(void);\nvoid x_twice(void);",
    "typedef enum { X_ONE = 1 } x_e;\n#define X_ONE 1",
    "int x_broken(;",
])
def test_parser_refuses_what_it_does_not_understand(cheader, bad):
    with pytest.raises(cheader.ParseError):
        cheader.parse(bad)


def test_parser_reads_c_not_a_layout(gen, cheader):
    # Spellings a line-by-line reader of cbindgen's layout would have to special-case.
    h = cheader.parse(r'''
#include <stdbool.h>
#include <stddef.h>
#define X_BIG (1ull << 40)
#define X_NEG -(3 / 2)
#define X_HALF 0.5f
typedef struct { char const *name; unsigned long long n; bool ok; } x_s;
char const * x_a(x_s const *s, bool flag); size_t x_b(void);
''')
    assert [(d.name, d.value) for d in h.defines] == [
        ("X_BIG", 1 << 40), ("X_NEG", -1), ("X_HALF", 0.5)]
    assert [(f.name, gen.ctype(f.type)) for f in h.structs[0].fields] == [
        ("name", "c_char_p"), ("n", "c_ulonglong"), ("ok", "c_bool")]
    a, b = h.functions
    assert gen.signature(a) == ("c_char_p", [("s", "POINTER(x_s)"), ("flag", "c_bool")])
    assert (b.name, gen.signature(b)) == ("x_b", ("c_size_t", []))


def test_every_scalar_and_system_type_has_a_ctypes_form(gen, cheader):
    assert set(gen.CTYPES) == set(cheader.C_SCALARS.values()) | set(cheader.SYSTEM_TYPES)


def test_python_layer_calls_the_new_names():
    # thresher_loader_epoch and thresher_loader_state_save stay in the header (and so in
    # _capi) as deprecated aliases for C programs; the package itself uses their successors.
    package = HERE.parent / "thresher"
    for path in package.rglob("*.py"):
        if path.name == "_capi.py":
            continue
        text = path.read_text(encoding="utf-8")
        for old in ("thresher_loader_epoch(", "_capi.thresher_loader_epoch)",
                    "thresher_loader_state_save"):
            assert old not in text, f"{path} uses the deprecated {old.strip('(_).')}"
    text = (package / "_loader.py").read_text(encoding="utf-8")
    assert "_capi.thresher_loader_epoch_info(" in text
    assert "_capi.thresher_loader_save_state(" in text


def test_check_mode(gen, tmp_path):
    out = tmp_path / "_capi.py"
    assert gen.main(["--output", str(out)]) == 0
    assert gen.main(["--output", str(out), "--check"]) == 0
    out.write_text(out.read_text() + "# edited\n")
    assert gen.main(["--output", str(out), "--check"]) == 1
    # The command line, as `make check` runs it, on the checked-in file.
    proc = subprocess.run([sys.executable, str(GEN), "--check"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
