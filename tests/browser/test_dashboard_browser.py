"""The public dashboard on a real synthetic collaborative: the marts job (Dagster) builds it after the marts; every page
of the site, in English and Spanish, loads in real Chromium with every request outside the site blocked and none
attempted, no console error, its charts drawn and axe-core clean (WCAG 2.1 AA); the keyboard reaches everything; and
no file of the site holds the value of a suppressed cell."""

from __future__ import annotations

import csv
import functools
import http.server
import re
import threading
from pathlib import Path

import duckdb
import pytest

from tests.browser.conftest import CHROMIUM_FLAGS, chromium_path  # noqa: F401 - the browser fixture's helpers
from tests.conftest import TODAY, make_keys
from tests.integration.conftest import boundary
from workspace import Home

pytestmark = pytest.mark.browser
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
PERSONS = 3000


@pytest.fixture(scope="module")
def built_home(tmp_path_factory) -> Home:
    """A synthetic collaborative run through ingestion and linkage (the library's own steps), then the Dagster marts
    job, which builds the dashboard after the marts."""
    from datetime import UTC, datetime

    from envelope.keys import WarehouseKeyRing
    from landing.ingest import ingest_envelope
    from linkage.run import export_person_map, run_linkage
    from synthetic import SynthConfig, generate
    from vpdc.demo import encode_and_send_all
    from vpdc.stages import run_marts

    home = Home(tmp_path_factory.mktemp("dashboard") / "home").ensure()
    make_keys(home.root)
    generate(SynthConfig(persons=PERSONS, seed=7, periods=("2025-11", "2025-12")), home.root)
    encode_and_send_all(home, today=TODAY)
    now = datetime.now(UTC)
    ring = WarehouseKeyRing(home.keys)
    for f in sorted(home.landing().glob("*/*.vpdc")):
        out = ingest_envelope(f, home, ring, now=now)
        assert out.status == "loaded", (out.file, out.check, out.detail)
    linked = run_linkage(home.linkage_db, now=now, mode="full", blocking_analysis=False)
    export_person_map(home.linkage_db, home.warehouse_db, run_id=linked.run_id, boundary=boundary(home))
    marts = run_marts(home)
    assert marts["success"], marts["error"]
    return home


@pytest.fixture(scope="module")
def site(built_home) -> Path:
    return built_home.dashboard


@pytest.fixture(scope="module")
def served(site):
    """The site on a loopback HTTP server (a static host, as the city's web server would be)."""
    handler = functools.partial(_Quiet, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


def pages(site: Path) -> list[str]:
    return sorted(str(p.relative_to(site)) for p in site.rglob("*.html"))


def test_the_marts_job_builds_the_site_in_both_languages(site):
    found = pages(site)
    assert "index.html" in found and "es/index.html" in found and "methodology.html" in found
    indicators = [p for p in found if p.startswith("indicators/")]
    assert len(indicators) == 6 and len([p for p in found if p.startswith("es/indicators/")]) == 6
    assert {"programs/atv.html", "programs/hvip.html"} <= set(found)
    assert (site / "index.html").read_text().startswith("<!DOCTYPE html>\n<html lang=\"en\">")
    assert '<html lang="es">' in (site / "es" / "index.html").read_text()


def test_no_page_refers_to_anything_outside_the_site(site):
    """Every src, href and url() is relative (or a same-page anchor); the only absolute URLs are SVG namespaces."""
    for path in site.rglob("*"):
        if path.suffix not in (".html", ".css"):
            continue
        text = path.read_text()
        for url in re.findall(r"(?:src|href)=\"([^\"]*)\"|url\(([^)]*)\)", text):
            u = url[0] or url[1]
            assert not re.match(r"^[a-z]+:|^//", u), f"{path}: {u}"
        stripped = re.sub(r'xmlns(:xlink)?="http://www\.w3\.org/[^"]*"', "", text)
        assert "http://" not in stripped and "https://" not in stripped, path


def _open(browser, served: str, lang: str = "en"):
    context = browser.new_context(locale="es-ES" if lang == "es" else "en-US", viewport={"width": 1200, "height": 900})
    page = context.new_page()
    requests, refused, errors = [], [], []

    def route(r):
        if r.request.url.startswith(served + "/"):
            r.continue_()
        else:
            refused.append(r.request.url)
            r.abort()

    page.route("**/*", route)
    page.on("request", lambda req: requests.append(req.url))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    return context, page, requests, refused, errors


def test_every_page_loads_offline_with_charts_drawn_no_error_and_axe_clean(browser, served, site, built_home):
    from axe_playwright_python.sync_playwright import Axe

    axe = Axe()
    drawn = 0
    for path in pages(site):
        lang = "es" if path.startswith("es/") else "en"
        context, page, requests, refused, errors = _open(browser, served, lang)
        page.goto(f"{served}/{path}")
        page.wait_for_load_state("load")
        assert refused == [], f"{path} tried to load {refused}"
        assert all(u.startswith(served + "/") for u in requests), requests
        assert errors == [], f"{path}: {errors}"
        assert page.evaluate("document.documentElement.lang") == lang
        assert page.evaluate("getComputedStyle(document.body).fontFamily").startswith("system-ui"), "stylesheet"
        for chart in page.locator(".chart svg[role=img]").all():
            box = chart.bounding_box()
            assert box and box["width"] > 100 and box["height"] > 20, path
            assert chart.get_attribute("aria-label") and chart.get_attribute("aria-describedby")
            summary = page.locator(f"#{chart.get_attribute('aria-describedby')}")
            assert summary.inner_text().strip()
            assert chart.locator("path, rect").count() > 3
            drawn += 1
        results = axe.run(page, options={"runOnly": {"type": "tag", "values": AXE_TAGS}})
        assert results.violations_count == 0, f"{path}:\n{results.generate_report()}"
        if path in ("index.html", "es/index.html"):
            shot = built_home.reports / ("dashboard-home.png" if lang == "en" else "dashboard-home-es.png")
            page.screenshot(path=str(shot), full_page=True)
            assert shot.stat().st_size > 10_000
        context.close()
    assert drawn >= 40  # trend, year to date and rates of every indicator at least, in both languages


def test_the_site_opens_from_the_file_system_too(browser, site):
    context = browser.new_context()
    page = context.new_page()
    errors = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.goto((site / "es" / "indicators" / "violent_crimes.html").as_uri())
    assert page.locator("h1").inner_text() == "Delitos violentos"
    assert page.locator(".chart svg[role=img]").count() >= 3
    page.get_by_role("link", name="English").click()
    assert page.locator("h1").inner_text() == "Violent crimes"
    assert errors == []
    context.close()


def test_the_keyboard_reaches_the_content_the_tables_and_the_downloads(browser, served):
    context, page, *_ = _open(browser, served)
    page.goto(f"{served}/indicators/violent_crimes.html")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "skip"
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"
    for _ in range(200):  # tab forward to the first "Data table" disclosure, open it with Enter
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.tagName") == "SUMMARY":
            break
    else:
        raise AssertionError("no data table can be reached with the Tab key")
    page.keyboard.press("Enter")
    table = page.locator("details[open] table").first
    assert table.is_visible() and table.locator("tbody tr").count() > 10
    page.keyboard.press("Tab")  # the scrollable table region, then its download link
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.getAttribute('href')").endswith(".csv")
    context.close()


# ------------------------------------------------------------------------------------------------ privacy
def _raw_cells(warehouse: Path) -> dict[tuple, int]:
    """Every cell the site can show, with its true count (months from the unsuppressed cell grid; the last 12 months
    and the year to date as sums of true months), keyed as the CSVs name them."""
    with duckdb.connect(str(warehouse), read_only=True) as con:
        months = con.execute(
            "select indicator, geography_level, geography, demographic_dimension, demographic_group, period_start, n "
            "from intermediate.int_violence_indicator_cells where period_type = 'month'").fetchall()
        published = con.execute(
            "select period_type, period_start, period_end, indicator, geography_level, geography, "
            "demographic_dimension, demographic_group, event_count from analytics.community_violence_indicators "
            "where period_type in ('month', 'rolling_12', 'year_to_date')").fetchall()
    by_series: dict[tuple, dict] = {}
    for ind, lvl, geo, dim, grp, start, n in months:
        by_series.setdefault((ind, lvl, geo, dim, grp), {})[start] = int(n)
    out = {}
    for ptype, start, end, ind, lvl, geo, dim, grp, count in published:
        series = by_series[(ind, lvl, geo, dim, grp)]
        true = sum(v for m, v in series.items() if start <= m <= end)
        out[(ptype, start, end, ind, lvl, geo, dim, grp)] = (true, count)
    return out


def test_no_file_of_the_site_holds_the_value_of_a_suppressed_cell(site, built_home):
    from governance.disclosure import DisclosureRules

    cells = _raw_cells(built_home.warehouse_db)
    hidden = {k: true for k, (true, count) in cells.items() if count is None}
    published_values = {count for _, count in cells.values() if count is not None}
    assert hidden and any(v >= 1 for v in hidden.values())
    # 1. every CSV row of a suppressed cell is empty where its count and rate would be; every table cell marked
    #    suppressed holds no digit
    csv_suppressed = 0
    for path in site.rglob("*.csv"):
        rows = list(csv.reader(path.open(encoding="utf-8")))
        head = rows[0]
        flag = head.index("Suppressed" if "/es/" not in str(path) else "Suprimido")
        counts = [i for i, h in enumerate(head) if h in ("Events", "Eventos", "Enrolments", "Inscripciones",
                                                          "Rate per 100,000", "Tasa por cada 100.000")]
        for r in rows[1:]:
            if r[flag] in ("yes", "sí"):
                csv_suppressed += 1
                assert all(r[i] == "" for i in counts), (path.name, r)
    assert csv_suppressed > 100
    for path in site.rglob("*.html"):
        for td in re.findall(r'<td class="suppressed" data-suppressed="1">([^<]*)</td>', path.read_text()):
            assert not re.search(r"\d", td), (path, td)
    # 2. the distinctive values of hidden cells (never published anywhere, not small, not a year) appear in no file
    min_cell = DisclosureRules().min_cell
    with duckdb.connect(str(built_home.warehouse_db), read_only=True) as con:
        shown_otherwise = {int(x) for (x,) in con.execute(
            "select distinct population from analytics.community_violence_indicators where population is not null "
            "union select distinct floor(rate_per_100k) from analytics.community_violence_indicators "
            "where rate_per_100k is not null").fetchall()}
    distinctive = {v for v in hidden.values() if v >= 100 and v % 10 and not 1990 <= v <= 2100} \
        - published_values - shown_otherwise
    text = "\n".join(p.read_text(encoding="utf-8") for p in site.rglob("*") if p.suffix in (".html", ".csv"))
    words = set(re.findall(r"(?<![\d.,])\d{1,3}(?:[.,]\d{3})*(?![\d])|(?<![\d.,])\d+(?![\d])", text))
    numbers = {int(re.sub(r"[.,]", "", w)) for w in words}
    assert not (distinctive & numbers), sorted(distinctive & numbers)[:10]
    # 3. and nothing the site shows as a count lies between 1 and the minimum cell
    for path in site.rglob("*.csv"):
        rows = list(csv.reader(path.open(encoding="utf-8")))
        for i, h in enumerate(rows[0]):
            if h in ("Events", "Eventos", "Enrolments", "Inscripciones"):
                vals = [int(r[i]) for r in rows[1:] if r[i]]
                assert not [v for v in vals if 1 <= v < min_cell], (path.name, h)
