"""The station page's message catalogs (edge_agent/display/catalogs/): the template is what
display.js asks for, every language translates every message (no fuzzy, no empty, the same
placeholders), the compiled .mo files are those of the .po files, and the config knows exactly
the languages there are catalogs for."""

from __future__ import annotations

import gettext
import io
import re
import subprocess
import sys
import typing
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from edge_agent.config.devices import DisplayConfig
from edge_agent.display.catalogs import LANGUAGES, catalog
from tests.conftest import ROOT

CATALOGS = ROOT / "edge_agent" / "display" / "catalogs"
STATIC = ROOT / "edge_agent" / "display" / "static"
TRANSLATED = [lang for lang in LANGUAGES if lang != "en"]
PLACEHOLDER = re.compile(r"\{(\w+)\}")


def asked_for() -> set[tuple[str | None, str]]:
    """(context, msgid) of every text display.js asks for, as Babel's extractor finds them."""
    found = set()
    options = {"**.js": {"parse_template_string": "true"}}
    for _file, _line, message, _comments, context in extract_from_dir(
        str(STATIC), [("**.js", "javascript")], keywords={"_": None, "ngettext": (1, 2), "pgettext": ((1, "c"), 2)},
        options_map=options,
    ):  # fmt: skip
        found.add((context, message if isinstance(message, str) else message[0]))
    return found


def po(lang: str) -> typing.Any:
    with open(CATALOGS / lang / "LC_MESSAGES" / "messages.po", "rb") as f:
        return read_po(f, locale=lang)


def test_the_template_holds_exactly_what_the_page_asks_for() -> None:
    with open(CATALOGS / "messages.pot", "rb") as f:
        template = {(m.context, m.id if isinstance(m.id, str) else m.id[0]) for m in read_po(f) if m.id}
    assert template == asked_for(), "run pybabel extract (edge_agent/display/catalogs/__init__.py)"


@pytest.mark.parametrize("lang", TRANSLATED)
def test_every_message_is_translated_with_its_placeholders(lang: str) -> None:
    catalog_ = po(lang)
    assert catalog_.plural_forms == "nplurals=2; plural=(n != 1);"  # what display.js's ngettext assumes
    have = {(m.context, m.id if isinstance(m.id, str) else m.id[0]): m for m in catalog_ if m.id}
    missing = asked_for() - set(have)
    assert not missing, f"{lang} lacks {sorted(missing, key=str)}"
    same = 0
    for key, message in have.items():
        assert not message.fuzzy, f"{lang}: {key} is fuzzy"
        forms = list(message.string) if isinstance(message.string, tuple) else [message.string]
        ids = list(message.id) if isinstance(message.id, tuple) else [message.id]
        assert all(forms), f"{lang}: {key} is not translated"
        for form in forms:
            assert set(PLACEHOLDER.findall(form)) == set(PLACEHOLDER.findall(ids[-1])), (lang, key, form)
        same += forms[0] == ids[0]
    # shared words exist (STATION in Swedish, "Retur {id}"), a copied catalog does not
    assert same <= len(have) // 8, f"{lang}: {same} of {len(have)} messages are the English text"


@pytest.mark.parametrize("lang", TRANSLATED)
def test_the_compiled_catalog_is_the_po_file(lang: str) -> None:
    buffer = io.BytesIO()
    write_mo(buffer, po(lang))
    buffer.seek(0)
    fresh = gettext.GNUTranslations(buffer)
    with open(CATALOGS / lang / "LC_MESSAGES" / "messages.mo", "rb") as f:
        shipped = gettext.GNUTranslations(f)
    assert shipped._catalog == fresh._catalog, "run pybabel compile -d edge_agent/display/catalogs"  # type: ignore[attr-defined]


def test_the_page_gets_one_language_as_json_with_contexts_and_plurals() -> None:
    sv = catalog("sv")
    assert sv["lang"] == "sv" and sv["messages"]["EXPECTED"] == "FÖRVÄNTAD"
    assert sv["messages"]["printer\u0004offline"] == "inte ansluten"
    assert sv["messages"]["{n} missing"] == ["{n} saknas", "{n} saknas"]
    assert catalog("en") == {"lang": "en", "messages": {}} == catalog("xx")


def test_the_config_offers_exactly_the_languages_with_catalogs() -> None:
    offered = typing.get_args(DisplayConfig.model_fields["language"].annotation)
    assert set(offered) == set(LANGUAGES)
    assert {p.name for p in CATALOGS.iterdir() if (p / "LC_MESSAGES").is_dir()} == set(TRANSLATED)


def test_check_config_rejects_an_unknown_language_naming_the_key(tmp_path: Path) -> None:
    config = tmp_path / "agent.yaml"
    config.write_text("device: {id: dock-07, site: hel1}\nmqtt: {host: 127.0.0.1}\nstorage: {path: /tmp/x}\n"
                      "display: {language: fr}\n")  # fmt: skip
    result = subprocess.run([sys.executable, "-m", "edge_agent.cli", "check-config", "-c", str(config)],
                            capture_output=True, text=True, cwd=ROOT)  # fmt: skip
    assert result.returncode == 2
    assert (
        "display.language: Input should be 'en', 'fi', 'sv', 'nb', 'da' or 'de' (line 4, column 11)"
        in result.stdout
    )


def test_the_glossary_in_docs_is_the_catalogs() -> None:
    from edge_agent.display.catalogs.__main__ import glossary

    assert (ROOT / "docs" / "glossary.md").read_text(encoding="utf-8") == glossary(), (
        "python -m edge_agent.display.catalogs > docs/glossary.md"
    )
