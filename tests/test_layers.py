"""Layer rules for the voicegui package, checked on the source with `ast` (no import is executed).

The data path runs decode <- stream <- features <- ui; the built-in server stands beside it and must work
without it (it is also started alone by `voicegui serve`); cli sits on top of everything. "base" is the
top-level leaf modules (text, files, crash and the facts modules: formats, limits, app_dirs, wavfile,
openai_models) which know nothing of any voicegui package, so every layer may use them.

Every import counts, module-level, function-level and under `if TYPE_CHECKING:`: a function-level import
is still a dependency, it only moves the failure to run time. Each failure names the module, the line and
the rule it breaks.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "voicegui"

# Top-level modules that are not base: each has its own row in ALLOWED.
SETTINGS = "settings"
PROVIDERS = "providers"
ENTRY = "__main__"  # `python -m voicegui`: the cli's entry point, same rights as cli

# Which layers a layer may import (itself always allowed). "base" is every other top-level module.
ALLOWED: dict[str, set[str]] = {
    "base": {"base"},
    "decode": {"base"},
    "stream": {"decode", "base"},
    "features": {"stream", "decode", "base"},
    # The server runs alone (`voicegui serve`, the embedded thread): nothing of the player (ui, stream,
    # features, cli) and, as it stands, nothing of decode/settings/providers either.
    "server": {"base"},
    "ui": {"features", "stream", "decode", SETTINGS, PROVIDERS, "server", "base"},
    PROVIDERS: {"base"},
    # A setting names a provider preset and defaults to its base URL/model/voice: settings sits on
    # providers (providers itself only on base).
    SETTINGS: {PROVIDERS, "base"},
    "cli": {"*"},
    ENTRY: {"*"},
}


@dataclass(frozen=True)
class Import:
    module: str  # the importing module, dotted
    line: int
    target: str  # the voicegui module (or package) imported, dotted
    names: tuple[str, ...]  # names taken with `from target import ...`


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def all_modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def layer_of(module: str) -> str:
    """'voicegui.stream.ring' -> 'stream'; top-level leaf modules -> 'base'."""
    parts = module.split(".")
    if len(parts) == 1:  # voicegui/__init__.py
        return "base"
    if (PACKAGE / parts[1]).is_dir():
        return parts[1]
    if parts[1] in (SETTINGS, PROVIDERS, ENTRY):
        return parts[1]
    return "base"


def resolve(target: str, modules: dict[str, Path]) -> str:
    """The module a dotted name refers to: itself, or the longest prefix that is a module."""
    while target not in modules and "." in target:
        target = target.rsplit(".", 1)[0]
    return target


def imports_of(module: str, path: Path, modules: dict[str, Path]) -> list[Import]:
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    out: list[Import] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "voicegui" or alias.name.startswith("voicegui."):
                    out.append(Import(module, node.lineno, resolve(alias.name, modules), ()))
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            if not (base == "voicegui" or base.startswith("voicegui.")):
                continue
            plain: list[str] = []
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                if sub in modules:  # `from voicegui.x import submodule`
                    out.append(Import(module, node.lineno, sub, ()))
                else:
                    plain.append(alias.name)
            if plain:
                out.append(Import(module, node.lineno, resolve(base, modules), tuple(plain)))
    return out


def private_attribute_uses(module: str, path: Path, modules: dict[str, Path]) -> list[tuple[int, str, str]]:
    """(line, alias, attribute) for `alias._name` where alias is a voicegui module bound by an import."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    aliases: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("voicegui") and alias.asname:
                    aliases.add(alias.asname)
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("voicegui"):
            for alias in node.names:
                if f"{node.module}.{alias.name}" in modules:
                    aliases.add(alias.asname or alias.name)
    out = []
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases
                and node.attr.startswith("_") and not node.attr.startswith("__")):
            out.append((node.lineno, node.value.id, node.attr))
    # `import voicegui.x.y` then `voicegui.x.y._z`: a dotted chain starting at the package name
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
            chain: list[str] = []
            value: ast.expr = node.value
            while isinstance(value, ast.Attribute):
                chain.append(value.attr)
                value = value.value
            if isinstance(value, ast.Name) and value.id == "voicegui":
                dotted = ".".join(["voicegui", *reversed(chain)])
                if dotted in modules:
                    out.append((node.lineno, dotted, node.attr))
    return out


def collect() -> tuple[dict[str, Path], list[Import]]:
    modules = all_modules()
    found: list[Import] = []
    for name, path in modules.items():
        found.extend(imports_of(name, path, modules))
    return modules, found


def where(modules: dict[str, Path], imp: Import) -> str:
    return f"{modules[imp.module].relative_to(ROOT)}:{imp.line}"


def test_layers() -> None:
    modules, found = collect()
    broken = []
    for imp in found:
        src, dst = layer_of(imp.module), layer_of(imp.target)
        allowed = ALLOWED[src]
        if src == dst or "*" in allowed or dst in allowed:
            continue
        broken.append(f"{where(modules, imp)}: {imp.module} imports {imp.target}: "
                      f"rule '{src} may import only {', '.join(sorted(allowed | {src}))}'")
    assert not broken, "layer rules broken:\n" + "\n".join(broken)


def test_no_private_names_across_modules() -> None:
    modules, found = collect()
    broken = []
    for imp in found:
        if imp.target == imp.module:
            continue
        for name in imp.names:
            if name.startswith("_") and not name.startswith("__"):
                broken.append(f"{where(modules, imp)}: {imp.module} imports {imp.target}.{name}: "
                              "rule 'no private name of another module'")
    for name, path in modules.items():
        for line, alias, attr in private_attribute_uses(name, path, modules):
            broken.append(f"{path.relative_to(ROOT)}:{line}: {name} uses {alias}.{attr}: "
                          "rule 'no private name of another module'")
    assert not broken, "private names used across modules:\n" + "\n".join(broken)


def find_cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected component with more than one module (Tarjan), each as a sorted list."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    counter = 0

    def visit(v: str) -> None:
        nonlocal counter
        index[v] = low[v] = counter
        counter += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def test_no_import_cycles() -> None:
    modules, found = collect()
    edges: dict[str, set[str]] = {}
    lines: dict[tuple[str, str], int] = {}
    for imp in found:
        if imp.target != imp.module:
            edges.setdefault(imp.module, set()).add(imp.target)
            lines.setdefault((imp.module, imp.target), imp.line)
    cycles = find_cycles(edges)
    report = []
    for component in cycles:
        members = set(component)
        links = [f"  {modules[a].relative_to(ROOT)}:{lines[a, b]}: {a} imports {b}"
                 for a in component for b in sorted(edges.get(a, ())) if b in members]
        report.append("rule 'no import cycle' broken by " + ", ".join(component) + ":\n" + "\n".join(links))
    assert not cycles, "import cycles:\n" + "\n".join(report)


def test_rules_see_every_layer() -> None:
    """A new package under voicegui/ needs its own row in ALLOWED before it can be used."""
    for name in all_modules():
        assert layer_of(name) in ALLOWED, f"{name}: layer {layer_of(name)!r} has no rule in tests/test_layers.py"
