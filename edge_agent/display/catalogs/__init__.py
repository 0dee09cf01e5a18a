"""The station page's message catalogs: the worker reads the page in their own language.

Theory of operation: the page's texts are written in English inside display.js, each in a call
that Babel's JavaScript extractor knows: `_("...")`, `ngettext(singular, plural, n)`, and
`pgettext(context, "...")` where one English word means two things (a printer's "offline", a
count's "unknown"). `messages.pot` is extracted from it, each language's `LANG/LC_MESSAGES/
messages.po` holds the translations (reviewed by a native speaker: docs/glossary.md), and the
compiled `messages.mo` is what is read here, with the standard library's gettext. The server
hands the page one language's catalog as JSON (`/messages.json`): {msgid: text} for plain and
context messages (`context\\u0004msgid`, gettext's own key), {singular: [one, other]} for
plurals. Dates, times and numbers are formatted by the browser in the same locale (Intl).

Updating, after a text of display.js changed (Babel is a dev dependency):

    pybabel extract -F edge_agent/display/catalogs/babel.cfg -k pgettext:1c,2 \\
        -o edge_agent/display/catalogs/messages.pot edge_agent/display/static
    pybabel update -i edge_agent/display/catalogs/messages.pot -d edge_agent/display/catalogs
    (translate what is new or fuzzy in each messages.po)
    pybabel compile -d edge_agent/display/catalogs

tests/test_catalogs.py fails while a catalog lacks a message, has a fuzzy or untranslated one,
or a compiled .mo differs from its .po.
"""

from __future__ import annotations

import gettext
import json
from functools import cache
from importlib import resources
from typing import Any

LANGUAGES = ("en", "fi", "sv", "nb", "da", "de")
"""English is the source: it has no catalog of its own."""


@cache
def catalog(lang: str) -> dict[str, Any]:
    """One language's messages, as the page takes them."""
    if lang not in LANGUAGES or lang == "en":
        return {"lang": "en", "messages": {}}
    mo = resources.files(__name__).joinpath(lang, "LC_MESSAGES", "messages.mo")
    with mo.open("rb") as f:
        translations = gettext.GNUTranslations(f)
    messages: dict[str, Any] = {}
    for key, text in translations._catalog.items():  # type: ignore[attr-defined]
        if isinstance(key, tuple):  # a plural form: (singular, index)
            singular, index = key
            forms = messages.setdefault(singular, ["", ""])
            forms[index] = text
        elif key:  # "" is the header
            messages[key] = text
    return {"lang": lang, "messages": messages}


@cache
def page_json(lang: str) -> bytes:
    return json.dumps(catalog(lang), ensure_ascii=False).encode()
