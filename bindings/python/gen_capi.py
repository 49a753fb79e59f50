#!/usr/bin/env python3
"""Generates thresher/_capi.py (ctypes declarations) from include/thresher.h with a real C
parser: the C preprocessor (`cc -E`) and pycparser.

    python bindings/python/gen_capi.py            # rewrite thresher/_capi.py
    python bindings/python/gen_capi.py --check    # exit 1 when the checked-in file is stale

Why pycparser emitting ctypes, and not cffi: the package hands batch memory to NumPy and torch
without copying, through ctypes (`__array_interface__` over a DLPack tensor, a PyCapsule made
with ctypes.pythonapi, `ctypes.byref` out-parameters). cffi in ABI mode would parse the header
at import time and give cdata objects instead: every one of those paths would need rewriting
around cffi's types, the header would have to ship inside the wheel, cffi would become a run-time
dependency, and its cdef drops the doc comments, so the one place that declares the contract
in Python with its documentation would be gone (and with it the staleness check). pycparser
runs only here, at generation time, on the same AST cffi would build; what it produces is a
plain, reviewed, checked-in ctypes module: zero-copy stays ctypes-level, the package depends on
NumPy alone, and every function, struct, enum and #define of the header is declared exactly
once, with its doc comment.

How: bindings/tools/cheader.py reads the header (the preprocessor with fake system headers,
pycparser, doc comments by line, #define values) into a model of C types and refuses what it
cannot express (unions, function pointers, variables, variadic functions, unknown types,
function-like macros, macros naming other symbols), so a header change it does not understand
fails loudly instead of producing a wrong binding. This file maps that model to ctypes: the
system typedefs by name (size_t is c_size_t, so the generated widths are ctypes' for the
platform the module is imported on), and renders the module.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
# The header model is shared with bindings/julia/check_binding.py and is no part of the
# package (not in the wheel), so it is imported from its directory, not installed.
sys.path.insert(0, str(HERE.parent / "tools"))

import cheader  # noqa: E402

DEFAULT_HEADER = HERE.parent.parent / "include" / "thresher.h"
DEFAULT_OUTPUT = HERE / "thresher" / "_capi.py"

# The ctypes type of each scalar and system type the model names (cheader.C_SCALARS' names,
# cheader.SYSTEM_TYPES).
CTYPES = {
    "void": "None",
    "char": "c_char",
    "signed char": "c_byte",
    "unsigned char": "c_ubyte",
    "short": "c_short",
    "unsigned short": "c_ushort",
    "int": "c_int",
    "unsigned int": "c_uint",
    "long": "c_long",
    "unsigned long": "c_ulong",
    "long long": "c_longlong",
    "unsigned long long": "c_ulonglong",
    "float": "c_float",
    "double": "c_double",
    "_Bool": "c_bool",
    "size_t": "c_size_t",
    "ptrdiff_t": "c_ssize_t",
    "int8_t": "c_int8",
    "uint8_t": "c_uint8",
    "int16_t": "c_int16",
    "uint16_t": "c_uint16",
    "int32_t": "c_int32",
    "uint32_t": "c_uint32",
    "int64_t": "c_int64",
    "uint64_t": "c_uint64",
    "intptr_t": "c_ssize_t",
    "uintptr_t": "c_size_t",
}


def ctype(t: cheader.Type) -> str:
    """The ctypes expression for a type of the model."""
    if isinstance(t, cheader.Pointer):
        to = t.to
        if isinstance(to, cheader.Base) and to.kind == "scalar":
            # ctypes converts c_char_p to and from bytes; a writable buffer stays a char
            # pointer, so the callee's writes are not lost in a copy.
            if to.name == "char" and to.const:
                return "c_char_p"
            if to.name == "void":
                return "c_void_p"
        return f"POINTER({ctype(to)})"
    if isinstance(t, cheader.Array):
        return f"({ctype(t.of)} * {t.length})"
    return CTYPES[t.name] if t.kind in ("scalar", "system") else t.name


def signature(f: cheader.Function) -> tuple[str, list[tuple[str, str]]]:
    """A function's ctypes result type and (name, ctypes type) parameters; an unnamed
    parameter is argK, K its position."""
    return ctype(f.result), [(p.name or f"arg{k}", ctype(p.type))
                             for k, p in enumerate(f.params)]


# ---- the Python module -----------------------------------------------------------------------

def comment(doc: str, indent: str = "") -> list[str]:
    return [f"{indent}# {line}".rstrip() for line in doc.splitlines()] if doc else []


def render(h: cheader.Header, source_name: str) -> str:
    body: list[str] = []
    for d in h.defines:
        body += comment(d.doc)
        body += [f"{d.name} = {d.literal}", ""]
    for e in h.enums:
        body += comment(e.doc)
        body += [f"{e.name} = {ctype(e.underlying)}", ""]
        for mname, value, mdoc in e.members:
            body += comment(mdoc)
            body.append(f"{mname} = {value}")
        body.append("")
    for a in h.aliases:
        body += comment(a.doc)
        body += [f"{a.name} = {ctype(a.type)}", ""]
    # Opaque handles first: structs with fields may point to them.
    for s in h.structs:
        if s.fields is None:
            body += comment(s.doc)
            body += [f"class {s.name}(Structure):", "    pass", "", ""]
    for s in h.structs:
        if s.fields is not None:
            body += comment(s.doc)
            body.append(f"class {s.name}(Structure):")
            body.append("    _fields_ = [")
            for f in s.fields:
                body += comment(f.doc, "        ")
                body.append(f"        ({f.name!r}, {ctype(f.type)}),")
            body += ["    ]", "", ""]
    for f in h.functions:
        body += comment(f.doc)
        restype, params = signature(f)
        args = ", ".join(t for _, t in params)
        names = ", ".join(repr(n) for n, _ in params)
        body.append(f"{f.name} = bind({f.name!r}, {restype}, [{args}], [{names}])")
        body.append("")
    body.append("__all__ = [")
    names = [d.name for d in h.defines]
    for e in h.enums:
        names += [e.name] + [m.name for m in e.members]
    names += [a.name for a in h.aliases]
    names += [s.name for s in h.structs] + [f.name for f in h.functions]
    body += [f"    {n!r}," for n in names]
    body.append("]")

    used = sorted(set(re.findall(r"\b(POINTER|Structure|c_\w+)\b", "\n".join(
        line for line in body if not line.lstrip().startswith("#")))))
    imports = _wrap("from ctypes import (", used, ")")
    head = [
        f"# Generated by bindings/python/gen_capi.py (pycparser) from {source_name}; do not edit.",
        "# Regenerate with `python bindings/python/gen_capi.py`; tests/test_capi.py fails when",
        "# this file is stale.",
        "# ruff: noqa",
        "",
        *imports,
        "",
        "from ._library import bind",
        "",
    ]
    return "\n".join(head + body) + "\n"


def _wrap(opening: str, names: list[str], closing: str, width: int = 96) -> list[str]:
    lines, line = [], opening
    for i, n in enumerate(names):
        piece = n + (", " if i < len(names) - 1 else closing)
        if len(line) + len(piece.rstrip()) > width:
            lines.append(line.rstrip())
            line = " " * len(opening) + piece
        else:
            line += piece
    lines.append(line.rstrip())
    return lines


def generate(header: Path = DEFAULT_HEADER) -> str:
    rel = "include/thresher.h" if header == DEFAULT_HEADER else header.name
    return render(cheader.parse_file(header), rel)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--header", type=Path, default=DEFAULT_HEADER)
    ap.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    ap.add_argument("--check", action="store_true", help="fail when --output is stale")
    args = ap.parse_args(argv)
    try:
        text = generate(args.header)
    except cheader.ParseError as e:
        print(f"gen_capi: {args.header}: {e}", file=sys.stderr)
        return 2
    if args.check:
        current = args.output.read_text(encoding="utf-8") if args.output.exists() else ""
        if current != text:
            print(f"{args.output} is stale; run {Path(__file__).name}", file=sys.stderr)
            return 1
        return 0
    args.output.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
