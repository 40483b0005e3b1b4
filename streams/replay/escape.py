"""Text from mentions (and anything else not written by us) made inert for HTML and Markdown.

Every string the report did not write itself (post texts, driver terms, hashtags, statement
drafts, brand names, topic names) goes through one of these on its way out.
"""

from __future__ import annotations

import html
import re

_SPACE = re.compile(r"\s+")
#: Characters with a meaning in Markdown (CommonMark and GFM) inside a line; a backslash makes
#: each literal. "$" too: GitHub renders text between two "$" as math ("a $200 fee and a $75
#: refund" lost its figures to a formula).
_MD_INLINE = re.compile(r"([\\`*_\[\]|~!$])")
#: Text is folded to one line, so block syntax could only start at its very beginning.
_MD_LEADING = re.compile(r"^([#+\-=]|\d+(?=[.)]))")
#: U+2060 WORD JOINER (invisible) and an escaped "@": no e-mail autolink can span them.
_NO_ADDRESS = "\u2060\\@"
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u202a-\u202e\u2066-\u2069]")


def one_line(text: object, limit: int | None = None) -> str:
    """Whitespace (newlines too) folded to single spaces; control and bidi-override characters
    dropped; cut to ``limit`` characters with an ellipsis."""
    folded = _SPACE.sub(" ", _CONTROL.sub("", str(text))).strip()
    if limit is not None and len(folded) > limit:
        folded = folded[: max(0, limit - 1)].rstrip() + "…"
    return folded


def h(text: object, limit: int | None = None) -> str:
    """For HTML text and attribute values: ``& < > " '`` as entities."""
    return html.escape(one_line(text, limit), quote=True)


def md(text: object, limit: int | None = None) -> str:
    """For Markdown text and table cells: one line, HTML-escaped (``<`` can start raw HTML in
    Markdown), and every character with a Markdown meaning backslash-escaped."""
    escaped = html.escape(one_line(text, limit), quote=False)
    # Only text outside the entities html.escape wrote (&lt; ...) gets backslashes.
    parts = re.split(r"(&(?:amp|lt|gt);)", escaped)
    out = "".join(p if i % 2 else _MD_INLINE.sub(r"\\\1", p) for i, p in enumerate(parts))
    # No GFM autolinks either: "http://…" and "www.…" are found while parsing, and an escaped
    # character stops them. E-mail addresses (also behind "mailto:" and "xmpp:") are found
    # afterwards, in the text with escapes and entities resolved: only a character that cannot
    # end the address's local part stops those, so an invisible word joiner precedes each "@".
    out = out.replace("://", "\\://").replace("www.", "www\\.").replace("@", _NO_ADDRESS)
    lead = _MD_LEADING.match(out)
    if lead is None:
        return out
    if lead.group(0)[0].isdigit():  # "1." or "1)" would start an ordered list
        return out[: lead.end()] + "\\" + out[lead.end() :]
    return "\\" + out
