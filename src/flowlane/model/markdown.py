"""Message bodies are Markdown: converted here to HTML for emails (and later the UI).

CommonMark with tables; raw HTML in the text is not passed through but escaped, so values a
template put into a body (``{{ object.name }}`` = ``<script>``) arrive as text. Links are
turned into anchors only where the Markdown writes them (``<https://...>``, ``[t](u)``):
linkify needs an extra package. Pure functions: no I/O.
"""

from __future__ import annotations

from functools import lru_cache
from html import escape
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from markdown_it import MarkdownIt

__all__ = ["html_document", "markdown_to_html"]

_STYLE = (
    "body{font-family:-apple-system,'Segoe UI',Roboto,Helvetica,Arial,sans-serif;"
    "font-size:15px;line-height:1.5;color:#222;max-width:640px;margin:0 auto;padding:16px}"
    "table{border-collapse:collapse}th,td{border:1px solid #ccc;padding:4px 8px}"
    "pre,code{font-family:Menlo,Consolas,monospace;font-size:13px}"
    "blockquote{margin:0;padding-left:12px;border-left:3px solid #ccc;color:#555}"
)


@lru_cache(maxsize=1)
def _parser() -> MarkdownIt:
    # Imported on first use: a worker that sends no email does not pay for it at start.
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark", {"html": False}).enable("table")


def markdown_to_html(text: str) -> str:
    """The HTML fragment of Markdown ``text`` (raw HTML in it is escaped, not rendered)."""
    return str(_parser().render(text))


def html_document(body_html: str, *, title: str = "") -> str:
    """``body_html`` in a minimal self-contained HTML page (inline style, no external assets)."""
    return (
        "<!DOCTYPE html>\n"
        '<html><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head>\n"
        f"<body>\n{body_html}</body></html>\n"
    )
