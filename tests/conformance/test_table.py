"""``docs/CONFORMANCE.md`` is what ``tools/conformance.py`` computes now (it cannot drift)."""

from __future__ import annotations

from pathlib import Path

from tools.conformance import TABLE, evaluate, manifest_rows, render


def test_the_table_is_up_to_date(corpus: Path) -> None:
    assert TABLE.read_text(encoding="utf-8") == render(evaluate(corpus)), (
        "docs/CONFORMANCE.md is out of date: run `make conformance`"
    )


def test_every_manifest_file_is_judged_and_parses(corpus: Path) -> None:
    results = evaluate(corpus)
    assert [r.row.file for r in results] == [r.file for r in manifest_rows(corpus)]
    assert {r.row.section for r in results} == {"miwg", "spiff", "bpmn-engine"}
    assert all((corpus / r.row.file).is_file() for r in results)
    assert [r.row.file for r in results if not r.parses] == []
    miwg = [r for r in results if r.row.section == "miwg" and r.row.file.endswith(".bpmn")]
    assert [(r.row.file, r.reason) for r in miwg if r.status != "pass"] == []
    assert len(miwg) == 21
    for r in results:
        assert r.status in {"pass", "fail", "unsupported", "support"}
        assert r.reason
