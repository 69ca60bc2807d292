#!/usr/bin/env python3
"""Finds import circles between the library's modules.

Usage: python3 tools/import_cycles.py [SRC_DIR] [--known FILE]
       (defaults: src, and tools/import_cycles.known beside this script)

Walks the module tree from SRC_DIR/lib.rs (`mod x;`, `#[path = ..] mod x;`
and inline `mod x { .. }`), reads every `use` tree and every path in the code
that starts at `crate::`, `super::`, `self::`, a child module or a name a `use`
bound to a module, and resolves each to the module that defines the item,
following re-exports (`pub use` in a `mod.rs` is a door, not a dependency of
its own). A `mod x;` declaration is not an import.

The nodes are modules: one per file, plus one per inline module (so a
`mod tests { use super::*; }` is a node of its own and the generated
`tfplugin::proto` is not its parent's `mod.rs`). An edge A -> B means code in
A names an item defined in B. Every strongly connected component of two or
more modules is a circle: it is printed with one edge of each step (file and
line), and the exit status is 1. No circle: exit 0, one summary line.

The known-circles file lists circles not yet broken, one a line (the
modules of the circle, space-separated; `#` starts a comment). A circle
exactly as listed is printed as known and does not fail; a new circle, one
that grew, or a listed circle that is gone (remove its line) fails.

Only Python's standard library is used.
"""

import os
import re
import sys
from collections import defaultdict

IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def strip(text):
    """The text with comments, string and char literals blanked (newlines kept)."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif text.startswith("/*", i):
            depth, j = 1, i + 2
            while j < n and depth:
                if text.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif text.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif c == "r" and re.match(r'r#*"', text[i:i + 80]) and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")):
            m = re.match(r'r(#*)"', text[i:])
            end = '"' + m.group(1)
            j = text.find(end, i + len(m.group(0)))
            j = n if j < 0 else j + len(end)
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif c == "b" and text.startswith('b"', i) and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")):
            out.append(" ")
            i += 1
        elif c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            j += 1
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif c == "'":
            # A char literal ('a', '\n', '\u{1F600}') or a lifetime ('a).
            m = re.match(r"'(\\(u\{[0-9a-fA-F]+\}|x[0-9a-fA-F]{2}|.)|[^\\'])'", text[i:i + 12])
            if m:
                out.append(" " * len(m.group(0)))
                i += len(m.group(0))
            else:
                out.append(c)
                i += 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


TOKEN = re.compile(r"\s+|::|[A-Za-z_][A-Za-z0-9_]*|.", re.S)


def tokens(text):
    line = 1
    for m in TOKEN.finditer(text):
        t = m.group(0)
        if not t.isspace():
            yield t, line
        line += t.count("\n")


class Module:
    def __init__(self, path, file, parent):
        self.path = path  # tuple of names, () for the crate root
        self.file = file
        self.parent = parent
        self.children = {}  # name -> Module
        self.imports = {}  # bound name -> (target path tuple, line)
        self.globs = []  # (target path tuple, line)
        self.refs = []  # (path tuple relative to this module, line)

    def name(self):
        return "crate" + "".join("::" + p for p in self.path)


class Crate:
    def __init__(self, src):
        self.src = src
        self.modules = {}
        self.root = self.load(os.path.join(src, "lib.rs"), (), None, src, True)

    def load(self, file, path, parent, mod_dir, owns_dir):
        module = Module(path, file, parent)
        self.modules[path] = module
        with open(file, encoding="utf-8") as f:
            raw = f.read()
        # `#[path = "x"]` attributes, by the line of the `mod` they sit on.
        path_attrs = {}
        for m in re.finditer(r'#\[path\s*=\s*"([^"]+)"\]\s*(?:#\[[^\]]*\]\s*)*(?:pub(?:\([^)]*\))?\s+)?mod\s+(\w+)', raw):
            path_attrs[(raw.count("\n", 0, m.start(2)) + 1, m.group(2))] = m.group(1)
        toks = list(tokens(strip(raw)))
        # This file's own directory for child modules: `a/mod.rs` and
        # `lib.rs` own their directory; `a.rs` puts children in `a/`.
        child_dir = mod_dir if owns_dir else os.path.join(mod_dir, os.path.basename(file)[:-3])
        self.walk(toks, module, os.path.dirname(file), child_dir, path_attrs)
        return module

    def walk(self, toks, top, file_dir, top_child_dir, path_attrs):
        # Stack of (module, brace depth at which it opened, its child dir).
        stack = [(top, 0, top_child_dir)]
        depth = 0
        i, n = 0, len(toks)
        while i < n:
            t, line = toks[i]
            module, _, child_dir = stack[-1]
            if t == "{":
                depth += 1
            elif t == "}":
                depth -= 1
                if len(stack) > 1 and depth < stack[-1][1]:
                    stack.pop()
            elif t == "mod" and i + 2 < n and IDENT.fullmatch(toks[i + 1][0]) and toks[i + 2][0] in ";{" and (i == 0 or toks[i - 1][0] != "::"):
                name = toks[i + 1][0]
                if toks[i + 2][0] == ";":
                    attr = path_attrs.get((toks[i + 1][1], name))
                    if attr:
                        base = file_dir if len(stack) == 1 else child_dir
                        child_file = os.path.normpath(os.path.join(base, attr))
                        child = self.load(child_file, module.path + (name,), module, os.path.dirname(child_file), False)
                    else:
                        f1 = os.path.join(child_dir, name + ".rs")
                        f2 = os.path.join(child_dir, name, "mod.rs")
                        if os.path.exists(f1):
                            child = self.load(f1, module.path + (name,), module, child_dir, False)
                        else:
                            child = self.load(f2, module.path + (name,), module, os.path.join(child_dir, name), True)
                    module.children[name] = child
                    i += 3
                    continue
                child = Module(module.path + (name,), module.file, module)
                self.modules[child.path] = child
                module.children[name] = child
                depth += 1
                stack.append((child, depth, os.path.join(child_dir, name)))
                i += 3
                continue
            elif t == "use" and (i == 0 or toks[i - 1][0] != "::"):
                j = i + 1
                while j < n and toks[j][0] != ";":
                    j += 1
                self.use_tree(module, [x for x, _ in toks[i + 1:j]], line)
                i = j + 1
                continue
            elif IDENT.fullmatch(t) and i + 1 < n and toks[i + 1][0] == "::" and (i == 0 or toks[i - 1][0] != "::"):
                segs = [t]
                j = i + 1
                while j + 1 < n and toks[j][0] == "::" and IDENT.fullmatch(toks[j + 1][0]):
                    segs.append(toks[j + 1][0])
                    j += 2
                module.refs.append((tuple(segs), line))
                i = j
                continue
            i += 1

    def use_tree(self, module, toks, line):
        """Records the bindings of `use <toks>;` in module."""

        def parse(pos, prefix):
            segs = list(prefix)
            while pos < len(toks):
                t = toks[pos]
                if t == "{":
                    pos += 1
                    while toks[pos] != "}":
                        pos = parse(pos, segs)
                        if toks[pos] == ",":
                            pos += 1
                    return pos + 1
                if t == "*":
                    module.globs.append((tuple(segs), line))
                    return pos + 1
                if t == "::":
                    pos += 1
                    continue
                if IDENT.fullmatch(t):
                    if pos + 1 < len(toks) and toks[pos + 1] == "::":
                        segs.append(t)
                        pos += 1
                        continue
                    full = tuple(segs) if t == "self" else tuple(segs) + (t,)
                    bound = segs[-1] if t == "self" else t
                    pos += 1
                    if pos + 1 < len(toks) and toks[pos] == "as":
                        bound = toks[pos + 1]
                        pos += 2
                    module.imports[bound] = (full, line)
                    return pos
                return pos + 1
            return pos

        if toks and toks[0] == "::":
            return  # `use ::extern_crate::..`
        parse(0, [])

    # --- resolution -----------------------------------------------------

    def start(self, module, first, hops):
        """The module a path's first segment names, or None (an extern crate,
        a local item or a type's associated item)."""
        if first == "crate":
            return self.root
        if first == "self":
            return module
        if first == "super":
            return module.parent
        if first in module.children:
            return module.children[first]
        if first in module.imports and module.imports[first][0][0] != first:
            target = self.resolve(module, module.imports[first][0], hops + 1)
            if target is not None and target[1] == ():
                return target[0]
        return None

    def resolve(self, module, segs, hops):
        """(defining module, rest) for a path seen in module, following
        re-exports; None if the path leaves the crate."""
        if hops > 20 or not segs:
            return None
        current = self.start(module, segs[0], hops)
        if current is None:
            return None
        rest = list(segs[1:])
        while rest:
            head = rest[0]
            if head == "super":
                current = current.parent
                rest.pop(0)
            elif head == "self":
                rest.pop(0)
            elif head in current.children:
                current = current.children[head]
                rest.pop(0)
            else:
                break
        if rest and rest[0] in current.imports and current.imports[rest[0]][0] != tuple(segs):
            # A re-export (or an import a child reaches through `super::`).
            target = self.resolve(current, current.imports[rest[0]][0], hops + 1)
            if target is not None:
                return target[0], tuple(rest[1:]) if target[1] == () else target[1]
        return current, tuple(rest)

    def edges(self):
        """{(from, to): (file, line)} over the whole crate."""
        found = {}

        def add(module, target, line):
            if target is None:
                return
            to = target[0]
            if to is module:
                return
            # Naming an ancestor module itself (`use super::*` in a test
            # module) or a child module's name is structure, not an import
            # of code, unless an item of it is used: resolve() has already
            # gone through re-exports to the defining module.
            key = (module.path, to.path)
            found.setdefault(key, (module.file, line))

        for module in self.modules.values():
            for name, (segs, line) in module.imports.items():
                target = self.resolve(module, segs, 0)
                if target is not None and target[1] == () and target[0] in module_chain(module):
                    continue
                add(module, target, line)
            for segs, line in module.globs:
                target = self.resolve(module, segs + ("*",), 0) if segs else None
                if target is not None and target[0] in module_chain(module):
                    continue
                add(module, target, line)
            for segs, line in module.refs:
                add(module, self.resolve(module, segs, 0), line)
        return found


def module_chain(module):
    """module and its ancestors."""
    out = []
    while module is not None:
        out.append(module)
        module = module.parent
    return out


def cycles(nodes, succ):
    """Strongly connected components with two or more nodes (Tarjan)."""
    index, low, on, stack, out = {}, {}, set(), [], []
    counter = [0]

    def visit(v):
        work = [(v, iter(sorted(succ[v])))]
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        while work:
            node, it = work[-1]
            advanced = False
            for w in it:
                if w not in index:
                    index[w] = low[w] = counter[0]
                    counter[0] += 1
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(succ[w]))))
                    advanced = True
                    break
                if w in on:
                    low[node] = min(low[node], index[w])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                comp = []
                while True:
                    w = stack.pop()
                    on.discard(w)
                    comp.append(w)
                    if w == node:
                        break
                if len(comp) > 1:
                    out.append(sorted(comp))

    for v in sorted(nodes):
        if v not in index:
            visit(v)
    return out


def shortest_cycle(comp, succ):
    """One short circle through the component's first node (breadth-first)."""
    members = set(comp)
    start = comp[0]
    prev = {start: None}
    queue = [start]
    while queue:
        v = queue.pop(0)
        for w in sorted(succ[v]):
            if w not in members:
                continue
            if w == start:
                path = [v]
                while prev[path[-1]] is not None:
                    path.append(prev[path[-1]])
                return list(reversed(path)) + [start]
            if w not in prev:
                prev[w] = v
                queue.append(w)
    return comp


def read_known(path):
    known = []
    if not os.path.exists(path):
        return known
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.split("#", 1)[0].split()
            if line:
                known.append(frozenset(line))
    return known


def main(argv):
    args = argv[1:]
    known_file = os.path.join(os.path.dirname(os.path.abspath(__file__)), "import_cycles.known")
    if "--known" in args:
        i = args.index("--known")
        if i + 1 >= len(args):
            print("import_cycles: --known needs a file", file=sys.stderr)
            return 2
        known_file = args[i + 1]
        del args[i:i + 2]
    src = args[0] if args else "src"
    if not os.path.exists(os.path.join(src, "lib.rs")):
        print(f"import_cycles: no lib.rs in {src!r}: pass the crate's src directory", file=sys.stderr)
        return 2
    crate = Crate(src)
    edges = crate.edges()
    succ = defaultdict(set)
    for a, b in edges:
        succ[a].add(b)
    names = {path: module.name() for path, module in crate.modules.items()}
    known = read_known(known_file)
    found = cycles(list(crate.modules), succ)
    failed = 0
    seen_known = set()
    for comp in found:
        members = frozenset(names[p] for p in comp)
        if members in known:
            seen_known.add(members)
            label = "known circle (listed in " + os.path.relpath(known_file) + ")"
        else:
            failed += 1
            label = "circle"
        print(f"{label}: " + ", ".join(names[p] for p in comp))
        path = shortest_cycle(comp, succ)
        for a, b in zip(path, path[1:]):
            file, line = edges[(a, b)]
            print(f"  {names[a]} -> {names[b]}  ({os.path.relpath(file)}:{line})")
    for members in known:
        if members not in seen_known:
            failed += 1
            print("listed as known but no longer a circle (remove its line from "
                  f"{os.path.relpath(known_file)}): " + " ".join(sorted(members)))
    summary = (f"{len(crate.modules)} modules, {len(edges)} imports, "
               f"{len(found) - len(seen_known)} new circle(s), {len(seen_known)} known")
    if failed:
        print(f"import_cycles: FAILED: {summary}", file=sys.stderr)
        return 1
    print(f"import_cycles: ok: {summary}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
