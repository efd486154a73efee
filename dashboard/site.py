"""Build the Community Violence Data Dashboard: a static site from the published indicators, in every language.

``build_dashboard(warehouse_db, out_dir)`` reads and checks the published mart (:mod:`dashboard.published`: it
fails closed, writing nothing), computes each figure's cells (:mod:`dashboard.figures`), draws the charts to SVG
(:mod:`dashboard.charts`) and writes the pages with Jinja2 into a fresh folder that replaces ``out_dir`` whole
(a failed build leaves the previous site untouched). English at the root, each other language under ``<code>/``.
Pages load nothing from the network: the stylesheet is the site's own and the charts are inline SVG.
"""

from __future__ import annotations

import csv
import io
import os
import shutil
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pandas as pd
from markupsafe import Markup

from dashboard.charts import render_svg, spec_for
from dashboard.figures import Figure, indicator_figures, program_figures
from dashboard.i18n import LANGUAGES, N_, Formats, translations
from dashboard.published import COUNTY, OUTSIDE, DashboardRefused, load_published
from governance.disclosure import DisclosureRules

__all__ = ["DashboardBuild", "DashboardRefused", "build_dashboard"]

HERE = Path(__file__).resolve().parent

#: indicator -> (name, what it counts, sources). The conditions themselves live once, in the dbt macro
#: ``violence_indicators``; these are the words the public reads.
INDICATORS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "homicides": (N_("Homicides"), N_("Victims of homicide recorded by the police (NIBRS offence 09A)."),
                  ("police",)),
    "violent_crimes": (N_("Violent crimes"),
                       N_("Victims of violent offences recorded by the police (homicide, rape, robbery, aggravated "
                          "assault and other offences the police flag as violent)."), ("police",)),
    "firearm_injuries": (N_("Firearm injuries"),
                         N_("Hospital visits for a firearm injury of any intent at the two hospital systems."),
                         ("hospital_a", "hospital_b")),
    "youth_violence": (N_("Youth violence"),
                       N_("Violent victimisations recorded by the police and assault-injury hospital visits of "
                          "people aged 10 to 24."), ("police", "hospital_a", "hospital_b")),
    "intimate_partner_violence": (N_("Intimate partner violence"),
                                  N_("Victims of violent incidents the police recorded as domestic."), ("police",)),
    "violence_related_ed_visits": (N_("Violence-related emergency department visits"),
                                   N_("Emergency department visits for an assault injury at the two hospital "
                                      "systems."), ("hospital_a", "hospital_b")),
}
SOURCES = {"police": N_("Charlotte-Mecklenburg Police Department"), "hospital_a": N_("Hospital system A"),
           "hospital_b": N_("Hospital system B"), "county": N_("Mecklenburg County services"),
           "schools": N_("Charlotte-Mecklenburg Schools")}
#: program -> (name, what it is, where it works, the indicators it is measured against)
PROGRAMS: dict[str, tuple[str, str, str, tuple[str, ...]]] = {
    "ATV": (N_("Alternatives to Violence (ATV)"),
            N_("Alternatives to Violence is the city's community violence intervention program, on the Cure Violence "
               "model: outreach workers and violence interrupters from the neighbourhood mediate conflicts before "
               "they turn violent and support young people at the highest risk."),
            N_("ATV works in the priority areas, starting at Beatties Ford Rd/LaSalle St."),
            ("violent_crimes", "youth_violence")),
    "HVIP": (N_("Hospital-based violence intervention (HVIP)"),
             N_("Hospital-based violence intervention meets people treated for a violent injury at the bedside and "
                "offers case management, mentoring and help with housing, school and work, to prevent re-injury and "
                "retaliation."),
             N_("HVIP works in the two hospital systems' emergency departments and serves patients from the whole "
                "county."),
             ("firearm_injuries", "violence_related_ed_visits")),
}
LABELS = [N_("Mecklenburg County"), N_("Outside priority areas"), N_("Unknown location"), N_("Unknown"),
          N_("Female"), N_("Male"), N_("X"), N_("American Indian or Alaska Native"), N_("Asian"),
          N_("Black or African American"), N_("Hispanic or Latino"), N_("Middle Eastern or North African"),
          N_("Native Hawaiian or Pacific Islander"), N_("White"), N_("Multiracial"), N_("Some other race"),
          N_("All")]
DIMENSION_NAMES = {"age_band": N_("age band"), "sex": N_("sex"), "race_ethnicity": N_("race and ethnicity")}
EQUITY_KEYS = {"collection_method": N_("How the data are collected"), "population": N_("Who is counted"),
               "known_biases": N_("Known biases"), "suppression": N_("How small numbers are protected")}


@dataclass(frozen=True)
class DashboardBuild:
    """What a build wrote: where, which pages, and how many cells it shows and hides."""

    out_dir: Path
    pages: list[str]
    files: int
    bytes: int
    figures: int
    cells_shown: int
    cells_suppressed: int
    data_through: date
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return {"out_dir": str(self.out_dir), "pages": len(self.pages), "files": self.files, "bytes": self.bytes,
                "figures": self.figures, "cells_shown": self.cells_shown, "cells_suppressed": self.cells_suppressed,
                "data_through": self.data_through.isoformat(), "seconds": round(self.seconds, 2)}


class _Lang:
    """One language's words, formats and relative paths."""

    def __init__(self, lang: str):
        self.lang = lang
        self.tr = translations(lang)
        self._ = self.tr.gettext
        self.f = Formats(lang)
        self.prefix = "" if lang == "en" else f"{lang}/"

    def label(self, text: str) -> str:
        return self._(text)

    def indicator(self, key: str) -> str:
        return self._(INDICATORS[key][0]) if key in INDICATORS else key.replace("_", " ")


# ------------------------------------------------------------------------------------------- figure views
def _figure_title(fig: Figure, L: _Lang, ind: str) -> str:
    _ = L._
    name = L.indicator(ind) if ind else ""
    kind = fig.kind
    if kind == "trend":
        return _("%(indicator)s by month: the county and the priority areas") % {"indicator": name}
    if kind == "compare":
        return _("%(indicator)s, year to date against the same months a year earlier") % {"indicator": name}
    if kind == "rates":
        return _("%(indicator)s per 100,000 residents, last 12 months") % {"indicator": name}
    if kind == "gap":
        return _("%(indicator)s: the gap between each priority area and the rest of the county") % {"indicator": name}
    if kind == "breakdown":
        return _("%(indicator)s per 100,000 residents by %(dimension)s, county, last 12 months") % {
            "indicator": name, "dimension": L.label(DIMENSION_NAMES[fig.meta["dimension"]])}
    if kind == "map":
        return _("%(indicator)s per 100,000 residents by neighbourhood, last 12 months") % {"indicator": name}
    if kind == "enrolment":
        return _("Enrolments per year")
    raise ValueError(kind)


def _figure_view(fig: Figure, L: _Lang, ind: str, root: Path, page_prefix: str) -> dict[str, Any]:
    """The chart (SVG), its text summary, its data table and its CSV, in one language."""
    _, f = L._, L.f
    t = fig.table
    title = _figure_title(fig, L, ind)
    sup = _("Suppressed")
    cols: list[str]
    rows: list[list[tuple[str, bool]]] = []
    csv_cols: list[str]
    csv_rows: list[list[Any]] = []
    chart_df: pd.DataFrame
    axis: dict[str, str]

    def cell(v, fmt) -> tuple[str, bool]:
        return (sup, True) if v is None or pd.isna(v) else (fmt(v), False)

    if fig.kind == "trend":
        cols = [_("Month"), _("Area"), _("Events")]
        for r in t.itertuples():
            rows.append([(f.month(r.month), False), (L.label(r.area), False), cell(r.events, f.int)])
            csv_rows.append([r.month.isoformat(), L.label(r.area), "" if r.suppressed else int(r.events),
                             _("yes") if r.suppressed else _("no")])
        csv_cols = [_("Month"), _("Area"), _("Events"), _("Suppressed")]
        pub = t[~t["suppressed"]]
        chart_df = pd.DataFrame({"month": pd.to_datetime(pub["month"]).dt.strftime("%Y-%m-%d"),
                                 "series": [L.label(a) for a in pub["area"]], "events": pub["events"].astype(float)})
        axis = {"x": _("Month"), "y": _("Events"), "series": _("Area")}
        months = sorted(t["month"].unique())
        county = t[(t["area"] == COUNTY) & (t["month"] == months[-1])] if months else t.iloc[0:0]
        summary = _("Monthly counts from %(first)s to %(last)s. %(shown)s of %(total)s figures are published; "
                    "%(hidden)s are suppressed to protect privacy and show as gaps in the lines.") % {
            "first": f.month(months[0]), "last": f.month(months[-1]), "shown": f.int(fig.shown),
            "total": f.int(len(t)), "hidden": f.int(fig.hidden)} if months else _("No months to show.")
        if len(county) and not county["suppressed"].iloc[0]:
            summary += " " + _("In %(month)s the county recorded %(n)s.") % {
                "month": f.month(months[-1]), "n": f.int(county["events"].iloc[0])}
    elif fig.kind == "compare":
        cols = [_("Area"), _("Period"), _("Events")]
        for r in t.itertuples():
            period = _("%(start)s to %(end)s") % {"start": f.day(r.period_start), "end": f.day(r.period_end)}
            rows.append([(L.label(r.area), False), (period, False), cell(r.events, f.int)])
            csv_rows.append([L.label(r.area), r.period_start.isoformat(), r.period_end.isoformat(),
                             "" if r.suppressed else int(r.events), _("yes") if r.suppressed else _("no")])
        csv_cols = [_("Area"), _("From"), _("To"), _("Events"), _("Suppressed")]
        pub = t[~t["suppressed"]]
        chart_df = pd.DataFrame({"series": [L.label(a) for a in pub["area"]], "year": pub["year"].astype(str),
                                 "events": pub["events"].astype(float)})
        axis = {"x": _("Events"), "y": "", "series": _("Year")}
        this = t[(t["area"] == COUNTY) & (t["period_end"] == fig.meta["period_end"])]
        last = t[(t["area"] == COUNTY) & (t["period_end"] == fig.meta["last_year_end"])]
        if len(this) and len(last) and not this["suppressed"].iloc[0] and not last["suppressed"].iloc[0]:
            a, b = int(this["events"].iloc[0]), int(last["events"].iloc[0])
            summary = _("From January to %(end)s the county recorded %(a)s, against %(b)s in the same months of "
                        "%(year)s (%(change)s).") % {
                "end": f.month(fig.meta["period_end"]), "a": f.int(a), "b": f.int(b),
                "year": fig.meta["last_year_end"].year, "change": f.percent((a - b) / b) if b else "—"}
        else:
            summary = _("The county's year-to-date figures are suppressed for at least one of the two years.")
        summary += " " + _("%(hidden)s of %(total)s figures are suppressed.") % {
            "hidden": f.int(fig.hidden), "total": f.int(len(t))}
    elif fig.kind in ("rates", "breakdown"):
        label_col = "area" if fig.kind == "rates" else "group"
        cols = [_("Area") if fig.kind == "rates" else L.label(DIMENSION_NAMES[fig.meta["dimension"]]).capitalize(),
                _("Events"), _("Population"), _("Rate per 100,000")]
        for r in t.itertuples():
            lab = L.label(getattr(r, label_col))
            pop = (f.int(r.population), False) if pd.notna(r.population) else (_("no estimate"), False)
            rows.append([(lab, False), cell(r.events, f.int), pop, cell(r.rate, f.rate) if not r.suppressed
                         else (sup, True)])
            csv_rows.append([lab, "" if r.suppressed else int(r.events),
                             "" if pd.isna(r.population) else int(r.population),
                             "" if r.suppressed or pd.isna(r.rate) else float(r.rate),
                             _("yes") if r.suppressed else _("no")])
        csv_cols = [cols[0], _("Events"), _("Population"), _("Rate per 100,000"), _("Suppressed")]
        pub = t[~t["suppressed"] & t["rate"].notna()]
        chart_df = pd.DataFrame({"label": [L.label(x) for x in pub[label_col]], "rate": pub["rate"].astype(float),
                                 "value_text": [f.rate(x) for x in pub["rate"]]})
        axis = {"x": _("Rate per 100,000"), "y": "", "series": ""}
        end = f.month(fig.meta["period_end"])
        if fig.kind == "rates":
            county = t[t["area"] == COUNTY]
            if len(county) and not county["suppressed"].iloc[0] and pd.notna(county["rate"].iloc[0]):
                summary = _("In the 12 months to %(end)s the county's rate was %(rate)s per 100,000 residents "
                            "(%(n)s events).") % {"end": end, "rate": f.rate(county["rate"].iloc[0]),
                                                  "n": f.int(county["events"].iloc[0])}
            else:
                summary = _("The county's figure for the 12 months to %(end)s is suppressed.") % {"end": end}
            areas = pub[~pub["area"].isin([COUNTY, OUTSIDE])]
            if len(areas):
                top = areas.loc[areas["rate"].idxmax()]
                summary += " " + _("The highest published rate among the priority areas: %(area)s, %(rate)s.") % {
                    "area": top["area"], "rate": f.rate(top["rate"])}
        else:
            summary = _("Rates per 100,000 residents by %(dimension)s, county-wide, in the 12 months to %(end)s.") % {
                "dimension": L.label(DIMENSION_NAMES[fig.meta["dimension"]]), "end": end}
            if len(pub):
                top = pub.loc[pub["rate"].idxmax()]
                summary += " " + _("Highest published rate: %(group)s, %(rate)s.") % {
                    "group": L.label(top["group"]), "rate": f.rate(top["rate"])}
        summary += " " + _("%(hidden)s of %(total)s figures are suppressed; groups without a population estimate "
                           "have no rate.") % {"hidden": f.int(fig.hidden), "total": f.int(len(t))}
    elif fig.kind == "gap":
        cols = [_("Area"), _("Rate per 100,000"), _("Times the rate in the rest of the county")]
        for r in t.itertuples():
            ratio = (sup, True) if r.suppressed else ((f.ratio(r.ratio), False) if pd.notna(r.ratio) else ("—", False))
            rows.append([(r.area, False), cell(r.rate, f.rate), ratio])
            csv_rows.append([r.area, "" if r.suppressed or pd.isna(r.rate) else float(r.rate),
                             "" if pd.isna(r.outside_rate) else float(r.outside_rate),
                             "" if pd.isna(r.ratio) else float(r.ratio), _("yes") if r.suppressed else _("no")])
        csv_cols = [_("Area"), _("Rate per 100,000"), _("Rate in the rest of the county"),
                    _("Times the rate in the rest of the county"), _("Suppressed")]
        pub = t[~t["suppressed"] & t["ratio"].notna()]
        chart_df = pd.DataFrame({"label": list(pub["area"]), "ratio": pub["ratio"].astype(float),
                                 "value_text": [f.ratio(x) for x in pub["ratio"]]})
        axis = {"x": _("Times the rate in the rest of the county"), "y": "", "series": ""}
        out = fig.meta.get("outside_rate")
        if out is None:
            summary = _("No gap can be shown: the rate in the rest of the county is suppressed.")
        elif out == 0:
            summary = _("No gap can be shown as a ratio: the rest of the county recorded none in the 12 months to "
                        "%(end)s.") % {"end": f.month(fig.meta["period_end"])}
        else:
            summary = _("Each priority area's rate divided by the rate in the rest of the county (%(rate)s per "
                        "100,000) over the 12 months to %(end)s; 1 means the same rate.") % {
                "rate": f.rate(out), "end": f.month(fig.meta["period_end"])}
            if len(pub):
                top = pub.loc[pub["ratio"].idxmax()]
                summary += " " + _("The widest gap: %(area)s, %(ratio)s times.") % {
                    "area": top["area"], "ratio": f.ratio(top["ratio"])}
    elif fig.kind == "map":
        cols = [_("Neighbourhood"), _("Priority area"), _("Events"), _("Population"), _("Rate per 100,000")]
        for r in t.itertuples():
            rows.append([(r.neighbourhood, False), (r.priority_area or "—", False), cell(r.events, f.int),
                         (f.int(r.population), False) if pd.notna(r.population) else (_("no estimate"), False),
                         cell(r.rate, f.rate) if not r.suppressed else (sup, True)])
            csv_rows.append([r.neighbourhood, r.priority_area, "" if r.suppressed else int(r.events),
                             "" if pd.isna(r.population) else int(r.population),
                             "" if r.suppressed or pd.isna(r.rate) else float(r.rate),
                             _("yes") if r.suppressed else _("no")])
        csv_cols = [*cols, _("Suppressed")]
        rate = t["rate"].where(~t["suppressed"])
        hi = rate.max() if rate.notna().any() else None
        chart_df = pd.DataFrame({"col": t["col"], "row": t["row"], "rate": rate.astype(float),
                                 "priority": t["priority_area"].astype(bool),
                                 "short": [n if len(n) <= 11 else n[:10] + "." for n in t["neighbourhood"]],
                                 "dark": [bool(hi) and pd.notna(x) and x >= 0.55 * hi for x in rate]})
        axis = {"x": "", "y": "", "series": _("Rate per 100,000")}
        summary = _("Rate per 100,000 residents in each neighbourhood over the 12 months to %(end)s. Squares "
                    "outlined in black hold a priority area; grey squares are suppressed (%(hidden)s of "
                    "%(total)s).") % {"end": f.month(fig.meta["period_end"]), "hidden": f.int(fig.hidden),
                                      "total": f.int(len(t))}
        if rate.notna().any():
            top = t.loc[rate.idxmax()]
            summary += " " + _("Highest published rate: %(area)s, %(rate)s.") % {
                "area": top["neighbourhood"], "rate": f.rate(top["rate"])}
    elif fig.kind == "enrolment":
        cols = [_("Year"), _("Enrolments")]
        for r in t.itertuples():
            y = _("All years") if r.year == "All" else r.year
            rows.append([(y, False), cell(r.enrolled, f.int)])
            csv_rows.append([y, "" if r.suppressed else int(r.enrolled), _("yes") if r.suppressed else _("no")])
        csv_cols = [_("Year"), _("Enrolments"), _("Suppressed")]
        pub = t[~t["suppressed"] & (t["year"] != "All")]
        chart_df = pd.DataFrame({"label": list(pub["year"]), "enrolled": pub["enrolled"].astype(float),
                                 "value_text": [f.int(x) for x in pub["enrolled"]]})
        axis = {"x": _("Enrolments"), "y": "", "series": ""}
        summary = _("Enrolments per calendar year from the program's records (a person enrolled twice counts "
                    "twice). %(hidden)s of %(total)s figures are suppressed.") % {
            "hidden": f.int(fig.hidden), "total": f.int(len(t))}
    else:
        raise ValueError(fig.kind)

    svg = None
    if len(chart_df):
        svg = Markup(render_svg(spec_for(fig.kind, chart_df, axis), lang=L.lang, chart_id=fig.id, title=title))
    csv_name = f"data/{fig.id}.csv"
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(csv_cols)
    w.writerows([[_csv_safe(v) for v in row] for row in csv_rows])
    _write(root / L.prefix / csv_name, buf.getvalue())
    return {"id": fig.id, "title": title, "svg": svg, "summary": summary, "columns": cols, "rows": rows,
            "csv": page_prefix + csv_name, "shown": fig.shown, "hidden": fig.hidden}


def _csv_safe(value: Any) -> Any:
    """A text cell a spreadsheet would run as a formula (=, +, -, @ first) is quoted with a leading apostrophe;
    numbers are left as they are."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


# ------------------------------------------------------------------------------------------------ writing
def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def _env():
    from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

    env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(["html"]),
                      undefined=StrictUndefined, extensions=["jinja2.ext.i18n"], trim_blocks=True, lstrip_blocks=True)
    return env


def build_dashboard(warehouse_db: Path, out_dir: Path, *, rules: DisclosureRules | None = None,
                    languages: tuple[str, ...] = tuple(LANGUAGES), built_at: datetime | None = None) -> DashboardBuild:
    """Check the published indicators, then write the whole site into ``out_dir`` (replaced whole, or untouched).

    Raises:
        DashboardRefused: the mart is missing or fails a suppression check (nothing is written).
    """
    from governance.catalog import catalogue

    started = time.perf_counter()
    built_at = built_at or datetime.now(UTC)
    unknown = [lang for lang in languages if lang not in LANGUAGES]
    if unknown:
        raise DashboardRefused(f"unknown language(s) {', '.join(unknown)}; known: {', '.join(LANGUAGES)}")
    pub = load_published(Path(warehouse_db), rules)
    indicators = [i for i in pub.indicators]
    ind_figs = {i: indicator_figures(pub, i) for i in indicators}
    prog_figs = {p: program_figures(Path(warehouse_db), pub, p) for p in PROGRAMS}
    equity = catalogue().get("community_violence_indicators", {})

    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    stage = out_dir.parent / f".{out_dir.name}.building-{os.getpid()}"
    shutil.rmtree(stage, ignore_errors=True)
    stage.mkdir()
    env = _env()
    pages: list[str] = []
    shown = hidden = nfig = 0
    try:
        (stage / "assets").mkdir()
        shutil.copyfile(HERE / "static" / "dashboard.css", stage / "assets" / "dashboard.css")
        for lang in languages:
            L = _Lang(lang)
            env.install_gettext_translations(L.tr, newstyle=True)
            nav = [("index.html", L._("Overview"))] + \
                  [(f"indicators/{i}.html", L.indicator(i)) for i in indicators] + \
                  [(f"programs/{p.lower()}.html", L._(PROGRAMS[p][0])) for p in PROGRAMS] + \
                  [("methodology.html", L._("Methodology"))]

            def page(path: str, template: str, title: str, **ctx) -> None:
                depth = path.count("/") + (0 if lang == "en" else 1)
                up = "../" * depth
                to_root = "../" * path.count("/")
                others = [{"code": o, "name": LANGUAGES[o][0],
                           "href": up + ("" if o == "en" else f"{o}/") + path} for o in languages if o != lang]
                html_text = env.get_template(template).render(
                    lang=lang, title=title, up=up, to_root=to_root, here=path, nav=nav, others=others,
                    data_through=L.f.day(pub.latest_month_end), built=L.f.day(built_at.date()),
                    min_cell=pub.rules.min_cell,
                    **ctx)
                _write(stage / L.prefix / path, html_text)
                pages.append(L.prefix + path)

            cards = []
            for i in indicators:
                h = ind_figs[i].headline
                change = None
                if h["ytd"] is not None and h["ytd_last"]:
                    change = L.f.percent((h["ytd"] - h["ytd_last"]) / h["ytd_last"])
                cards.append({"href": f"indicators/{i}.html", "name": L.indicator(i),
                              "events": L.f.int(h["events_12m"]) if h["events_12m"] is not None else None,
                              "rate": L.f.rate(h["rate_12m"]) if h["rate_12m"] is not None else None,
                              "ytd": L.f.int(h["ytd"]) if h["ytd"] is not None else None,
                              "ytd_last": L.f.int(h["ytd_last"]) if h["ytd_last"] is not None else None,
                              "change": change})
            page("index.html", "index.html", L._("Community Violence Data Dashboard"), cards=cards,
                 period_end=L.f.month(pub.latest_month_end), areas=pub.priority_areas)
            for i in indicators:
                prefix = "../"
                views = [_figure_view(fg, L, i, stage, prefix) for fg in ind_figs[i].figures]
                nfig += len(views)
                shown += sum(v["shown"] for v in views)
                hidden += sum(v["hidden"] for v in views)
                name, what, sources = INDICATORS.get(i, (i, "", ()))
                page(f"indicators/{i}.html", "indicator.html", L.indicator(i), figures=views,
                     description=L._(what) if what else "", sources=[L._(SOURCES.get(s, s)) for s in sources])
            for p, (name, what, where, related) in PROGRAMS.items():
                views = [_figure_view(fg, L, "", stage, "../") for fg in prog_figs[p].figures]
                related_views = [_figure_view(fg, L, r, stage, "../") for r in related if r in ind_figs
                                 for fg in ind_figs[r].figures if fg.kind == "rates"]
                nfig += len(views)
                page(f"programs/{p.lower()}.html", "program.html", L._(name), what=L._(what), where=L._(where),
                     figures=views + related_views,
                     related=[(f"indicators/{r}.html", L.indicator(r)) for r in related if r in ind_figs])
            method_rows = []
            for i in indicators:
                name, what, sources = INDICATORS.get(i, (i, "", ()))
                method_rows.append({"name": L.indicator(i), "what": L._(what) if what else "",
                                    "sources": [L._(SOURCES.get(s, s)) for s in sources]})
            eq = [(L._(EQUITY_KEYS[k]), L.label(equity["indicator"].equity[k]))
                  for k in EQUITY_KEYS if "indicator" in equity and k in equity["indicator"].equity]
            geo_bias = equity["geography_level"].equity.get("known_biases") if "geography_level" in equity else None
            page("methodology.html", "methodology.html", L._("Methodology"), indicators=method_rows, equity=eq,
                 geo_bias=L.label(geo_bias) if geo_bias else None,
                 first=L.f.month(pub.first_month_start), last=L.f.month(pub.latest_month_end))
        # private like every file of the home (workspace.permissions): whoever publishes the site copies it out
        for p in [stage, *stage.rglob("*")]:
            os.chmod(p, 0o700 if p.is_dir() else 0o600)
        # the new site replaces the old one whole
        old = out_dir.parent / f".{out_dir.name}.old-{os.getpid()}"
        if out_dir.exists():
            out_dir.rename(old)
        stage.rename(out_dir)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    files = [p for p in out_dir.rglob("*") if p.is_file()]
    return DashboardBuild(out_dir=out_dir, pages=pages, files=len(files), bytes=sum(p.stat().st_size for p in files),
                          figures=nfig, cells_shown=shown, cells_suppressed=hidden,
                          data_through=pub.latest_month_end, seconds=time.perf_counter() - started)

