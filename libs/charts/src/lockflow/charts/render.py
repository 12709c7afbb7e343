"""Draw a chart without a browser (vl-convert embeds the Vega engine): SVG for HTML/PDF, PNG for Markdown."""

from typing import Any

import vl_convert as vlc


def to_svg(spec: dict[str, Any]) -> str:
    """The spec drawn as a standalone SVG document."""
    return str(vlc.vegalite_to_svg(spec))


def to_png(spec: dict[str, Any], *, scale: float = 1.5) -> bytes:
    """The spec drawn as PNG bytes (scale 1.5: sharp on high-density screens, half the bytes of 3)."""
    return bytes(vlc.vegalite_to_png(spec, scale=scale))


def svg_to_png(svg: str, *, scale: float = 1.5) -> bytes:
    """An SVG drawn by `to_svg` rasterised as PNG: the same picture, without running Vega a second time
    (a third of the time of `to_png` here)."""
    return bytes(vlc.svg_to_png(svg, scale=scale))
