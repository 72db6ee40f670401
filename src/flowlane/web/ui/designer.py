"""UI pages: the Process tab of a process, the bpmn-js designer (see flowlane.web.ui).

* ``GET /processes/{key}/designer`` — the designer on the process's current version (the
  browser loads it as BPMN from ``GET /api/v1/processes/{key}/bpmn``); staff who may see
  processes; the editing controls (palette, properties, Save, test run) for those who may
  manage them.
* ``GET /processes/new[?template=KEY]`` — a new process: start → end, or a copy of a template.
* ``POST /processes/designer/yaml`` — the YAML of a diagram (BPMN in the body), for the
  designer's "YAML" dialog; an unconvertible diagram answers 422 naming what is wrong.

The page carries, as JSON, everything the designer's script needs: the JSON Schema of the
process file (so the properties panel covers every block type's parameters), the account's
object types, recent objects for a test run, and every text of the script, translated.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from functools import cache
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from markupsafe import Markup

from flowlane.core.errors import FlowlaneError, Invalid, NotFound, ValidationError
from flowlane.model import bpmn
from flowlane.model.process import BLOCK_TYPES, ProcessFile
from flowlane.services import objects, permissions, processes
from flowlane.services.account import Account
from flowlane.services.admin import ProcessInfo
from flowlane.web.ui.common import UiDep

router = APIRouter(include_in_schema=False)

RECENT_OBJECTS = 10
"""Objects offered for a test run (the latest of the process's object type)."""
MAX_DIAGRAM = 2_000_000
"""Largest BPMN text the YAML route converts (characters)."""
NEW_KEY = "new-process"
DIAGRAM_SOURCE = "diagram.bpmn"
"""The file name the YAML route's errors are located in."""
MODDLE = Path(__file__).resolve().parents[1] / "static" / "flowlane-moddle.json"
"""The moddle descriptor of the ``flowlane:`` attributes (the page embeds it)."""


def _(text: str) -> str:
    """Mark a text for extraction; it is translated per request (:func:`texts`)."""
    return text


JS_TEXTS: dict[str, str] = {
    # block types, as the palette and the properties panel name them
    "type.start": _("Start of the process"),
    "type.question": _("Question"),
    "type.call": _("Call"),
    "type.task": _("Task"),
    "type.wait_for": _("Wait for a condition"),
    "type.delay": _("Delay"),
    "type.operation": _("Operation"),
    "type.counter": _("Counter"),
    "type.message": _("Message"),
    "type.subprocess": _("Sub-process"),
    "type.for_each": _("For each object"),
    "type.fork": _("Parallel branches"),
    "type.join": _("Join branches"),
    "type.condition": _("Condition"),
    "type.end": _("End"),
    "end.positive": _("End: positive"),
    "end.neutral": _("End: neutral"),
    "end.negative": _("End: negative"),
    "tool.hand": _("Hand tool: move the canvas"),
    "tool.lasso": _("Lasso: select several blocks"),
    "tool.connect": _("Connect two blocks"),
    "tool.space": _("Make or remove space"),
    # properties panel
    "panel.process": _("Process properties"),
    "panel.block": _("Block"),
    "panel.flow": _("Flow"),
    "panel.key": _("Key"),
    "panel.name": _("Name"),
    "panel.object": _("Object type"),
    "panel.settings": _("Settings (JSON)"),
    "panel.id": _("Id"),
    "panel.type": _("Type"),
    "panel.exit": _("Exit of the source block"),
    "panel.label": _("Label"),
    "panel.from": _("From"),
    "panel.to": _("To"),
    "panel.no_exit": _("(the only exit: next)"),
    "panel.options": _("Options (each is an exit)"),
    "panel.exits": _("Results (each is an exit)"),
    "panel.branches": _("Branches (condition of each; else is the last exit)"),
    "panel.add_option": _("Add"),
    "panel.remove": _("Remove"),
    "panel.required": _("required"),
    "panel.json_hint": _("JSON"),
    "panel.readonly": _("You may look at this process but not change it."),
    "err.json": _("Not valid JSON:"),
    "err.json_object": _("Must be a JSON object"),
    "err.id": _("An id starts with a letter or _ and holds letters, digits, _, - and ."),
    "err.id_taken": _("This id is already used by another element"),
    "err.key": _(
        "A key holds lowercase letters, digits, _ and - and starts with a letter or digit"
    ),
    "err.name_taken": _("This name is already used"),
    "err.number": _("Must be a number"),
    # buttons and results
    "btn.validate": _("Validate"),
    "btn.normalize": _("Normalize"),
    "btn.save": _("Save"),
    "btn.yaml": _("YAML"),
    "btn.download": _("Download BPMN"),
    "btn.close": _("Close"),
    "btn.test_run": _("Test run"),
    "msg.valid": _("The process is valid."),
    "msg.valid_warnings": _("The process is valid, with warnings."),
    "msg.invalid": _("The process has errors."),
    "msg.saved": _("Saved as version {version}."),
    "msg.unchanged": _("Nothing changed: version {version} stays in force."),
    "msg.not_saved": _("Not saved: fix the problems below."),
    "msg.normalized": _("The diagram was laid out again."),
    "msg.opened": _("Opened {file}: check its blocks, then save."),
    "msg.loading": _("Loading the diagram…"),
    "msg.standard_offer": _(
        "{file} cannot be mapped to flowlane blocks ({reason}), but it runs as a standard "
        "BPMN process."
    ),
    "msg.standard_deployed": _("Deployed as the standard BPMN process {key}, version {version}."),
    "msg.standard_shown": _(
        "A standard BPMN process: its diagram is shown as deployed and cannot be edited here."
    ),
    "btn.deploy_standard": _("Deploy as a standard BPMN process"),
    "panel.standard": _("Standard BPMN process"),
    "msg.load_failed": _("The diagram could not be loaded:"),
    "msg.empty_exit": _("Empty exit: {exit}"),
    "msg.no_problems": _("No problems."),
    "msg.warning": _("warning"),
    "msg.error": _("error"),
    "msg.process_level": _("process"),
    "msg.test_object": _("Pick an object to run the saved version on."),
    "msg.test_status": _("Instance {instance}: {status}"),
    "msg.test_saved_first": _("Save the process first: a test run runs the saved version."),
    "msg.visited": _("visited"),
    "msg.waiting": _("waits here"),
    "msg.incident": _("incident"),
    "msg.failed": _("Failed:"),
}
"""Every text the designer's script shows (keys are the script's)."""


def texts(ui: UiDep) -> dict[str, str]:
    return {key: ui.gettext(text) for key, text in JS_TEXTS.items()}


def _json(value: Any) -> Markup:
    """JSON for a ``<script type="application/json">`` element: no ``<``, ``>`` or ``&`` inside
    (``</script>`` cannot end it, ``<!--`` cannot make the parser swallow the page)."""
    text = json.dumps(value, ensure_ascii=False, default=str)
    escaped = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return Markup(escaped)


@cache
def _moddle() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(MODDLE.read_text(encoding="utf-8"))
    return loaded


def process_schema() -> dict[str, Any]:
    """The JSON Schema of the process file (block types' parameters for the panel)."""
    return ProcessFile.model_json_schema(by_alias=True)


def _recent_objects(acc: Account, type_key: str, by: str) -> list[dict[str, str]]:
    page = objects.list_objects(acc, type_key, sort="-id", limit=RECENT_OBJECTS, by=by)
    out = []
    for rec in page.items:
        data = rec.data
        label = next(
            (str(data[f]) for f in ("name", "title", "number", "email") if data.get(f)), ""
        )
        out.append({"id": rec.id, "label": label})
    return out


def _object_types(acc: Account, by: str) -> list[dict[str, str]]:
    return [{"key": t.key, "label": t.label} for t in objects.object_types(acc, by=by)]


def _templates(acc: Account, by: str) -> list[ProcessInfo]:
    found = processes.list_processes(acc, limit=10_000, by=by).items
    return [p for p in found if p.template]


def _usual_object(acc: Account, by: str, types: list[dict[str, str]]) -> str:
    """The object type most processes run on (a new process's default), else the first."""
    counts = Counter(p.object for p in processes.list_processes(acc, limit=10_000, by=by).items)
    if counts:
        return counts.most_common(1)[0][0]
    return types[0]["key"] if types else "user"


def _page(ui: UiDep, **context: Any) -> dict[str, Any]:
    return {
        "schema_json": _json(process_schema()),
        "texts_json": _json(texts(ui)),
        "moddle_json": _json(_moddle()),
        "block_types": BLOCK_TYPES,
        "standard": False,
        **context,
    }


@router.get("/processes/new")
async def new_process(ui: UiDep, template: str | None = Query(default=None, max_length=200)) -> Any:
    """A new process in the designer: start → end, or a copy of template ``template``."""

    def load(acc: Account) -> dict[str, Any]:
        permissions.require(acc, ui.by, "manage_processes", "create processes")
        types = _object_types(acc, ui.by)
        templates = _templates(acc, ui.by)
        if template:
            if template not in {t.key for t in templates}:
                raise NotFound(f"template: no process template {template!r}", field="template")
            info = processes.get_process(acc, template, by=ui.by)
            spec = processes.version_source(acc, template, info.version, by=ui.by).spec
            spec = {k: v for k, v in spec.items() if k != "template"}
            spec["key"] = f"{template}-copy"[:60]
            copy = ui.gettext("copy")
            spec["name"] = f"{info.name} ({copy})"
        else:
            spec = {
                "key": NEW_KEY,
                "name": ui.gettext("New process"),
                "object": _usual_object(acc, ui.by, types),
                "blocks": {
                    "start": {"type": "start", "next": "end"},
                    "end": {"type": "end", "outcome": "positive"},
                },
            }
        return {
            "types": types,
            "templates": templates,
            "bpmn": bpmn.process_to_bpmn(spec),
            "spec_object": spec.get("object", ""),
        }

    found = await ui.read(load)
    return ui.render(
        "ui/designer/designer.html",
        **_page(
            ui,
            title=ui.gettext("New process"),
            process=None,
            process_key="",
            editable=True,
            config_json=_json(
                {
                    "key": None,
                    "bpmn": found["bpmn"],
                    "editable": True,
                    "objectTypes": found["types"],
                    "recent": [],
                    "blockTypes": list(BLOCK_TYPES),
                }
            ),
            templates=found["templates"],
            template_key=template,
        ),
    )


@router.get("/processes/{key}/designer")
async def designer(ui: UiDep, key: str) -> Any:
    """The Process tab: the designer on the process's current version."""

    def load(acc: Account) -> dict[str, Any]:
        info = processes.get_process(acc, key, by=ui.by)
        spec = processes.version_source(acc, key, info.version, by=ui.by).spec
        standard = spec.get("bpmn") is not None
        editable = permissions.can(acc, ui.by, "manage_processes") and not standard
        types = _object_types(acc, ui.by)
        recent = _recent_objects(acc, info.object, ui.by) if editable else []
        return {
            "info": info,
            "editable": editable,
            "standard": standard,
            "types": types,
            "recent": recent,
        }

    found = await ui.read(load)
    info: ProcessInfo = found["info"]
    return ui.render(
        "ui/designer/designer.html",
        **_page(
            ui,
            title=info.name + " · " + ui.gettext("Diagram"),
            process=info,
            process_key=info.key,
            editable=found["editable"],
            standard=found["standard"],
            recent=found["recent"],
            config_json=_json(
                {
                    "key": info.key,
                    "version": info.version,
                    "bpmn": None,
                    "editable": found["editable"],
                    "standard": found["standard"],
                    "objectTypes": found["types"],
                    "recent": found["recent"],
                    "blockTypes": list(BLOCK_TYPES),
                }
            ),
            templates=[],
        ),
    )


_XML_DECL = re.compile(r"^\s*(<\?xml[^>]*\?>)?\s*<")


@router.post("/processes/designer/yaml")
async def diagram_yaml(ui: UiDep, request: Request) -> JSONResponse:
    """The YAML of the diagram in the body (BPMN XML): ``{"yaml": text}``, or 422 with
    ``{"detail": what is wrong, "field": the element or attribute it names}``."""
    body = await request.body()
    try:
        text = body.decode("utf-8")
        if not text.strip():
            raise Invalid("body: send the diagram as BPMN XML", field="body")
        if len(text) > MAX_DIAGRAM:
            raise Invalid(f"body: longer than {MAX_DIAGRAM} characters", field="body")
        if not _XML_DECL.match(text):
            raise Invalid("body: not XML (a BPMN diagram starts with '<')", field="body")
        await ui.read(lambda acc: permissions.require(acc, ui.by, "see_processes", "see processes"))
        return JSONResponse({"yaml": bpmn.bpmn_to_yaml(text, source=DIAGRAM_SOURCE)})
    except UnicodeDecodeError:
        return JSONResponse({"detail": "body: not UTF-8 text", "field": "body"}, 422)
    except FlowlaneError as exc:
        if isinstance(exc, Invalid | ValidationError):
            field = exc.fields.get("field") or exc.fields.get("element")
            return JSONResponse({"detail": str(exc), "field": field}, 422)
        raise
