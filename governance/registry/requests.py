"""Request files (``vpdc request submit --file``, the portal's form): read and check one before it is submitted.

The checks here are about the file's shape (JSON, one object, the known fields, dates); the rules about
its content (study id, catalogue columns, output level, field limits) are :func:`workflow.submit_request`'s.
A problem is described by field name, never by echoing the file's content.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

from governance.registry.workflow import REQUEST_FIELDS

__all__ = ["RequestFileError", "parse_request", "read_request_file"]


class RequestFileError(ValueError):
    """The request file cannot be used; the message names the file and the field."""


def parse_request(body: Any, *, source: str = "request") -> dict[str, Any]:
    """Check a request's fields and turn its dates into ``date`` objects.

    Raises:
        RequestFileError: not one object, unknown or missing fields, a date that is not YYYY-MM-DD.
    """
    if not isinstance(body, dict):
        raise RequestFileError(f"{source}: must hold one JSON object with the fields {', '.join(REQUEST_FIELDS)}")
    unknown = sorted(str(k)[:40] for k in body if k not in REQUEST_FIELDS)
    missing = [k for k in REQUEST_FIELDS if k not in body]
    if unknown or missing:
        raise RequestFileError(f"{source}: " + "; ".join(
            ([f"unknown fields {unknown}"] if unknown else []) + ([f"missing fields {missing}"] if missing else [])))
    out = dict(body)
    for k in ("irb_expires_on", "retention_end"):
        try:
            out[k] = date.fromisoformat(body[k])
        except (TypeError, ValueError):
            raise RequestFileError(f"{source}: {k} must be a date YYYY-MM-DD") from None
    return out


def read_request_file(path: Path) -> dict[str, Any]:
    """Read and check a request file.

    Raises:
        RequestFileError: unreadable, not JSON, or any problem :func:`parse_request` finds.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RequestFileError(f"{path.name}: cannot be read: {exc.strerror or type(exc).__name__}") from None
    except UnicodeDecodeError:
        raise RequestFileError(f"{path.name}: not UTF-8 text") from None
    try:
        body = json.loads(text)
    except ValueError as exc:
        raise RequestFileError(f"{path.name}: not JSON (line {getattr(exc, 'lineno', '?')})") from None
    return parse_request(body, source=path.name)
