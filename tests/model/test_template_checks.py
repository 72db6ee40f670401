"""Deploy checks of templates: missing templates, unknown names, fields, filters and tests.

Recipes are written to ``tmp_path`` and checked with :func:`validate_recipe` (what deploy
runs); every problem names the file, the block (or the template file) and what is unknown.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.support import write_recipe

from flowlane.model.recipe import load_recipe
from flowlane.model.render import TEMPLATE_NAMES, template_name_problems, template_refs
from flowlane.model.validate import validate_recipe

OBJECTS = """\
types:
  lead:
    fields:
      name: {type: string}
      client: {type: link, to: user}
"""

HEAD = """\
key: p
name: P
object: lead
counters: [calls]
variables:
  due: {type: datetime}
blocks:
  start: {type: start, next: m}
  done: {type: end}
"""


NAMES = ", ".join(sorted(TEMPLATE_NAMES))
NMAE = "type 'lead' has no field 'nmae' (object.nmae)"


def problems(tmp_path: Path, block: str, templates: dict[str, str] | None = None) -> list[str]:
    """Errors of a recipe whose process runs ``start -> m -> done`` with ``m`` given."""
    root = write_recipe(
        tmp_path / "r",
        {"p": HEAD + f"  m: {block}\n"},
        objects=OBJECTS,
        templates=templates,
    )
    recipe = load_recipe(root)
    assert recipe.problems == []
    found = [d for d in validate_recipe(recipe) if d.severity == "error"]
    return [str(d).replace(f"{root}/", "") for d in found]


def message(**params: str) -> str:
    inner = ", ".join(f"{k}: {v!r}" for k, v in params.items())
    return f"{{type: message, to: client, next: done, {inner}}}"


def test_a_clean_message_passes(tmp_path: Path) -> None:
    body = (
        "Hi {{ recipient.name }}, lead {{ object.name }} of {{ object.client.email }};"
        " {{ vars.due }} {{ counters.calls }} {{ now.year }} {{ answer.option if answer }}"
        " {% for i in range(2) %}{{ loop.index }}{% endfor %}{% set x = object.name %}{{ x }}"
        " {{ object.name | upper }} {% if object.name is string %}!{% endif %}"
        " {{ vars.get('due') }} {{ object.type }}"
    )
    assert problems(tmp_path, message(subject="Re: {{ object.id }}", body=body)) == []


def test_a_missing_template_is_an_error(tmp_path: Path) -> None:
    assert problems(tmp_path, message(template="nope")) == [
        "processes/p.yaml:m: template: template 'nope' does not exist"
    ]


def test_unknown_top_level_names_are_errors(tmp_path: Path) -> None:
    found = problems(tmp_path, message(subject="Hi {{ user.name }}", body="{{ objekt }}"))
    assert found == [
        f"processes/p.yaml:m: subject: unknown name 'user' (names: {NAMES})",
        f"processes/p.yaml:m: body: unknown name 'objekt' (names: {NAMES})",
    ]


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ("{{ object.nmae }}", "type 'lead' has no field 'nmae' (object.nmae)"),
        ("{{ object.client.mail }}", "type 'user' has no field 'mail' (object.client.mail)"),
        ("{{ recipient.nick }}", "type 'user' has no field 'nick' (recipient.nick)"),
        ("{{ vars.dew }}", "unknown variable 'dew' (declare it in 'variables:')"),
        ("{{ counters.visits }}", "unknown counter 'visits' (declare it in 'counters:')"),
        ("{{ answer.choice }}", "answer has no 'choice' (option, fields, by)"),
        ("{{ answer.by.nick }}", "type 'user' has no field 'nick' (answer.by.nick)"),
        ("{{ object['nmae'] }}", "type 'lead' has no field 'nmae' (object.nmae)"),
        ("{{ object.name | shout }}", "unknown filter 'shout'"),
        ("{% if object.name %}{{ object.name | shout }}{% endif %}", "unknown filter 'shout'"),
        ("{% if object.name is loud %}!{% endif %}", "unknown test 'loud'"),
    ],
)
def test_unknown_fields_variables_filters_and_tests_are_errors(
    tmp_path: Path, body: str, problem: str
) -> None:
    assert problems(tmp_path, message(subject="Hi", body=body)) == [
        f"processes/p.yaml:m: body: {problem}"
    ]


def test_names_a_template_defines_itself_are_not_checked(tmp_path: Path) -> None:
    body = (
        "{% for object in [1] %}{{ object.anything }}{% endfor %}"
        "{% macro hi(recipient) %}{{ recipient.nick }}{% endmacro %}{{ hi(object) }}"
    )
    assert problems(tmp_path, message(subject="Hi", body=body)) == []


def test_task_titles_and_texts_are_checked_too(tmp_path: Path) -> None:
    block = "{type: task, title: '{{ object.nmae }}', text: '{{ nobody }}', next: done}"
    found = problems(tmp_path, block)
    assert found == [
        "processes/p.yaml:m: title: type 'lead' has no field 'nmae' (object.nmae)",
        f"processes/p.yaml:m: text: unknown name 'nobody' (names: {NAMES})",
    ]


TEMPLATE = """\
---
subject: "About {{ object.name }}"
---
Hello {{ recipient.name }}, {{ object.nmae }} {{ nobody }} {{ object.name | shout }}
"""


def test_a_recipe_template_is_checked_once_for_names_and_per_process_for_fields(
    tmp_path: Path,
) -> None:
    found = problems(tmp_path, message(template="hello"), {"hello": TEMPLATE})
    assert found == [
        f"processes/p.yaml:m: template 'hello' body: {NMAE}",
        f"templates/hello.md: body: unknown name 'nobody' (names: {NAMES})",
        "templates/hello.md: body: unknown filter 'shout'",
    ]


def test_a_template_is_checked_against_every_process_that_uses_it(tmp_path: Path) -> None:
    other = (
        "key: q\nname: Q\nobject: user\nblocks:\n"
        "  start: {type: start, next: m}\n"
        "  m: {type: message, to: client, template: hello, next: done}\n"
        "  done: {type: end}\n"
    )
    root = write_recipe(
        tmp_path / "r",
        {"p": HEAD + "  m: " + message(template="hello") + "\n", "q": other},
        objects=OBJECTS,
        templates={"hello": "---\nsubject: Hi\n---\n{{ object.client.name }}\n"},
    )
    found = [str(d).replace(f"{root}/", "") for d in validate_recipe(load_recipe(root))]
    assert found == [
        "processes/q.yaml:m: template 'hello' body: type 'user' has no field 'client' "
        "(object.client)"
    ]


def test_a_body_overriding_the_template_is_checked_instead(tmp_path: Path) -> None:
    block = message(template="hello", body="{{ object.name }}")
    assert problems(tmp_path, block, {"hello": TEMPLATE.replace(" {{ nobody }}", "")}) == [
        "templates/hello.md: body: unknown filter 'shout'"
    ]


def test_template_refs_reads_chains_filters_and_tests() -> None:
    refs = template_refs(
        "{{ object.client.email }} {{ vars.get('x') }} {{ object.name.upper() }}"
        " {{ x | default('-') }} {% if y is defined %}{% endif %}"
    )
    assert refs is not None
    assert refs.names == {"object", "vars", "x", "y"}
    assert refs.paths == {("object", "client", "email"), ("object", "name")}
    assert refs.filters == {"default"}
    assert refs.tests == {"defined"}
    assert template_refs("{{ broken") is None
    assert template_name_problems("no braces at all") == []
    assert template_name_problems("{{ form_link('x') }}", frozenset({"form_link"})) == []
