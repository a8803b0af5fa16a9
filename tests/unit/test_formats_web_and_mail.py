"""The HTML and e-mail parsers, in-process: HTML's structure without its boilerplate, in
the charset it declares; an e-mail's header fields, body and attachments' names."""

from __future__ import annotations

from email.message import EmailMessage
from pathlib import Path

import pytest

from infrastructure.processing.formats.eml import parse_eml
from infrastructure.processing.formats.html import decode_html, html_blocks, parse_html
from tests import office_corpus as corpus
from tests.blocks import heading, item, paragraph, read, table

MENU_BLOCKS = [
    {"type": "field", "name": "Title", "value": corpus.HTML_TITLE},
    heading(1, corpus.HTML_TITLE),
    paragraph(corpus.HTML_BODY),
    heading(2, "Drinks"),
    item("Espresso"),
    item("Double", depth=1),
    item("Thé vert"),
    item("Order", ordered=True),
    item("Pay", ordered=True),
    table([["Dish", "Price"], ["Crêpe", "4 €"]]),
]


@pytest.mark.parametrize(
    ("encoding", "read_as"),
    [("utf-8", "utf-8"), ("windows-1252", "cp1252"), ("iso-8859-1", "cp1252")],
)
def test_a_page_gives_its_content_without_boilerplate_in_its_declared_charset(
    encoding: str, read_as: str, tmp_path: Path
) -> None:
    path = corpus.html_file(tmp_path, encoding=encoding)

    blocks, facts = read(parse_html(str(path)))

    # The nav, the footer, the script and the style are not content.
    assert blocks == MENU_BLOCKS
    assert facts == {"encoding": read_as}


def test_an_undeclared_legacy_charset_is_detected() -> None:
    text, encoding = decode_html("<p>Grüße aus Köln, café crème</p>".encode("cp1252"))

    assert text == "<p>Grüße aus Köln, café crème</p>"
    assert encoding == "cp1252"


def test_a_byte_order_mark_wins_over_a_declaration() -> None:
    data = "\ufeff<meta charset='windows-1252'><p>naïve</p>".encode("utf-16-le")

    text, encoding = decode_html(data)

    assert "naïve" in text
    assert encoding == "utf-16"


def test_tag_soup_is_read_as_a_browser_builds_it() -> None:
    blocks = list(html_blocks("<p>one<p>two<ul><li>a<li>b</ul><h2>T<b>itle</h2>tail"))

    assert blocks == [
        paragraph("one"),
        paragraph("two"),
        item("a"),
        item("b"),
        heading(2, "Title"),
        paragraph("tail"),
    ]


def test_line_breaks_spans_and_preformatted_text_keep_their_lines() -> None:
    blocks = list(
        html_blocks("<p>first<br>second   <em>line</em></p><pre>def f():\n    return 1\n</pre>")
    )

    assert blocks == [paragraph("first\nsecond line"), paragraph("def f():\n    return 1")]


def test_table_cells_spanning_columns_are_padded_and_nested_tables_are_cell_text() -> None:
    blocks = list(
        html_blocks(
            "<table><tr><th colspan=2>Wide</th></tr>"
            "<tr><td>a<table><tr><td>inner</td></tr></table></td><td>b</td></tr></table>"
        )
    )

    assert blocks == [table([["Wide", ""], ["a\ninner", "b"]])]


def test_hidden_and_landmark_chrome_is_left_out_but_an_articles_header_is_kept() -> None:
    blocks = list(
        html_blocks(
            '<div role="navigation">Menu</div><header>Site name</header>'
            '<p hidden>secret</p><span aria-hidden="true">icon</span>'
            "<article><header><h1>Post</h1></header><p>Body</p></article>"
            "<footer>Copyright</footer>"
        )
    )

    assert blocks == [heading(1, "Post"), paragraph("Body")]


def test_deeply_nested_markup_is_walked_without_recursion() -> None:
    # Lexbor's own parse is quadratic in the depth (about 4 s at 50 000 levels, as in
    # browsers without their depth cap): a deeper page ends at the child's CPU limit.
    blocks = list(html_blocks("<div>" * 20_000 + "deep" + "</div>" * 20_000))

    assert blocks == [paragraph("deep")]


def test_an_email_gives_its_fields_body_and_every_attachment_named(tmp_path: Path) -> None:
    blocks, facts = read(parse_eml(str(corpus.eml_file(tmp_path))))

    assert blocks == [
        {"type": "field", "name": "From", "value": corpus.EML_FROM},
        {"type": "field", "name": "To", "value": corpus.EML_TO},
        {"type": "field", "name": "Cc", "value": corpus.EML_CC},
        {"type": "field", "name": "Date", "value": "Mon, 04 Mar 2024 09:30:00 +0000"},
        {"type": "field", "name": "Subject", "value": corpus.EML_SUBJECT},
        paragraph("Hello Ada,"),
        paragraph("please find the invoice attached."),
        paragraph("Jörg"),
        *(
            {"type": "attachment", "filename": name, "content_type": kind, "size": len(data)}
            for name, kind, data in corpus.EML_ATTACHMENTS
        ),
        {
            "type": "attachment",
            "filename": "Earlier note.eml",
            "content_type": "message/rfc822",
            "size": blocks[-1]["size"],
        },
    ]
    assert blocks[-1]["size"] > 0
    assert facts == {"attachments": 3}


def test_an_html_only_email_body_is_read_by_the_html_parser(tmp_path: Path) -> None:
    message = EmailMessage()
    message["Subject"] = "News"
    message.set_content(
        "<html><body><nav>Unsubscribe</nav><h1>News</h1><ul><li>One</li></ul></body></html>",
        subtype="html",
    )
    path = tmp_path / "news.eml"
    path.write_bytes(bytes(message))

    blocks, facts = read(parse_eml(str(path)))

    assert blocks == [
        {"type": "field", "name": "Subject", "value": "News"},
        heading(1, "News"),
        item("One"),
    ]
    assert facts == {"attachments": 0}


def test_a_body_in_an_unknown_charset_is_read_as_far_as_it_goes(tmp_path: Path) -> None:
    path = tmp_path / "odd.eml"
    path.write_bytes(
        b"Subject: odd\r\nMIME-Version: 1.0\r\n"
        b"Content-Type: text/plain; charset=x-no-such-charset\r\n\r\nPlain words.\r\n"
    )

    blocks, _ = read(parse_eml(str(path)))

    assert blocks == [
        {"type": "field", "name": "Subject", "value": "odd"},
        paragraph("Plain words."),
    ]
