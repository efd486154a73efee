"""``vpdc-kit``: the partner kit's command line, for a partner's IT staff at their own site.

Every command is a thin shell over the kit's library (:mod:`partner_kit.batch`, :mod:`partner_kit.profile_check`,
:mod:`envelope.keys`). The warehouse's ``vpdc partner ...`` is this same app. No traceback ever reaches a
user: known problems print ``error: ...`` naming the file, field or rule, and anything unexpected prints
one line (``VPDC_DEBUG=1`` shows the traceback).

A site is a folder (``--site``, or ``VPDC_SITE``): ``<period>/`` native extracts, ``encoded/<period>/``,
``keys/``, ``profiles/`` (profiles the partner wrote), ``outbox/`` (envelopes to send). In a demo
``VPDC_HOME`` the site of partner P is ``VPDC_HOME/partners/P`` and envelopes go to ``VPDC_HOME/landing/P``.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from typer.core import TyperGroup

from workspace import PartnerSite, is_period


def handle_error(exc: Exception, errors: tuple[type[Exception], ...]) -> None:
    """Turn an exception into one line for a person (and an exit status); never a traceback.

    ``VPDC_DEBUG=1`` re-raises it instead, for the engineer who needs the traceback.
    """
    if os.environ.get("VPDC_DEBUG") == "1":
        raise exc
    if isinstance(exc, errors):
        fail(str(exc), code=getattr(exc, "exit_code", 2))
    if isinstance(exc, ModuleNotFoundError) and (exc.name or "").split(".")[0] in (
            "dagster", "dagster_dbt", "dbt", "splink", "great_expectations", "sqlalchemy", "alembic", "duckdb"):
        fail(f"this command needs the warehouse install ({exc.name} is missing): "
             "pip install 'vpdc-ids[warehouse]'; the partner kit alone has encode, send, keys and profile")
    if isinstance(exc, OSError) and exc.filename:
        fail(f"{exc.filename}: {exc.strerror or type(exc).__name__}")
    root = exc
    while root.__cause__ is not None or (root.__context__ is not None and not root.__suppress_context__):
        root = root.__cause__ or root.__context__  # the innermost cause says what actually went wrong
    lines = [ln.strip() for ln in str(root).splitlines() if ln.strip()]
    fail(f"unexpected {type(root).__name__}: {lines[0][:300] if lines else ''} "
         "(run again with VPDC_DEBUG=1 for details)", code=70)


class SafeGroup(TyperGroup):
    """A command group whose commands never show a traceback: see :func:`handle_error`."""

    @staticmethod
    def known_errors() -> tuple[type[Exception], ...]:
        return known_errors()

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, typer.TyperException):  # typer's own: usage errors, --help, exits
            raise
        except Exception as exc:  # noqa: BLE001 - the one place every error becomes a message
            handle_error(exc, self.known_errors())


app = typer.Typer(help="The partner kit: keys, profiles, encode an extract and send it as a signed, encrypted "
                       "envelope. Runs at the partner's own site with light dependencies only.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False, cls=SafeGroup)
keys_app = typer.Typer(help="This site's keys: make the signing key, install the linkage secret and the "
                            "warehouse's public key, end a rotation.", no_args_is_help=True)
profile_app = typer.Typer(help="Partner profiles: list them, check one against a sample extract.",
                          no_args_is_help=True)
reference_app = typer.Typer(help="Reference files (the county's address-points list): check a new one and "
                                 "prepare its lookup.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
app.add_typer(profile_app, name="profile")
app.add_typer(reference_app, name="reference")

err = Console(stderr=True, highlight=False)
out = Console(highlight=False)

SiteOpt = Annotated[Path | None, typer.Option("--site", envvar="VPDC_SITE", show_default="this folder",
                                              help="The site folder (extracts, encoded/, keys/, profiles/, outbox/).")]
PartnerOpt = Annotated[str, typer.Option(help="Partner whose extract this is (see `profile list`).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the result as JSON on stdout (and nothing else).")]


class UsageError(Exception):
    """A command cannot run as asked; the message says what to change."""


def fail(message: str, code: int = 2) -> None:
    err.print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True)
    raise typer.Exit(code)


def emit(result: Any, as_json: bool, table: Table | None = None) -> None:
    if as_json:
        sys.stdout.write(json.dumps(result, default=str, indent=2) + "\n")
    elif table is not None:
        out.print(table)
    else:
        out.print(escape(str(result)))


def _demo_home() -> Path | None:
    home = Path(os.environ.get("VPDC_HOME", "var"))
    return home if (home / "partners").is_dir() else None


def resolve_site(site: Path | None, partner: str) -> PartnerSite:
    """``--site``, else the partner's site in a demo VPDC_HOME, else the current folder."""
    if site is not None:
        return PartnerSite(site.resolve())
    home = _demo_home()
    if home is not None and (home / "partners" / partner).is_dir():
        return PartnerSite((home / "partners" / partner).resolve())
    return PartnerSite(Path.cwd())


def _destination(to: Path | None, site: PartnerSite, partner: str) -> Path:
    if to is not None:
        return to
    home = _demo_home()
    if home is not None and site.root == (home / "partners" / partner).resolve():
        return home.resolve() / "landing" / partner  # the demo: straight to the warehouse's landing folder
    return site.outbox


def _profiles_dir(site: PartnerSite) -> Path | None:
    return site.profiles if site.profiles.is_dir() else None


def _check_partner(partner: str, site: PartnerSite) -> None:
    from partner_kit.profiles import partners

    if partner not in partners(_profiles_dir(site)):
        raise UsageError(f"--partner {partner[:40]!r}: no profile; known partners: "
                         f"{', '.join(partners(_profiles_dir(site)))}")


def _periods(period: str | None, found: list[str], where: Path) -> list[str]:
    if period is not None:
        if not is_period(period):
            raise UsageError(f"--period {period[:20]!r}: expected YYYY-MM")
        return [period]
    if not found:
        raise UsageError(f"no extract periods under {where}; pass --period (and --input)")
    return found


# -------------------------------------------------------------------------------------------- keys
@keys_app.command("generate")
def keys_generate(site: SiteOpt = None, partner: Annotated[str, typer.Option(help="This site's partner id.")] = "",
                  overwrite: Annotated[bool, typer.Option(help="Replace an existing signing key (the warehouse must "
                                                               "register the new public half).")] = False,
                  as_json: JsonOpt = False) -> None:
    """Make this site's Ed25519 signing key (kept here, 0600) and print its public half for the warehouse."""
    from envelope.keys import generate_signing_key, key_id

    s = resolve_site(site, partner) if partner else PartnerSite((site or Path.cwd()).resolve())
    public, made = generate_signing_key(s.keys, overwrite=overwrite)
    result = {"public_key": public, "key_id": key_id(bytes.fromhex(public)), "created": made,
              "public_key_file": str(s.keys / "signing.pub")}
    emit(result, as_json) if as_json else out.print(
        f"{'created' if made else 'kept'} signing key {result['key_id']}; give the warehouse only the public key "
        f"in {result['public_key_file']}:\n{public}")


@keys_app.command("install-linkage")
def keys_install_linkage(version: Annotated[str, typer.Option(help="Version from the key custodian, e.g. v2.")],
                         secret_file: Annotated[Path, typer.Option("--file", help="The secret (32 bytes) from the "
                                                                                  "custodian.")],
                         site: SiteOpt = None, partner: Annotated[str, typer.Option(help="This site's partner.")] = "",
                         as_json: JsonOpt = False) -> None:
    """Install a linkage-secret version and make it current (the previous one stays for the transition)."""
    from envelope.keys import PartnerKeyRing, install_linkage_secret

    s = resolve_site(site, partner) if partner else PartnerSite((site or Path.cwd()).resolve())
    try:
        data = secret_file.read_bytes()
    except OSError as exc:
        raise UsageError(f"{secret_file}: cannot be read ({exc.strerror})") from None
    install_linkage_secret(s.keys, version, data)
    ring = PartnerKeyRing(s.keys)
    result = {"current": ring.current_linkage_version(), "previous": ring.previous_linkage_version()}
    emit(result, as_json) if as_json else out.print(
        f"linkage secret {result['current']} installed"
        + (f"; ids are also sent under {result['previous']} until `keys end-transition`" if result["previous"] else ""))


@keys_app.command("install-transport")
def keys_install_transport(public_key: Annotated[str, typer.Option(help="The warehouse's public transport key "
                                                                        "(64 hex digits).")],
                           site: SiteOpt = None, partner: Annotated[str, typer.Option(help="This site's partner.")] = "",
                           as_json: JsonOpt = False) -> None:
    """Install the warehouse's public transport key (envelopes are encrypted to it)."""
    from envelope.keys import install_transport_key

    s = resolve_site(site, partner) if partner else PartnerSite((site or Path.cwd()).resolve())
    kid = install_transport_key(s.keys, public_key)
    emit({"transport_key_id": kid}, as_json) if as_json else out.print(f"warehouse transport key {kid} installed")


@keys_app.command("end-transition")
def keys_end_transition(site: SiteOpt = None, partner: Annotated[str, typer.Option(help="This site's partner.")] = "",
                        as_json: JsonOpt = False) -> None:
    """Stop sending ids under the previous linkage-secret version (when the warehouse says the rotation is done)."""
    from envelope.keys import PartnerKeyRing

    s = resolve_site(site, partner) if partner else PartnerSite((site or Path.cwd()).resolve())
    ring = PartnerKeyRing(s.keys)
    ring.end_transition()
    emit({"current": ring.current_linkage_version()}, as_json) if as_json else out.print(
        f"rotation complete: only {ring.current_linkage_version()} is used")


@keys_app.command("show")
def keys_show(site: SiteOpt = None, partner: Annotated[str, typer.Option(help="This site's partner.")] = "",
              as_json: JsonOpt = False) -> None:
    """Which keys this site holds (key ids and versions only, never key material)."""
    from envelope.keys import KeyError_, PartnerKeyRing, key_id

    s = resolve_site(site, partner) if partner else PartnerSite((site or Path.cwd()).resolve())
    ring = PartnerKeyRing(s.keys)
    result: dict[str, Any] = {"site": str(s.root)}
    for name, get in (("signing_key_id", lambda: key_id(bytes.fromhex(ring.signing_public_hex()))),
                      ("linkage_version", ring.current_linkage_version),
                      ("previous_linkage_version", ring.previous_linkage_version),
                      ("transport_key_id", lambda: key_id(ring.transport_public_key().public_bytes_raw()))):
        try:
            result[name] = get()
        except KeyError_ as exc:
            result[name] = f"missing ({exc})"
    table = Table("key", "state", title=f"keys at {s.root}")
    for k, v in result.items():
        table.add_row(k, escape(str(v)))
    emit(result, as_json, table)


# ---------------------------------------------------------------------------------------- profiles
@profile_app.command("list")
def profile_list(site: SiteOpt = None, as_json: JsonOpt = False) -> None:
    """The partner profiles this kit knows (shipped, plus any in the site's profiles/) and their extracts."""
    from partner_kit.profiles import extract_types, load_profile, partners

    s = PartnerSite((site or Path.cwd()).resolve())
    pdir = _profiles_dir(s)
    rows = []
    for p in partners(pdir):
        for e in extract_types(p, pdir):
            prof = load_profile(p, e, pdir)
            rows.append({"partner": p, "extract": e, "kind": prof.kind, "file": prof.file,
                         "schema_version": prof.schema_version, "encoding": prof.encoding})
    table = Table("partner", "extract", "kind", "file", "schema version", "encoding")
    for r in rows:
        table.add_row(r["partner"], r["extract"], r["kind"], r["file"], r["schema_version"], r["encoding"])
    emit(rows, as_json, table)


@profile_app.command("check")
def profile_check(partner: PartnerOpt, extract: Annotated[str, typer.Option(help="Extract type in the profile.")],
                  sample: Annotated[Path, typer.Option(help="A sample of the native extract file.")],
                  site: SiteOpt = None, as_json: JsonOpt = False) -> None:
    """Check a profile (the site's own profiles/<partner>.json, else the shipped one) against a sample file.

    Reports counts and column names only. Exit status 1 when a check fails.
    """
    from partner_kit.profile_check import check_profile

    s = resolve_site(site, partner)
    report = check_profile(partner, extract, sample, profiles_dir=_profiles_dir(s))
    table = Table("check", "column", "result", "detail",
                  title=f"profile {partner}/{extract} against {sample.name} ({report.rows:,} rows)")
    for c in report.checks:
        colour = {"pass": "green", "warn": "yellow", "fail": "red"}[c.status]
        table.add_row(c.check, escape(c.column or ""), f"[{colour}]{c.status}[/]", escape(c.detail))
    emit(report.as_dict(), as_json, table)
    if not report.passed:
        raise typer.Exit(1)


# ---------------------------------------------------------------------------------------- reference
@reference_app.command("check")
def reference_check(partner: PartnerOpt, site: SiteOpt = None, as_json: JsonOpt = False) -> None:
    """Check the address-points file(s) in the site's reference/ folder and build their lookup now.

    Run it when the county publishes a new list: a malformed file is named here, with its line, rather than in
    the month's encode run, and the list is normalised once (every encode run reuses the lookup while the file is
    unchanged). Reports counts only: the list is public data, never a record of this site.
    """
    from partner_kit.geocode import prepare_reference
    from partner_kit.profiles import extract_types, load_profile

    s = resolve_site(site, partner)
    _check_partner(partner, s)
    pdir = _profiles_dir(s)
    rows = prepare_reference([load_profile(partner, e, pdir) for e in extract_types(partner, pdir)], s.reference)
    if not rows:
        raise UsageError(f"partner {partner}: no profile computes residence tracts, so no reference file is read")
    table = Table("file", "points", "ambiguous (dropped)", "lookup", "seconds",
                  title=f"reference files at {s.reference}")
    for r in rows:
        table.add_row(escape(r["file"]), f"{r['points']:,}", f"{r['ambiguous']:,}", r["lookup"], f"{r['seconds']:.1f}")
    emit(rows, as_json, table)


# ------------------------------------------------------------------------------------- encode/send
@app.command("encode")
def encode(partner: PartnerOpt,
           extract: Annotated[str | None, typer.Option(help="Extract type; default: every extract of the partner.")]
           = None,
           period: Annotated[str | None, typer.Option(help="Extract period YYYY-MM; default: every period found.")]
           = None,
           input_path: Annotated[Path | None, typer.Option("--input", help="The native file (default: "
                                                                           "<site>/<period>/<profile file>).")] = None,
           site: SiteOpt = None, as_json: JsonOpt = False) -> None:
    """Normalise and encode native extracts: Parquet (encodings + allow-listed content) and a rejects file.

    Nothing is sent: run `send` next. No plaintext identifier is written.
    """
    from envelope.keys import PartnerKeyRing
    from partner_kit.batch import encode_period

    s = resolve_site(site, partner)
    _check_partner(partner, s)
    periods = _periods(period, s.periods(), s.root)
    if input_path is not None and (extract is None or len(periods) != 1):
        raise UsageError("--input needs --extract and --period")
    ring = PartnerKeyRing(s.keys)
    results = []
    with _progress() as prog:
        for per in periods:
            results += encode_period(s, partner, per, keyring=ring, today=date.today(),
                                     extracts=[extract] if extract else None, input_path=input_path,
                                     profiles_dir=_profiles_dir(s), progress=_task(prog))
    table = Table("partner", "extract", "period", "rows", "encoded", "rejected", "rec/s")
    for r in results:
        table.add_row(r["partner"], r["extract_type"], r["period"], f"{r['rows_read']:,}", f"{r['rows_encoded']:,}",
                      f"{r['rows_rejected']:,}", f"{r['rows_read'] / max(r['seconds'], 1e-9):,.0f}")
    emit(results, as_json, table)


@app.command("send")
def send(partner: PartnerOpt,
         extract: Annotated[str | None, typer.Option(help="Extract type; default: every encoded extract.")] = None,
         period: Annotated[str | None, typer.Option(help="Period YYYY-MM; default: every encoded period.")] = None,
         to: Annotated[Path | None, typer.Option(help="Where envelopes go (default: the site's outbox/; in a demo "
                                                      "home, the warehouse's landing/<partner>/).")] = None,
         site: SiteOpt = None, as_json: JsonOpt = False) -> None:
    """Sign and encrypt encoded extracts into envelopes for the warehouse."""
    from envelope.keys import PartnerKeyRing
    from partner_kit.batch import send_period

    s = resolve_site(site, partner)
    _check_partner(partner, s)
    periods = _periods(period, s.encoded_periods(), s.encoded())
    ring, dest = PartnerKeyRing(s.keys), _destination(to, s, partner)
    results = []
    for per in periods:
        results += send_period(s, partner, per, keyring=ring, out_dir=dest, extracts=[extract] if extract else None,
                               profiles_dir=_profiles_dir(s))
    table = Table("partner", "extract", "period", "rows", "envelope")
    for r in results:
        table.add_row(r["partner"], r["extract_type"], r["period"], f"{r['rows']:,}", Path(r["envelope"]).name)
    emit(results, as_json, table)


def _progress():
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=err, transient=True, disable=not err.is_terminal)


def _task(prog: Any) -> Callable[[str], Callable[[int], None]]:
    def start(label: str) -> Callable[[int], None]:
        task = prog.add_task(label, total=None)
        return lambda n: prog.update(task, advance=n)

    return start


# ------------------------------------------------------------------------------------------ errors
def known_errors() -> tuple[type[Exception], ...]:
    """The kit's own refusals: printed as one line naming the file, field or rule."""
    from envelope.format import EnvelopeRefused
    from envelope.keys import KeyError_
    from partner_kit.extract import SchemaError
    from partner_kit.geocode import GeocodeError
    from partner_kit.nicknames import NicknameTableError
    from partner_kit.profiles import ProfileError

    return (UsageError, SchemaError, ProfileError, KeyError_, EnvelopeRefused, GeocodeError, NicknameTableError)


def main() -> None:  # pragma: no cover - console script
    app(prog_name="vpdc-kit")
