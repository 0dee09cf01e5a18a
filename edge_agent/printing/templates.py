"""Declarative label templates: a size in mm, a resolution, and elements with `{placeholders}`.

Pure: a template and the job's data in, a `Filled` label (every placeholder replaced, every
conditional element decided) out; the renderers turn that into ZPL, ESC/POS or PNG.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from edge_agent.config.yaml12 import loads

BARCODES = ("code128", "gs1_128", "qr", "datamatrix")


class _M(BaseModel):
    # The attribute docstrings are for people reading the tree; pydantic need not parse this
    # source at every start to copy them into descriptions nobody reads (36 ms of start-up CPU).
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Element(_M):
    x: float = Field(ge=0)
    """Left edge, mm from the label's left edge."""
    y: float = Field(ge=0)
    """Top edge, mm from the label's top edge."""
    when: str | None = None
    """Data field that must be present and non-empty for this element to be drawn."""


class TextElement(_Element):
    type: Literal["text"]
    text: str
    """The text, with `{field}` placeholders."""
    size: float = Field(default=3.0, gt=0, le=50)
    """Character height, mm."""
    bold: bool = False
    max_chars: int = Field(default=60, ge=1, le=500)
    """Longer text is cut to this many characters."""


class BarcodeElement(_Element):
    type: Literal["code128", "gs1_128", "qr", "datamatrix"]
    data: str
    """What the barcode encodes, with placeholders. gs1_128 takes `(AI)value` form."""
    height: float = Field(default=12.0, gt=0, le=100)
    """Bar height of linear codes, mm."""
    module: float = Field(default=0.5, gt=0, le=5)
    """Narrow bar / module size, mm."""


class BoxElement(_Element):
    type: Literal["box"]
    w: float = Field(gt=0)
    """Width, mm."""
    h: float = Field(gt=0)
    """Height, mm."""
    thickness: float = Field(default=0.5, gt=0)
    """Line thickness, mm."""


class LineElement(_Element):
    type: Literal["line"]
    length: float = Field(gt=0)
    """Length, mm."""
    vertical: bool = False
    thickness: float = Field(default=0.5, gt=0)
    """Line thickness, mm."""


class ImageElement(_Element):
    type: Literal["image"]
    path: str
    """A PNG file (absolute, or relative to the templates folder)."""
    w: float = Field(gt=0)
    """Width to scale to, mm."""


Element = Annotated[
    TextElement | BarcodeElement | BoxElement | LineElement | ImageElement, Field(discriminator="type")
]


class Template(_M):
    name: str = Field(min_length=1, max_length=64)
    width_mm: float = Field(gt=0, le=300)
    """Label width, mm."""
    height_mm: float = Field(gt=0, le=1000)
    """Label height, mm."""
    dpi: Literal[152, 203, 300, 600] = 203
    """Printer resolution, dots per inch."""
    elements: list[Element] = Field(min_length=1)
    required: list[str] = Field(default_factory=list)
    """Data fields a job must give; a job without them is rejected."""

    def dots(self, mm: float) -> int:
        return round(mm * self.dpi / 25.4)


class TemplateError(ValueError):
    """A template that cannot be filled with a job's data (a field missing, a bad placeholder)."""


@dataclass(frozen=True, slots=True)
class Filled:
    template: Template
    elements: tuple[Any, ...]
    """The template's elements with their text and data filled in, conditional ones decided."""


class _Fields(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        raise TemplateError(f"needs data field {key!r}")


_FORMATTER = string.Formatter()


def fill_text(text: str, data: Mapping[str, Any]) -> str:
    try:
        return _FORMATTER.vformat(text, (), _Fields({k: "" if v is None else v for k, v in data.items()}))
    except (ValueError, IndexError, AttributeError, KeyError) as exc:
        if isinstance(exc, TemplateError):
            raise
        raise TemplateError(f"placeholder error in {text!r}: {exc}") from None


def fill(template: Template, data: Mapping[str, Any]) -> Filled:
    missing = [f for f in template.required if data.get(f) in (None, "")]
    if missing:
        raise TemplateError(f"template {template.name!r} needs data {', '.join(missing)}")
    out: list[Any] = []
    for element in template.elements:
        if element.when is not None and data.get(element.when) in (None, "", [], {}):
            continue
        if isinstance(element, TextElement):
            text = fill_text(element.text, data)[: element.max_chars]
            out.append(element.model_copy(update={"text": text}))
        elif isinstance(element, BarcodeElement):
            out.append(element.model_copy(update={"data": fill_text(element.data, data)}))
        else:
            out.append(element)
    return Filled(template, tuple(out))


def parse_template(raw: Any, source: str) -> Template:
    try:
        return Template.model_validate(raw)
    except ValidationError as exc:
        details = "; ".join(
            f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors(include_url=False)
        )
        raise TemplateError(f"template {source}: {details}") from None


@cache
def builtin_templates() -> dict[str, Template]:
    folder = resources.files("edge_agent.printing").joinpath("templates")
    out = {}
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".yaml"):
            template = parse_template(loads(entry.read_text(encoding="utf-8")), entry.name)
            out[template.name] = template
    return out


_merged: tuple[Mapping[str, Any], dict[str, Template]] | None = None


def with_site_templates(site: Mapping[str, Any]) -> dict[str, Template]:
    """The built-in templates with a configuration's own (`templates:`) on top. Parsed once per
    configuration: a print job asks for it three times (validate, render, preview)."""
    global _merged
    if _merged is not None and _merged[0] is site:
        return _merged[1]
    out = dict(builtin_templates())
    for name, raw in site.items():
        out[name] = parse_template({"name": name, **raw}, name)
    _merged = (site, out)
    return out
