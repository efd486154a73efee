"""Charts as static SVG: Vega-Lite specifications made with Altair, drawn at build time by vl-convert (ADR 0010).

The page carries no script: each chart is an inline ``<svg role="img">`` named by its title and described by
its text summary, with the data table beside it. Colours are the Okabe-Ito palette (distinguishable with the
common colour-vision deficiencies); a second channel (point shape or dash) tells series apart where colour is
not enough. Numbers and month names follow the page's language (d3 format and time locales).
"""

from __future__ import annotations

import html
import re
from typing import Any

import altair as alt
import pandas as pd

__all__ = ["OKABE_ITO", "render_svg", "spec_for"]

#: Okabe & Ito (2008), without yellow (too light on white for lines and text).
OKABE_ITO = ["#000000", "#E69F00", "#56B4E9", "#009E73", "#0072B2", "#D55E00", "#CC79A7"]
#: A sequential, colour-blind-safe ramp for the map (viridis, dark = high).
RAMP = "viridis"
#: d3 locale names for the languages the site is built in
D3_LOCALE = {"en": "en-US", "es": "es-ES"}

CONFIG = {"aria": False, "font": "sans-serif", "axis": {"labelFontSize": 12, "titleFontSize": 12,
                                                         "labelColor": "#222", "titleColor": "#222"},
          "legend": {"labelFontSize": 12, "titleFontSize": 12, "labelColor": "#222", "titleColor": "#222",
                     "labelLimit": 260},
          "view": {"stroke": None}}


def _base(df: pd.DataFrame, width: int = 640, height: int = 300) -> alt.Chart:
    return alt.Chart(df).properties(width=width, height=height)


def spec_for(kind: str, df: pd.DataFrame, t: dict[str, str]) -> dict[str, Any]:
    """The Vega-Lite spec of one chart. ``df`` holds only published cells, labels already translated; ``t`` the
    translated axis titles (keys: x, y, series)."""
    if kind == "trend":
        order = list(dict.fromkeys(df["series"]))
        chart = _base(df).mark_line(point=True, strokeWidth=1.5).encode(
            x=alt.X("month:T", title=t["x"], axis=alt.Axis(format="%b %Y", labelAngle=0, tickCount=6)),
            y=alt.Y("events:Q", title=t["y"]),
            color=alt.Color("series:N", title=t["series"], scale=alt.Scale(domain=order, range=OKABE_ITO)),
            shape=alt.Shape("series:N", title=t["series"], scale=alt.Scale(domain=order)))
    elif kind == "compare":
        chart = _base(df, height=40 * max(1, df["series"].nunique())).mark_bar().encode(
            y=alt.Y("series:N", title=None, sort=list(dict.fromkeys(df["series"]))),
            yOffset=alt.YOffset("year:N"),
            x=alt.X("events:Q", title=t["x"]),
            color=alt.Color("year:N", title=t["series"], scale=alt.Scale(range=[OKABE_ITO[2], OKABE_ITO[4]])))
    elif kind in ("rates", "breakdown", "gap", "enrolment"):
        field = {"rates": "rate", "breakdown": "rate", "gap": "ratio", "enrolment": "enrolled"}[kind]
        bars = _base(df, height=28 * max(1, len(df))).mark_bar(color=OKABE_ITO[4]).encode(
            y=alt.Y("label:N", title=None, sort=list(df["label"])),
            x=alt.X(f"{field}:Q", title=t["x"]))
        text = bars.mark_text(align="left", dx=4, color="#222").encode(text=alt.Text("value_text:N"))
        chart = bars + text
        if kind == "gap":
            chart = chart + alt.Chart(pd.DataFrame({"one": [1.0]})).mark_rule(strokeDash=[4, 3], color="#222").encode(
                x="one:Q")
    elif kind == "map":
        tiles = alt.Chart(df[df["rate"].notna()]).mark_rect(stroke="#ffffff", strokeWidth=2).encode(
            x=alt.X("col:O", axis=None), y=alt.Y("row:O", axis=None),
            color=alt.Color("rate:Q", title=t["series"], scale=alt.Scale(scheme=RAMP, reverse=True),
                            legend=alt.Legend(orient="bottom", gradientLength=300)))
        hidden = alt.Chart(df[df["rate"].isna()]).mark_rect(fill="#e8e8e8", stroke="#ffffff", strokeWidth=2).encode(
            x=alt.X("col:O", axis=None), y=alt.Y("row:O", axis=None))
        outline = alt.Chart(df[df["priority"]]).mark_rect(fill=None, stroke="#000000", strokeWidth=3).encode(
            x=alt.X("col:O", axis=None), y=alt.Y("row:O", axis=None))
        labels = alt.Chart(df).mark_text(fontSize=9, baseline="middle").encode(
            x=alt.X("col:O", axis=None), y=alt.Y("row:O", axis=None), text="short:N",
            color=alt.condition("datum.dark", alt.value("#ffffff"), alt.value("#000000")))
        layers = [hidden, tiles, outline, labels] if df["rate"].notna().any() else [hidden, outline, labels]
        chart = alt.layer(*layers).properties(width=9 * 74, height=7 * 56)
    else:
        raise ValueError(f"unknown chart kind {kind!r}")
    spec = chart.to_dict()
    spec["config"] = CONFIG
    return spec


_ROOT = re.compile(r"^<svg\b([^>]*)>", re.S)
_ARIA = re.compile(r'\s(?:role|aria-[a-z]+)="[^"]*"')


def render_svg(spec: dict[str, Any], *, lang: str, chart_id: str, title: str) -> str:
    """The spec drawn to SVG in the page's locale, as an inline image named by ``title`` and described by the
    element ``<chart_id>-summary`` of the page."""
    import vl_convert as vlc

    loc = D3_LOCALE.get(lang, "en-US")
    svg = vlc.vegalite_to_svg(spec, format_locale=loc, time_format_locale=loc)
    attrs = (f' role="img" aria-label="{html.escape(title, quote=True)}" '
             f'aria-describedby="{chart_id}-summary" focusable="false"')
    # one image to assistive technology: named by the title, described by the text summary, the data table beside
    # it; the marks' own ARIA roles (Vega's, for interactive charts) would make each bar a nameless graphic
    svg = _ARIA.sub("", svg)
    return _ROOT.sub(lambda m: f"<svg{m.group(1)}{attrs}>", svg, count=1)
