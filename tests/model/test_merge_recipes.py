"""Several recipes as one account's recipe (the demo account): merged, or refused by name."""

from __future__ import annotations

import shutil
from pathlib import Path

from flowlane.model.recipe import merge_recipes

RECIPES = Path(__file__).resolve().parents[2] / "recipes"


def test_the_demo_recipes_merge_without_problems() -> None:
    merged = merge_recipes([RECIPES / "order-processing", RECIPES / "homework", RECIPES / "events"])
    assert merged.problems == []
    assert {"new-order", "reach-by-phone", "homework", "intake", "register"} <= set(
        merged.processes
    )
    assert merged.schema is not None
    assert {"order", "event", "registration", "user"} <= set(merged.schema.types)
    assert {"ask-phone"} <= set(merged.templates) and "registration" in merged.forms
    assert {"sales", "with-homework"} <= set(merged.schema.groups)


def test_every_recipe_merges_without_problems() -> None:
    """The demo account merges every recipe: keys unique, shared types defined alike."""
    merged = merge_recipes(sorted(p for p in RECIPES.iterdir() if (p / "processes").is_dir()))
    assert merged.problems == []
    assert {"homework", "webinar", "webinar-homework", "broadcast"} <= set(merged.processes)


def test_a_process_key_used_twice_is_a_problem_naming_both_files(tmp_path: Path) -> None:
    shutil.copytree(RECIPES / "homework", tmp_path / "again")
    merged = merge_recipes([RECIPES / "homework", tmp_path / "again"])
    texts = [str(p) for p in merged.problems]
    assert any(
        "process key 'homework' is used by" in t and str(tmp_path / "again") in t for t in texts
    )


def test_a_type_defined_differently_is_a_problem(tmp_path: Path) -> None:
    for name, label in (("a", "One"), ("b", "Two")):
        root = tmp_path / name
        (root / "processes").mkdir(parents=True)
        (root / "objects.yaml").write_text(
            f"types:\n  thing:\n    label: {label}\n    fields: {{title: {{type: string}}}}\n"
        )
    merged = merge_recipes([tmp_path / "a", tmp_path / "b"])
    assert [(p.block, p.message) for p in merged.problems] == [
        ("types.thing", f"defined differently in {tmp_path / 'a' / 'objects.yaml'}")
    ]
