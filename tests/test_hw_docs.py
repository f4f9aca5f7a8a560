"""``docs/hardware.md`` shows the tables the code derives for the reference network.

Run ``python -m tests.test_hw_docs`` to rewrite the page's tables after a change.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from boards.refmodel import random_model
from kwshw.hw.tables import embed_tables, hardware_tables

PAGE = Path(__file__).parent.parent / "docs" / "hardware.md"


def reference_tables() -> dict[str, str]:
    """The page's tables for the reference network with random weights, b = 4 and b = 8."""
    return hardware_tables({4: random_model(4), 8: random_model(8)})


def test_hardware_page_shows_the_derived_tables():
    text = PAGE.read_text()
    assert embed_tables(text, reference_tables()) == text, \
        "docs/hardware.md is stale: run `python -m tests.test_hw_docs`"


def test_embed_tables_replaces_only_between_markers():
    text = "a\n<!-- hw:x -->\nold\nrows\n<!-- /hw:x -->\nb\n<!-- hw:y -->\n<!-- /hw:y -->\n"
    out = embed_tables(text, {"x": "| new |", "y": "| t |"})
    assert out == ("a\n<!-- hw:x -->\n| new |\n<!-- /hw:x -->\nb\n"
                   "<!-- hw:y -->\n| t |\n<!-- /hw:y -->\n")
    assert embed_tables(out, {"x": "| new |"}) == out
    with pytest.raises(KeyError, match="hw:z"):
        embed_tables(text, {"z": ""})


if __name__ == "__main__":
    PAGE.write_text(embed_tables(PAGE.read_text(), reference_tables()))
    print(f"rewrote the tables of {PAGE}")
