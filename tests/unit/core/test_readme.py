"""The README's procedure table is the one the procedure table generates."""

from __future__ import annotations

from pathlib import Path

from service.readme import BEGIN, END, generated

README = Path(__file__).resolve().parents[3] / "README.md"


def test_the_readme_shows_the_procedure_table_as_declared():
    text = README.read_text(encoding="utf-8")
    start, end = text.index(BEGIN), text.index(END) + len(END)
    assert text[start:end] == generated(), "run `python -m service.readme` and paste its output"
