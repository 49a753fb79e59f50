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

How: the header goes through `cc -E` (the compiler named by $CC, else `cc`) with the system
headers replaced by small fake ones (stddef.h, stdint.h, stdbool.h: typedef names only, mapped
to ctypes by name, so the generated widths are ctypes' for this platform and not whatever the
fakes say). `-dD` lists the header's own #defines; each value is then expanded by the
preprocessor and parsed by pycparser as an expression, so no macro text is interpreted here.
Doc comments (which the preprocessor removes) are attached by line: a /** */ comment ending on
the line right before a declaration documents it. Anything ctypes cannot express or this
generator does not know (unions, function pointers, variables, unknown types, function-like
macros, macros naming other symbols) stops it with ParseError, so a header change it does not
understand fails loudly instead of producing a wrong binding.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_HEADER = HERE.parent.parent / "include" / "thresher.h"
DEFAULT_OUTPUT = HERE / "thresher" / "_capi.py"

# What the fake system headers declare, and the ctypes type for each. The fakes' own typedef
# targets never reach the output: these names are resolved here, so size_t is c_size_t on
# every platform the generated file is imported on.
SYSTEM_TYPES = {
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
FAKE_HEADERS = {
    "stddef.h": ["size_t", "ptrdiff_t"],
    "stdint.h": [n for n in SYSTEM_TYPES if n not in ("size_t", "ptrdiff_t")],
}
FAKE_STDBOOL = "#define bool _Bool\n#define true 1\n#define false 0\n"

# C's own scalar types (as pycparser spells their specifiers, sorted) and their ctypes types.
C_SCALARS = {
    ("void",): None,
    ("char",): "c_char",
    ("char", "signed"): "c_byte",
    ("char", "unsigned"): "c_ubyte",
    ("short",): "c_short",
    ("int", "short"): "c_short",
    ("short", "unsigned"): "c_ushort",
    ("int", "short", "unsigned"): "c_ushort",
    ("int",): "c_int",
    ("signed",): "c_int",
    ("int", "signed"): "c_int",
    ("unsigned",): "c_uint",
    ("int", "unsigned"): "c_uint",
    ("long",): "c_long",
    ("int", "long"): "c_long",
    ("long", "unsigned"): "c_ulong",
    ("int", "long", "unsigned"): "c_ulong",
    ("long", "long"): "c_longlong",
    ("long", "long", "unsigned"): "c_ulonglong",
    ("float",): "c_float",
    ("double",): "c_double",
    ("_Bool",): "c_bool",
}

MACRO_PROBE = "__thresher_gen_capi_macro_"


class ParseError(Exception):
    pass


@dataclass
class Define:
    name: str
    value: object  # int, float or str, as the preprocessor and the parser read it
    doc: str

    @property
    def py(self) -> str:
        if isinstance(self.value, str):
            return json.dumps(self.value, ensure_ascii=False)
        return repr(self.value)


@dataclass
class Enum:
    name: str
    doc: str
    members: list[tuple[str, int, str]]
    # C gives an unsized enum the representation of int on the platforms ctypes serves.
    ctype: str = "c_int"


@dataclass
class Alias:
    name: str
    ctype: str
    doc: str


@dataclass
class Field:
    name: str
    ctype: str
    doc: str


@dataclass
class Struct:
    name: str
    doc: str
    fields: list[Field] | None  # None: opaque


@dataclass
class Function:
    name: str
    restype: str
    params: list[tuple[str, str]]
    doc: str


@dataclass
class Header:
    defines: list[Define] = field(default_factory=list)
    enums: list[Enum] = field(default_factory=list)
    aliases: list[Alias] = field(default_factory=list)
    structs: list[Struct] = field(default_factory=list)
    functions: list[Function] = field(default_factory=list)


# ---- doc comments ----------------------------------------------------------------------------

def clean_doc(raw: str) -> str:
    """The text of a /** ... */ comment without its frame and leading asterisks."""
    lines = []
    for line in raw[3:-2].splitlines():
        line = line.strip()
        if line.startswith("*"):
            line = line[1:]
            if line.startswith(" "):
                line = line[1:]
        lines.append(line.rstrip())
    while lines and not lines[0]:
        lines.pop(0)
    while lines and not lines[-1]:
        lines.pop()
    return "\n".join(lines)


# Comments, skipping string and character literals (a "/*" inside a string is no comment).
_LEXEMES = re.compile(r'"(?:\\.|[^"\\\n])*"|\'(?:\\.|[^\'\\\n])*\'|//[^\n]*|/\*.*?\*/', re.S)


def doc_comments(text: str) -> dict[int, str]:
    """{line: doc}: each /** */ comment keyed by the line right after the one it ends on, the
    line where the declaration it documents starts."""
    docs = {}
    for m in _LEXEMES.finditer(text):
        tok = m.group(0)
        if tok.startswith("/**") and tok != "/**/":
            docs[text.count("\n", 0, m.end()) + 2] = clean_doc(tok)
    return docs


# ---- the preprocessor ------------------------------------------------------------------------

def preprocessor() -> list[str]:
    return shlex.split(os.environ.get("CC") or "cc") + ["-E"]


def run_cpp(path: Path, include: Path, extra: list[str]) -> str:
    # -undef and the fake include directory make the result the same on every host: no
    # platform macros, no system header text.
    cmd = preprocessor() + ["-undef", "-nostdinc", "-x", "c", "-I", str(include), *extra,
                            str(path)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True)
    except FileNotFoundError:
        raise ParseError(f"no C preprocessor: {cmd[0]!r} not found (set CC)") from None
    if proc.returncode != 0:
        raise ParseError(f"{' '.join(cmd)} failed:\n{proc.stderr.strip()}")
    return proc.stdout


_LINE_MARKER = re.compile(r'#\s*(?:line\s+)?(\d+)\s+"((?:\\.|[^"\\])*)"')
_DEFINE = re.compile(r"#\s*define\s+([A-Za-z_]\w*)(\()?\s*(.*)$")


def header_macros(cpp_dd: str, header: str) -> list[tuple[str, int, str]]:
    """(name, line, replacement) of every #define written in `header` itself, in order, from
    `cc -E -dD` output (which keeps the directives, each under the line markers that say where
    it was written)."""
    out = []
    file, line = None, 0
    for text in cpp_dd.splitlines():
        m = _LINE_MARKER.match(text)
        if m:
            file, line = m.group(2), int(m.group(1))
            continue
        if file == header:
            d = _DEFINE.match(text)
            if d:
                name, function_like, body = d.groups()
                if function_like:
                    raise ParseError(f"line {line}: function-like macro {name} has no ctypes form")
                out.append((name, line, body.strip()))
        line += 1
    return out


# ---- pycparser AST to declarations -----------------------------------------------------------

def _int(text: str) -> int:
    value = re.sub(r"(?i)[ul]+$", "", text)
    if re.fullmatch(r"0[0-7]+", value):
        return int(value, 8)
    return int(value, 0)


class Builder:
    def __init__(self, header_file: str, docs: dict[int, str]):
        from pycparser import c_ast

        self.ast = c_ast
        self.file = header_file
        self.docs = docs
        self.h = Header()
        # Names usable as types, and their ctypes spelling.
        self.types: dict[str, str] = dict(SYSTEM_TYPES)
        self.enum_values: dict[str, int] = {}
        self.declared: set[str] = set()

    # -- helpers

    def fail(self, node, msg: str):
        c = node.coord
        if c is not None and c.file == self.file:
            msg = f"line {c.line}: {msg}"
        raise ParseError(msg)

    def start_line(self, node) -> int:
        """The first header line a declaration spans (pycparser puts a declaration at its name;
        its doc comment sits above its first token)."""
        lines = []

        def walk(n):
            if n.coord is not None and n.coord.file == self.file:
                lines.append(n.coord.line)
            for _, child in n.children():
                walk(child)

        walk(node)
        return min(lines) if lines else 0

    def doc(self, node) -> str:
        return self.docs.get(self.start_line(node), "")

    def declare(self, node, name: str) -> None:
        # One contract: a name declared twice (say, a deprecated alias made a macro and a
        # function) would make one of the two silently win.
        if name in self.declared:
            self.fail(node, f"{name} is declared twice")
        self.declared.add(name)

    def value(self, node, names: dict[str, int] | None = None):
        """A constant expression's value: integer, float or string literals and C's integer
        operators. A name is only accepted from `names` (earlier enumerators)."""
        a = self.ast
        if isinstance(node, a.Constant):
            if node.type == "string":
                if "\\" in node.value:
                    self.fail(node, f"string with escapes {node.value} is not supported")
                return node.value[1:-1]
            if node.type in ("float", "double", "long double"):
                return float(node.value.rstrip("fFlL"))
            if node.type == "char":
                self.fail(node, f"character constant {node.value} is not supported")
            return _int(node.value)
        if isinstance(node, a.ID):
            if names is not None and node.name in names:
                return names[node.name]
            self.fail(node, f"{node.name} is not a constant this header defines")
        if isinstance(node, a.UnaryOp) and node.op in ("-", "+", "~", "!"):
            v = self.value(node.expr, names)
            if not isinstance(v, int) and not (isinstance(v, float) and node.op in "-+"):
                self.fail(node, f"operator {node.op} on {v!r}")
            if node.op == "-":
                return -v
            if node.op == "~":
                return ~v
            return int(not v) if node.op == "!" else v
        if isinstance(node, a.BinaryOp):
            x, y = self.value(node.left, names), self.value(node.right, names)
            if not (isinstance(x, int) and isinstance(y, int)):
                self.fail(node, f"operator {node.op} on {x!r} and {y!r}")
            ops = {"+": x + y, "-": x - y, "*": x * y, "|": x | y, "&": x & y, "^": x ^ y}
            if node.op in ops:
                return ops[node.op]
            if node.op in ("<<", ">>") and y >= 0:
                return x << y if node.op == "<<" else x >> y
            if node.op in ("/", "%") and y != 0:
                q = abs(x) // abs(y) * (1 if (x < 0) == (y < 0) else -1)  # C truncates
                return q if node.op == "/" else x - q * y
        self.fail(node, f"unsupported constant expression ({type(node).__name__})")

    # -- types

    def ctype(self, node, where) -> str:
        """The ctypes expression for a pycparser type node."""
        a = self.ast
        if isinstance(node, a.TypeDecl):
            return self.base_type(node.type, where)
        if isinstance(node, a.PtrDecl):
            inner = node.type
            if isinstance(inner, a.FuncDecl):
                self.fail(where, "function pointers are not supported")
            if isinstance(inner, a.TypeDecl) and isinstance(inner.type, a.IdentifierType):
                names = tuple(sorted(inner.type.names))
                # ctypes converts c_char_p to and from bytes; a writable buffer stays a char
                # pointer, so the callee's writes are not lost in a copy.
                if names == ("char",) and "const" in inner.quals:
                    return "c_char_p"
                if names == ("void",):
                    return "c_void_p"
            return f"POINTER({self.ctype(inner, where)})"
        if isinstance(node, a.ArrayDecl):
            if node.dim is None:
                self.fail(where, "arrays without a length are not supported")
            n = self.value(node.dim)
            if not isinstance(n, int) or n < 0:
                self.fail(where, f"array length {n!r}")
            return f"({self.ctype(node.type, where)} * {n})"
        self.fail(where, f"unsupported type ({type(node).__name__})")

    def base_type(self, node, where) -> str:
        a = self.ast
        if isinstance(node, a.IdentifierType):
            names = node.names
            if len(names) == 1 and names[0] in self.types:
                return self.types[names[0]]
            key = tuple(sorted(names))
            if key in C_SCALARS:
                return C_SCALARS[key] or "None"
            self.fail(where, f"unknown type {' '.join(names)}")
        if isinstance(node, (a.Struct, a.Enum)):
            if node.name is None or node.name not in self.types:
                # A struct that points to itself would need its ctypes class before its
                # _fields_; cbindgen writes none, so it is refused rather than half-supported.
                self.fail(where, f"{type(node).__name__.lower()} {node.name} is not declared "
                                 "before its use")
            if isinstance(node, a.Struct) and node.decls is not None:
                self.fail(where, "a struct defined inside another declaration")
            return self.types[node.name]
        if isinstance(node, a.Union):
            self.fail(where, "unions are not supported")
        self.fail(where, f"unsupported type ({type(node).__name__})")

    # -- declarations

    def external(self, node) -> None:
        a = self.ast
        if isinstance(node, a.Typedef):
            return self.typedef(node)
        if isinstance(node, a.Decl):
            if isinstance(node.type, a.FuncDecl):
                return self.function(node)
            spec = node.type
            if node.name is None and isinstance(spec, a.Struct) and spec.decls is not None:
                return self.struct(node, spec.name, spec)
            if node.name is None and isinstance(spec, a.Enum) and spec.values is not None:
                return self.enum(node, spec.name, spec)
            if isinstance(node.type, a.Union):
                self.fail(node, "unions are not supported")
            if node.name is None and isinstance(node.type, a.Struct):
                return None  # a forward declaration `struct x;` declares nothing by itself
            self.fail(node, f"unsupported declaration {node.name or ''}".rstrip())
        self.fail(node, f"unsupported declaration ({type(node).__name__})")

    def typedef(self, node) -> None:
        a = self.ast
        t = node.type
        if not isinstance(t, a.TypeDecl):
            fn = isinstance(getattr(t, "type", None), a.FuncDecl)
            kind = "function pointer" if fn else "pointer and array"
            self.fail(node, f"typedef {node.name}: {kind} typedefs are not supported")
        spec = t.type
        if isinstance(spec, a.Enum) and spec.values is not None:
            return self.enum(node, node.name, spec, tag=spec.name)
        if isinstance(spec, a.Struct) and spec.decls is not None:
            return self.struct(node, node.name, spec, tag=spec.name)
        if isinstance(spec, a.Struct):
            if spec.name == node.name and node.name in self.types:
                return None  # `typedef struct x x;` after `struct x {...};` adds nothing
            self.declare(node, node.name)
            self.types[node.name] = node.name
            if spec.name:
                self.types.setdefault(spec.name, node.name)
            self.h.structs.append(Struct(node.name, self.doc(node), None))
            return None
        if isinstance(spec, a.Union):
            self.fail(node, "unions are not supported")
        ctype = self.base_type(spec, node)
        # cbindgen's sized enums: `enum x {...};` then `typedef uint32_t x;`. The name becomes
        # the scalar's ctypes type and keeps its constants.
        for e in self.h.enums:
            if e.name == node.name:
                e.ctype = ctype
                return None
        self.declare(node, node.name)
        self.types[node.name] = node.name
        self.h.aliases.append(Alias(node.name, ctype, self.doc(node)))
        return None

    def enum(self, node, name: str | None, spec, tag: str | None = None) -> None:
        if name is None:
            self.fail(node, "an enum without a name")
        self.declare(node, name)
        members, nxt = [], 0
        for e in spec.values.enumerators:
            if e.value is not None:
                nxt = self.value(e.value, self.enum_values)
                if not isinstance(nxt, int):
                    self.fail(e, f"{e.name} = {nxt!r} is not an integer")
            self.declare(e, e.name)
            self.enum_values[e.name] = nxt
            members.append((e.name, nxt, self.doc(e)))
            nxt += 1
        self.types[name] = name
        if tag:
            self.types.setdefault(tag, name)
        self.h.enums.append(Enum(name, self.doc(node), members))

    def struct(self, node, name: str | None, spec, tag: str | None = None) -> None:
        if name is None:
            self.fail(node, "a struct without a name")
        fields = []
        for f in spec.decls:
            if f.bitsize is not None:
                self.fail(f, f"bit-field {f.name} is not supported")
            if f.name is None:
                self.fail(f, "anonymous members are not supported")
            fields.append(Field(f.name, self.ctype(f.type, f), self.doc(f)))
        self.declare(node, name)
        self.types[name] = name
        if tag:
            self.types.setdefault(tag, name)
        self.h.structs.append(Struct(name, self.doc(node), fields))

    def function(self, node) -> None:
        a = self.ast
        fn = node.type
        restype = self.ctype(fn.type, node)
        params: list[tuple[str, str]] = []
        args = fn.args.params if fn.args is not None else []
        if len(args) == 1 and isinstance(args[0], a.Typename) and \
                self.ctype(args[0].type, node) == "None":
            args = []  # (void)
        for k, p in enumerate(args):
            if isinstance(p, a.EllipsisParam):
                self.fail(node, f"{node.name}: variadic functions are not supported")
            if isinstance(p.type, a.FuncDecl):
                self.fail(node, f"{node.name}: function-pointer parameters are not supported")
            params.append((p.name or f"arg{k}", self.ctype(p.type, node)))
        self.declare(node, node.name)
        self.h.functions.append(Function(node.name, restype, params, self.doc(node)))


def parse(text: str) -> Header:
    """The declarations of a header's text (the preprocessor runs on a temporary copy)."""
    try:
        from pycparser import c_parser
        from pycparser.c_parser import ParseError as CParseError
    except ImportError:
        raise ParseError("pycparser is missing: .venv/bin/pip install pycparser") from None
    docs = doc_comments(text)
    with tempfile.TemporaryDirectory(prefix="gen_capi-") as tmp:
        tmp = Path(tmp)
        include = tmp / "include"
        include.mkdir()
        for name, types in FAKE_HEADERS.items():
            (include / name).write_text("".join(f"typedef int {t};\n" for t in types))
        (include / "stdbool.h").write_text(FAKE_STDBOOL)
        header = tmp / "header.h"
        header.write_text(text, encoding="utf-8")

        macros = header_macros(run_cpp(header, include, ["-dD"]), str(header))
        # Each macro's value, expanded by the preprocessor and read by the C parser: one probe
        # declaration per macro after the header, on its own line.
        probe = tmp / "probe.c"
        lines = [f'#include "{header.name}"']
        valued = [(name, line) for name, line, body in macros if body]
        lines += [f"int {MACRO_PROBE}{i} = ({name});" for i, (name, _) in enumerate(valued)]
        probe.write_text("\n".join(lines) + "\n")
        source = run_cpp(probe, include, [])
    header_part, probe_lines = _split_probes(source, str(probe), len(valued))
    try:
        ast = c_parser.CParser().parse(header_part, str(header))
    except CParseError as e:
        raise ParseError(str(e).replace(str(header) + ":", "line ", 1)) from None

    b = Builder(str(header), docs)
    for node in ast.ext:
        if node.coord is not None and node.coord.file == str(header):
            b.external(node)
    for (name, line), text in zip(valued, probe_lines):
        try:
            # Alone, so an error names its macro; a constant expression needs no typedefs.
            (decl,) = c_parser.CParser().parse(text, "probe").ext
            value = b.value(decl.init, b.enum_values)
        except (CParseError, ParseError) as e:
            raise ParseError(f"line {line}: #define {name} is not a constant expression "
                             f"({e})") from None
        if name in b.declared:
            raise ParseError(f"line {line}: {name} is declared twice")
        b.declared.add(name)
        b.h.defines.append(Define(name, value, docs.get(line, "")))
    return b.h


def _split_probes(source: str, probe: str, count: int) -> tuple[str, list[str]]:
    """Cuts `cc -E` output of the probe file into the header's part and the `count` probe
    declarations that follow it, one a line (the probe file's lines 2, 3, ...)."""
    lines = source.splitlines()
    for i, text in enumerate(lines):
        m = _LINE_MARKER.match(text)
        if m and m.group(2) == probe and m.group(1) == "2":
            probes = [t for t in lines[i + 1:] if t.strip()]
            if len(probes) != count:
                break
            return "\n".join(lines[:i]) + "\n", probes
    if count == 0:
        return source, []
    raise ParseError(f"cannot find the macro probes in the preprocessor's output of {probe}")


# ---- the Python module -----------------------------------------------------------------------

def comment(doc: str, indent: str = "") -> list[str]:
    return [f"{indent}# {line}".rstrip() for line in doc.splitlines()] if doc else []


def render(h: Header, source_name: str) -> str:
    body: list[str] = []
    for d in h.defines:
        body += comment(d.doc)
        body += [f"{d.name} = {d.py}", ""]
    for e in h.enums:
        body += comment(e.doc)
        body += [f"{e.name} = {e.ctype}", ""]
        for mname, value, mdoc in e.members:
            body += comment(mdoc)
            body.append(f"{mname} = {value}")
        body.append("")
    for a in h.aliases:
        body += comment(a.doc)
        body += [f"{a.name} = {a.ctype}", ""]
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
                body.append(f"        ({f.name!r}, {f.ctype}),")
            body += ["    ]", "", ""]
    for f in h.functions:
        body += comment(f.doc)
        args = ", ".join(ctype for _, ctype in f.params)
        names = ", ".join(repr(n) for n, _ in f.params)
        body.append(f"{f.name} = bind({f.name!r}, {f.restype}, [{args}], [{names}])")
        body.append("")
    body.append("__all__ = [")
    names = [d.name for d in h.defines]
    for e in h.enums:
        names += [e.name] + [m[0] for m in e.members]
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
    return render(parse(header.read_text(encoding="utf-8")), rel)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--header", type=Path, default=DEFAULT_HEADER)
    ap.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    ap.add_argument("--check", action="store_true", help="fail when --output is stale")
    args = ap.parse_args(argv)
    try:
        text = generate(args.header)
    except ParseError as e:
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
