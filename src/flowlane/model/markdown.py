"""Message bodies are Markdown: converted here to HTML for emails (and later the UI).

CommonMark with tables; raw HTML in the text is not passed through but escaped, so values a
template put into a body (``{{ object.name }}`` = ``<script>``) arrive as text. Links are
turned into anchors only where the Markdown writes them (``<https://...>``, ``[t](u)``):
linkify needs an extra package. Pure functions: no I/O.

Values a template substitutes into an email body are Markdown-escaped by
:func:`flowlane.model.render.render_markdown` (:func:`markdown_escape`: a backslash before
the punctuation that could make a link, an image, emphasis, code or a block), so a visitor's
``[Pay here](https://evil)`` stays text in the HTML part. The stored body is that Markdown;
:func:`markdown_to_text` drops the escapes again for the text/plain part, and
:func:`markdown_to_html` drops them inside code and autolinks too (where CommonMark keeps
backslashes), so a value shows as typed everywhere.
"""

from __future__ import annotations

import re
from functools import lru_cache
from html import escape
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from markdown_it import MarkdownIt
    from markdown_it.token import Token

__all__ = ["html_document", "markdown_escape", "markdown_to_html", "markdown_to_text"]

_ALWAYS = re.compile(r"([\\`*_\[\]<>|])")
"""Escaped wherever they are: links, images, autolinks, emphasis, code, table cells."""
_LINE_START = re.compile(r"(?m)^([ \t]*)(?:([#+\-=~>])|(\d{1,9})([.)]))")
"""Escaped at the start of a line: headings, lists, rules, setext underlines, fences,
block quotes, ordered lists."""
_ESCAPED = re.compile(r"\\([!-/:-@\[-`{-~])")
"""A backslash escape of CommonMark (any ASCII punctuation)."""

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


def markdown_escape(value: str) -> str:
    """``value`` as Markdown that shows it literally: a backslash before ``\\ ` * _ [ ] < > |``
    and before a block marker at the start of a line (``#``, ``-``, ``1.`` ...)."""
    escaped = _ALWAYS.sub(r"\\\1", value)
    return _LINE_START.sub(_escape_line_start, escaped)


def _escape_line_start(found: re.Match[str]) -> str:
    indent, marker, digits, dot = found.groups()
    return f"{indent}\\{marker}" if marker else f"{indent}{digits}\\{dot}"


def markdown_to_text(text: str) -> str:
    """Markdown ``text`` for a text/plain part: as written, without backslash escapes."""
    return _ESCAPED.sub(r"\1", text)


def markdown_to_html(text: str) -> str:
    """The HTML fragment of Markdown ``text`` (raw HTML in it is escaped, not rendered).
    Backslash escapes are dropped in code and autolinks too (see the module text)."""
    md = _parser()
    env: dict[str, object] = {}
    tokens = md.parse(text, env)
    _unescape_literals(md, tokens)
    return str(md.renderer.render(tokens, md.options, env))


def _unescape_literals(md: MarkdownIt, tokens: list[Token]) -> None:
    """Drop backslash escapes where CommonMark keeps them literally: code and autolinks."""
    for token in tokens:
        if token.type in ("code_inline", "code_block", "fence"):
            token.content = markdown_to_text(token.content)
        children = token.children or []
        for i, child in enumerate(children):
            if child.type in ("code_inline", "code_block", "fence"):
                child.content = markdown_to_text(child.content)
            elif child.type == "link_open" and child.markup == "autolink":
                label = children[i + 1] if i + 1 < len(children) else None
                if label is not None and label.type == "text" and "\\" in label.content:
                    plain = markdown_to_text(label.content)
                    label.content = plain
                    child.attrs["href"] = md.normalizeLink(plain)


def html_document(body_html: str, *, title: str = "") -> str:
    """``body_html`` in a minimal self-contained HTML page (inline style, no external assets)."""
    return (
        "<!DOCTYPE html>\n"
        '<html><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head>\n"
        f"<body>\n{body_html}</body></html>\n"
    )
