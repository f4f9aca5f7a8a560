"""Dependencies run one way: the library (``kwshw`` without ``kwshw.app``) never imports
``sim``, ``boards`` or the application shell; ``sim`` and ``boards`` import the library, never
the shell; only ``kwshw.app`` (CLI, ``kwshw all``, report) sits above all of them. Every
import counts, also one inside a function."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def imports(path: Path) -> list[tuple[int, str]]:
    """``(line, absolute module name)`` of every import in ``path``, relative ones resolved."""
    rel = path.relative_to(ROOT).with_suffix("")
    package = list(rel.parts[:-1]) if rel.name != "__init__" else list(rel.parts[:-1])
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            out.append((node.lineno, mod))
            # "from kwshw import app" imports the package kwshw.app
            out += [(node.lineno, f"{mod}.{a.name}") for a in node.names]
    return out


def _under(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def violations(layer: str, forbidden: tuple[str, ...]) -> list[str]:
    """``file:line imports module`` for every forbidden import of the files of ``layer``."""
    found = []
    for path in sorted((ROOT / layer.replace(".", "/")).rglob("*.py")):
        dotted = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        if layer == "kwshw" and (_under(dotted, "kwshw.app") or dotted in SHELL):
            continue
        for line, name in imports(path):
            if any(_under(name, f) for f in forbidden):
                found.append(f"{path.relative_to(ROOT)}:{line} imports {name}")
    return found


#: Modules of ``kwshw`` outside ``kwshw.app`` that belong to the shell: ``python -m kwshw``.
SHELL = ("kwshw.__main__",)
RULES = {
    "kwshw": ("sim", "boards", "kwshw.app"),
    "sim": ("kwshw.app",),
    "boards": ("kwshw.app", "sim"),
}


@pytest.mark.parametrize("layer", sorted(RULES))
def test_dependencies_run_one_way(layer):
    bad = violations(layer, RULES[layer])
    assert not bad, "wrong-way imports:\n  " + "\n  ".join(bad)


def test_the_check_sees_a_wrong_way_import(tmp_path, monkeypatch):
    """The rule is not vacuous: a library module importing boards, directly or inside a
    function, relatively or not, is reported."""
    fake = ROOT / "kwshw" / "_layering_probe.py"
    fake.write_text("def f():\n    from boards.build import build\n    return build\n"
                    "from .app import cli\n")
    try:
        bad = violations("kwshw", RULES["kwshw"])
    finally:
        fake.unlink()
    assert any("_layering_probe.py:2 imports boards.build" in b for b in bad)
    assert any("_layering_probe.py:4 imports kwshw.app" in b for b in bad)
