#!/usr/bin/env python3
"""Generates thresher/_capi.py (ctypes declarations) from include/thresher.h.

The header is cbindgen output, so it has a small, regular shape: #define constants,
`typedef enum {...} name;`, `typedef struct {...} name;`, opaque `typedef struct x x;`, and
function prototypes, each optionally preceded by a /** doc comment */. This parser handles
exactly that shape and stops with an error on anything else, so a header change it does not
understand fails loudly instead of producing a wrong binding.

    python bindings/python/gen_capi.py            # rewrite thresher/_capi.py
    python bindings/python/gen_capi.py --check    # exit 1 when the checked-in file is stale
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_HEADER = HERE.parent.parent / "include" / "thresher.h"
DEFAULT_OUTPUT = HERE / "thresher" / "_capi.py"

# C scalar types and their ctypes spelling. Anything not here or declared in the header is an
# error: guessing a width would corrupt memory silently.
SCALARS = {
    "void": None,
    "char": "c_char",
    "bool": "c_bool",
    "int": "c_int",
    "unsigned": "c_uint",
    "float": "c_float",
    "double": "c_double",
    "size_t": "c_size_t",
    "int8_t": "c_int8",
    "uint8_t": "c_uint8",
    "int16_t": "c_int16",
    "uint16_t": "c_uint16",
    "int32_t": "c_int32",
    "uint32_t": "c_uint32",
    "int64_t": "c_int64",
    "uint64_t": "c_uint64",
}


class ParseError(Exception):
    pass


@dataclass
class Define:
    name: str
    value: str
    doc: str
    py: str = ""  # the value as a Python expression


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


def clean_doc(raw: str) -> str:
    """The text of a /** ... */ comment without its frame and leading asterisks."""
    body = raw[3:-2]
    lines = []
    for line in body.splitlines():
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


def split_items(text: str) -> list[tuple[str, str]]:
    """Cuts the header into (doc, item) pairs. Items are preprocessor lines ('#...') and C
    declarations up to their ';' at brace depth 0 (bodies keep their inner doc comments)."""
    # C++-only blocks (extern "C" braces) mean nothing to ctypes.
    text = re.sub(r"#ifdef __cplusplus\b.*?#endif[^\n]*", "", text, flags=re.S)
    items: list[tuple[str, str]] = []
    doc = ""
    i, n = 0, len(text)
    while i < n:
        if text[i].isspace():
            i += 1
        elif text.startswith("/**", i) and not text.startswith("/**/", i):
            end = text.find("*/", i + 3)
            if end < 0:
                raise ParseError("unterminated doc comment")
            doc = clean_doc(text[i : end + 2])
            i = end + 2
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            if end < 0:
                raise ParseError("unterminated comment")
            i = end + 2
        elif text.startswith("//", i):
            end = text.find("\n", i)
            i = n if end < 0 else end
        elif text[i] == "#":
            j = i
            while True:
                end = text.find("\n", j)
                end = n if end < 0 else end
                if text[end - 1 : end] != "\\":
                    break
                j = end + 1
            items.append((doc, text[i:end].replace("\\\n", " ")))
            doc = ""
            i = end
        else:
            depth, j = 0, i
            while j < n:
                c = text[j]
                if text.startswith("/*", j):
                    end = text.find("*/", j + 2)
                    if end < 0:
                        raise ParseError("unterminated comment")
                    j = end + 2
                    continue
                if text.startswith("//", j):
                    end = text.find("\n", j)
                    j = n if end < 0 else end
                    continue
                if c == "{":
                    depth += 1
                elif c == "}":
                    depth -= 1
                elif c == ";" and depth == 0:
                    break
                j += 1
            else:
                raise ParseError(f"declaration without ';': {text[i:i + 60]!r}")
            items.append((doc, text[i : j + 1]))
            doc = ""
            i = j + 1
    return items


def body_members(body: str, sep: str) -> list[tuple[str, str]]:
    """(doc, member) pairs of an enum (sep ',') or struct (sep ';') body."""
    out: list[tuple[str, str]] = []
    doc = ""
    for m in re.finditer(r"/\*\*.*?\*/|/\*.*?\*/|//[^\n]*|[^" + sep + r"/]+(?:" + sep + r"|$)",
                         body, flags=re.S):
        tok = m.group(0)
        if tok.startswith("/**"):
            doc = clean_doc(tok)
        elif tok.startswith("/*") or tok.startswith("//"):
            continue
        else:
            tok = tok.strip().rstrip(sep).strip()
            if tok:
                out.append((doc, tok))
            doc = ""
    return out


def parse_int(text: str) -> int:
    text = re.sub(r"(?i)[ul]+$", "", text.strip())
    return int(text, 0)


def enum_value(text: str) -> int:
    try:
        return parse_int(text)
    except ValueError:
        raise ParseError(f"unsupported enum value {text!r}") from None


class Parser:
    def __init__(self) -> None:
        self.header = Header()
        self.types: dict[str, str | None] = dict(SCALARS)

    def ctype(self, decl: str) -> str:
        """The ctypes expression for a C type such as 'const uint64_t *' or 'thresher_loader **'."""
        stars = decl.count("*")
        words = decl.replace("*", " ").split()
        const = "const" in words
        words = [w for w in words if w not in ("const", "struct", "enum", "volatile")]
        if words == ["unsigned", "int"]:
            words = ["unsigned"]
        if len(words) != 1:
            raise ParseError(f"unsupported type {decl!r}")
        base = words[0]
        if base not in self.types:
            raise ParseError(f"unknown type {base!r} in {decl!r}")
        py = self.types[base]
        # ctypes converts c_char_p to and from bytes; a writable buffer stays a char pointer.
        if base == "char" and stars >= 1 and const:
            py, stars = "c_char_p", stars - 1
        elif base == "void" and stars >= 1:
            py, stars = "c_void_p", stars - 1
        if py is None:
            if stars:
                raise ParseError(f"unsupported type {decl!r}")
            return "None"
        for _ in range(stars):
            py = f"POINTER({py})"
        return py

    def declarator(self, text: str) -> tuple[str, str]:
        """Splits 'const float *loss' into ('const float *', 'loss'); keeps array suffixes."""
        m = re.fullmatch(r"(.*?)([A-Za-z_]\w*)\s*((?:\[\s*\w+\s*\])*)", text.strip(), flags=re.S)
        if not m or not m.group(1).strip():
            raise ParseError(f"cannot split declarator {text!r}")
        ctype = self.ctype(m.group(1))
        for dim in reversed(re.findall(r"\[\s*(\w+)\s*\]", m.group(3))):
            ctype = f"({ctype} * {self.array_len(dim)})"
        return ctype, m.group(2)

    def array_len(self, dim: str) -> int:
        for d in self.header.defines:
            if d.name == dim:
                return parse_int(d.value)
        return parse_int(dim)

    def item(self, doc: str, item: str) -> None:
        flat = " ".join(item.split())
        body = item.strip()
        if item.startswith("#"):
            m = re.match(r"#\s*define\s+([A-Za-z_]\w*)(\(.*?\))?\s*(.*)$", flat)
            if m and not m.group(2) and m.group(3):
                known = {d.name for d in self.header.defines}
                value = m.group(3).strip()
                self.header.defines.append(Define(m.group(1), value, doc, py_value(value, known)))
            return
        # typedef enum [tag] {...} name;  or  enum name {...};  (then, maybe, a sized typedef)
        m = re.fullmatch(r"typedef\s+enum\s*(\w+)?\s*\{(.*)\}\s*(\w+)\s*;", body, flags=re.S)
        if m:
            return self.enum(doc, m.group(3), m.group(2))
        m = re.fullmatch(r"enum\s+(\w+)\s*\{(.*)\}\s*;", body, flags=re.S)
        if m:
            return self.enum(doc, m.group(1), m.group(2))
        m = re.fullmatch(r"typedef\s+struct\s*(\w+)?\s*\{(.*)\}\s*(\w+)\s*;", body, flags=re.S)
        if m:
            return self.struct(doc, m.group(3), m.group(2))
        m = re.fullmatch(r"struct\s+(\w+)\s*\{(.*)\}\s*;", body, flags=re.S)
        if m:
            return self.struct(doc, m.group(1), m.group(2))
        m = re.fullmatch(r"typedef\s+struct\s+(\w+)\s+(\w+)\s*;", flat)
        if m:
            tag, name = m.groups()
            if tag in self.types and tag == name:
                return  # `typedef struct x x;` after `struct x {...};` adds nothing
            self.types[name] = name
            self.header.structs.append(Struct(name, doc, None))
            return
        m = re.fullmatch(r"typedef\s+([\w\s]+?)\s+(\w+)\s*;", flat)
        if m and "(" not in flat:
            return self.alias(doc, m.group(2), m.group(1))
        m = re.fullmatch(r"(?:extern\s+)?(.*?)\b([A-Za-z_]\w*)\s*\((.*)\)\s*;", flat)
        if m and "typedef" not in flat:
            return self.function(doc, m.group(2), m.group(1), m.group(3))
        raise ParseError(f"unsupported declaration: {flat[:120]!r}")

    def alias(self, doc: str, name: str, target: str) -> None:
        """`typedef uint32_t thresher_status;` (cbindgen's sized enums): the name becomes the
        scalar's ctypes type; an enum of that name keeps its constants."""
        ctype = self.ctype(target)
        self.types[name] = name
        for e in self.header.enums:
            if e.name == name:
                e.ctype = ctype
                return
        self.header.aliases.append(Alias(name, ctype, doc))

    def enum(self, doc: str, name: str, body: str) -> None:
        members, nxt = [], 0
        for mdoc, member in body_members(body, ","):
            if "=" in member:
                mname, value = (s.strip() for s in member.split("=", 1))
                nxt = enum_value(value)
            else:
                mname = member.strip()
            members.append((mname, nxt, mdoc))
            nxt += 1
        self.types[name] = name
        self.header.enums.append(Enum(name, doc, members))

    def struct(self, doc: str, name: str, body: str) -> None:
        fields = []
        for fdoc, member in body_members(body, ";"):
            ctype, fname = self.declarator(member)
            fields.append(Field(fname, ctype, fdoc))
        self.types[name] = name
        self.header.structs.append(Struct(name, doc, fields))

    def function(self, doc: str, name: str, ret: str, params: str) -> None:
        restype = self.ctype(ret)
        plist: list[tuple[str, str]] = []
        params = params.strip()
        if params and params != "void":
            for k, p in enumerate(params.split(",")):
                if "(" in p:
                    raise ParseError(f"{name}: function-pointer parameters are not supported")
                try:
                    ctype, pname = self.declarator(p)
                except ParseError:
                    ctype, pname = self.ctype(p), f"arg{k}"
                plist.append((pname, ctype))
        self.header.functions.append(Function(name, restype, plist, doc))


def parse(text: str) -> Header:
    p = Parser()
    for doc, item in split_items(text):
        p.item(doc, item)
    return p.header


def comment(doc: str, indent: str = "") -> list[str]:
    return [f"{indent}# {line}".rstrip() for line in doc.splitlines()] if doc else []


def py_value(value: str, known: set[str]) -> str:
    value = value.strip()
    if re.fullmatch(r'"(?:[^"\\]|\\.)*"', value):
        return value
    try:
        return str(parse_int(value))
    except ValueError:
        pass
    try:
        return repr(float(value.rstrip("fF")))
    except ValueError:
        pass
    # An integer expression such as ((0 << 16) | (1 << 8) | 0) or one naming earlier macros:
    # C and Python agree on these operators once the integer suffixes are gone.
    expr = re.sub(r"\b(0[xX][0-9a-fA-F]+|\d+)[uUlL]+\b", r"\1", value)
    names = set(re.findall(r"[A-Za-z_]\w*", re.sub(r"\b0[xX][0-9a-fA-F]+\b", "", expr)))
    if names <= known and re.fullmatch(r"[\w\s()<>|&^~+\-*]+", expr):
        return expr
    raise ParseError(f"unsupported #define value {value!r}")


def render(h: Header, source_name: str) -> str:
    out = [
        f"# Generated by bindings/python/gen_capi.py from {source_name}; do not edit.",
        "# Regenerate with `python bindings/python/gen_capi.py`; tests/test_capi.py fails when",
        "# this file is stale.",
        "# ruff: noqa",
        "",
        "from ctypes import (POINTER, Structure, c_bool, c_char, c_char_p, c_double, c_float,",
        "                    c_int, c_int8, c_int16, c_int32, c_int64, c_size_t, c_uint,",
        "                    c_uint8, c_uint16, c_uint32, c_uint64, c_void_p)",
        "",
        "from ._library import bind",
        "",
    ]
    for d in h.defines:
        out += comment(d.doc)
        out += [f"{d.name} = {d.py}", ""]
    for e in h.enums:
        out += comment(e.doc)
        out += [f"{e.name} = {e.ctype}", ""]
        for mname, value, mdoc in e.members:
            out += comment(mdoc)
            out.append(f"{mname} = {value}")
        out.append("")
    for a in h.aliases:
        out += comment(a.doc)
        out += [f"{a.name} = {a.ctype}", ""]
    # Opaque handles first: structs with fields may point to them.
    for s in h.structs:
        if s.fields is None:
            out += comment(s.doc)
            out += [f"class {s.name}(Structure):", "    pass", "", ""]
    for s in h.structs:
        if s.fields is not None:
            out += comment(s.doc)
            out.append(f"class {s.name}(Structure):")
            out.append("    _fields_ = [")
            for f in s.fields:
                out += comment(f.doc, "        ")
                out.append(f"        ({f.name!r}, {f.ctype}),")
            out += ["    ]", "", ""]
    for f in h.functions:
        out += comment(f.doc)
        args = ", ".join(ctype for _, ctype in f.params)
        names = ", ".join(repr(n) for n, _ in f.params)
        out.append(f"{f.name} = bind({f.name!r}, {f.restype}, [{args}], [{names}])")
        out.append("")
    out.append("__all__ = [")
    names = [d.name for d in h.defines]
    for e in h.enums:
        names += [e.name] + [m[0] for m in e.members]
    names += [a.name for a in h.aliases]
    names += [s.name for s in h.structs] + [f.name for f in h.functions]
    out += [f"    {n!r}," for n in names]
    out.append("]")
    return "\n".join(out) + "\n"


def generate(header: Path = DEFAULT_HEADER) -> str:
    rel = "include/thresher.h" if header == DEFAULT_HEADER else header.name
    return render(parse(header.read_text(encoding="utf-8")), rel)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--header", type=Path, default=DEFAULT_HEADER)
    ap.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    ap.add_argument("--check", action="store_true", help="fail when --output is stale")
    args = ap.parse_args(argv)
    text = generate(args.header)
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
