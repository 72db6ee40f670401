"""Every UI text has a Russian translation, and the catalogs hold no stale or broken entries.

The texts are extracted the way ``pybabel extract`` does (Babel's extractors: Jinja2 for the
templates of ``web/templates/ui``, Python for ``web/ui`` and ``web/static``'s none) and
compared with the merged catalogs of ``web/locale/ru``.
"""

from __future__ import annotations

from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from flowlane.web import i18n

WEB = Path(i18n.__file__).resolve().parent
KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2)}


def _extracted() -> dict[str, str]:
    found: dict[str, str] = {}
    for method_map, folder in (
        ([("**.html", "jinja2")], WEB / "templates" / "ui"),
        ([("**.py", "python")], WEB / "ui"),
    ):
        options = {
            "**.html": {
                "extensions": "jinja2.ext.i18n,jinja2.ext.do",
                "trim_blocks": "true",
                "lstrip_blocks": "true",
            }
        }
        for filename, lineno, message, _comments, _ctx in extract_from_dir(
            folder, method_map, options_map=options, keywords=KEYWORDS
        ):
            # A plural message is keyed by its singular msgid (its plural is msgid_plural).
            ids = message[:1] if isinstance(message, tuple) else (message,)
            for msgid in ids:
                if msgid:
                    found.setdefault(msgid, f"{folder.name}/{filename}:{lineno}")
    return found


def _catalog() -> dict[str, object]:
    merged: dict[str, object] = {}
    for path in i18n.catalog_files("ru"):
        with path.open("rb") as f:
            for message in read_po(f, locale="ru"):
                if message.id:
                    key = message.id if isinstance(message.id, str) else message.id[0]
                    assert key not in merged, f"{path.name}: {key!r} is in two catalogs"
                    merged[key] = message.string
    return merged


def test_every_ui_text_has_a_russian_translation() -> None:
    texts = _extracted()
    assert len(texts) > 20
    catalog = _catalog()
    missing = [
        f"{where}: {msgid!r}" for msgid, where in sorted(texts.items()) if not catalog.get(msgid)
    ]
    assert not missing, "untranslated:\n" + "\n".join(missing)


def test_catalogs_hold_no_text_the_ui_no_longer_uses() -> None:
    texts = _extracted()
    stale = sorted(set(_catalog()) - set(texts))
    assert not stale, f"stale catalog entries: {stale}"


def test_russian_translations_load_and_translate() -> None:
    ru = i18n.translations("ru")
    assert ru.gettext("Inbox") == "Входящие"
    assert i18n.translations("en").gettext("Inbox") == "Inbox"
    assert i18n.pick_language(None, "de-DE,ru;q=0.8") == "ru"
    assert i18n.pick_language("xx", None) == "en"
