"""The model of include/thresher.h that the binding tools share: bindings/python/gen_capi.py
renders it as ctypes declarations, bindings/julia/check_binding.py compares the Julia binding
with it. Each tool adds this directory to sys.path itself (a dev tool, in no package and in no
wheel).

    header = cheader.parse_file(Path("include/thresher.h"))
    header.defines, header.enums, header.aliases, header.structs, header.functions

How: the header goes through `cc -E` (the compiler named by $CC, else `cc`) with the system
headers replaced by small fake ones (stddef.h, stdint.h, stdbool.h: typedef names only; a use
of size_t is the system type `size_t`, whose width is each tool's business, not whatever the
fakes say). `-dD` lists the header's own #defines; each value is then expanded by the
preprocessor and parsed by pycparser as an expression, so no macro text is interpreted here.
Doc comments (which the preprocessor removes) are attached by line: a /** */ comment ending on
the line right before a declaration documents it. Anything the model cannot express (unions,
function pointers, variables, variadic functions, bit-fields, unknown types, function-like
macros, macros naming other symbols, a name declared twice) stops it with ParseError, so a
header change the tools do not understand fails loudly instead of producing a wrong binding.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import NamedTuple, Union

# What the fake system headers declare. Their typedef targets never reach the model.
FAKE_HEADERS = {
    "stddef.h": ["size_t", "ptrdiff_t"],
    "stdint.h": ["int8_t", "uint8_t", "int16_t", "uint16_t", "int32_t", "uint32_t", "int64_t",
                 "uint64_t", "intptr_t", "uintptr_t"],
}
SYSTEM_TYPES = [name for names in FAKE_HEADERS.values() for name in names]
FAKE_STDBOOL = "#define bool _Bool\n#define true 1\n#define false 0\n"

# C's own scalar types: the name the model gives each, and its spellings. A spelling's
# specifiers, sorted, are what pycparser gives, so C_SCALARS maps those to the name.
_SPELLINGS = {
    "void": ["void"], "char": ["char"], "signed char": ["signed char"],
    "unsigned char": ["unsigned char"], "short": ["short", "short int"],
    "unsigned short": ["unsigned short", "unsigned short int"],
    "int": ["int", "signed", "signed int"], "unsigned int": ["unsigned", "unsigned int"],
    "long": ["long", "long int"], "unsigned long": ["unsigned long", "unsigned long int"],
    "long long": ["long long"], "unsigned long long": ["unsigned long long"],
    "float": ["float"], "double": ["double"], "_Bool": ["_Bool"],
}
C_SCALARS = {tuple(sorted(s.split())): name for name, ss in _SPELLINGS.items() for s in ss}

class ParseError(Exception):
    pass


# ---- the model -------------------------------------------------------------------------------
# A type is a Base behind Pointer and Array layers, outermost first, as C's declarators nest;
# str() spells it as C does ("const char *", "thresher_batch **").


@dataclass(frozen=True)
class Base:
    name: str  # a C_SCALARS name, a SYSTEM_TYPES name, or a name the header declares
    kind: str  # "scalar", "system", "enum", "struct" (opaque or not) or "alias"
    const: bool = False

    def declare(self, inner: str = "") -> str:
        """C's declaration of `inner` (a name and the declarators around it) of this type."""
        base = f"const {self.name}" if self.const else self.name
        return f"{base} {inner}" if inner else base

    __str__ = declare


@dataclass(frozen=True)
class Pointer:
    to: Type

    def declare(self, inner: str = "") -> str:
        return self.to.declare(f"(*{inner})" if isinstance(self.to, Array) else f"*{inner}")

    __str__ = declare


@dataclass(frozen=True)
class Array:
    of: Type
    length: int

    def declare(self, inner: str = "") -> str:
        return self.of.declare(f"{inner}[{self.length}]")

    __str__ = declare


Type = Union[Base, Pointer, Array]


@dataclass
class Define:
    name: str
    value: object  # int, float or str, as the preprocessor and the parser read it
    doc: str

    @property
    def literal(self) -> str:
        """The value as a literal that C, Python and Julia all read as it: a number as Python
        writes it, a string in double quotes (strings with escapes are refused)."""
        if isinstance(self.value, str):
            return json.dumps(self.value, ensure_ascii=False)
        return repr(self.value)


class Member(NamedTuple):
    name: str
    value: int
    doc: str


@dataclass
class Enum:
    name: str
    doc: str
    members: list[Member]
    # C gives an unsized enum the representation of int; cbindgen's sized enums (`enum x {...};`
    # then `typedef uint32_t x;`) name theirs.
    underlying: Type = Base("int", "scalar")


@dataclass
class Alias:
    name: str
    type: Type
    doc: str


@dataclass
class Field:
    name: str
    type: Type
    doc: str


@dataclass
class Struct:
    name: str
    doc: str
    fields: list[Field] | None  # None: opaque


class Param(NamedTuple):
    name: str | None  # None: unnamed in the prototype
    type: Type


@dataclass
class Function:
    name: str
    result: Type
    params: list[Param]
    doc: str
    line: int  # the header line of its name

    @property
    def deprecated_alias_of(self) -> str | None:
        """X, for a function whose doc comment says "Deprecated since V: the old name of X"
        (an alias kept so that C programs built against an older header still link)."""
        m = re.search(r"Deprecated since [^:]*:\s*the old name of\s+(\w+)", self.doc)
        return m.group(1) if m else None


@dataclass
class Header:
    path: Path | None = None  # None: parsed from text
    defines: list[Define] = field(default_factory=list)
    enums: list[Enum] = field(default_factory=list)
    aliases: list[Alias] = field(default_factory=list)
    structs: list[Struct] = field(default_factory=list)
    functions: list[Function] = field(default_factory=list)

    def function(self, name: str) -> Function | None:
        return next((f for f in self.functions if f.name == name), None)


# ---- doc comments ----------------------------------------------------------------------------

def clean_doc(raw: str) -> str:
    """The text of a /** ... */ comment without its frame and leading asterisks."""
    lines = [re.sub(r"^\* ?", "", line.strip()).rstrip() for line in raw[3:-2].splitlines()]
    return "\n".join(lines).strip("\n")


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

def run_cpp(path: Path, include: Path, extra: list[str]) -> str:
    # -undef and the fake include directory make the result the same on every host: no
    # platform macros, no system header text.
    cmd = shlex.split(os.environ.get("CC") or "cc") + [
        "-E", "-undef", "-nostdinc", "-x", "c", "-I", str(include), *extra, str(path)]
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
                    raise ParseError(f"line {line}: function-like macro {name} is not supported")
                out.append((name, line, body.strip()))
        line += 1
    return out


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


# ---- pycparser AST to the model --------------------------------------------------------------

def _int(text: str) -> int:
    value = re.sub(r"(?i)[ul]+$", "", text)
    if re.fullmatch(r"0[0-7]+", value):
        return int(value, 8)
    return int(value, 0)


def _nodes(node):
    yield node
    for _, child in node.children():
        yield from _nodes(child)


class Builder:
    def __init__(self, header_file: str, docs: dict[int, str]):
        from pycparser import c_ast

        self.ast = c_ast
        self.file = header_file
        self.docs = docs
        self.h = Header()
        # Names usable as types (typedef names and tags), and the type each names.
        self.types: dict[str, Base] = {n: Base(n, "system") for n in SYSTEM_TYPES}
        self.enum_values: dict[str, int] = {}
        self.declared: set[str] = set()

    # -- helpers

    def fail(self, node, msg: str):
        c = node.coord
        if c is not None and c.file == self.file:
            msg = f"line {c.line}: {msg}"
        raise ParseError(msg)

    def doc(self, node) -> str:
        """The doc comment of a declaration. pycparser puts a declaration at its name; its doc
        comment sits above its first token, on the first header line any of its nodes is on."""
        lines = [n.coord.line for n in _nodes(node)
                 if n.coord is not None and n.coord.file == self.file]
        return self.docs.get(min(lines, default=0), "")

    def declare(self, node, name: str) -> None:
        # One contract: a name declared twice (say, a deprecated alias made a macro and a
        # function) would make one of the two silently win.
        if name in self.declared:
            self.fail(node, f"{name} is declared twice")
        self.declared.add(name)

    def name_type(self, name: str, tag: str | None, kind: str) -> None:
        self.types[name] = Base(name, kind)
        if tag:
            self.types.setdefault(tag, self.types[name])

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

    def type_of(self, node, where) -> Type:
        """The model's type for a pycparser type node."""
        a = self.ast
        if isinstance(node, a.TypeDecl):
            base = self.base_type(node.type, where)
            return replace(base, const=True) if "const" in node.quals else base
        if isinstance(node, a.PtrDecl):
            if isinstance(node.type, a.FuncDecl):
                self.fail(where, "function pointers are not supported")
            return Pointer(self.type_of(node.type, where))
        if isinstance(node, a.ArrayDecl):
            if node.dim is None:
                self.fail(where, "arrays without a length are not supported")
            n = self.value(node.dim)
            if not isinstance(n, int) or n < 0:
                self.fail(where, f"array length {n!r}")
            return Array(self.type_of(node.type, where), n)
        self.fail(where, f"unsupported type ({type(node).__name__})")

    def base_type(self, node, where) -> Base:
        a = self.ast
        if isinstance(node, a.IdentifierType):
            names = node.names
            if len(names) == 1 and names[0] in self.types:
                return self.types[names[0]]
            key = tuple(sorted(names))
            if key in C_SCALARS:
                return Base(C_SCALARS[key], "scalar")
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
            self.name_type(node.name, spec.name, "struct")
            self.h.structs.append(Struct(node.name, self.doc(node), None))
            return None
        if isinstance(spec, a.Union):
            self.fail(node, "unions are not supported")
        base = self.base_type(spec, node)
        # cbindgen's sized enums: `enum x {...};` then `typedef uint32_t x;`. The name keeps its
        # constants and gets the scalar's representation.
        for e in self.h.enums:
            if e.name == node.name:
                e.underlying = base
                return None
        self.declare(node, node.name)
        self.name_type(node.name, None, "alias")
        self.h.aliases.append(Alias(node.name, base, self.doc(node)))
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
            members.append(Member(e.name, nxt, self.doc(e)))
            nxt += 1
        self.name_type(name, tag, "enum")
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
            fields.append(Field(f.name, self.type_of(f.type, f), self.doc(f)))
        self.declare(node, name)
        self.name_type(name, tag, "struct")
        self.h.structs.append(Struct(name, self.doc(node), fields))

    def function(self, node) -> None:
        a = self.ast
        fn = node.type
        result = self.type_of(fn.type, node)
        params: list[Param] = []
        args = fn.args.params if fn.args is not None else []
        if len(args) == 1 and isinstance(args[0], a.Typename) and \
                self.type_of(args[0].type, node) == Base("void", "scalar"):
            args = []  # (void)
        for p in args:
            if isinstance(p, a.EllipsisParam):
                self.fail(node, f"{node.name}: variadic functions are not supported")
            if isinstance(p.type, a.FuncDecl):
                self.fail(node, f"{node.name}: function-pointer parameters are not supported")
            params.append(Param(p.name, self.type_of(p.type, node)))
        self.declare(node, node.name)
        self.h.functions.append(
            Function(node.name, result, params, self.doc(node), node.coord.line))


def parse_file(path: Path) -> Header:
    header = parse(path.read_text(encoding="utf-8"))
    header.path = path
    return header


def parse(text: str) -> Header:
    """The declarations of a header's text (the preprocessor runs on a temporary copy)."""
    try:
        from pycparser import c_parser
        from pycparser.c_parser import ParseError as CParseError
    except ImportError:
        raise ParseError("pycparser is missing: .venv/bin/pip install pycparser") from None
    docs = doc_comments(text)
    with tempfile.TemporaryDirectory(prefix="cheader-") as tmp:
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
        lines += [f"int __cheader_macro_{i} = ({name});" for i, (name, _) in enumerate(valued)]
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
