"""Markdown bodies to HTML: CommonMark with tables, raw HTML escaped, a self-contained page."""

from __future__ import annotations

from flowlane.model.markdown import html_document, markdown_to_html
from flowlane.model.render import render


def test_commonmark_and_tables_become_html() -> None:
    html = markdown_to_html(
        "# Welcome\n\nHello **Anna**, see [the course](https://school.example/c).\n\n"
        "| day | topic |\n|-----|-------|\n| 1 | Python |\n\n- one\n- two\n"
    )
    assert "<h1>Welcome</h1>" in html
    assert "<strong>Anna</strong>" in html
    assert '<a href="https://school.example/c">the course</a>' in html
    assert "<th>day</th>" in html and "<td>Python</td>" in html
    assert "<li>one</li>" in html


def test_raw_html_is_escaped_not_rendered() -> None:
    html = markdown_to_html('<script>alert(1)</script>\n\nHi <img src=x onerror="boom">')
    assert "<script>" not in html and "<img" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;img src=x onerror=&quot;boom&quot;&gt;" in html


def test_a_value_put_in_by_jinja_cannot_inject_html() -> None:
    body = render("Hello {{ object.name }}!", {"object": {"name": "<script>x()</script>"}})
    assert body == "Hello <script>x()</script>!"  # the text part keeps it as written
    html = markdown_to_html(body)
    assert html == "<p>Hello &lt;script&gt;x()&lt;/script&gt;!</p>\n"


def test_javascript_links_are_not_made() -> None:
    html = markdown_to_html("[click](javascript:alert(1))")
    assert "href" not in html and "<a" not in html


def test_the_page_is_self_contained_and_escapes_its_title() -> None:
    page = html_document("<p>Hi</p>\n", title="A < B")
    assert page.startswith("<!DOCTYPE html>")
    assert "<title>A &lt; B</title>" in page
    assert "<p>Hi</p>" in page
    assert "http" not in page and "src=" not in page  # no external assets
