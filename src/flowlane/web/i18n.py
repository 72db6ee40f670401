"""The UI's languages: English (the msgids) and Russian, from gettext catalogs.

Catalogs are ``web/locale/<lang>/LC_MESSAGES/*.po`` (one file per area of the UI, so that
areas are translated independently); they are read with Babel and merged into one
:class:`babel.support.Translations` per language when first asked for. English needs no
catalog: the msgids are English.
"""

from __future__ import annotations

import functools
import io
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations

LOCALE_DIR = Path(__file__).resolve().parent / "locale"
LANGUAGES = ("en", "ru")
"""The UI's languages; the first is the default."""
LANGUAGE_NAMES = {"en": "English", "ru": "Русский"}


def catalog_files(lang: str) -> list[Path]:
    return sorted((LOCALE_DIR / lang / "LC_MESSAGES").glob("*.po"))


@functools.cache
def translations(lang: str) -> NullTranslations:
    """The merged translations of ``lang`` (null translations for English)."""
    if lang not in LANGUAGES or lang == LANGUAGES[0]:
        return NullTranslations()
    merged: Translations | None = None
    for path in catalog_files(lang):
        with path.open("rb") as f:
            catalog = read_po(f, locale=lang)
        buf = io.BytesIO()
        write_mo(buf, catalog)
        buf.seek(0)
        part = Translations(fp=buf)
        if merged is None:
            merged = part
        else:
            merged.merge(part)
    return merged if merged is not None else NullTranslations()


def pick_language(cookie: str | None, accept: str | None) -> str:
    """The language of a request: the ``flowlane_lang`` cookie, else the first of the
    browser's Accept-Language we have, else English."""
    if cookie in LANGUAGES:
        return str(cookie)
    for part in (accept or "").split(","):
        code = part.split(";")[0].strip().lower()[:2]
        if code in LANGUAGES:
            return code
    return LANGUAGES[0]
