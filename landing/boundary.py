"""The zone boundary: what the linkage zone sees instead of names and ids, and the analytics zone's person keys.

The linkage zone (``linkage.duckdb``) and the analytics zone (``warehouse.duckdb``) must not share a value that
joins them. Without this module they shared three: the partner's name (``source``), the pseudonymous record id
and the person key. An insider holding the linkage zone could then group encodings by agency (and align them with
per-agency ZIP or age profiles), and attach any name they decoded to a whole event history in the warehouse by
key equality. So every value that crosses the boundary is keyed, under a key the linkage zone never holds
(ADR 0010):

* ``source`` and ``extract_type`` in the linkage zone are opaque labels (``s_…``, ``x_…``): Splink still treats
  each label as one source dataset (``link_and_dedupe``), but nothing in the file names the agency;
* record ids in the linkage zone are labels of the warehouse's ids (``r_…``), so a linkage-zone row cannot be
  joined to a warehouse row;
* the analytics person key (``wp_…``) is a keyed function of the linkage zone's person key (``pk_…``): stable
  across runs (the linkage key is), equal to nothing in the linkage zone, and not computable without the key.

Landing computes the labels as it loads (it holds the key); the person-map export translates labels back to
the warehouse's ids and person keys. The keyed hash is HMAC-SHA-256, evaluated inside DuckDB
(``sha256`` of the padded key and the message, twice, exactly as RFC 2104 defines it) so a million ids need no
round trip through Python; :meth:`ZoneBoundary.hmac_hex` is the same function in Python, and a test holds the
two equal. The key is passed as a query parameter, never written into SQL text or a file.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

__all__ = ["ZoneBoundary"]

_BLOCK = 64  # SHA-256's block size (RFC 2104's B)


def _derive(master: bytes, purpose: str) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=f"vpdc/boundary/{purpose}".encode()).derive(master)


class ZoneBoundary:
    """Keyed labels and person keys at the linkage/analytics boundary. ``repr`` never shows key bytes.

    Example::

        b = ZoneBoundary(WarehouseKeyRing(home.keys).boundary_key())
        b.source_label("police")        # 's_3f9c…' in linkage.duckdb
        sql, params = b.record_label_sql("source", "source_record_id")
    """

    #: label lengths in hex digits: sources and extracts are few (64 bits); record ids and person keys need
    #: room for millions without a collision (128 and 96 bits)
    SOURCE_HEX, RECORD_HEX, PERSON_HEX = 16, 32, 24

    def __init__(self, key: bytes):
        if len(key) != 32:
            raise ValueError("the zone-boundary key must be 32 bytes")
        self._keys = {p: _derive(key, p) for p in ("source", "record", "person")}

    @classmethod
    def from_keyring(cls, keyring: Any) -> "ZoneBoundary":
        """From the warehouse's key ring (:meth:`envelope.keys.WarehouseKeyRing.boundary_key`)."""
        return cls(keyring.boundary_key())

    def __repr__(self) -> str:
        return "ZoneBoundary(keys=<redacted>)"

    # ------------------------------------------------------------------------------------------- Python
    def hmac_hex(self, purpose: str, message: str) -> str:
        return hmac.new(self._keys[purpose], message.encode(), hashlib.sha256).hexdigest()

    def source_label(self, partner: str) -> str:
        """The linkage zone's name for a partner."""
        return "s_" + self.hmac_hex("source", f"source/{partner}")[: self.SOURCE_HEX]

    def extract_label(self, partner: str, extract_type: str) -> str:
        """The linkage zone's name for one of a partner's extracts (extract names alone give the partner away)."""
        return "x_" + self.hmac_hex("source", f"extract/{partner}/{extract_type}")[: self.SOURCE_HEX]

    def source_names(self, partners: Iterable[str]) -> dict[str, str]:
        """{label: partner} for the partners given: how the warehouse side reads the linkage zone's labels back."""
        return {self.source_label(p): p for p in partners}

    def record_label(self, partner: str, record_id: str) -> str:
        return "r_" + self.hmac_hex("record", f"{partner}/{record_id}")[: self.RECORD_HEX]

    def person_key(self, linkage_person_key: str) -> str:
        """The analytics zone's key of the person whom the linkage zone calls ``linkage_person_key``."""
        return "wp_" + self.hmac_hex("person", linkage_person_key)[: self.PERSON_HEX]

    # ---------------------------------------------------------------------------------------------- SQL
    def _pads(self, purpose: str) -> tuple[bytes, bytes]:
        k = self._keys[purpose].ljust(_BLOCK, b"\0")
        return bytes(b ^ 0x36 for b in k), bytes(b ^ 0x5C for b in k)

    def _hmac_sql(self, purpose: str, message_sql: str) -> tuple[str, dict[str, bytes]]:
        inner, outer = self._pads(purpose)
        names = {"i": f"bd_{purpose}_i", "o": f"bd_{purpose}_o"}
        sql = f"sha256(${names['o']}::blob || unhex(sha256(${names['i']}::blob || encode({message_sql}))))"
        return sql, {names["i"]: inner, names["o"]: outer}

    def record_label_sql(self, source_sql: str, record_id_sql: str) -> tuple[str, dict[str, bytes]]:
        """SQL for :meth:`record_label` of two SQL expressions (the partner's name and the warehouse's record id),
        and the named parameters (``$bd_…``) the statement must be given."""
        h, params = self._hmac_sql("record", f"{source_sql} || '/' || {record_id_sql}")
        return f"('r_' || left({h}, {self.RECORD_HEX}))", params

    def person_key_sql(self, linkage_key_sql: str) -> tuple[str, dict[str, bytes]]:
        """SQL for :meth:`person_key` of an SQL expression, and its named parameters."""
        h, params = self._hmac_sql("person", linkage_key_sql)
        return f"('wp_' || left({h}, {self.PERSON_HEX}))", params

    def source_label_sql(self, source_sql: str) -> tuple[str, dict[str, bytes]]:
        """SQL for :meth:`source_label` of an SQL expression, and its named parameters."""
        h, params = self._hmac_sql("source", f"'source/' || {source_sql}")
        return f"('s_' || left({h}, {self.SOURCE_HEX}))", params
