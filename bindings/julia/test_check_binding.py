"""The checker must fail on real mistakes, not only pass on the real binding.

Most cases copy the real package and change one thing in it, the way a careless edit would,
so they fail for the reason named and not for some unrelated difference. `mutate` insists
that the text it replaces occurs exactly once, so a case cannot silently stop testing
anything when Thresher.jl changes.
"""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import check_binding as cb  # noqa: E402

HEADER_PATH = HERE.parents[1] / "include" / "thresher.h"
HEADER = cb.cheader.parse_file(HEADER_PATH)


@pytest.fixture
def pkg(tmp_path):
    """A copy of bindings/julia; returns its root (holding Thresher/src/Thresher.jl and the
    files it includes)."""
    root = tmp_path / "julia"
    shutil.copytree(HERE / "Thresher", root / "Thresher")
    return root


def jl(root, name="Thresher.jl"):
    """A file of the copied package: Thresher.jl (the module) or a file it includes."""
    return root / "Thresher" / "src" / name


def mutate(path, old, new):
    text = path.read_text()
    assert text.count(old) == 1, f"{old!r} occurs {text.count(old)} times in {path}"
    path.write_text(text.replace(old, new))


def line_of(path, needle):
    lines = path.read_text().split("\n")
    hits = [i + 1 for i, line in enumerate(lines) if needle in line]
    assert len(hits) == 1, hits
    return hits[0]


def problems(root, header=HEADER):
    return cb.check(root, header)


# ---- the header is read right --------------------------------------------------------------


def test_header_functions_and_aliases():
    f = {x.name: x for x in HEADER.functions}
    assert len(f) == 38
    assert [str(p.type) for p in f["thresher_loader_advance"].params] == [
        "thresher_loader *", "uint64_t"]
    assert [str(p.type) for p in f["thresher_loader_save_state_at"].params] == [
        "const thresher_loader *", "const char *", "uint64_t"]
    assert str(f["thresher_epoch_plan_ids"].result) == "const uint64_t *"
    assert [str(p.type) for p in f["thresher_loader_new"].params] == [
        "const char *", "thresher_loader **"]
    assert f["thresher_abi_version"].params == []  # (void)
    assert str(f["thresher_version"].result) == "const char *"
    assert {n: x.deprecated_alias_of for n, x in f.items() if x.deprecated_alias_of} == {
        "thresher_loader_epoch": "thresher_loader_epoch_info",
        "thresher_loader_state_save": "thresher_loader_save_state",
    }
    assert cb.enum_constants(HEADER)["THRESHER_PANIC"] == 6
    shape = cb.mirrored_structs(HEADER)["thresher_tensor"][3]
    assert shape.type.declare(shape.name) == "int64_t shape[8]"
    # Line numbers are the header's own, though its includes were replaced.
    text = HEADER_PATH.read_text().split("\n")
    assert "thresher_loader_digest(" in text[f["thresher_loader_digest"].line - 1]


def test_c_types_are_spelled_as_c_declares_them():
    # What the messages show on the C side, declarators nested the way C nests them.
    h = cb.cheader.parse("void x_f(const char **names, int (*grid)[3], char *argv[2]);")
    assert [p.type.declare(p.name) for p in h.functions[0].params] == [
        "const char **names", "int (*grid)[3]", "char *argv[2]"]


# ---- the real binding passes ---------------------------------------------------------------


def test_real_binding_passes():
    assert problems(HERE) == []


def test_cli_exit_status(pkg):
    src = jl(pkg, "loader.jl")
    script = HERE / "check_binding.py"
    ok = subprocess.run([sys.executable, script], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    mutate(src, "function save_state(", "function save_state(((")
    bad = subprocess.run([sys.executable, script, "--julia-dir", pkg], capture_output=True,
                         text=True)
    assert bad.returncode == 1
    assert f"{src}:{line_of(src, 'function save_state(((')}:" in bad.stderr


def test_cli_refuses_a_header_it_cannot_model(tmp_path):
    # The header model (shared with gen_capi) stops on what it cannot express; the check says
    # where, with exit status 2, instead of comparing the binding with half a header.
    header = tmp_path / "thresher.h"
    header.write_text(HEADER_PATH.read_text() + "\nunion thresher_u { int a; float b; };\n")
    line = len(header.read_text().split("\n")) - 1
    bad = subprocess.run([sys.executable, HERE / "check_binding.py", "--header", header],
                         capture_output=True, text=True)
    assert bad.returncode == 2
    assert bad.stderr == f"check_binding: {header}: line {line}: unions are not supported\n"


# ---- (a) syntax ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "snippet, kind, line",
    [
        ("f(x) = x\n\ng(x = 1\n", "missing ')'", 3),  # MISSING node
        ("f(x) = x\nh(x) = x)\n", "near ')'", 2),  # ERROR node
        ("f(x) = x\n\n\nstruct S\n    a::Int\n", "syntax error", 4),  # no `end`
    ],
)
def test_broken_jl_is_reported_with_file_and_line(pkg, snippet, kind, line):
    broken = pkg / "Thresher" / "test" / "broken.jl"
    broken.write_text(snippet)
    found = problems(pkg)
    assert any(p.startswith(f"{broken}:{line}:") and kind in p for p in found), found


# ---- (b) each ccall against its prototype --------------------------------------------------


def test_wrong_argument_count(pkg):
    src = jl(pkg, "loader.jl")
    mutate(src, "save_scores(l.ptr::Ptr{Cvoid}, path::Cstring)",
           "save_scores(l.ptr::Ptr{Cvoid})")
    line = line_of(src, "thresher_loader_save_scores(l.ptr::Ptr{Cvoid})")
    assert problems(pkg) == [
        f"{src}:{line}:11: thresher_loader_save_scores takes 2 argument(s) in thresher.h:"
        f"{HEADER.function('thresher_loader_save_scores').line}, the ccall passes 1"
    ]


def test_wrong_argument_count_in_plain_ccall(pkg):
    extra = pkg / "Thresher" / "test" / "plain.jl"
    extra.write_text(
        "len(p) = ccall((:thresher_batch_len, libthresher), Csize_t, (Ptr{Cvoid}, Cint), p, 0)\n"
    )
    assert problems(pkg) == [
        f"{extra}:1:10: thresher_batch_len takes 1 argument(s) in thresher.h:"
        f"{HEADER.function('thresher_batch_len').line}, the ccall passes 2"
    ]


def test_unknown_symbol(pkg):
    src = jl(pkg, "loader.jl")
    mutate(src, "libthresher.thresher_loader_digest(", "libthresher.thresher_loader_digests(")
    found = problems(pkg)
    assert any("thresher_loader_digests is not a function of thresher.h" in p for p in found)
    # ... and the function it was meant to wrap is now unwrapped.
    assert any("thresher_loader_digest has no wrapper" in p for p in found), found
    assert len(found) == 2, found


def test_deprecated_alias_is_refused(pkg):
    src = jl(pkg, "loader.jl")
    mutate(src, "libthresher.thresher_loader_save_state(",
           "libthresher.thresher_loader_state_save(")
    found = problems(pkg)
    assert any("thresher_loader_state_save is a deprecated alias; call "
               "thresher_loader_save_state" in p for p in found), found
    assert any("thresher_loader_save_state has no wrapper" in p for p in found), found


def test_wrong_argument_type(pkg):
    src = jl(pkg, "batch.jl")
    mutate(src, "field::Int32,", "field::Int64,")
    assert [p.split(": ", 1)[1] for p in problems(pkg)] == [
        "thresher_batch_dlpack argument 2 is `int32_t` in C, `Int64` in Julia"
    ]


def test_pointer_passed_as_scalar(pkg):
    src = jl(pkg, "loader.jl")
    mutate(src, "thresher_loader_next(l.ptr::Ptr{Cvoid}, out::Ref{Ptr{Cvoid}})",
           "thresher_loader_next(l.ptr::Ptr{Cvoid}, out::Ptr{Cvoid})")
    assert [p.split(": ", 1)[1] for p in problems(pkg)] == [
        "thresher_loader_next argument 2 is `thresher_batch **` in C, `Ptr{Cvoid}` in Julia"
    ]


def test_wrong_result_type(pkg):
    src = jl(pkg, "batch.jl")
    mutate(src, "thresher_batch_padding(b.ptr::Ptr{Cvoid})::Csize_t",
           "thresher_batch_padding(b.ptr::Ptr{Cvoid})::Cint")
    assert [p.split(": ", 1)[1] for p in problems(pkg)] == [
        "thresher_batch_padding returns `size_t` in C, `Cint` in Julia"
    ]


def test_wrong_library(pkg):
    src = jl(pkg, "loader.jl")
    mutate(src, "libthresher.thresher_loader_report(", "libthreshr.thresher_loader_report(")
    assert [p.split(": ", 1)[1] for p in problems(pkg)] == [
        "thresher_loader_report is called from libthreshr, not libthresher"
    ]


def test_function_pointer_ccall_is_not_a_header_call(pkg):
    src = jl(pkg, "batch.jl")
    # The DLPack deleter call in batch.jl is of this form; the real binding passes with it.
    assert "ccall(deleter, Cvoid" in src.read_text()
    extra = pkg / "Thresher" / "test" / "fptr.jl"
    extra.write_text("call(fp) = @ccall $(fp)(1::Cint)::Cvoid\n")
    assert problems(pkg) == []


# ---- (c) every header function wrapped -----------------------------------------------------


def test_missing_wrapper(pkg):
    src = jl(pkg, "batch.jl")
    mutate(src, "padding(b::Batch) = Int(", "padding(b::Batch) = 0 # Int(")
    assert problems(pkg) == [
        f"{HEADER_PATH}:{HEADER.function('thresher_batch_padding').line}: "
        f"thresher_batch_padding has no wrapper in the Julia package (no function under "
        f"{pkg}/*/src ccalls it)"
    ]


def test_a_new_header_function_needs_a_wrapper(pkg, tmp_path):
    header = tmp_path / "thresher.h"
    mutate_text = HEADER_PATH.read_text().replace(
        "#ifdef __cplusplus\n}",
        "thresher_status thresher_loader_rewind(thresher_loader *loader);\n\n"
        "#ifdef __cplusplus\n}",
    )
    header.write_text(mutate_text)
    found = problems(pkg, cb.cheader.parse_file(header))
    assert len(found) == 1 and "thresher_loader_rewind has no wrapper" in found[0], found


def test_a_ccall_in_the_tests_is_no_wrapper(pkg):
    src = jl(pkg, "batch.jl")
    # Moving the only call into test/ leaves the package without the wrapper.
    mutate(src, "padding(b::Batch) = Int(", "padding(b::Batch) = 0 # Int(")
    (pkg / "Thresher" / "test" / "pad.jl").write_text(
        "pad(p) = @ccall libthresher.thresher_batch_padding(p::Ptr{Cvoid})::Csize_t\n"
    )
    assert [p.split(": ", 1)[1] for p in problems(pkg)] == [
        f"thresher_batch_padding has no wrapper in the Julia package (no function under "
        f"{pkg}/*/src ccalls it)"
    ]


# ---- the package's files: Thresher.jl and what it includes ---------------------------------


def test_a_package_file_that_is_not_included_is_reported(pkg):
    # A wrapper in a file the module never includes would pass (c) but not exist in Julia.
    mutate(jl(pkg), 'include("plan.jl")', '# include("plan.jl")')
    assert problems(pkg) == [
        f"{jl(pkg, 'plan.jl')}: not included by Thresher.jl (directly or through an included "
        "file), so the module does not load what it defines"
    ]


def test_an_include_may_be_nested(pkg):
    mutate(jl(pkg), 'include("plan.jl")', "")
    (pkg / "Thresher" / "src" / "parts").mkdir()
    jl(pkg, "plan.jl").rename(pkg / "Thresher" / "src" / "parts" / "plan.jl")
    mutate(jl(pkg, "loader.jl"), "# ---- Loader -", 'include("parts/plan.jl")\n# ---- Loader -')
    assert problems(pkg) == []


def test_an_include_of_a_missing_file_is_reported(pkg):
    mutate(jl(pkg), 'include("plan.jl")', 'include("plan.jl")\ninclude("plans.jl")')
    line = line_of(jl(pkg), 'include("plans.jl")')
    assert problems(pkg) == [
        f"{jl(pkg)}:{line}:1: include(\"plans.jl\") names no file "
        f"({jl(pkg, 'plans.jl')} does not exist)"
    ]


def test_a_computed_include_is_reported(pkg):
    mutate(jl(pkg), 'include("plan.jl")', 'include(joinpath(@__DIR__, "plan.jl"))')
    found = problems(pkg)
    assert len(found) == 2, found
    assert "include with a computed path cannot be followed" in found[0]
    assert "plan.jl: not included by Thresher.jl" in found[1]


# ---- structs and constants mirrored from the header ----------------------------------------


def test_struct_missing_a_field(pkg):
    src = jl(pkg, "capi.jl")
    mutate(src, "    worker_busy_s::Float64\n    skipped::UInt64\n",
           "    worker_busy_s::Float64\n")
    found = problems(pkg)
    assert len(found) == 1 and "EpochReport has fields" in found[0], found


def test_struct_field_of_the_wrong_width(pkg):
    src = jl(pkg, "capi.jl")
    mutate(src, "    ndim::UInt32\n", "    ndim::UInt64\n")
    assert [p.split(": ", 1)[1] for p in problems(pkg)] == [
        "Tensor.ndim is `UInt64` in Julia, `uint32_t ndim` in C"
    ]


def test_struct_array_field_length(pkg):
    src = jl(pkg, "capi.jl")
    mutate(src, "shape::NTuple{8,Int64}", "shape::NTuple{3,Int64}")
    assert [p.split(": ", 1)[1] for p in problems(pkg)] == [
        "Tensor.shape is `NTuple{3,Int64}` in Julia, `int64_t shape[8]` in C"
    ]


def test_stale_abi_version(pkg):
    src = jl(pkg, "Thresher.jl")
    mutate(src, "const ABI_VERSION = 3", "const ABI_VERSION = 2")
    assert [p.split(": ", 1)[1] for p in problems(pkg)] == [
        "ABI_VERSION = 2 in Julia, THRESHER_ABI_VERSION is 3 in thresher.h"
    ]


def test_stale_warning_level(pkg):
    src = jl(pkg, "Thresher.jl")
    mutate(src, "const UNLEARNABLE_WARNING = 0.15", "const UNLEARNABLE_WARNING = 0.2")
    assert [p.split(": ", 1)[1] for p in problems(pkg)] == [
        "UNLEARNABLE_WARNING = 0.2 in Julia, THRESHER_UNLEARNABLE_WARNING is 0.15 in thresher.h"
    ]


def test_wrong_enum_value(pkg):
    src = jl(pkg, "capi.jl")
    mutate(src, "const THRESHER_FORMAT = Cint(4)", "const THRESHER_FORMAT = Cint(5)")
    assert [p.split(": ", 1)[1] for p in problems(pkg)] == [
        "THRESHER_FORMAT = Cint(5) in Julia, 4 in thresher.h"
    ]
