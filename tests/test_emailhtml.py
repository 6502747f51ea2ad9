"""The HTML email: accessible structure, real links, everything escaped, a merge template."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pandas as pd

from cpo.emailhtml import escape_merge_value, html_template
from cpo.experiment.sends import render

BODY = (
    "Hi {first_name},\n\n"
    "Our spring rates:\n"
    "- Fixed saver: 4.1% a year.\n"
    "* Easy access: 3.2% a year.\n\n"
    "Rates & terms {{see site}}: https://bank.example/rates?a=1&b=2.\n\n"
    "Unsubscribe: https://bank.example/u"
)


class Tags(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags = []
        self.attrs = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attrs.append(dict(attrs))


def page(name="Ada"):
    template = html_template("Rates for {first_name}", "Fixed saver: 4.1% a year.", BODY)
    return render(template, pd.Series([escape_merge_value(name)])).iloc[0]


def test_structure_links_and_footer():
    html = page()
    assert html.startswith('<!DOCTYPE html>\n<html lang="en">')
    parser = Tags()
    parser.feed(html)
    assert {"html", "head", "title", "body", "p", "ul", "li", "a", "footer"} <= set(parser.tags)
    assert parser.tags.count("li") == 2
    assert not {"script", "img", "link", "style", "iframe"} & set(parser.tags)
    hrefs = [a["href"] for t, a in zip(parser.tags, parser.attrs, strict=True) if t == "a"]
    assert hrefs == ["https://bank.example/rates?a=1&b=2", "https://bank.example/u"]
    assert "<title>Rates for Ada</title>" in html
    assert "Rates &amp; terms {see site}:" in html  # literal braces, escaped ampersand
    assert re.search(r"<footer[^>]*><p[^>]*>Unsubscribe:", html)


def test_a_hostile_name_is_escaped_everywhere():
    html = page('<script>alert("x")</script>')
    assert "<script" not in html
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in html
    assert html.count("&lt;script&gt;") == 3  # title, aria-label, greeting
