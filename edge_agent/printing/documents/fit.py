"""How a page goes onto a label: the scale, whether it turns a quarter, the raster's size. Pure."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Fit:
    scale: float
    """Dots per source unit (a PDF point, an image pixel), the same across and along: never stretched."""
    rotate: bool
    """Turned a quarter (clockwise) because the page fits larger that way."""
    width: int
    height: int
    """The raster, dots; at most the label's."""


def fit(src_w: float, src_h: float, label_w: int, label_h: int | None) -> Fit:
    """The largest scale at which the page fits the label (`label_h` None: a roll, any length),
    upright or turned, whichever is larger; upright on a tie."""
    if src_w <= 0 or src_h <= 0:
        raise ValueError(f"a page of {src_w} x {src_h} has no area")

    def scale(w: float, h: float) -> float:
        return label_w / w if label_h is None else min(label_w / w, label_h / h)

    upright, turned = scale(src_w, src_h), scale(src_h, src_w)
    rotate = turned > upright * 1.001
    s = turned if rotate else upright
    w, h = (src_h, src_w) if rotate else (src_w, src_h)
    # floor, never round: a raster one dot wider than the label wraps or is cut by the printer
    width = min(label_w, max(1, math.floor(w * s + 1e-6)))
    height = (
        max(1, math.floor(h * s + 1e-6))
        if label_h is None
        else min(label_h, max(1, math.floor(h * s + 1e-6)))
    )
    return Fit(s, rotate, width, height)


def whole_pixel_scale(scale: float) -> float:
    """For a raster source: a whole number of dots per pixel when the fit allows at least one and
    gives up no more than a quarter of the size for it (a 4x6 label made at the printer's own dpi
    keeps every pixel a dot; a 100 dpi image on a 203 dpi printer goes 2x, not 2.03x, so every
    bar keeps its width); otherwise the fit as it is, resampled."""
    if scale >= 1 and math.floor(scale) / scale >= 0.75:
        return float(math.floor(scale))
    return scale
