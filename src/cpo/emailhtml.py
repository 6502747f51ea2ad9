"""A simple, accessible HTML version of a plain-text email.

:func:`html_template` turns a customer message (subject, preheader and plain
body, with ``{first_name}`` merge fields) into one HTML document:
``<!DOCTYPE html>``, ``lang``, a ``<title>``, a hidden preheader, paragraphs,
bullet lists where the body has lines starting with ``-``, ``*`` or ``•``,
real ``<a href>`` links for ``http(s)://`` URLs, and the footer in small print.
Styles are inline (email clients drop ``<style>`` blocks); there are no
scripts and no external resources (no images, fonts or style sheets), only links.

Every piece of text is HTML-escaped. The result is itself a merge template in
the send list's syntax: ``{first_name}`` marks where the name goes (escaped
with :func:`escape_merge_value`) and ``{{`` / ``}}`` stand for literal braces,
so the document is built once per variant and rendered once per distinct name.
"""

from __future__ import annotations

import html
import re

from cpo.customer_text import DEFAULT_FOOTER_PATTERN

#: Stands for the merge field while the document is built (a private-use character).
_SLOT = "\ue000"
_URL = re.compile(r"https?://[^\s<>\"'\ue000]+", re.IGNORECASE)
_URL_TRAILING = ".,;:!?)]}'\""
_BULLET = re.compile(r"^\s*[-*•]\s+")
_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n")
_MERGE_TOKENS = re.compile(r"(\{\{|\}\}|\{first_name\})")

BODY_STYLE = "margin:0;padding:0;background-color:#ffffff;"
CONTAINER_STYLE = (
    "max-width:600px;margin:0 auto;padding:24px;font-family:Arial,Helvetica,sans-serif;"
    "font-size:16px;line-height:1.5;color:#1a1a1a;"
)
PARAGRAPH_STYLE = "margin:0 0 16px 0;"
LIST_STYLE = "margin:0 0 16px 0;padding-left:24px;"
LINK_STYLE = "color:#0b57d0;text-decoration:underline;"
FOOTER_STYLE = "margin:24px 0 0 0;font-size:12px;line-height:1.4;color:#595959;"
PREHEADER_STYLE = (
    "display:none;max-height:0;max-width:0;overflow:hidden;opacity:0;mso-hide:all;"
    "font-size:1px;line-height:1px;color:#ffffff;"
)


def html_template(
    subject: str,
    preheader: str,
    body: str,
    *,
    lang: str = "en",
    footer_pattern: str = DEFAULT_FOOTER_PATTERN,
) -> str:
    """The HTML email for a message, as a merge template.

    Args:
        subject: Subject line (the document title).
        preheader: Preview text, hidden at the top of the body.
        body: Plain-text body: paragraphs separated by blank lines.
        lang: Language tag of the document (``lang`` attribute).
        footer_pattern: Regular expression that finds the footer paragraph.

    Returns:
        The HTML document with ``{first_name}`` slots and literal braces doubled.
    """
    paragraphs = _PARAGRAPH_BREAK.split(_slotted(body).strip())
    blocks = [
        _footer(p) if index == len(paragraphs) - 1 and re.search(footer_pattern, p) else _block(p)
        for index, p in enumerate(paragraphs)
        if p.strip()
    ]
    document = (
        "<!DOCTYPE html>\n"
        f'<html lang="{html.escape(lang, quote=True)}">\n'
        "<head>\n"
        '<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{_text(_slotted(subject))}</title>\n"
        "</head>\n"
        f'<body style="{BODY_STYLE}">\n'
        f'<div style="{PREHEADER_STYLE}">{_text(_slotted(preheader))}</div>\n'
        f'<div role="article" aria-label="{_text(_slotted(subject))}" '
        f'lang="{html.escape(lang, quote=True)}" style="{CONTAINER_STYLE}">\n'
        + "\n".join(blocks)
        + "\n</div>\n</body>\n</html>\n"
    )
    return _as_template(document)


def escape_merge_value(value: str) -> str:
    """A merge value as it goes into the HTML template's ``{first_name}`` slot."""
    return html.escape(value, quote=True)


def _slotted(template: str) -> str:
    """The template with ``{first_name}`` as a slot character and braces made literal."""
    pieces = []
    for token in _MERGE_TOKENS.split(template.replace(_SLOT, "")):
        if token == "{first_name}":
            pieces.append(_SLOT)
        elif token in ("{{", "}}"):
            pieces.append(token[0])
        else:
            pieces.append(token)
    return "".join(pieces)


def _as_template(document: str) -> str:
    """Back to the send list's template syntax: braces doubled, slots as ``{first_name}``."""
    return document.replace("{", "{{").replace("}", "}}").replace(_SLOT, "{first_name}")


def _text(text: str) -> str:
    """Escaped text with ``http(s)`` URLs as links."""
    parts = []
    position = 0
    for match in _URL.finditer(text):
        url = match.group(0).rstrip(_URL_TRAILING)
        end = match.start() + len(url)
        parts.append(html.escape(text[position : match.start()], quote=True))
        href = html.escape(url, quote=True)
        parts.append(f'<a href="{href}" style="{LINK_STYLE}">{href}</a>')
        position = end
    parts.append(html.escape(text[position:], quote=True))
    return "".join(parts)


def _block(paragraph: str) -> str:
    """A paragraph as ``<p>`` (lines joined by ``<br>``) with bullet runs as ``<ul>``."""
    out: list[str] = []
    lines: list[str] = []
    items: list[str] = []
    for line in paragraph.strip().splitlines():
        if _BULLET.match(line):
            if lines:
                out.append(_paragraph(lines))
                lines = []
            items.append(_BULLET.sub("", line).strip())
        else:
            if items:
                out.append(_list(items))
                items = []
            lines.append(line.strip())
    if lines:
        out.append(_paragraph(lines))
    if items:
        out.append(_list(items))
    return "\n".join(out)


def _paragraph(lines: list[str], style: str = PARAGRAPH_STYLE) -> str:
    return f'<p style="{style}">' + "<br>\n".join(_text(line) for line in lines) + "</p>"


def _list(items: list[str]) -> str:
    rows = "".join(f'<li style="margin:0 0 8px 0;">{_text(item)}</li>\n' for item in items)
    return f'<ul style="{LIST_STYLE}">\n{rows}</ul>'


def _footer(paragraph: str) -> str:
    lines = [line.strip() for line in paragraph.strip().splitlines()]
    return '<footer role="contentinfo">' + _paragraph(lines, FOOTER_STYLE) + "</footer>"
