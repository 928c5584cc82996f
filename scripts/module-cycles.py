#!/usr/bin/env python3
"""Lists import cycles between sibling modules of src/ (from `use crate::`,
`use super::` trees and `crate::x::` paths outside #[cfg(test)] blocks;
a name a module re-exports with `pub use child::Name` counts as a use of
that child). Exit 1 when there is a cycle.

Usage: scripts/module-cycles.py [-v] [src]   (-v: print every edge)"""
import os
import re
import sys

args = [a for a in sys.argv[1:] if not a.startswith("-")]
root = args[0] if args else "src"
verbose = "-v" in sys.argv


def module_of(path):
    rel = os.path.relpath(path, root)[:-3].split(os.sep)
    if rel[-1] in ("mod", "lib"):
        rel = rel[:-1]
    return "::".join(rel)


def strip_tests(text):
    """Drops `#[cfg(test)] mod x { ... }` blocks (brace matching)."""
    out, i = [], 0
    for m in re.finditer(r"#\[cfg\(test\)\]\s*(pub(\([^)]*\))?\s+)?mod\s+\w+\s*\{", text):
        if m.start() < i:
            continue
        out.append(text[i:m.start()])
        depth, j = 1, m.end()
        while j < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[j], 0)
            j += 1
        i = j
    out.append(text[i:])
    return "".join(out)


def expand(tree):
    """`a::{b, c::{d, e}}` -> ["a::b", "a::c::d", "a::c::e"]."""
    tree = tree.strip()
    i = tree.find("{")
    if i < 0:
        return [tree]
    prefix, inner = tree[:i], tree[i + 1:tree.rfind("}")]
    items, depth, cur = [], 0, ""
    for ch in inner:
        if ch == "," and depth == 0:
            items.append(cur)
            cur = ""
            continue
        depth += {"{": 1, "}": -1}.get(ch, 0)
        cur += ch
    items.append(cur)
    out = []
    for item in items:
        for e in expand(item) if item.strip() else []:
            out.append(prefix.rstrip(":") if e == "self" else prefix + e)
    return out


modules = {}
for dirpath, _, files in os.walk(root):
    for f in files:
        if not f.endswith(".rs") or f == "main.rs":
            continue
        name = module_of(os.path.join(dirpath, f))
        if any(p in ("tests", "proptests") or p.endswith("_tests") for p in name.split("::")):
            continue
        text = re.sub(r"//[^\n]*", "", open(os.path.join(dirpath, f)).read())
        modules[name] = strip_tests(text)

# (module, name) -> the child module that defines a re-exported name.
reexports = {}
for name, text in modules.items():
    for m in re.finditer(r"pub(?:\([^)]*\))?\s+use\s+([^;]+);", text):
        for path in expand(m.group(1)):
            segs = [s.strip() for s in path.split(" as ")[0].split("::")]
            if len(segs) >= 2 and segs[0] not in ("crate", "super", "self", "std"):
                reexports[(name, segs[-1])] = "::".join(([name] if name else []) + [segs[0]])


def paths_in(text):
    for m in re.finditer(r"\buse\s+((?:crate|super)[^;]*);", text):
        for path in expand(m.group(1)):
            yield path.split(" as ")[0].strip()
    for m in re.finditer(r"(?<!use )\b((?:crate|super)(?:::\w+)+)", text):
        yield m.group(1)


def resolve(here, path):
    segs = [s.strip() for s in path.split("::")]
    parts = here.split("::") if here else []
    if segs[0] == "crate":
        base, segs = [], segs[1:]
    else:
        base = parts[:-1]
        segs = segs[1:]
        while segs and segs[0] == "super":
            base, segs = base[:-1], segs[1:]
    target, rest = "::".join(base), segs
    for k in range(len(segs), 0, -1):
        cand = "::".join(base + segs[:k])
        if cand in modules:
            target, rest = cand, segs[k:]
            break
    if rest and (target, rest[0]) in reexports:
        target = reexports[(target, rest[0])]
    return target


edges = {}
for name, text in modules.items():
    deps = set()
    for path in paths_in(text):
        target = resolve(name, path)
        if target and target != name and not name.startswith(target + "::"):
            deps.add(target)
    edges[name] = deps


def strongly_connected(graph):
    index, low, stack, on, found, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
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
                found.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in list(graph):
        if v not in index:
            visit(v)
    return found


def at_depth(module, depth):
    return "::".join(module.split("::")[:depth])


cycles = 0
for depth in range(1, 5):
    graph = {}
    for a, deps in edges.items():
        for b in deps:
            ga, gb = at_depth(a, depth), at_depth(b, depth)
            siblings = ga.split("::")[:-1] == gb.split("::")[:-1]
            if ga != gb and siblings and len(ga.split("::")) == len(gb.split("::")) == depth:
                graph.setdefault(ga, set()).add(gb)
    for comp in strongly_connected(graph):
        cycles += 1
        print("cycle:", " <-> ".join(comp))
        for a in comp:
            print("   ", a, "->", ", ".join(sorted(b for b in graph.get(a, ()) if b in comp)))
if verbose:
    for a in sorted(edges):
        print(a or "(crate)", "->", ", ".join(sorted(edges[a])))
sys.exit(1 if cycles else 0)
