#!/usr/bin/env python3
"""Checks the Julia binding against include/thresher.h without Julia.

Julia cannot be installed where this project is built and tested, so Thresher.jl has never
run. This script checks by machine what a first run would otherwise find:

1. Every .jl file under bindings/julia parses: tree-sitter's Julia grammar (the
   `tree-sitter-julia` wheel) must produce no ERROR and no MISSING node.
2. Every `ccall` / `@ccall` names a function that thresher.h declares, from `libthresher`,
   with as many arguments as the C prototype, each argument and the result of a compatible
   kind (pointer depth; scalar width and signedness). The header is read by
   bindings/tools/cheader.py (the C preprocessor and pycparser, shared with
   bindings/python/gen_capi.py), so the prototypes are read as a C compiler reads them.
   Calls through a function pointer (`ccall(ptr, ...)`, `@ccall $(ptr)(...)`) name no header
   function and are skipped (batch.jl makes one: the DLPack deleter).
3. Every function of the header has a wrapper in the package (bindings/julia/*/src): a Julia
   function whose body ccalls it. The package may be split into files: every .jl under
   NAME/src other than NAME/src/NAME.jl (the module) must be reached from it through
   `include("file.jl")` calls with literal paths, and every include must name a file, so that a
   wrapper counted here is one the module really loads.
4. What the package copies from the header by hand matches it: each struct (the Julia struct
   whose docstring starts with the C name in backquotes) field for field, in order and of
   compatible types; every enum constant's value; ABI_VERSION, HEADER_VERSION and
   UNLEARNABLE_WARNING.

The header's deprecated aliases (doc comment "Deprecated since 0.1: the old name of X") need
no wrapper and must not be called. They exist so that C programs compiled against the first
header still link against a newer library. A Julia binding is not compiled against the
header: `@ccall` looks a symbol up by name when it first runs, and the Julia-facing names
(`epoch_info`, `save_state`) never changed. So there is no old Julia code for an alias to
keep working. Calling an alias would only tie the binding to a name that is due to go.

Usage: check_binding.py [--header include/thresher.h] [--julia-dir bindings/julia] [-v]
Exit status 0 when all checks pass; 1 with one `file:line: problem` per finding otherwise; 2
when the header has what the model refuses (see cheader.py).
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import sys
from pathlib import Path

import tree_sitter_julia
from tree_sitter import Language, Node, Parser

ROOT = Path(__file__).resolve().parents[2]
# The header model is shared with bindings/python/gen_capi.py and is no part of any package,
# so it is imported from its directory, not installed.
sys.path.insert(0, str(ROOT / "bindings" / "tools"))

import cheader  # noqa: E402


# ---- Julia ---------------------------------------------------------------------------------

_PARSER = Parser(Language(tree_sitter_julia.language()))


def parse_julia(path: Path) -> tuple[Node, list[str]]:
    """The syntax tree of a .jl file and one `file:line:col: ...` per ERROR/MISSING node."""
    tree = _PARSER.parse(path.read_bytes())
    problems: list[str] = []

    def nested_error(n: Node) -> bool:
        return any(c.is_error or c.is_missing or nested_error(c) for c in n.children)

    def walk(n: Node) -> None:
        if n.is_missing:
            problems.append(f"{_at(path, n)}: syntax error: missing {n.type!r}")
            return
        # An ERROR node can swallow a whole module around the real mistake; the innermost
        # ERROR/MISSING nodes are where it is.
        if n.is_error and not nested_error(n):
            snippet = n.text.decode(errors="replace").split("\n")[0][:60]
            first, last = n.start_point[0] + 1, n.end_point[0] + 1
            span = f" (lines {first}-{last})" if last > first else ""
            problems.append(f"{_at(path, n)}: syntax error{span} near {snippet!r}")
            return
        if n.has_error or n.is_error:
            for c in n.children:
                walk(c)

    walk(tree.root_node)
    return tree.root_node, problems


def _at(path: Path, n: Node) -> str:
    return f"{path}:{n.start_point[0] + 1}:{n.start_point[1] + 1}"


def _text(n: Node) -> str:
    return n.text.decode()


@dataclasses.dataclass
class JuliaCall:
    """One ccall / @ccall of a named C function."""

    where: str  # file:line:col
    name: str
    library: str | None  # None: no library given (the process's global symbols)
    args: list[str]  # the Julia argument types, as written
    result: str
    wrapper: str | None  # the enclosing Julia function's name; None at top level


def _named(n: Node) -> list[Node]:
    return [c for c in n.named_children if c.type != "comment"]


def _enclosing_function(n: Node) -> str | None:
    p = n.parent
    while p is not None:
        if p.type == "function_definition":
            sig = p.child_by_field_name("signature") or next(
                (c for c in p.named_children if c.type == "signature"), None
            )
            return _callee_name(sig) if sig is not None else "?"
        if p.type == "assignment" and p.named_children:
            lhs = p.named_children[0]
            while lhs.type in ("where_expression", "typed_expression") and lhs.named_children:
                lhs = lhs.named_children[0]
            if lhs.type == "call_expression":  # the short form f(x) = ...
                return _callee_name(lhs)
        p = p.parent
    return None


def _callee_name(n: Node) -> str:
    while n.type in ("signature", "where_expression", "typed_expression") and n.named_children:
        n = n.named_children[0]
    if n.type == "call_expression" and n.named_children:
        return _text(n.named_children[0])
    return _text(n)


def find_ccalls(root: Node, path: Path) -> tuple[list[JuliaCall], list[str]]:
    """Every ccall/@ccall of a named function under `root`; and problems with their form."""
    calls: list[JuliaCall] = []
    problems: list[str] = []

    def visit(n: Node) -> None:
        if n.type == "macrocall_expression":
            mac = next((c for c in n.named_children if c.type == "macro_identifier"), None)
            if mac is not None and _text(mac) == "@ccall":
                _at_ccall(n)
        elif n.type == "call_expression" and n.named_children and _text(
            n.named_children[0]
        ) in ("ccall", "Base.ccall"):
            _plain_ccall(n)
        for c in n.named_children:
            visit(c)

    def _at_ccall(n: Node) -> None:
        # @ccall lib.f(a::T, ...)::R, in macro or parenthesised call syntax.
        arglist = next(
            (c for c in n.named_children if c.type in ("macro_argument_list", "argument_list")),
            None,
        )
        body = _named(arglist) if arglist is not None else []
        if len(body) != 1 or body[0].type != "typed_expression":
            problems.append(f"{_at(path, n)}: @ccall without a `::ReturnType`")
            return
        call, result = _named(body[0])[0], _named(body[0])[-1]
        if call.type != "call_expression":
            problems.append(f"{_at(path, n)}: @ccall of something that is not a call")
            return
        target, args = call.named_children[0], _named(call.named_children[1])
        if target.type == "interpolation_expression":
            return  # @ccall $(fptr)(...): through a pointer, no header name
        library = None
        if target.type == "field_expression":
            library, target = _text(target.named_children[0]), target.named_children[-1]
        arg_types = []
        for a in args:
            if a.type != "typed_expression":
                problems.append(f"{_at(path, a)}: @ccall argument {_text(a)!r} has no ::Type")
                return
            arg_types.append(_text(_named(a)[-1]))
        calls.append(
            JuliaCall(_at(path, n), _text(target), library, arg_types, _text(result),
                      _enclosing_function(n))
        )

    def _plain_ccall(n: Node) -> None:
        # ccall((:f, lib), R, (T1, T2,), a1, a2) or ccall(:f, R, (...), ...).
        args = _named(n.named_children[1])
        if len(args) < 3:
            problems.append(
                f"{_at(path, n)}: ccall needs (function, ReturnType, (ArgTypes...), values...)"
            )
            return
        fn, result, types = args[0], args[1], args[2]
        library = None
        if fn.type == "tuple_expression" and len(_named(fn)) == 2:
            fn, lib = _named(fn)
            library = _text(lib)
        if fn.type != "quote_expression":
            return  # a function pointer (a variable or expression): no header name
        if types.type != "tuple_expression":
            problems.append(f"{_at(path, types)}: ccall argument types are not a literal tuple")
            return
        arg_types = [_text(t) for t in _named(types)]
        if len(args) - 3 != len(arg_types):
            problems.append(
                f"{_at(path, n)}: ccall passes {len(args) - 3} values for "
                f"{len(arg_types)} argument types"
            )
        calls.append(
            JuliaCall(_at(path, n), _text(fn).lstrip(":"), library, arg_types, _text(result),
                      _enclosing_function(n))
        )

    visit(root)
    return calls, problems


# ---- C type against Julia type -------------------------------------------------------------

# The Julia spellings of each C scalar (Base's C aliases and the fixed-width names they stand
# for on the 64-bit Linux this runs on).
SCALARS = {
    "void": {"Cvoid", "Nothing"},
    "char": {"Cchar", "UInt8", "Int8"},
    "uint8_t": {"UInt8", "Cuchar"},
    "int8_t": {"Int8"},
    "uint16_t": {"UInt16", "Cushort"},
    "int16_t": {"Int16", "Cshort"},
    "uint32_t": {"UInt32", "Cuint"},
    "int32_t": {"Int32", "Cint"},
    "uint64_t": {"UInt64", "Culonglong"},
    "int64_t": {"Int64", "Clonglong"},
    "size_t": {"Csize_t", "UInt", "UInt64"},
    "float": {"Float32", "Cfloat"},
    "double": {"Float64", "Cdouble"},
    "int": {"Cint", "Int32"},
}
ENUM_JULIA = {"Cint", "Int32"}  # a C enum here is int-sized; THRESHER_* constants are Cint


def _julia_pointer_depth(t: str) -> tuple[int, str]:
    """`Ref{Ptr{Cvoid}}` -> (2, "Cvoid"); `Cstring` -> (1, "Cchar"); `Cint` -> (0, "Cint")."""
    depth = 0
    while True:
        m = re.fullmatch(r"\s*(?:Ptr|Ref)\s*\{(.*)\}\s*", t)
        if not m:
            break
        depth, t = depth + 1, m.group(1)
    t = t.strip()
    if t == "Cstring":
        return depth + 1, "Cchar"
    return depth, t


def _c_pointer_depth(c: cheader.Type) -> tuple[int, cheader.Base]:
    """`thresher_batch **` -> (2, thresher_batch)."""
    depth = 0
    while isinstance(c, cheader.Pointer):
        depth, c = depth + 1, c.to
    if not isinstance(c, cheader.Base):
        raise cheader.ParseError(f"unsupported C type at the boundary: {c}")
    return depth, c


def compatible(c: cheader.Type, julia: str, aliases: dict[str, str]) -> bool:
    depth, base = _julia_pointer_depth(julia)
    base = aliases.get(base, base)
    c_depth, c_base = _c_pointer_depth(c)
    if depth != c_depth:
        return False
    if depth > 0 and (base == "Cvoid" or c_base.name == "void" or c_base.name not in SCALARS):
        # An untyped pointer on either side, or a struct or opaque handle behind the pointer
        # (Ptr{Cvoid} for a handle, Ref{EpochInfo} for a struct; the struct's layout is
        # compared field by field in check_structs).
        return True
    if c_base.kind == "enum":
        return base in ENUM_JULIA
    return base in SCALARS.get(c_base.name, set())


def field_compatible(c: cheader.Type, julia: str, aliases: dict[str, str]) -> bool:
    if not isinstance(c, cheader.Array):
        return compatible(c, julia, aliases)
    # int64_t shape[4] is NTuple{4,Int64} (or NTuple{4, Int64}).
    m = re.fullmatch(r"NTuple\s*\{\s*(\d+)\s*,\s*(.+?)\s*\}", julia.strip())
    return bool(m) and int(m.group(1)) == c.length and compatible(c.of, m.group(2), aliases)


def julia_type_aliases(constants: dict[str, tuple[str, str]]) -> dict[str, str]:
    """`const name = Type`, e.g. `const thresher_status = Cint`: name -> Type."""
    return {k: v for k, (_, v) in constants.items() if re.fullmatch(r"[A-Za-z_]\w*", v)}


def _top_level(root: Node) -> list[Node]:
    """The statements of a file and of the modules in it, in order."""
    out = []
    for n in root.named_children:
        if n.type == "module_definition":
            out += _top_level(n)
        else:
            out.append(n)
    return out


@dataclasses.dataclass
class JuliaStruct:
    where: str
    name: str
    mirrors: str  # the C struct its docstring names
    fields: list[tuple[str, str]]  # (name, type as written)


def julia_structs(root: Node, path: Path) -> list[JuliaStruct]:
    """Structs whose docstring starts with a C struct's name in backquotes: "`thresher_x`: ..."."""
    out = []
    statements = _top_level(root)
    for prev, n in zip([None, *statements], statements):
        if n.type != "struct_definition" or prev is None or prev.type != "string_literal":
            continue
        m = re.match(r'"+\s*`(thresher_\w+)`', _text(prev))
        if not m:
            continue
        head = next(c for c in n.named_children if c.type == "type_head")
        fields = [
            (_text(_named(f)[0]), _text(_named(f)[-1]))
            for f in n.named_children
            if f.type == "typed_expression"
        ]
        out.append(JuliaStruct(_at(path, n), _text(head), m.group(1), fields))
    return out


def julia_constants(root: Node, path: Path) -> dict[str, tuple[str, str]]:
    """`const NAME = value` at the top of a file: name -> (file:line, value as written)."""
    out = {}
    for n in _top_level(root):
        if n.type == "const_statement" and n.named_children:
            a = n.named_children[0]
            if a.type == "assignment" and a.named_children[0].type == "identifier":
                out[_text(a.named_children[0])] = (_at(path, n), _text(a.named_children[-1]))
    return out


def find_includes(root: Node, path: Path) -> tuple[list[tuple[str, Path]], list[str]]:
    """Every `include("x.jl")` under `root`: (file:line:col, the path it names, resolved from
    the including file's folder, as Julia does); and one problem per include whose path is not
    a plain string literal (it could not be followed)."""
    found: list[tuple[str, Path]] = []
    problems: list[str] = []

    def visit(n: Node) -> None:
        if n.type == "call_expression" and n.named_children:
            callee = n.named_children[0]
            if callee.type == "identifier" and _text(callee) == "include":
                args = [c for c in n.named_children[1:] if c.type == "argument_list"]
                lits = _named(args[0]) if args else []
                lit = lits[0] if len(lits) == 1 else None
                if (lit is None or lit.type != "string_literal"
                        or any(c.type != "content" for c in lit.named_children)):
                    problems.append(f"{_at(path, n)}: include with a computed path cannot be "
                                    "followed by this check; name the file with a string literal")
                else:
                    name = "".join(_text(c) for c in lit.named_children)
                    found.append((_at(path, n), path.parent / name))
                return
        for c in n.children:
            visit(c)

    visit(root)
    return found, problems


def check_includes(parsed: list[tuple[Path, Node, bool]], julia_dir: Path) -> list[str]:
    """Every package file (NAME/src/*.jl) is NAME/src/NAME.jl or reached from it by includes;
    every include in the package names an existing file."""
    problems: list[str] = []
    edges: dict[Path, list[Path]] = {}
    for path, root, in_package in parsed:
        if not in_package:
            continue
        found, form = find_includes(root, path)
        problems += form
        for where, target in found:
            if not target.is_file():
                problems.append(f"{where}: include(\"{target.name}\") names no file "
                                f"({target} does not exist)")
            edges.setdefault(path.resolve(), []).append(target.resolve())
    package_files = [path for path, _, in_package in parsed if in_package]
    for src in sorted({julia_dir / p.relative_to(julia_dir).parts[0] / "src"
                       for p in package_files}):
        main = src / f"{src.parent.name}.jl"
        if not main.is_file():
            problems.append(f"{src}: no {main.name}, the file that defines module "
                            f"{src.parent.name}")
            continue
        reached, todo = set(), [main.resolve()]
        while todo:
            f = todo.pop()
            if f not in reached:
                reached.add(f)
                todo += edges.get(f, [])
        for path in package_files:
            if src in path.parents and path.resolve() not in reached:
                problems.append(f"{path}: not included by {main.name} (directly or through an "
                                "included file), so the module does not load what it defines")
    return problems


# ---- the checks ----------------------------------------------------------------------------


def mirrored_structs(header: cheader.Header) -> dict[str, list[cheader.Field]]:
    """The header's structs with a layout to mirror (an opaque handle has none)."""
    return {s.name: s.fields for s in header.structs if s.fields is not None}


def enum_constants(header: cheader.Header) -> dict[str, int]:
    return {m.name: m.value for e in header.enums for m in e.members}


def check(julia_dir: Path, header: cheader.Header, verbose: bool = False) -> list[str]:
    if not header.functions:
        return [f"{header.path}: no function declarations found"]
    files = sorted(julia_dir.rglob("*.jl"))
    if not files:
        return [f"{julia_dir}: no .jl files"]
    problems: list[str] = []
    parsed = []
    for path in files:
        root, syntax = parse_julia(path)
        problems += syntax
        # The package is what users load (…/src); tests and examples may call the library
        # too and are checked like it, but do not count as wrappers or mirrors.
        parsed.append((path, root, "src" in path.relative_to(julia_dir).parts))
    if problems:
        # Past a syntax error the tree is a guess (the error can swallow the whole module), so
        # every later finding would be noise.
        return problems

    problems += check_includes(parsed, julia_dir)
    constants: dict[str, tuple[str, str]] = {}
    structs: list[JuliaStruct] = []
    for path, root, in_package in parsed:
        if in_package:
            constants.update(julia_constants(root, path))
            structs += julia_structs(root, path)
    aliases = julia_type_aliases(constants)

    wrapped: dict[str, list[str]] = {}
    for path, root, in_package in parsed:
        calls, form = find_ccalls(root, path)
        problems += form
        for call in calls:
            problems += check_call(call, header, aliases)
            if in_package and call.wrapper is not None and header.function(call.name):
                wrapped.setdefault(call.name, []).append(call.wrapper)
            if verbose:
                print(f"{call.where}: {call.wrapper or '(top level)'} -> {call.name}"
                      f"({', '.join(call.args)})::{call.result}")
    for f in header.functions:
        if f.deprecated_alias_of is not None:
            continue  # see the module docstring: an alias needs no Julia wrapper
        if f.name not in wrapped:
            problems.append(
                f"{header.path}:{f.line}: {f.name} has no wrapper in the Julia package "
                f"(no function under {julia_dir}/*/src ccalls it)"
            )
    problems += check_structs(structs, header, aliases, julia_dir)
    problems += check_constants(constants, header, julia_dir)
    return problems


def check_structs(structs: list[JuliaStruct], header: cheader.Header, aliases: dict[str, str],
                  julia_dir: Path) -> list[str]:
    """Every header struct has one Julia mirror with the same fields, in order, of compatible
    types: a missing or mistyped field shifts every field after it."""
    out = []
    c_structs = mirrored_structs(header)
    by_c: dict[str, list[JuliaStruct]] = {}
    for s in structs:
        if s.mirrors not in c_structs:
            out.append(f"{s.where}: {s.name} mirrors {s.mirrors}, which {header.path.name} "
                       "does not define")
        by_c.setdefault(s.mirrors, []).append(s)
    for name, c_fields in c_structs.items():
        mirrors = by_c.get(name, [])
        if len(mirrors) != 1:
            out.append(f"{header.path}: {name} has {len(mirrors)} Julia mirrors under "
                       f"{julia_dir}/*/src (a struct whose docstring starts with `{name}`); "
                       "expected 1")
            continue
        s = mirrors[0]
        c_names = [f.name for f in c_fields]
        j_names = [f for f, _ in s.fields]
        if c_names != j_names:
            out.append(f"{s.where}: {s.name} has fields {j_names}, {name} has {c_names}")
            continue
        for f, (_, j) in zip(c_fields, s.fields):
            if not field_compatible(f.type, j, aliases):
                out.append(f"{s.where}: {s.name}.{f.name} is `{j}` in Julia, "
                           f"`{f.type.declare(f.name)}` in C")
    return out


def check_constants(constants: dict[str, tuple[str, str]], header: cheader.Header,
                    julia_dir: Path) -> list[str]:
    """The enum values, ABI_VERSION, HEADER_VERSION and UNLEARNABLE_WARNING the package
    hard-codes equal the header's (a stale ABI_VERSION makes __init__ refuse every library)."""
    out = []
    for name, value in enum_constants(header).items():
        if name not in constants:
            out.append(f"{header.path}: {name} is not defined under {julia_dir}/*/src")
            continue
        where, text = constants[name]
        m = re.fullmatch(r"(?:\w+\()?\s*(-?\d+)\s*\)?", text)
        if not m or int(m.group(1)) != value:
            out.append(f"{where}: {name} = {text} in Julia, {value} in {header.path.name}")
    macros = {d.name: d.literal for d in header.defines}
    for julia, macro, form in [("ABI_VERSION", "THRESHER_ABI_VERSION", "{}"),
                               ("HEADER_VERSION", "THRESHER_VERSION", "v{}"),
                               ("UNLEARNABLE_WARNING", "THRESHER_UNLEARNABLE_WARNING", "{}")]:
        want = form.format(macros.get(macro))
        if julia not in constants:
            out.append(f"{julia_dir}: the package defines no `const {julia}` ({macro})")
        elif constants[julia][1] != want:
            out.append(f"{constants[julia][0]}: {julia} = {constants[julia][1]} in Julia, "
                       f"{macro} is {macros.get(macro)} in {header.path.name}")
    return out


def check_call(call: JuliaCall, header: cheader.Header, aliases: dict[str, str]) -> list[str]:
    f = header.function(call.name)
    if f is None:
        close = [g.name for g in header.functions
                 if g.name.startswith(call.name) or call.name.startswith(g.name)]
        hint = f" (did you mean {' or '.join(close)}?)" if close else ""
        return [f"{call.where}: {call.name} is not a function of {header.path.name}{hint}"]
    out = []
    if f.deprecated_alias_of is not None:
        out.append(
            f"{call.where}: {call.name} is a deprecated alias; call {f.deprecated_alias_of}"
        )
    if call.library != "libthresher":
        out.append(f"{call.where}: {call.name} is called from {call.library or 'no library'},"
                   " not libthresher")
    if len(call.args) != len(f.params):
        out.append(
            f"{call.where}: {call.name} takes {len(f.params)} argument(s) in "
            f"{header.path.name}:{f.line}, the ccall passes {len(call.args)}"
        )
    else:
        for i, (c, j) in enumerate(zip(f.params, call.args)):
            if not compatible(c.type, j, aliases):
                out.append(f"{call.where}: {call.name} argument {i + 1} is `{c.type}` in C, "
                           f"`{j}` in Julia")
    if not compatible(f.result, call.result, aliases):
        out.append(f"{call.where}: {call.name} returns `{f.result}` in C, "
                   f"`{call.result}` in Julia")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--header", type=Path, default=ROOT / "include" / "thresher.h")
    ap.add_argument("--julia-dir", type=Path, default=ROOT / "bindings" / "julia")
    ap.add_argument("-v", "--verbose", action="store_true", help="list every ccall found")
    args = ap.parse_args(argv)
    try:
        header = cheader.parse_file(args.header)
        problems = check(args.julia_dir, header, args.verbose)
    except cheader.ParseError as e:
        print(f"check_binding: {args.header}: {e}", file=sys.stderr)
        return 2
    for p in problems:
        print(p, file=sys.stderr)
    if problems:
        print(f"check_binding: {len(problems)} problem(s)", file=sys.stderr)
        return 1
    aliases = sum(f.deprecated_alias_of is not None for f in header.functions)
    print(f"check_binding: every .jl parses; every ccall matches {args.header.name}; "
          f"{len(header.functions) - aliases} functions wrapped ({aliases} deprecated aliases "
          f"need none); {len(mirrored_structs(header))} structs and "
          f"{len(enum_constants(header))} enum "
          "constants mirrored")
    return 0


if __name__ == "__main__":
    sys.exit(main())
