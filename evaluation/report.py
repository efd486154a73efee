"""The evaluation report: JSON for programs, and HTML that opens offline (inline SVG charts, no external request)
for a reader such as a city council: question, design, population, balance, estimates with intervals,
what was suppressed, limitations."""

from __future__ import annotations

import html
import io
import json
import math
from pathlib import Path
from typing import Any

__all__ = ["linkage_error_by_group", "render_html", "svg_event_study", "svg_km", "svg_series"]


def _fmt(x: Any, digits: int = 2) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "—"
    if isinstance(x, float):
        return f"{x:.{digits}f}"
    return html.escape(str(x))


def _svg(fig) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    text = buf.getvalue()
    text = text[text.index("<svg"):]  # drop the XML prolog and doctype: the SVG sits inside the HTML
    if "<metadata>" in text:  # matplotlib's RDF block: names of vocabularies, nothing a reader needs
        text = text[:text.index("<metadata>")] + text[text.index("</metadata>") + len("</metadata>"):]
    return text


def _figure():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams["svg.hashsalt"] = "vpdc"  # the same SVG ids on every run
    return plt.subplots(figsize=(7, 3.4))


def svg_event_study(rows: list[dict[str, Any]], title: str) -> str:
    fig, ax = _figure()
    xs = list(range(len(rows)))
    est = [r["estimate"] for r in rows]
    lo = [r["low"] for r in rows]
    hi = [r["high"] for r in rows]
    ax.axhline(1.0, color="#777", lw=1)
    ax.axvline(3.5, color="#bbb", lw=1, ls="--")
    for x, e, a, b in zip(xs, est, lo, hi, strict=True):
        if all(isinstance(v, float) and math.isfinite(v) for v in (e, a, b)):
            ax.plot([x, x], [a, b], color="#1f4e79")
            ax.plot([x], [e], "o", color="#1f4e79")
    ax.set_yscale("log")
    ax.set_xticks(xs, [r["period"] for r in rows])
    ax.set_ylabel("rate ratio (log scale)")
    ax.set_xlabel("quarter before the index event (q-) and after enrollment (q)")
    ax.set_title(title, fontsize=10)
    return _svg(fig)


def svg_km(points: list[dict[str, Any]], title: str) -> str:
    fig, ax = _figure()
    for group, colour in (("participants", "#1f4e79"), ("comparison", "#c55a11")):
        pts = [p for p in points if p["group"] == group]
        if pts:
            ax.step([p["day"] for p in pts], [p["survival"] for p in pts], where="post", color=colour, label=group)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("days after enrollment")
    ax.set_ylabel("share without a violent re-injury")
    ax.legend(frameon=False)
    ax.set_title(title, fontsize=10)
    return _svg(fig)


def svg_series(rows: list[dict[str, Any]], groups: list[str], start: str, title: str) -> str:
    fig, ax = _figure()
    for g, colour in zip(groups, ("#1f4e79", "#c55a11"), strict=False):
        xs = [i for i, r in enumerate(rows)]
        ys = [r.get(g) if r.get(g) is not None else float("nan") for r in rows]
        ax.plot(xs, ys, marker=".", color=colour, label=g)
    labels = [r["period"] for r in rows]
    if start[:7] in labels or any(lab >= start[:7] for lab in labels):
        cut = next(i for i, lab in enumerate(labels) if lab >= start[:7])
        ax.axvline(cut - 0.5, color="#bbb", ls="--", lw=1)
    step = max(1, len(labels) // 8)
    ax.set_xticks(range(0, len(labels), step), labels[::step], rotation=30, fontsize=8)
    ax.set_ylabel("violent incidents per quarter")
    ax.legend(frameon=False)
    ax.set_title(title, fontsize=10)
    return _svg(fig)


def linkage_error_by_group(reports_dir: Path) -> dict[str, Any]:
    """The newest linkage report's error rates by group (race/ethnicity, sex, age band, source), or why none."""
    files = sorted((reports_dir / "linkage").glob("*.json"), key=lambda p: p.stat().st_mtime)
    if not files:
        return {"available": False, "note": "no linkage report found under reports/linkage/"}
    body = json.loads(files[-1].read_text(encoding="utf-8"))
    sub = (body.get("truth") or {}).get("subgroups") or body.get("subgroups")
    if not sub:
        return {"available": False, "report": files[-1].name,
                "note": "the linkage report has no error rates by group (run linkage with evaluation)"}
    rows = []
    for dim, groups in sub.get("groups", {}).items():
        for g in groups:
            rows.append({"dimension": dim, "group": g.get("group"), "missed_link_rate": g.get("missed_link_rate"),
                         "false_link_rate": g.get("false_link_rate"), "flagged": bool(g.get("flagged")),
                         "small_group": bool(g.get("small_group"))})
    return {"available": True, "report": files[-1].name, "overall": sub.get("overall", {}), "rows": rows,
            "flag_ratio": sub.get("flag_ratio")}


def _table(caption: str, head: list[str], rows: list[list[str]]) -> str:
    th = "".join(f'<th scope="col">{html.escape(h)}</th>' for h in head)
    body = "".join("<tr>" + f'<th scope="row">{r[0]}</th>' + "".join(f"<td>{c}</td>" for c in r[1:]) + "</tr>"
                   for r in rows)
    return f"<table><caption>{html.escape(caption)}</caption><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"


def _ci(e: dict[str, Any]) -> str:
    return f"{_fmt(e.get('estimate'))} ({_fmt(e.get('low'))} to {_fmt(e.get('high'))})"


def _figure_html(svg: str, caption: str) -> str:
    return f'<figure role="group" aria-label="{html.escape(caption)}">{svg}<figcaption>{html.escape(caption)}' \
           "</figcaption></figure>"


def render_html(report: dict[str, Any], charts: dict[str, str]) -> str:
    """The report as one HTML page: no script, no external stylesheet, font or image."""
    r = report
    parts = [f"<h1>{html.escape(r['title'])}</h1>",
             f"<p>Study {html.escape(r['study_id'])}; made {html.escape(r['made_at'])}; data to "
             f"{html.escape(r['data_end'])}. Aggregate output, disclosure-checked (minimum cell {r['rules']['min_cell']},"
             f" dominance n={r['rules']['dominance_n']}, k={r['rules']['dominance_k']}).</p>",
             "<h2>Question</h2>", f"<p>{html.escape(r['question'])}</p>",
             "<h2>Design</h2>", "<ul>" + "".join(f"<li>{html.escape(d)}</li>" for d in r["design"]) + "</ul>",
             "<h2>Population</h2>"]
    pop = r["population"]
    parts.append(_table("Who is compared", ["group", "persons"], [[html.escape(k), _fmt(v)] for k, v in pop.items()]))
    if r.get("balance"):
        parts.append("<h2>Balance</h2><p>Standardised mean differences (SMD) between participants and the comparison "
                     "group, before matching (every eligible non-participant) and after (matched, weighted). "
                     "|SMD| below 0.1 is usually read as balanced.</p>")
        parts.append(_table("Balance before and after matching",
                            ["variable", "level", "participants", "comparison before", "comparison after",
                             "SMD before", "SMD after"],
                            [[html.escape(b["variable"]), html.escape(str(b["level"])), _fmt(b["participants"]),
                              _fmt(b["comparison_before"]), _fmt(b["comparison_after"]), _fmt(b["smd_before"]),
                              _fmt(b["smd_after"])] for b in r["balance"]]))
    parts.append("<h2>Estimates</h2><p>Ratios below 1 mean fewer events among participants than expected from the "
                 "comparison group; 95 % confidence intervals in brackets.</p>")
    parts.append(_table("Estimates with 95 % intervals", ["estimate", "measure", "ratio (95 % CI)", "persons"],
                        [[html.escape(e["name"]), html.escape(e["measure"]), _ci(e), _fmt(e.get("persons"))]
                         for e in r["estimates"]]))
    for key, caption in r.get("chart_captions", {}).items():
        if key in charts:
            parts.append(_figure_html(charts[key], caption))
    if r.get("placebos"):
        parts.append(_table("Placebo tests (should find no effect)", ["placebo", "kind", "ratio (95 % CI)"],
                            [[html.escape(p["label"]), html.escape(p["kind"]), _ci(p)] for p in r["placebos"]]))
    parts.append("<h2>What was suppressed</h2>")
    parts.append("<ul>" + ("".join(f"<li>{html.escape(s)}</li>" for s in r["suppressed"]) or
                           "<li>nothing: every count behind this report passed the checks</li>") + "</ul>")
    parts.append("<h2>Limitations</h2><ul>" + "".join(f"<li>{html.escape(x)}</li>" for x in r["limitations"]) + "</ul>")
    link = r.get("linkage_error", {})
    if link.get("available"):
        rows = [[html.escape(f"{x['dimension']}: {x['group']}"), _fmt(x["missed_link_rate"], 4),
                 _fmt(x["false_link_rate"], 4), "yes" if x["flagged"] else "no"] for x in link["rows"]]
        parts.append(_table(f"Linkage error by group (linkage report {link['report']})",
                            ["group", "missed-link rate", "false-link rate", "flagged"], rows))
    style = ("body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222}"
             "table{border-collapse:collapse;margin:1rem 0}th,td{border:1px solid #ccc;padding:.25rem .5rem;"
             "text-align:left}caption{font-weight:bold;text-align:left}figure{margin:1rem 0}svg{max-width:100%;"
             "height:auto}")
    return ('<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" '
            f'content="width=device-width, initial-scale=1"><title>{html.escape(r["title"])}</title>'
            f"<style>{style}</style></head><body><main>{''.join(parts)}</main></body></html>")
