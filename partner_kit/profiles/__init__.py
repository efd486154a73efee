"""Partner profiles: how each partner's native extract maps onto the kit's identifier roles and content columns.

A profile (``<partner>.json``) is the contract between a partner and the warehouse: the kit encodes an extract
by it, and the landing zone validates the envelope against the schema it implies
(:meth:`ExtractProfile.output_schema`). The profiles shipped in this package are the collaborative's; the list
of partners is derived from them. A partner may write its own profile in its site's ``profiles/`` folder
(``profiles_dir``) and check it against a sample extract (:mod:`partner_kit.profile_check`) before the
warehouse adopts it.

Every problem with a profile raises :class:`ProfileError` naming the file and the field.
"""

from __future__ import annotations

import codecs
import json
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import pyarrow as pa

__all__ = ["CONTENT_TYPES", "IDENTIFIER_ROLES", "ExtractProfile", "ProfileError", "extract_types", "load_profile",
           "parse_profile", "partners", "profile_source"]

IDENTIFIER_ROLES = ("first_name", "middle_name", "last_name", "suffix", "formatted_name", "dob", "sex", "ssn",
                    "address", "zip")
_IDENTIFIER_OPTIONS = ("dob_format", "sex_map")
CONTENT_TYPES = {"string": pa.string(), "int": pa.int64(), "date": pa.date32(), "timestamp": pa.timestamp("ms")}  # Parquet has no seconds unit
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
_KINDS = ("persons", "events")


class ProfileError(Exception):
    """A profile is missing or malformed; the message names the file and the field."""


@dataclass(frozen=True)
class ExtractProfile:
    partner: str
    extract_type: str
    kind: str  # "persons" or "events"
    file: str
    delimiter: str
    schema_version: str
    record_id: dict[str, Any]
    content: dict[str, dict[str, Any]]
    identifiers: dict[str, Any] = field(default_factory=dict)
    person_ref: dict[str, Any] | None = None
    group_ref: dict[str, Any] | None = None
    #: the text encoding of the native file: utf-8 (a BOM is skipped), cp1252, latin-1, ...
    encoding: str = "utf-8"
    #: persons extracts: the residence census tract computed at the site from the address and ZIP roles
    #: (``{"column": ..., "reference": <address-points file in the site's reference/ folder>}``; partner_kit.geocode)
    geocode: dict[str, str] | None = None

    @property
    def derived_content(self) -> dict[str, dict[str, Any]]:
        """Content columns the kit computes rather than copies (the geocoded tract), with their checks."""
        if not self.geocode:
            return {}
        from partner_kit.geocode import TRACT_PATTERN

        return {self.geocode["column"]: {"type": "string", "pattern": TRACT_PATTERN}}

    def expected_columns(self) -> set[str]:
        cols = set(self.record_id["columns"]) | set(self.content)
        for ref in (self.person_ref, self.group_ref):
            if ref:
                cols |= set(ref["columns"])
        cols |= {v for k, v in self.identifiers.items() if k in IDENTIFIER_ROLES and v}
        return cols

    def output_schema(self, *, previous_ids: bool = False) -> pa.Schema:
        """The payload's columns, in order. The warehouse validates envelopes against this.

        ``previous_ids``: during a linkage-secret rotation a person extract also carries each record's
        pseudonymous id under the previous version (``source_record_id_prev``).
        """
        from partner_kit.encode import BLOOM_COLUMNS, ENCODING_COLUMNS

        fields = [pa.field("source_record_id", pa.string(), nullable=False)]
        if previous_ids and self.kind == "persons":
            fields.append(pa.field("source_record_id_prev", pa.string(), nullable=False))
        if self.person_ref:
            fields.append(pa.field("person_record_id", pa.string(), nullable=False))
        if self.group_ref:
            fields.append(pa.field(self.group_ref["name"], pa.string()))
        fields.append(pa.field("linkage_key_version", pa.string(), nullable=False))
        if self.kind == "persons":
            for col in ENCODING_COLUMNS:
                fields.append(pa.field(col, pa.binary() if col in BLOOM_COLUMNS else pa.string()))
            fields.append(pa.field("birth_year", pa.int16()))
        for col, spec in {**self.content, **self.derived_content}.items():
            fields.append(pa.field(col, CONTENT_TYPES[spec["type"]]))
        return pa.schema(fields)


def _shipped() -> Any:
    return resources.files("partner_kit.profiles")


def profile_source(partner: str, profiles_dir: Path | None = None) -> Any:
    """Where ``partner``'s profile is read from: the site's own folder first, then the shipped profiles."""
    if not isinstance(partner, str) or not _NAME.match(partner):
        raise ProfileError(f"partner {str(partner)[:40]!r}: not a partner id (lower-case letters, digits, _)")
    if profiles_dir is not None and (Path(profiles_dir) / f"{partner}.json").is_file():
        return Path(profiles_dir) / f"{partner}.json"
    shipped = _shipped().joinpath(f"{partner}.json")
    if not shipped.is_file():
        raise ProfileError(f"no profile for partner {partner!r}; known partners: {', '.join(partners(profiles_dir))}")
    return shipped


def partners(profiles_dir: Path | None = None) -> list[str]:
    """Partners with a profile (shipped, plus any in ``profiles_dir``)."""
    names = {p.name.removesuffix(".json") for p in _shipped().iterdir() if p.name.endswith(".json")}
    if profiles_dir is not None and Path(profiles_dir).is_dir():
        names |= {p.stem for p in Path(profiles_dir).glob("*.json") if _NAME.match(p.stem)}
    return sorted(names)


def _raw(partner: str, profiles_dir: Path | None) -> tuple[dict[str, Any], str]:
    src = profile_source(partner, profiles_dir)
    name = getattr(src, "name", str(src))
    try:
        raw = json.loads(src.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise ProfileError(f"{name}: not valid JSON ({exc})") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("extracts"), dict) or not raw["extracts"]:
        raise ProfileError(f"{name}: must be an object with a non-empty \"extracts\" object")
    if raw.get("partner", partner) != partner:
        raise ProfileError(f"{name}: \"partner\" is {str(raw.get('partner'))[:40]!r}, the file is {partner!r}'s")
    return raw, name


def extract_types(partner: str, profiles_dir: Path | None = None) -> list[str]:
    return list(_raw(partner, profiles_dir)[0]["extracts"])


def load_profile(partner: str, extract_type: str, profiles_dir: Path | None = None) -> ExtractProfile:
    raw, name = _raw(partner, profiles_dir)
    ex = raw["extracts"].get(extract_type)
    if ex is None:
        raise ProfileError(f"partner {partner!r} has no extract {str(extract_type)[:40]!r}; "
                           f"known: {', '.join(raw['extracts'])}")
    return parse_profile(partner, extract_type, ex, source=name)


def _ids_spec(spec: Any, where: str) -> dict[str, Any]:
    if not isinstance(spec, dict) or not isinstance(spec.get("columns"), list) or not spec["columns"] or \
            not all(isinstance(c, str) and c for c in spec["columns"]):
        raise ProfileError(f"{where}: needs \"columns\" (a non-empty list of column names)")
    if not isinstance(spec.get("namespace"), str) or not re.match(r"^[a-z0-9_]+/[a-z0-9_]+$", spec["namespace"]):
        raise ProfileError(f"{where}: needs a \"namespace\" like \"<partner>/<entity>\"")
    return spec


#: What a content column's pattern must never accept: identifiers in the clear, in their common layouts. A
#: pattern that matches one is free text in disguise (``.*``, ``^[A-Z ]+$``, ``^\\d+$``).
IDENTIFIER_PROBES = ("MARIA GARCIA", "GARCIA, MARIA", "Garcia", "JOHN", "1200 N TRYON ST", "123-45-6789", "123456789",
                     "123 45 6789", "2011-11-16", "20111116", "11/16/2011", "16-NOV-2011", "November 16, 2011",
                     "(704) 555-0134", "7045550134", "someone@example.org", "610052 MARIA GARCIA")


def _check_pattern(pattern: Any, where: str) -> None:
    """A content pattern is a full-match regular expression (``^...$``) that accepts no identifier probe."""
    try:
        compiled = re.compile(pattern)
    except (re.error, TypeError):
        raise ProfileError(f"{where}: \"pattern\" is not a regular expression") from None
    if not (pattern.startswith("^") and pattern.endswith("$")):
        raise ProfileError(f"{where}: \"pattern\" must match the whole value (start with ^ and end with $)")
    accepted = [p for p in IDENTIFIER_PROBES if compiled.fullmatch(p)]
    if accepted:
        raise ProfileError(f"{where}: \"pattern\" accepts identifiers in the clear ({len(accepted)} of "
                           f"{len(IDENTIFIER_PROBES)} probes, first: {_PROBE_KIND[accepted[0]]}); make it as narrow "
                           "as the codes it describes")


_PROBE_KIND = {**dict.fromkeys(IDENTIFIER_PROBES[:4], "name"), "1200 N TRYON ST": "street address",
               **dict.fromkeys(IDENTIFIER_PROBES[5:8], "SSN"), **dict.fromkeys(IDENTIFIER_PROBES[8:13], "date of birth"),
               **dict.fromkeys(IDENTIFIER_PROBES[13:15], "phone number"), "someone@example.org": "e-mail address",
               "610052 MARIA GARCIA": "code with a name appended"}


def parse_profile(partner: str, extract_type: str, ex: Any, *, source: str = "profile") -> ExtractProfile:
    """Check one extract's profile and build it. Every rule broken raises :class:`ProfileError` naming the field."""
    where = f"{source}: extract {extract_type!r}"
    if not isinstance(ex, dict):
        raise ProfileError(f"{where}: must be an object")
    if not _NAME.match(str(extract_type)):
        raise ProfileError(f"{where}: the extract name must be lower-case letters, digits or _")
    unknown = sorted(set(ex) - {"kind", "file", "delimiter", "schema_version", "record_id", "identifiers", "content",
                                "person_ref", "group_ref", "encoding", "geocode"})
    if unknown:
        raise ProfileError(f"{where}: unknown fields {unknown}")
    for key in ("kind", "file", "schema_version", "record_id"):
        if key not in ex:
            raise ProfileError(f"{where}: \"{key}\" is required")
    if ex["kind"] not in _KINDS:
        raise ProfileError(f"{where}: \"kind\" must be persons or events")
    if not isinstance(ex["file"], str) or not ex["file"] or "/" in ex["file"] or "\\" in ex["file"] \
            or ex["file"].startswith("."):
        raise ProfileError(f"{where}: \"file\" must be a plain file name")
    delimiter = ex.get("delimiter", ",")
    if not isinstance(delimiter, str) or len(delimiter) != 1 or delimiter in "\"\r\n":
        raise ProfileError(f"{where}: \"delimiter\" must be one character (not a quote or line break)")
    encoding = ex.get("encoding", "utf-8")
    try:
        codecs.lookup(encoding)
    except (LookupError, TypeError):
        raise ProfileError(f"{where}: \"encoding\" {str(encoding)[:30]!r} is not a known text encoding") from None
    if not isinstance(ex["schema_version"], str) or not re.match(r"^[a-z0-9_]+\.[a-z0-9_]+/[0-9]+$",
                                                                    ex["schema_version"]):
        raise ProfileError(f"{where}: \"schema_version\" must look like \"<partner>.<extract>/<n>\"")
    record_id = _ids_spec(ex["record_id"], f"{where} record_id")
    person_ref = _ids_spec(ex["person_ref"], f"{where} person_ref") if ex.get("person_ref") else None
    group_ref = ex.get("group_ref")
    if group_ref:
        _ids_spec(group_ref, f"{where} group_ref")
        if not isinstance(group_ref.get("name"), str) or not _NAME.match(group_ref["name"]):
            raise ProfileError(f"{where} group_ref: needs a \"name\" for its output column")
    identifiers = ex.get("identifiers") or {}
    if not isinstance(identifiers, dict):
        raise ProfileError(f"{where}: \"identifiers\" must be an object of role -> column")
    bad_roles = sorted(set(identifiers) - set(IDENTIFIER_ROLES) - set(_IDENTIFIER_OPTIONS))
    if bad_roles:
        raise ProfileError(f"{where}: unknown identifier roles {bad_roles}; roles are {', '.join(IDENTIFIER_ROLES)}")
    if ex["kind"] == "persons":
        names = identifiers.get("formatted_name") or identifiers.get("first_name") or identifiers.get("last_name")
        if not names:
            raise ProfileError(f"{where}: a persons extract needs a name role (first_name/last_name or formatted_name)")
    elif identifiers:
        raise ProfileError(f"{where}: only persons extracts carry identifiers; events refer to persons by person_ref")
    content = ex.get("content") or {}
    if not isinstance(content, dict):
        raise ProfileError(f"{where}: \"content\" must be an object of column -> spec")
    for col, spec in content.items():
        if not isinstance(spec, dict) or spec.get("type") not in CONTENT_TYPES:
            raise ProfileError(f"{where}: content column {col} has unknown type "
                               f"{(spec or {}).get('type') if isinstance(spec, dict) else spec!r}; "
                               f"types are {', '.join(CONTENT_TYPES)}")
        if "pattern" in spec:
            _check_pattern(spec["pattern"], f"{where}: content column {col}")
        if "values" in spec and (not isinstance(spec["values"], list) or not spec["values"]
                                 or not all(isinstance(v, str) and v for v in spec["values"])):
            raise ProfileError(f"{where}: content column {col}: \"values\" must be a non-empty list of codes")
        if spec["type"] == "string" and "values" not in spec and "pattern" not in spec:
            raise ProfileError(f"{where}: content column {col} is free text: declare its codes (\"values\") or a "
                               "\"pattern\"; identifiers hide in free text")
        if spec["type"] == "int" and not (isinstance(spec.get("min"), int) and isinstance(spec.get("max"), int)):
            raise ProfileError(f"{where}: content column {col}: an int column needs \"min\" and \"max\" "
                               "(an SSN or a date is a number too)")
    geocode = ex.get("geocode")
    if geocode is not None:
        if ex["kind"] != "persons" or not identifiers.get("address") or not identifiers.get("zip"):
            raise ProfileError(f"{where}: \"geocode\" needs a persons extract with the address and zip roles")
        if not isinstance(geocode, dict) or set(geocode) != {"column", "reference"}:
            raise ProfileError(f"{where}: \"geocode\" must be {{\"column\": <output column>, \"reference\": "
                               "<address-points file name>}")
        col, ref = geocode["column"], geocode["reference"]
        if not isinstance(col, str) or not re.match(r"^[A-Za-z][A-Za-z0-9_]{0,39}$", col) or col in content \
                or col in {v for v in identifiers.values() if isinstance(v, str)}:
            raise ProfileError(f"{where}: geocode column {str(col)[:40]!r} must be a new column name (letters, "
                               "digits, _), not a native or content column")
        if not isinstance(ref, str) or not ref or "/" in ref or "\\" in ref or ref.startswith("."):
            raise ProfileError(f"{where}: geocode \"reference\" must be a plain file name in the site's reference/ "
                               "folder")
    return ExtractProfile(
        partner=partner, extract_type=extract_type, kind=ex["kind"], file=ex["file"], delimiter=delimiter,
        schema_version=ex["schema_version"], record_id=record_id, content=content, identifiers=identifiers,
        person_ref=person_ref, group_ref=group_ref, encoding=encoding, geocode=geocode,
    )
