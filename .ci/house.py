#!/usr/bin/env python3
"""Checks the shape of the crate's sources under src/ (Python 3 standard library only).

For every `.rs` file under the source directory (default: `src/` beside this script's parent):

- at most 600 lines;
- no function longer than 70 lines, counted from the line of its `fn` to the line of the brace
  that closes its body (braces in strings, character literals and comments do not count);
- no `use super::*` (or any glob import from `super`) outside `#[cfg(test)]` modules, where it
  hides which items of the parent a file depends on;
- no import circle between sibling modules: for each module directory, an edge a -> b for every
  path from module a (a file, or a directory with everything under it) that names sibling b
  (`use super::b::..`, `use crate::m::b::..`, `super::b::f()`, use trees included); the edges of
  each directory must form a DAG.

Prints each violation as `file:line: what`, then a count; exits 1 if there is any, 0 otherwise.

Usage: python3 .ci/house.py [SRC_DIR]
       python3 .ci/house.py --self-test   (plants each violation in a temporary tree)
"""

import os
import re
import sys

MAX_FILE_LINES = 600
MAX_FN_LINES = 70

IDENT = r"[A-Za-z_][A-Za-z0-9_]*"


def strip_code(text):
    """`text` with comments, string literals and character literals blanked out.

    Every blanked character becomes a space, but newlines stay, so offsets and line numbers
    of what remains are those of the original text.
    """
    out = list(text)
    n = len(text)
    i = 0

    def blank(a, b):
        for k in range(a, min(b, n)):
            if out[k] != "\n":
                out[k] = " "

    def ident_before(k):
        return k > 0 and (text[k - 1].isalnum() or text[k - 1] == "_")

    while i < n:
        c = text[i]
        nxt = text[i + 1] if i + 1 < n else ""
        if c == "/" and nxt == "/":
            j = text.find("\n", i)
            j = n if j < 0 else j
            blank(i, j)
            i = j
        elif c == "/" and nxt == "*":
            # Block comments nest in Rust.
            depth, j = 1, i + 2
            while j < n and depth:
                if text.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif text.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            blank(i, j)
            i = j
        elif c in "rbc" and not ident_before(i) and re.match(r'(?:br|cr|r)#*"', text[i:i + 300]):
            m = re.match(r'(?:br|cr|r)(#*)"', text[i:])
            close = '"' + m.group(1)
            j = text.find(close, i + m.end())
            j = n if j < 0 else j + len(close)
            blank(i, j)
            i = j
        elif c == '"' or (c in "bc" and nxt == '"' and not ident_before(i)):
            j = i + (1 if c == '"' else 2)
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            blank(i, j + 1)
            i = j + 1
        elif c == "'" or (c == "b" and nxt == "'" and not ident_before(i)):
            q = i if c == "'" else i + 1
            if q + 1 < n and text[q + 1] == "\\":
                j = q + 2
                while j < n and text[j] != "'" and text[j] != "\n":
                    j += 1
                blank(i, j + 1)
                i = j + 1
            elif q + 2 < n and text[q + 2] == "'":
                blank(i, q + 3)
                i = q + 3
            else:
                # A lifetime or a loop label.
                i = q + 1
        else:
            i += 1
    return "".join(out)


def line_of(starts, offset):
    """1-based line number of `offset`, given the offsets at which lines start."""
    lo, hi = 0, len(starts) - 1
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if starts[mid] <= offset:
            lo = mid
        else:
            hi = mid - 1
    return lo + 1


def matching_brace(code, open_at):
    """Offset of the brace closing the one at `open_at`, or None."""
    depth = 0
    for k in range(open_at, len(code)):
        if code[k] == "{":
            depth += 1
        elif code[k] == "}":
            depth -= 1
            if depth == 0:
                return k
    return None


def body_open(code, start):
    """Offset of the `{` opening the body of the item whose signature starts at `start`, or
    None when the item has no body (it ends with `;` first)."""
    depth = 0
    for k in range(start, len(code)):
        ch = code[k]
        if ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
        elif depth == 0 and ch == ";":
            return None
        elif depth == 0 and ch == "{":
            return k
    return None


def is_test_cfg(cfg):
    """Whether `#[cfg(<cfg>)]` only compiles under `test`."""
    return re.search(r"\btest\b", cfg) is not None and re.search(r"not\s*\(\s*test", cfg) is None


MOD_RE = re.compile(
    r"((?:#\s*\[[^\]]*\]\s*)*)(?:pub(?:\s*\([^)]*\))?\s+)?mod\s+(" + IDENT + r")\s*\{"
)


def inline_modules(code):
    """Inline `mod name { .. }` blocks: (open, close, name, is_test) each."""
    mods = []
    for m in MOD_RE.finditer(code):
        open_at = m.end() - 1
        close = matching_brace(code, open_at)
        if close is None:
            continue
        attrs = m.group(1)
        test = any(is_test_cfg(c) for c in re.findall(r"#\s*\[\s*cfg\s*\((.*)\)\s*\]", attrs))
        mods.append((open_at, close, m.group(2), test))
    return mods


def enclosing(mods, offset):
    """The inline modules around `offset`, outermost first."""
    return [mod for mod in mods if mod[0] < offset < mod[1]]


def parse_use_tree(text):
    """Expands a use tree (`a::{b, c::{d as e}}`) into paths, each a list of segments."""
    tokens = re.findall(IDENT + r"|::|\{|\}|,|\*", text)
    pos = 0

    def tree(prefix):
        nonlocal pos
        paths = []
        path = list(prefix)
        while pos < len(tokens):
            tok = tokens[pos]
            if tok == "{":
                pos += 1
                while pos < len(tokens) and tokens[pos] != "}":
                    paths.extend(tree(path))
                    if pos < len(tokens) and tokens[pos] == ",":
                        pos += 1
                pos += 1
                return paths
            if tok in (",", "}"):
                break
            if tok == "as":
                pos += 2
                continue
            if tok != "::":
                path.append(tok)
            pos += 1
        paths.append(path)
        return paths

    return tree([])


class Source:
    """One file: its module path, its stripped code and where its lines start."""

    def __init__(self, root, path):
        self.path = path
        with open(path, encoding="utf-8") as f:
            self.text = f.read()
        self.code = strip_code(self.text)
        self.starts = [0] + [m.end() for m in re.finditer("\n", self.text)]
        rel = os.path.relpath(path, root)[: -len(".rs")].split(os.sep)
        if rel[-1] in ("mod", "lib", "main"):
            rel = rel[:-1]
        self.module = rel
        self.mods = inline_modules(self.code)

    def line(self, offset):
        return line_of(self.starts, offset)

    def module_at(self, offset):
        return self.module + [mod[2] for mod in enclosing(self.mods, offset)]

    def in_test(self, offset):
        return any(mod[3] for mod in enclosing(self.mods, offset))


def check_sizes(src, report):
    lines = src.text.count("\n") + (0 if src.text.endswith("\n") else 1)
    if lines > MAX_FILE_LINES:
        report(src.path, 1, f"{lines} lines (at most {MAX_FILE_LINES})")
    for m in re.finditer(r"\bfn\s+(" + IDENT + r")", src.code):
        open_at = body_open(src.code, m.end())
        if open_at is None:
            continue
        close = matching_brace(src.code, open_at)
        if close is None:
            continue
        first, last = src.line(m.start()), src.line(close)
        length = last - first + 1
        if length > MAX_FN_LINES:
            report(src.path, first, f"fn {m.group(1)}: {length} lines (at most {MAX_FN_LINES})")


USE_RE = re.compile(r"\buse\s+([^;]*);")
PATH_RE = re.compile(r"\b(?:crate|super|self)(?:\s*::\s*" + IDENT + r")+")


def resolve(module, segments):
    """The absolute module path `segments` names from inside `module`, or None when it does
    not start at `crate`, `super` or `self`."""
    if not segments:
        return None
    if segments[0] == "crate":
        return segments[1:]
    if segments[0] not in ("super", "self"):
        return None
    base = list(module)
    k = 0
    while k < len(segments) and segments[k] in ("super", "self"):
        if segments[k] == "super":
            if not base:
                return None
            base.pop()
        k += 1
    return base + segments[k:]


OUT_OF_LINE_MOD_RE = re.compile(
    r"((?:#\s*\[[^\]]*\]\s*)+)(?:pub(?:\s*\([^)]*\))?\s+)?mod\s+(" + IDENT + r")\s*;"
)


def test_files(src):
    """Module paths of the files that `src` declares as test-only modules (`#[cfg(test)] mod x;`)."""
    out = set()
    for m in OUT_OF_LINE_MOD_RE.finditer(src.code):
        cfgs = re.findall(r"#\s*\[\s*cfg\s*\((.*)\)\s*\]", m.group(1))
        if any(is_test_cfg(c) for c in cfgs):
            out.add(tuple(src.module_at(m.start()) + [m.group(2)]))
    return out


def check_uses(src, report, edges, tests=frozenset()):
    """Glob imports from `super` outside test modules; edges between sibling modules. `tests`
    holds the module paths of test-only files."""
    test_file = any(tuple(src.module[:k]) in tests for k in range(1, len(src.module) + 1))
    for m in USE_RE.finditer(src.code):
        for path in parse_use_tree(m.group(1)):
            if path and path[-1] == "*" and all(s == "super" for s in path[:-1]) and len(path) > 1:
                if not (test_file or src.in_test(m.start())):
                    glob = "::".join(path)
                    report(src.path, src.line(m.start()),
                           f"`use {glob}` hides what this file takes from its parent: name the items")
            add_edge(src, m.start(), [s for s in path if s != "*"], edges)
    for m in PATH_RE.finditer(src.code):
        add_edge(src, m.start(), re.split(r"\s*::\s*", m.group(0)), edges)


def add_edge(src, offset, segments, edges):
    """Records the sibling edge (if any) that the path `segments` at `offset` makes."""
    module = src.module_at(offset)
    target = resolve(module, segments)
    if target is None:
        return
    here = src.module
    common = 0
    while common < min(len(here), len(target)) and here[common] == target[common]:
        common += 1
    if common >= len(here) or common >= len(target):
        # Parent to child or child to ancestor: not between siblings.
        return
    parent = tuple(here[:common])
    edges.setdefault(parent, {}).setdefault((here[common], target[common]),
                                            (src.path, src.line(offset)))


def child_modules(root, parent):
    """The modules directly inside `parent` that exist as files or directories."""
    d = os.path.join(root, *parent)
    names = set()
    if os.path.isdir(d):
        for entry in os.listdir(d):
            full = os.path.join(d, entry)
            if entry.endswith(".rs") and entry[:-3] not in ("mod", "lib", "main"):
                names.add(entry[:-3])
            elif os.path.isdir(full):
                names.add(entry)
    return names


def cycles(nodes, graph):
    """Strongly connected components of more than one node (Tarjan's algorithm)."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(nodes):
        if v not in index:
            visit(v)
    return out


def check_circles(root, edges, report):
    for parent, pairs in sorted(edges.items()):
        children = child_modules(root, list(parent))
        graph = {}
        for (a, b) in pairs:
            if a in children and b in children:
                graph.setdefault(a, set()).add(b)
        for comp in cycles(children, graph):
            where = "::".join(("crate",) + parent)
            members = set(comp)
            for (a, b), (path, line) in sorted(pairs.items()):
                if a in members and b in members:
                    report(path, line, f"import circle in {where} among {{{', '.join(comp)}}}: "
                                       f"{a} -> {b}; move what they share into a module both use")


def check_tree(root):
    """Every violation under `root`, sorted: (path, line, what) each."""
    found = []

    def report(path, line, what):
        found.append((os.path.relpath(path), line, what))

    sources = []
    for dirpath, _dirs, files in os.walk(root):
        for name in sorted(files):
            if name.endswith(".rs"):
                sources.append(Source(root, os.path.join(dirpath, name)))
    tests = set()
    for src in sources:
        tests |= test_files(src)
    edges = {}
    for src in sources:
        check_sizes(src, report)
        check_uses(src, report, edges, tests)
    check_circles(root, edges, report)
    return sorted(found)


def fn_of(name, body_lines, extra=""):
    """A function of exactly `body_lines + 2` lines (its `fn` line, the body, its brace)."""
    body = "".join(f"    let _x{i} = {i};{extra}\n" for i in range(body_lines))
    return f"fn {name}() {{\n{body}}}\n"


def self_test():
    """Runs the checks on a small tree made to break each rule once (and to come close to each
    without breaking it), and fails unless exactly the planted violations are reported."""
    import tempfile

    # Braces in strings, characters and comments, which must not end a function early.
    tricky = ' let _s = "}}"; let _c = \'}\'; let _r = r#"}"#; let _l: &\'static str = ""; /* } */ // }'
    files = {
        "lib.rs": "mod a;\nmod b;\nmod m;\nmod ok;\n",
        # a -> b -> a: a circle between siblings, through a use tree and an inline path.
        "a.rs": "use crate::{b::B, ok::Fine};\npub struct A;\n",
        "b.rs": "pub struct B;\nfn f() { let _ = super::a::A; }\n",
        "m/mod.rs": "mod child;\nmod other;\n#[cfg(test)]\nmod tests;\npub struct P;\n",
        "m/tests.rs": "use super::*;\n",
        # A glob of the parent outside tests; one inside a test module is fine.
        "m/child.rs": "use super::*;\n#[cfg(test)]\nmod tests {\n    use super::*;\n}\n"
        + fn_of("long", 69, tricky),
        "m/other.rs": "#[cfg(all(test, not(loom)))]\nmod tests {\n    use super::super::*;\n}\n"
        + fn_of("fits", 68, tricky),
        # 601 lines; and a parent-child import, which is no circle.
        "ok.rs": "use crate::m::P;\npub struct Fine;\n" + "// filler\n" * 599,
    }
    expected = [
        ("a.rs", 1, "import circle"),
        ("b.rs", 2, "import circle"),
        ("m/child.rs", 1, "`use super::*`"),
        ("m/child.rs", 6, "fn long: 71 lines"),
        ("ok.rs", 1, "601 lines"),
    ]
    with tempfile.TemporaryDirectory() as root:
        for name, text in files.items():
            path = os.path.join(root, name)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w", encoding="utf-8") as f:
                f.write(text)
        found = check_tree(root)
        got = [(os.path.relpath(os.path.abspath(p), root), line, what) for p, line, what in found]
    ok = len(got) == len(expected) and all(
        g[0] == e[0] and g[1] == e[1] and e[2] in g[2] for g, e in zip(got, expected)
    )
    for g in got:
        print(f"self-test found {g[0]}:{g[1]}: {g[2]}")
    if not ok:
        print(f"self-test FAILED: expected {expected}")
        return 1
    print("house self-test: every planted violation found, nothing else")
    return 0


def main():
    if sys.argv[1:] == ["--self-test"]:
        return self_test()
    here = os.path.dirname(os.path.abspath(__file__))
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "..", "src")
    root = os.path.normpath(root)
    if not os.path.isdir(root):
        print(f"{root}: not a directory; pass the crate's source directory", file=sys.stderr)
        return 2
    found = check_tree(root)
    for path, line, what in found:
        print(f"{path}:{line}: {what}")
    if found:
        print(f"{len(found)} violation(s)")
        return 1
    print("house: no violations")
    return 0


if __name__ == "__main__":
    sys.exit(main())
