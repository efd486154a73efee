"""Keyed encodings of normalised identifiers (DESIGN.md, "Linkage on encodings").

Deterministic HMAC tokens allow only equality, so each identifier is encoded as several derived
features that Splink compares in graded levels: full value, phonetic code, initial, a keyed bigram
Bloom filter (Dice similarity in DuckDB SQL), DOB with day/month swapped, year-month and year, and so on.

Tokens are the first 96 bits of HMAC-SHA256 under a sub-key of the versioned linkage secret, in
base64url (16 characters). Each kind of identifier has its own domain label, but first and last names
share one ("name"), so a first name can be compared with a last name to catch swapped fields.
No plaintext and no unkeyed hash leaves this module.

Encoding is column-wise (Arrow arrays in, Arrow arrays out) and runs once per distinct value: names
and dates repeat a lot, so a million records need only tens of thousands of HMACs for them. The
scalar methods (``token``, ``bloom``, ``record_id``, ``dob_features``) are the reference that the
column-wise ones (``tokens``, ``blooms``, ``record_ids``) must equal; tests hold them to it.
"""

from __future__ import annotations

import binascii
from collections.abc import Hashable
from dataclasses import dataclass
from datetime import date

import jellyfish
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from cryptography.hazmat.primitives import hashes, hmac

from envelope.keys import LinkageSecret

__all__ = ["ENCODING_COLUMNS", "BLOOM_COLUMNS", "EncodingParams", "Encoder", "bigrams", "dice"]


@dataclass(frozen=True)
class EncodingParams:
    """Bloom filter shape. Recorded in every manifest so the warehouse can refuse a mismatch."""

    bloom_bits: int = 512
    bloom_k: int = 12  # bit positions per bigram, taken from one HMAC (at most 16)

    def __post_init__(self) -> None:
        if self.bloom_bits % 8 or not 64 <= self.bloom_bits <= 65536:
            raise ValueError("bloom_bits must be a multiple of 8 between 64 and 65536")
        if not 1 <= self.bloom_k <= 16:
            raise ValueError("bloom_k must be between 1 and 16")


#: Every encoding column the kit writes, with what it encodes. ``enc_`` marks linkage-zone-only columns.
ENCODING_COLUMNS: dict[str, str] = {
    "enc_fn_full": "first name, normalised (domain: name)",
    "enc_fn_phon": "first name, Metaphone code (domain: name_phon)",
    "enc_fn_init": "first initial (domain: name_init)",
    "enc_fn_bf": "first name bigram Bloom filter (bytes; domain: name)",
    "enc_ln_full": "last name, compact (domain: name)",
    "enc_ln_phon": "last name, Metaphone code (domain: name_phon)",
    "enc_ln_part1": "first part of a compound last name (domain: name)",
    "enc_ln_part2": "second part of a compound last name (domain: name)",
    "enc_ln_bf": "last name bigram Bloom filter (bytes; domain: name)",
    "enc_mn_init": "middle initial (domain: name_init)",
    "enc_sfx": "generational suffix JR/SR/II/III/IV (domain: suffix)",
    "enc_dob_full": "date of birth (domain: dob)",
    "enc_dob_swap": "date of birth with day and month swapped, when both ≤ 12 (domain: dob)",
    "enc_dob_ym": "birth year-month (domain: dob_ym)",
    "enc_dob_y": "birth year (domain: dob_y)",
    "enc_sex": "sex M/F (domain: sex)",
    "enc_ssn_full": "SSN, nine digits (domain: ssn)",
    "enc_ssn_last4": "SSN last four (domain: ssn4)",
    "enc_addr": "street address, standardised (domain: addr)",
    "enc_zip": "five-digit ZIP (domain: zip)",
}
BLOOM_COLUMNS = ("enc_fn_bf", "enc_ln_bf")


_URLSAFE = bytes.maketrans(b"+/", b"-_")


def _b64(raw: bytes) -> str:
    """base64url without padding overhead (inputs are multiples of 3 bytes)."""
    return binascii.b2a_base64(raw, newline=False).translate(_URLSAFE).decode()


def _b64_array(digests: list[bytes], width: int) -> pa.Array:
    """The first ``width`` bytes of each digest, base64url, as one Arrow string array.

    One base64 call over all digests instead of one per value: ``width`` is a multiple of 3, so every
    value is exactly ``4 * width / 3`` characters and the concatenation splits at fixed offsets.
    """
    n = len(digests)
    if n == 0:
        return pa.array([], pa.string())
    raw = np.frombuffer(b"".join(digests), dtype=np.uint8).reshape(n, -1)[:, :width].tobytes()
    text = binascii.b2a_base64(raw, newline=False).translate(_URLSAFE)
    step = width // 3 * 4
    offsets = np.arange(0, step * (n + 1), step, dtype=np.int32)
    return pa.Array.from_buffers(pa.string(), n, [None, pa.py_buffer(offsets), pa.py_buffer(text)])


def _hmac_all(base: hmac.HMAC, messages: list[bytes]) -> list[bytes]:
    """HMAC of each message under one keyed, domain-prefixed base (the hot loop of the kit)."""
    copy = base.copy
    out: list[bytes] = []
    append = out.append
    for m in messages:
        h = copy()
        h.update(m)
        append(h.finalize())
    return out


def bigrams(name: str) -> set[str]:
    """Padded character bigrams: "ANA" → {" A", "AN", "NA", "A "}."""
    padded = f" {name} "
    return {padded[i : i + 2] for i in range(len(padded) - 1)}


def dice(a: bytes, b: bytes) -> float:
    """Dice coefficient of two Bloom filters (the same measure the linkage SQL computes with bit_count)."""
    ia, ib = int.from_bytes(a, "big"), int.from_bytes(b, "big")
    total = ia.bit_count() + ib.bit_count()
    return 2 * (ia & ib).bit_count() / total if total else 0.0


class Encoder:
    """Encodes normalised values under one version of the linkage secret, caching per distinct value."""

    def __init__(self, secret: LinkageSecret, params: EncodingParams | None = None, *,
                 previous: LinkageSecret | None = None):
        """``previous``: during a linkage-secret rotation, the version being rotated away from; record ids
        are then also computed under it (:meth:`previous_record_ids`) so the warehouse can carry persons over."""
        self.secret = secret
        self.params = params or EncodingParams()
        self.previous = previous
        self._token_base: dict[str, hmac.HMAC] = {}
        self._bloom_base: dict[str, hmac.HMAC] = {}
        self._tokens: dict[str, dict[str, str]] = {}
        self._column_cache: dict[str, tuple[pa.Array, pa.Array]] = {}
        self._cache: dict[tuple[str, Hashable], object] = {}
        self._bigram_bits: dict[tuple[str, str], int] = {}
        self._rid_base: dict[str, hmac.HMAC] = {}

    @property
    def key_version(self) -> str:
        return self.secret.version

    # -- primitives ---------------------------------------------------------------------------------
    @staticmethod
    def _base(store: dict[str, hmac.HMAC], key: bytes, domain: str) -> hmac.HMAC:
        base = store.get(domain)
        if base is None:
            base = hmac.HMAC(key, hashes.SHA256())
            base.update(domain.encode() + b"\x1f")
            store[domain] = base
        return base

    def token(self, domain: str, value: str | None) -> str | None:
        """The keyed token of ``value`` in ``domain`` (None stays None)."""
        if value is None:
            return None
        cache = self._tokens.get(domain)
        if cache is None:
            cache = self._tokens[domain] = {}
        hit = cache.get(value)
        if hit is None:
            h = self._base(self._token_base, self.secret.token_key, domain).copy()
            h.update(value.encode())
            hit = _b64(h.finalize()[:12])
            cache[value] = hit
        return hit

    def record_id(self, namespace: str, value: str) -> str:
        """Pseudonymous record id: stable for one partner namespace, meaningless without the secret.

        Not cached: record ids are unique, a cache would only grow.
        """
        h = self._base(self._rid_base, self.secret.record_id_key, namespace).copy()
        h.update(value.encode())
        return _b64(h.finalize()[:15])

    def bloom(self, domain: str, value: str | None) -> bytes | None:
        """A keyed bigram Bloom filter of ``value`` (``bloom_bits`` long)."""
        if value is None:
            return None
        key = ("bf:" + domain, value)
        hit = self._cache.get(key)
        if hit is None:
            acc = 0
            for bg in bigrams(value):
                acc |= self._bigram_mask(domain, bg)
            hit = acc.to_bytes(self.params.bloom_bits // 8, "big")
            self._cache[key] = hit
        return hit  # type: ignore[return-value]

    def _bigram_mask(self, domain: str, bg: str) -> int:
        mask = self._bigram_bits.get((domain, bg))
        if mask is None:
            h = self._base(self._bloom_base, self.secret.bloom_key, domain).copy()
            h.update(bg.encode())
            digest = h.finalize()
            mask = 0
            for i in range(self.params.bloom_k):
                mask |= 1 << (int.from_bytes(digest[2 * i : 2 * i + 2], "big") % self.params.bloom_bits)
            self._bigram_bits[(domain, bg)] = mask
        return mask

    # -- column-wise --------------------------------------------------------------------------------
    def tokens(self, domain: str, values: pa.Array, *, cache: bool = True) -> pa.Array:
        """``token`` of every value of a string array (nulls stay null), one HMAC per distinct value.

        ``cache`` keeps tokens across calls (batches, files): right for names, dates and codes, which
        repeat; pass False for near-unique values (SSN, address), where a cache would only grow.
        """
        values = _as_string(values)
        if not cache:  # near-unique values: no dedupe either (a repeat costs one more HMAC, same token)
            base = self._base(self._token_base, self.secret.token_key, domain)
            toks = _b64_array(_hmac_all(base, pc.cast(pc.drop_null(values), pa.binary()).to_pylist()), 12)
            if values.null_count == 0:
                return toks
            valid = pc.is_valid(values)
            position = pc.subtract(pc.cumulative_sum(pc.cast(valid, pa.int64())), 1)
            return pc.take(toks, pc.if_else(valid, position, pa.scalar(None, pa.int64())))
        d = pc.dictionary_encode(values)
        uniques = d.dictionary
        # the cache is a pair of Arrow arrays (values, tokens): lookups are one index_in, not a dict
        # lookup per distinct value in Python
        known, toks = self._column_cache.get(domain, (pa.array([], pa.string()), pa.array([], pa.string())))
        pos = pc.index_in(uniques, value_set=known)
        missing = pc.is_null(pos)
        if pc.any(missing).as_py():
            new_values = uniques.filter(missing)
            base = self._base(self._token_base, self.secret.token_key, domain)
            new = _b64_array(_hmac_all(base, pc.cast(new_values, pa.binary()).to_pylist()), 12)
            rank = pc.cumulative_sum(pc.cast(missing, pa.int32()))  # 1-based among the missing ones
            pos = pc.if_else(missing, pc.add(rank, len(known) - 1), pos)
            known, toks = pa.concat_arrays([known, new_values]), pa.concat_arrays([toks, new])
            self._column_cache[domain] = (known, toks)
        return pc.take(pc.take(toks, pos), d.indices)

    def record_ids(self, namespace: str, values: pa.Array) -> pa.Array:
        """``record_id`` of every value; null for null or blank. No dedupe: record ids are unique."""
        values = _as_string(values)
        blank = pc.fill_null(pc.equal(values, ""), True)
        base = self._base(self._rid_base, self.secret.record_id_key, namespace)
        ids = _b64_array(_hmac_all(base, pc.cast(pc.fill_null(values, ""), pa.binary()).to_pylist()), 15)
        return pc.if_else(blank, pa.scalar(None, pa.string()), ids)

    def previous_record_ids(self, namespace: str, values: pa.Array) -> pa.Array:
        """``record_ids`` under the previous linkage-secret version (rotation in transition only)."""
        if self.previous is None:
            raise ValueError("no previous linkage secret: not in a rotation")
        return Encoder(self.previous).record_ids(namespace, values)

    def blooms(self, domain: str, values: pa.Array) -> pa.Array:
        """``bloom`` of every value (binary; nulls stay null), computed once per distinct value.

        ASCII values (every normalised name) go through numpy: the bigram codes of all values at once,
        one mask per distinct bigram, OR-reduced per value. Other values use ``bloom`` itself.
        """
        d = pc.dictionary_encode(_as_string(values))
        uniques = d.dictionary
        if not pc.all(pc.string_is_ascii(uniques)).as_py():
            filters = pa.array([self.bloom(domain, v) for v in uniques.to_pylist()], pa.binary())
            return pc.take(filters, d.indices)
        return pc.take(self._blooms_ascii(domain, uniques), d.indices)

    def _blooms_ascii(self, domain: str, names: pa.Array) -> pa.Array:
        n, width = len(names), self.params.bloom_bits // 8
        if n == 0:
            return pa.array([], pa.binary())
        padded = pc.binary_join_element_wise(" ", names, " ", "", null_handling="emit_null")  # last: separator
        padded = pc.fill_null(padded, "  ")  # nulls get a dummy bigram, and null again at the end
        _, offs_buf, data_buf = padded.buffers()
        offsets = np.frombuffer(offs_buf, dtype=np.int32)[padded.offset : padded.offset + n + 1]
        data = np.frombuffer(data_buf, dtype=np.uint8)
        starts, ends = offsets[:-1], offsets[1:] - 1  # bigram k of a value starts at starts..ends-1
        counts = ends - starts
        pos = np.repeat(starts - np.concatenate(([0], np.cumsum(counts)[:-1])), counts) + np.arange(counts.sum())
        codes = data[pos].astype(np.int32) * 256 + data[pos + 1]
        # distinct bigrams by counting (no sort), one mask each, then OR per value word by word
        distinct = np.flatnonzero(np.bincount(codes, minlength=65536))
        lookup = np.empty(65536, dtype=np.int32)
        lookup[distinct] = np.arange(len(distinct), dtype=np.int32)
        which = lookup[codes]
        word = np.uint64 if width % 8 == 0 else np.uint8  # bloom_bits is a multiple of 64 in practice
        masks = np.frombuffer(b"".join(
            self._bigram_mask(domain, chr(c >> 8) + chr(c & 255)).to_bytes(width, "big") for c in distinct.tolist()),
            dtype=word).reshape(len(distinct), -1)
        seg = np.concatenate(([0], np.cumsum(counts)[:-1]))
        filters = np.empty((n, masks.shape[1]), dtype=word)
        for w in range(masks.shape[1]):
            filters[:, w] = np.bitwise_or.reduceat(masks[:, w][which], seg)
        out = pa.FixedSizeBinaryArray.from_buffers(pa.binary(width), n, [None, pa.py_buffer(filters.tobytes())])
        out = pc.cast(out, pa.binary())
        return pc.if_else(pc.is_null(names), pa.scalar(None, pa.binary()), out)

    def phonetic_codes(self, names: pa.Array) -> pa.Array:
        """Metaphone code of every name (the plaintext code: encode it with ``tokens("name_phon", ...)``)."""
        d = pc.dictionary_encode(_as_string(names))
        return pc.take(pa.array([self._metaphone(v) for v in d.dictionary.to_pylist()], pa.string()), d.indices)

    def dob_tokens(self, dates: pa.Array) -> tuple[pa.Array, pa.Array, pa.Array, pa.Array]:
        """Column-wise ``dob_features``: (full, day/month swapped, year-month, year) token arrays."""
        dates = pc.cast(dates, pa.date32())
        d = pc.dictionary_encode(dates)
        if len(d.dictionary) < len(dates):  # repeats or nulls: the rest once per distinct date, then spread
            return tuple(pc.take(col, d.indices) for col in self.dob_tokens(d.dictionary))  # type: ignore[return-value]
        iso = pc.cast(dates, pa.string())
        year, month, day = (pc.utf8_slice_codeunits(iso, a, b) for a, b in ((0, 4), (5, 7), (8, 10)))
        can_swap = pc.and_(pc.less_equal(day, "12"), pc.not_equal(day, month))
        swapped = pc.if_else(can_swap, pc.binary_join_element_wise(year, day, month, "-"),
                             pa.scalar(None, pa.string()))
        return (self.tokens("dob", iso), self.tokens("dob", swapped),
                self.tokens("dob_ym", pc.utf8_slice_codeunits(iso, 0, 7)), self.tokens("dob_y", year))

    # -- derived features ---------------------------------------------------------------------------
    def _metaphone(self, name: str | None) -> str | None:
        if not name:
            return None
        code = self._cache.get(("phon", name))
        if code is None:
            code = jellyfish.metaphone(name) or name[:1]
            self._cache[("phon", name)] = code
        return code  # type: ignore[return-value]

    def phonetic(self, name: str | None) -> str | None:
        return self.token("name_phon", self._metaphone(name))

    def dob_features(self, d: date | None) -> tuple[str | None, str | None, str | None, str | None]:
        """(full, day/month swapped, year-month, year) tokens of a date of birth."""
        if d is None:
            return None, None, None, None
        hit = self._cache.get(("dobf", d))
        if hit is None:
            swap = None
            if d.day <= 12 and d.day != d.month:
                swap = self.token("dob", f"{d.year:04d}-{d.day:02d}-{d.month:02d}")
            hit = (
                self.token("dob", d.isoformat()),
                swap,
                self.token("dob_ym", f"{d.year:04d}-{d.month:02d}"),
                self.token("dob_y", f"{d.year:04d}"),
            )
            self._cache[("dobf", d)] = hit
        return hit  # type: ignore[return-value]


def _as_string(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    return values if values.type == pa.string() else pc.cast(values, pa.string())
