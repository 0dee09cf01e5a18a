"""`python -m edge_agent.display.catalogs`: the glossary (docs/glossary.md) from the catalogs, one
row per text in every language, for a native speaker to review."""

from __future__ import annotations

import sys

from edge_agent.display.catalogs import LANGUAGES, catalog

NAMES = {"fi": "suomi", "sv": "svenska", "nb": "norsk bokmål", "da": "dansk", "de": "Deutsch"}
CONTEXTS = {"mode": "station mode", "printer": "printer state", "scale": "scale state",
            "scanner": "scanner state", "count": "today's count"}  # fmt: skip


def _cell(text: object) -> str:
    forms = text if isinstance(text, list) else [text]
    return " / ".join(str(f) for f in forms).replace("|", "\\|")


def glossary() -> str:
    langs = [lang for lang in LANGUAGES if lang != "en"]
    catalogs = {lang: catalog(lang)["messages"] for lang in langs}
    lines = [
        "# Glossary of the station page",
        "",
        "Every text the dock worker reads on the station page, in each language the page speaks",
        "(`display.language`). Made from the catalogs by `python -m edge_agent.display.catalogs >",
        "docs/glossary.md`; a test keeps it equal to them. To correct a translation, edit",
        "`edge_agent/display/catalogs/LANG/LC_MESSAGES/messages.po` and run `pybabel compile -d",
        "edge_agent/display/catalogs` (the catalogs' own module says how), then this command.",
        "",
        "Terms kept the same everywhere: a *return* (palautus, retur, retur, retur, Retoure) is what a",
        "customer sends back; an *item* (tuote, artikel, vare, vare, Artikel) is one line of it; a *grade*",
        "(luokka, klass, klasse, klasse, Klasse) is its condition. `{name}` marks a value filled in; two",
        "texts separated by / are the forms for one and for more than one.",
        "",
        "| English | where | " + " | ".join(f"{NAMES[lang]} ({lang})" for lang in langs) + " |",
        "| --- | --- | " + " | ".join("---" for _ in langs) + " |",
    ]
    for key in sorted(
        catalogs[langs[0]], key=lambda k: (k.split("\u0004")[0] if "\u0004" in k else "", k.lower())
    ):
        context, _, msgid = key.rpartition("\u0004")
        lines.append(f"| {_cell(msgid)} | {CONTEXTS.get(context, '')} | "
                     + " | ".join(_cell(catalogs[lang][key]) for lang in langs) + " |")  # fmt: skip
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.stdout.write(glossary())
