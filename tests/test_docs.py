"""Documented tables reproduce (keusim.doccheck; the full check is `make docs-check`).

The quick form regenerates the cheap rows of every marked table in README.md and docs/
(profile numbers, the x86-64 notify cost split, the x86-64 flat pingpong) and requires
them verbatim in the docs; a planted change to a documented number is caught.
"""

from __future__ import annotations

import pytest

from keusim import doccheck


def test_every_marked_table_names_a_generator_and_the_docs_have_some():
    found = [(p.name, name) for p in doccheck.doc_files()
             for _, name, _ in doccheck.marked_tables(p.read_text())]
    assert {name for _, name in found} == set(doccheck.TABLES)


def test_documented_tables_reproduce_quick():
    bad = doccheck.check(doccheck.doc_files(), quick=True)
    assert not bad, "\n".join(m.describe() for m in bad)


def test_a_changed_number_is_caught(tmp_path):
    table = doccheck.profiles_table()
    row = next(i for i, ln in enumerate(table) if ln.startswith("| `zen3`"))
    wrong = list(table)
    wrong[row] = wrong[row].replace("| 3.24 |", "| 3.25 |")
    assert wrong != table
    md = tmp_path / "doc.md"
    md.write_text("Profiles:\n\n<!-- docs-check: profiles -->\n" + "\n".join(wrong) + "\n\nmore\n")
    (m,) = doccheck.check([md])
    assert (m.table, m.line) == ("profiles", 3)
    assert "| 3.25 |" in m.describe() and "| 3.24 |" in m.describe()
    md.write_text("<!-- docs-check: profiles -->\n" + "\n".join(table) + "\n")
    assert doccheck.check([md]) == [] and doccheck.check([md], quick=True) == []


def test_bad_markers_are_one_clear_error(tmp_path):
    md = tmp_path / "doc.md"
    md.write_text("<!-- docs-check: no-such-table -->\n| a |\n|---|\n")
    with pytest.raises(doccheck.DocCheckError, match="no-such-table"):
        doccheck.check([md])
    md.write_text("<!-- docs-check: profiles -->\nnot a table\n")
    with pytest.raises(doccheck.DocCheckError, match="not followed by a markdown table"):
        doccheck.check([md])


def test_experiment_cells_compare_the_simulated_column_only(tmp_path):
    """docs/experiments.md's experiment tables: a changed keusim cell is caught, a changed
    native cell is not (native figures move), a row the doc lacks is caught."""
    data = {"comparison": [
        {"claim": "Ring a | b", "paper": "150", "keusim": "987 (raptorlake)", "native": "3,699",
         "why": "x"},
        {"claim": "Tag", "paper": "~15", "keusim": "76 (zen3)", "native": "95", "why": "y"}]}
    head = "`python experiments/x.py` — 8.0 s; keusim 0.1.0 @ abc, AMD EPYC\n\n"
    table = ("| claim | paper | keusim (simulated) | native (host) | why they differ |\n"
             "|---|---|---|---|---|\n"
             "| Ring a \\| b | 150 | 987 (raptorlake) | {native} | x |\n"
             "| Tag | ~15 | {tag} | 95 | y |\n\nmore\n")
    md = tmp_path / "experiments.md"
    md.write_text(head + table.format(native="1,001", tag="76 (zen3)"))
    assert doccheck.experiment_cells(md, ("x",), {"x": data}) == []
    md.write_text(head + table.format(native="3,699", tag="75 (zen3)"))
    (m,) = doccheck.experiment_cells(md, ("x",), {"x": data})
    assert m.table == "x: Tag" and m.line == 6 and "75 (zen3)" in m.describe()
    data["comparison"].append({"claim": "New", "paper": "", "keusim": "1", "native": "",
                               "why": ""})
    md.write_text(head + table.format(native="1,001", tag="76 (zen3)"))
    (m,) = doccheck.experiment_cells(md, ("x",), {"x": data})
    assert m.table == "x: New" and "None" in m.describe()
