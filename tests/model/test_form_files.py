"""Form files: parsing and the checks of ``validate_recipe`` (each problem names the form
file and the parameter), and the deploy check of ``form_link('<key>')`` in templates."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from flowlane.model.recipe import load_recipe
from flowlane.model.validate import validate_recipe

OBJECTS = """\
types:
  review:
    fields:
      status: {type: enum, values: [new, opened, received], default: new}
      rating: {type: integer}
      text: {type: text}
      contract: {type: link, to: contract}
      photo: {type: file}
  contract:
    fields:
      number: {type: string}
"""
SENDER = """\
key: ask
name: ask
object: review
launch: {{on: create}}
blocks:
  start: {{type: start, next: send}}
  send: {{type: message, channel: email, to: "a@b.example", subject: s, body: "{body}", next: done}}
  done: {{type: end}}
"""
GOOD = """\
type: review
mode: update
fields:
  rating: {required: true}
  text: {}
link: {on_open: {set: {status: opened}}, on_submit: {set: {status: received}}}
"""


def _problems(tmp_path: Path, forms: dict[str, str], body: str = "hi") -> list[str]:
    root = tmp_path / "r"
    for folder in ("processes", "forms", "templates"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    (root / "recipe.yaml").write_text("key: r\nname: R\n")
    (root / "objects.yaml").write_text(OBJECTS)
    (root / "processes" / "ask.yaml").write_text(SENDER.format(body=body))
    for name, text in forms.items():
        (root / "forms" / f"{name}.yaml").write_text(textwrap.dedent(text))
    recipe = load_recipe(root)
    found = recipe.problems + validate_recipe(recipe)
    return [str(d).replace(f"{root}/", "") for d in found]


def test_a_good_link_form_and_its_form_link_are_valid(tmp_path: Path) -> None:
    assert _problems(tmp_path, {"review": GOOD}, body="{{ form_link('review') }}") == []


def test_a_computed_form_key_is_not_checked(tmp_path: Path) -> None:
    body = "{{ form_link('rev' ~ 'iew') }}"
    assert _problems(tmp_path, {"review": GOOD}, body=body) == []


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (
            "{{ form_link('nope') }}",
            "processes/ask.yaml:send: body: form_link: form 'nope' does not exist "
            "(link forms: review)",
        ),
        (
            "{{ form_link('public') }}",
            "processes/ask.yaml:send: body: form_link: form 'public' is not a link form "
            "(it needs mode: update)",
        ),
        ("{{ form_link() }}", "processes/ask.yaml:send: body: form_link() needs the form key"),
    ],
)
def test_form_link_must_name_a_link_form(tmp_path: Path, body: str, problem: str) -> None:
    forms = {"review": GOOD, "public": "type: contract\nfields: {number: {}}\n"}
    found = _problems(tmp_path, forms, body=body)
    assert any(line.startswith(problem) for line in found), found


@pytest.mark.parametrize(
    ("form", "problem"),
    [
        ("type: nothing\n", "type: unknown object type 'nothing'"),
        ("mode: update\n", "mode: an update form needs 'type'"),
        ("type: review\nlink: {}\n", "link: signed link settings go only with 'mode: update'"),
        (
            "type: review\nfields: {ratin: {}}\n",
            "fields.ratin: type 'review' has no field 'ratin' (an input that only goes to the "
            "event data needs 'vars: true')",
        ),
        (
            "type: review\nfields: {note: {vars: true}}\n",
            "fields.note: an input that is not a field of the type needs 'type'",
        ),
        (
            "type: review\nfields: {rating: {type: string}}\n",
            "fields.rating: type 'string' differs from the field's type 'integer'",
        ),
        (
            "type: review\nfields: {status: {values: [a]}}\n",
            "fields.status: 'values' comes from the field of type 'review'",
        ),
        (
            "type: review\nfields: {photo: {}}\n",
            "fields.photo: a file field cannot be filled on a public form",
        ),
        (
            "type: review\nfields: {contract: {}}\n",
            "fields.contract: a link to objects cannot be picked on a public form",
        ),
        ("type: review\nfields: {stage: {}}\n", "fields.stage: the name 'stage' is reserved"),
        (
            "type: review\nfields: {text: {query: t}}\n",
            "fields.text: 'query' is only for hidden inputs",
        ),
        (
            "type: review\nfields: {text: {}}\nhidden: {text: {}}\n",
            "hidden.text: 'text' is a visible input too",
        ),
        (
            "type: review\nfields: {text: {}}\nhoneypot: text\n",
            "honeypot: 'text' is the name of an input",
        ),
        ("type: review\nrate_limit: {per: soon}\n", "rate_limit.per: "),
        ("type: review\nmode: update\nlink: {expires: 0s}\n", "link.expires: "),
        (
            "type: review\nmode: update\nlink: {on_open: {set: {status: lost}}}\n",
            "link.on_open.set.status: 'lost' is not one of new, opened, received",
        ),
        (
            "type: review\nmode: update\nlink: {on_submit: {set: {mood: ok}}}\n",
            "link.on_submit.set: type 'review' has no field 'mood' to set",
        ),
        ("type: review\ncolour: red\n", "unknown key 'colour'"),
        ("type: review\nrate_limit: {count: 0}\n", "rate_limit.count: "),
        (
            "type: review\nfields: {note: {type: strin, vars: true}}\n",
            "fields.note.type: Input should be",
        ),
    ],
)
def test_form_problems_name_the_file_and_the_parameter(
    tmp_path: Path, form: str, problem: str
) -> None:
    found = _problems(tmp_path, {"f": form})
    assert any(line.startswith(f"forms/f.yaml: {problem}") for line in found), found


def test_vars_inputs_and_hidden_links_are_valid(tmp_path: Path) -> None:
    form = """\
    type: review
    fields:
      rating: {}
      note: {type: text, vars: true, label: Anything else?}
      mood: {type: enum, values: [good, bad], vars: true}
    hidden:
      contract: {query: c}
    consent: {text: I agree}
    rate_limit: {count: 2, per: 1h}
    """
    assert _problems(tmp_path, {"f": form}) == []


def test_a_process_on_a_form_event_must_be_of_the_form_type(tmp_path: Path) -> None:
    found = _problems(tmp_path, {"f": "type: contract\nfields: {number: {}}\n"})
    assert found == []
    root = tmp_path / "r"
    (root / "processes" / "on-form.yaml").write_text(
        "key: on-form\nname: x\nobject: review\nlaunch: {on: event, event: 'form:f'}\n"
        "blocks:\n  start: {type: start, next: done}\n  done: {type: end}\n"
    )
    recipe = load_recipe(root)
    found = [str(d).replace(f"{root}/", "") for d in validate_recipe(recipe)]
    assert found == [
        "processes/on-form.yaml: launch.event: form 'f' submits a contract, "
        "not a review (the process's object type)"
    ]


def test_form_link_in_a_template_file_is_checked(tmp_path: Path) -> None:
    _problems(tmp_path, {"review": GOOD})
    root = tmp_path / "r"
    (root / "templates" / "ask.md").write_text("---\nsubject: s\n---\n{{ form_link('nope') }}\n")
    recipe = load_recipe(root)
    found = [str(d).replace(f"{root}/", "") for d in validate_recipe(recipe)]
    assert found == [
        "templates/ask.md: body: form_link: form 'nope' does not exist (link forms: review)"
    ]
