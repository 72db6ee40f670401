"""Values substituted into an email body are Markdown-escaped (``render_markdown``): a
visitor's ``[Pay here](https://evil) ![](https://track/p.gif)`` arrives as literal text in
both parts of the email, while the template's own Markdown and its signed links still work."""

from __future__ import annotations

from email.message import EmailMessage

from flowlane.model.markdown import markdown_escape, markdown_to_html, markdown_to_text
from flowlane.model.render import render_markdown
from flowlane.runtime.mail import SmtpSettings, build_email

EVIL = "[Pay here](https://evil.example) ![](https://track.example/p.gif)"
TEMPLATE = (
    "# New registration\n\n"
    "Name: **{{ object.name }}**\n\n"
    "{{ object.comment }}\n\n"
    "[Open the review]({{ form_link('review') }})\n"
)
LINK = "https://forms.example/l/eyJ_a-b.c_d"


def _parts(message: EmailMessage) -> tuple[str, str]:
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert text is not None and html is not None
    return str(text.get_content()), str(html.get_content())


def test_a_form_value_with_a_link_and_an_image_arrives_as_literal_text() -> None:
    scope = {
        "object": {"name": "Zoe_Smith *VIP*", "comment": EVIL},
        "form_link": lambda key: LINK,
    }
    body = render_markdown(TEMPLATE, scope)
    assert LINK in body  # a signed link is the engine's own: not escaped
    message = build_email(
        SmtpSettings(), outbox_id="i1.m1", to="staff@example.com", subject="New", body=body
    )
    text, html = _parts(message)
    assert EVIL in text and "Zoe_Smith *VIP*" in text  # the text part: as typed
    assert "\\[" not in text
    assert "evil.example" in html and '<a href="https://evil.example' not in html
    assert "<img" not in html and "track.example" in html
    assert "[Pay here](https://evil.example) ![](https://track.example/p.gif)" in html
    assert "<strong>Zoe_Smith *VIP*</strong>" in html  # the template's emphasis, not the value's
    assert f'<a href="{LINK}">Open the review</a>' in html  # the template's link works
    assert "<h1>New registration</h1>" in html


def test_block_markers_in_a_value_stay_text() -> None:
    value = "# not a heading\n- not a list\n1. not numbered\n> not quoted\n---"
    body = render_markdown("{{ v }}", {"v": value})
    assert markdown_to_text(body) == value
    html = markdown_to_html(body)
    for tag in ("<h1", "<ul", "<ol", "<blockquote", "<hr"):
        assert tag not in html


def test_values_in_code_and_autolinks_show_as_typed() -> None:
    body = render_markdown(
        "Code `{{ code }}`, page <{{ url }}>", {"code": "A_B*1", "url": "https://x.example/a_b"}
    )
    html = markdown_to_html(body)
    assert "<code>A_B*1</code>" in html
    assert '<a href="https://x.example/a_b">https://x.example/a_b</a>' in html


def test_safe_values_and_plain_templates_are_kept() -> None:
    assert render_markdown("**{{ v | safe }}**", {"v": "*x*"}) == "***x***"
    assert render_markdown("No values [here](https://a.example)", {}) == (
        "No values [here](https://a.example)"
    )
    assert markdown_escape("plain text, 1.5 - fine") == "plain text, 1.5 - fine"
