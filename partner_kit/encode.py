"""Keyed, salted encodings of normalised identifiers: encoding scheme 10 (ADR 0009, ADR 0014-0022).

Scheme 10 salts each name by the date of birth **and the initial of the other name** (ADR 0022): the first name's
token, filter, Metaphone code and formal-name tokens by the DOB and the initial of the surname (of its first part
where it is compound), the surname's (and its parts') by the DOB and the initial of the first name. Salted by the
DOB alone, two persons' equal names on one birthday gave equal encodings, so a partner who knows its own clients'
names read the first name of 3.1 % and the surname of 1.4 % of the persons it does not hold at 1,000,000 persons
(another person born on a client's birthday with the client's first name). Two tokens keep what the finer salt
would cost linkage: ``enc_fn_zip`` and ``enc_ln_zip``, each name salted by the DOB and the ZIP (a surname changed
by marriage, a compound surname written with its other part first, a nickname of another initial, at one ZIP).

Scheme 9 is scheme 8 plus two tokens, ``enc_fn_ph`` and ``enc_ln_ph``: the Metaphone code (Philips 1990, through
``jellyfish``) of the first name and of the compact surname, each under its own key (``first_sound``, ``last_sound``)
and salted by the exact date of birth like the name tokens. One name written two ways (MUHAMMAD / MOHAMED, IBRAHIM /
IBRAHEEM, HASAN / HASSAN, CHEN / CHAN, AMIRA / AMEERA) shares few bigrams, so the name filters see two names; the
code sees one. Scheme 1's phonetic tokens were unkeyed across birthdays and seeded the frequency attacks (ADR 0009);
these are not: counting them counts (code, birthday) pairs, and inside one birthday the name filters already say
more than a code does (ADR 0020).

Scheme 8 is scheme 7 plus three tokens, ``enc_fn_alt1`` to ``enc_fn_alt3``: the formal names a first name may stand
for by a nickname table (:mod:`partner_kit.nicknames`: BILL -> WILLIAM, LUPE -> GUADALUPE), each made exactly as
``enc_fn_full`` makes a first name (key ``first``, salted by the date of birth), so one record's formal-name token
equals another's first-name token where that record is called by the formal name. Where a name has fewer formal
names (most names have none), the rest are filler tokens made from the first name itself under a key of their own
(salted by the date of birth like the rest), and the three are stored in the order of their values: every record with
a first name carries three tokens that look alike, and two records of one name and birthday share all three whatever
the table holds (ADR 0019).

Scheme 7 is scheme 6 with the street address standardised further before it is encoded (ADR 0018): every street
type of USPS Publication 28 and AS/NZS 4819 abbreviated (CRESCENT -> CRES, not only STREET -> ST), and the type
corrected where it carries one typo, a space or no space before it (STREET written SITREET, S TREET or glued to
the name), and adds one token, ``enc_fn_addr``: the first name under its own key (``first_addr``) salted by the
street address, blank without an address. A record without a date of birth compares names only where all its name
words are close at one address (scheme 6); a surname changed by marriage, or written with one part of two, left
such a pair with the address alone. The address tokens and the salts made from them differ from scheme 6's.

Scheme 6 is scheme 5 plus one filter, ``enc_nwa_bf``: the same name words under their own key (``words_addr``),
salted by the standardised street address, written only where the address is known. A record without a date of
birth (a fifth of police records) had no name comparison at all where it also had no SSN: names compare where the
address agrees, so a typo in a name no longer leaves such a pair with the address alone (ADR 0017).

Scheme 5 is scheme 4 plus one filter, ``enc_nws_bf``: the name words of ``enc_nw_bf`` under their own key
(``words_ssn``) and salted by the SSN instead of the date of birth, written only where the SSN is known. Names were
comparable across two dates of birth only through exact SSN-salted tokens, so a pair whose date differs (or is
missing on one side) and whose names carry a typo or sit in swapped fields lost all name evidence (ADR 0016).

Scheme 4 is scheme 3 with every keyed digest of a value made by AES-CMAC (NIST SP 800-38B) instead of HMAC-SHA256
truncated to 16 bytes: both are pseudorandom functions under the field's key, so what an attacker can do with the
encodings is unchanged, and CMAC runs column-wise (one AES call per block position over a whole column) where HMAC
was one Python call per value, a fifth of the kit's time (ADR 0015). The digest keys have their own HKDF labels
(``cmac/<field>``): no key serves two primitives. Record ids stay HMAC (the warehouse's person keys hang on them).

Scheme 3 is scheme 2 plus one filter, ``enc_nw_bf``: the bigrams of every word of the given, middle and
family names in no order, under its own key and the same DOB salt and hardening as the other name filters.
Names written family name first, a middle name merged into the given name, transliteration variants of one
name: the field-by-field name comparisons see two unrelated names where this filter sees most of one
(ADR 0014 has what it bought and what the attacks make of it). The derivation labels stay ``enc2``.

The linkage zone must not be readable by an insider without the key (issue 13). Scheme 1 (one token per
identifier and derived feature, unsalted per-bigram Bloom filters, first and last names in one domain)
fell to frequency, side-token, pattern-mining and per-agency profile attacks; scheme 2 keeps what linkage
needs and nothing an attacker can align with a public list:

* **per-field keys**: every field has its own keys, derived from the versioned linkage secret with HKDF
  (``vpdc/enc2/<purpose>/<field>``): first names, surnames, dates of birth never share a domain;
* **a salt per record from another field**: name tokens and filters are salted by the exact date of birth
  (``s_dob``), the DOB filter and the name-keyed DOB/ZIP tokens by the exact unordered name pair (``s_name``),
  and a second pair of name tokens by the SSN (``s_ssn``: names compare where the SSNs agree and the dates do not).
  The same name of two persons born on different days gives unrelated encodings, so counting encodings
  counts (name, birthday) pairs, not names: no frequency to align. A record without a DOB (or without a
  name) is salted by its own pseudonymous id: its salted encodings match nothing but itself;
* **no side tokens**: no initial, no phonetic code, no year or year-month token; no deterministic token
  groups names. What stays unsalted is near-unique (SSN, address) or carries no frequency signal that
  points to a value (the full date of birth: about a person a day per 30,000 of population);
* **hardened filters**: bigram (names) and positional-digit (DOB, SSN) Bloom filters whose positions come
  from AES under the field's key on ``salt XOR element`` (a salted hash per record), XOR-folded from 512
  to 256 bits (Schnell et al. 2016), masked with a salt-keyed 256-bit pad and stored balanced
  (``f || NOT f``, 512 bits, Berger/Schnell): the popcount is 256 for every value, so it says nothing of
  a name's length. Dice of two stored filters is ``1 - hamming(fold_a, fold_b) / 256`` (0.5 for unrelated
  filters, 1 for equal values under one salt).

The fuzzy levels linkage needs come back as cross-salted features: names compare (Dice bands) where the
dates of birth are equal; dates of birth compare (positional Dice bands, year-only and month/day-only
tokens) where the names are equal; SSN compares on a positional filter where the dates are equal.

Every value is processed column-wise (Arrow/numpy): distinct values of a batch get one 16-byte AES-CMAC digest
each, salts and per-record encodings are single AES-ECB calls over whole columns. The scalar
``encode_record`` is the reference the column-wise ``encode_features`` must equal; tests hold them to it.
No plaintext and no unkeyed hash leaves this module.
"""

from __future__ import annotations

import binascii
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

import jellyfish
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from cryptography.hazmat.primitives import cmac, hashes, hmac
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from envelope.keys import LinkageSecret
from partner_kit.nicknames import MAX_FORMAL, formal_names

__all__ = ["BLOOM_COLUMNS", "ENCODING_COLUMNS", "ENCODING_SCHEME", "FEATURES", "Encoder", "EncodingParams",
           "bigrams", "dice", "sound", "sounds", "where_known"]

#: The encoding scheme, written in every row (``enc_scheme``; token-shaped so the landing zone's format
#: check holds) and in every manifest. Linkage never compares rows of two schemes.
ENCODING_SCHEME = "vpdc-encoding-10"  # 16 characters: token-shaped (scheme 10 drops the "v")


@dataclass(frozen=True)
class EncodingParams:
    """Bloom filter shape. Recorded in every manifest so the warehouse can refuse a mismatch.

    ``bloom_bits`` is the stored (balanced) length: the folded filter has ``bloom_bits // 2`` bits, the
    unfolded one ``bloom_bits``. ``bloom_k`` positions per element (one AES block gives at most 8).
    """

    bloom_bits: int = 512
    bloom_k: int = 4  # measured: 8 cost the kit a third of its speed for no gain in linkage (ADR 0009)

    def __post_init__(self) -> None:
        # the mask is one AES block per 128 folded bits, numbered by one byte: at least one block, at most 256
        if self.bloom_bits % 64 or not 256 <= self.bloom_bits <= 32768 or self.bloom_bits & (self.bloom_bits - 1):
            raise ValueError("bloom_bits must be a power of two between 256 and 32768")
        if not 1 <= self.bloom_k <= 8:
            raise ValueError("bloom_k must be between 1 and 8")


#: The normalised plaintext features the kit derives per record (the input of ``encode_features``).
FEATURES = ("first", "last", "last_part1", "last_part2", "middle_init", "suffix", "dob", "sex", "ssn", "addr", "zip",
            "name_words")

#: Every encoding column the kit writes, with what it encodes. ``enc_`` marks linkage-zone-only columns.
#: "salt: dob" = salted by the record's exact date of birth; "salt: name" = by its unordered name pair.
ENCODING_COLUMNS: dict[str, str] = {
    "enc_scheme": f"encoding scheme ({ENCODING_SCHEME}); never an identifier",
    "enc_fn_full": "first name (key: first; salt: dob and surname initial; scheme 10)",
    "enc_fn_bf": "first name bigram filter, folded, masked, balanced (key: first; salt: dob and surname initial)",
    "enc_ln_full": "surname, compact (key: last; salt: dob and first-name initial; scheme 10)",
    "enc_ln_part1": "first part of a compound surname (key: last; salt: dob and first-name initial)",
    "enc_ln_part2": "second part of a compound surname (key: last; salt: dob and first-name initial)",
    "enc_ln_bf": "surname bigram filter, folded, masked, balanced (key: last; salt: dob and first-name initial)",
    "enc_nm_pair": "first and last name as an unordered pair: equal when the fields are swapped (key: pair; salt: dob)",
    "enc_nw_bf": "every word of the given, middle and family names, in no order: bigram filter, folded, masked, "
                 "balanced (key: words; salt: dob; scheme 3)",
    "enc_mn_init": "middle initial (key: middle; salt: dob)",
    "enc_sfx": "generational suffix JR/SR/II/III/IV (key: suffix; salt: dob)",
    "enc_sex": "sex M/F (key: sex; salt: dob)",
    "enc_zip": "five-digit ZIP (key: zip; salt: dob)",
    "enc_dob_full": "date of birth (key: dob; unsalted: about one person per day per 30,000 people)",
    "enc_dobp_bf": "date of birth, positional digits and unordered month/day, folded, masked, balanced "
                  "(key: dob; salt: name)",
    "enc_nm_y": "birth year (key: name_year; salt: name)",
    "enc_nm_md": "birth month and day (key: name_monthday; salt: name)",
    "enc_nm_zip": "five-digit ZIP (key: name_zip; salt: name)",
    "enc_fn_ssn": "first name (key: first_ssn; salt: ssn): names compare where the SSNs agree and the dates do not",
    "enc_ln_ssn": "surname, compact (key: last_ssn; salt: ssn)",
    "enc_fn_addr": "first name (key: first_addr; salt: street address; blank without an address; scheme 7): a first "
                   "name compares at one address where a date of birth is missing and the surname changed",
    "enc_fn_ph": "Metaphone code of the first name (key: first_sound; salt: dob and surname initial; scheme 9)",
    "enc_ln_ph": "Metaphone code of the compact surname (key: last_sound; salt: dob and first-name initial; scheme 9)",
    "enc_fn_zip": "first name (key: first_zip; salt: dob and ZIP; blank without a ZIP; scheme 10)",
    "enc_ln_zip": "surname, compact (key: last_zip; salt: dob and ZIP; blank without a ZIP; scheme 10)",
    **{f"enc_fn_alt{i}": "a formal name the first name may stand for by the nickname table, or a filler token, in the "
                         "order of their values (key: first; salt: dob and surname initial; scheme 8)" for i in range(1, MAX_FORMAL + 1)},
    "enc_nws_bf": "every word of the given, middle and family names, in no order: bigram filter, folded, masked, "
                  "balanced (key: words_ssn; salt: ssn; blank without an SSN; scheme 5)",
    "enc_nwa_bf": "every word of the given, middle and family names, in no order: bigram filter, folded, masked, "
                  "balanced (key: words_addr; salt: street address; blank without an address; scheme 6)",
    "enc_ssn_full": "SSN, nine digits (key: ssn; unsalted, near-unique)",
    "enc_ssn_last4": "SSN last four (key: ssn4; unsalted, uniform)",
    "enc_ssnp_bf": "SSN positional digits, folded, masked, balanced (key: ssn; salt: dob)",
    "enc_addr": "street address, standardised (key: addr; unsalted, near-unique)",
}
#: (``p`` for positional; the names also keep clear of the landing zone's identifier-name detector)
BLOOM_COLUMNS = ("enc_fn_bf", "enc_ln_bf", "enc_nw_bf", "enc_nws_bf", "enc_nwa_bf", "enc_dobp_bf", "enc_ssnp_bf")

#: salted token columns: (field key, salt, feature or derived value)
SALTED_TOKENS: dict[str, tuple[str, str, str]] = {
    "enc_fn_full": ("first", "dob_last", "first"),
    "enc_ln_full": ("last", "dob_first", "last"),
    "enc_ln_part1": ("last", "dob_first", "last_part1"),
    "enc_ln_part2": ("last", "dob_first", "last_part2"),
    "enc_nm_pair": ("pair", "dob", "pair"),
    "enc_mn_init": ("middle", "dob", "middle_init"),
    "enc_sfx": ("suffix", "dob", "suffix"),
    "enc_sex": ("sex", "dob", "sex"),
    "enc_zip": ("zip", "dob", "zip"),
    "enc_nm_y": ("name_year", "name", "dob_year"),
    "enc_nm_md": ("name_monthday", "name", "dob_monthday"),
    "enc_nm_zip": ("name_zip", "name", "zip"),
    "enc_fn_ssn": ("first_ssn", "ssn", "first"),
    "enc_ln_ssn": ("last_ssn", "ssn", "last"),
    "enc_fn_addr": ("first_addr", "addr", "first_addr"),
    "enc_fn_ph": ("first_sound", "dob_last", "first_sound"),
    "enc_ln_ph": ("last_sound", "dob_first", "last_sound"),
    "enc_fn_zip": ("first_zip", "dob_zip", "first_zip"),
    "enc_ln_zip": ("last_zip", "dob_zip", "last_zip"),
}
#: unsalted token columns: (field key, feature or derived value)
PLAIN_TOKENS: dict[str, tuple[str, str]] = {
    "enc_dob_full": ("dob", "dob_iso"),
    "enc_ssn_full": ("ssn", "ssn"),
    "enc_ssn_last4": ("ssn4", "ssn_last4"),
    "enc_addr": ("addr", "addr"),
}
#: filter columns: (field key, salt, element kind, feature)
FILTERS: dict[str, tuple[str, str, str, str]] = {
    "enc_fn_bf": ("first", "dob_last", "bigrams", "first"),
    "enc_ln_bf": ("last", "dob_first", "bigrams", "last"),
    "enc_nw_bf": ("words", "dob", "bigrams", "name_words"),
    "enc_nws_bf": ("words_ssn", "ssn", "bigrams", "name_words_ssn"),
    "enc_nwa_bf": ("words_addr", "addr", "bigrams", "name_words_addr"),
    "enc_dobp_bf": ("dob", "name", "date", "dob_iso"),
    "enc_ssnp_bf": ("ssn", "dob", "digits", "ssn"),
}
_NEAR_UNIQUE = {"ssn", "addr"}  # features not worth deduplicating
_NOT_LETTER = re.compile(r"[^A-Z]")


_URLSAFE = bytes.maketrans(b"+/", b"-_")


def sound(name: str | None) -> str | None:
    """The Metaphone code of a normalised name (scheme 9): its letters only; None where it has none."""
    letters = _NOT_LETTER.sub("", name or "")
    return (jellyfish.metaphone(letters) or None) if letters else None


def sounds(names: pa.Array) -> pa.Array:
    """:func:`sound` of a string column, computed once per distinct name."""
    return _sound_codes(names).dictionary_decode()


def _sound_codes(names: pa.Array) -> pa.DictionaryArray:
    """:func:`sound` of a string column as a dictionary array over the distinct names (codes may repeat in the
    dictionary): :meth:`Encoder._digests` digests each entry once and never materialises the column."""
    d = pc.dictionary_encode(_as_string(names))
    return pa.DictionaryArray.from_arrays(d.indices, pa.array([sound(v) for v in d.dictionary.to_pylist()], pa.string()))


def initials(names: pa.Array) -> pa.Array:
    """The first letter of each normalised name (null where the name is): scheme 10's second salt of the other name."""
    first = pc.utf8_slice_codeunits(_as_string(names), 0, 1)
    return pc.if_else(pc.equal(first, ""), pa.scalar(None, pa.string()), first)


def surname_initials(features: Mapping[str, pa.Array]) -> pa.Array:
    """The initial of the surname's first part where it is compound, else of the compact surname (scheme 10): GARCIA
    LOPEZ and GARCIA give one initial."""
    return initials(pc.coalesce(_as_string(features["last_part1"]), _as_string(features["last"])))


def where_known(values: pa.Array, salt: pa.Array) -> pa.Array:
    """``values`` where the salting field ``salt`` is known, else null (a value salted per record matches nothing)."""
    return pc.if_else(pc.is_valid(salt), values, pa.scalar(None, pa.string()))


def _b64(raw: bytes) -> str:
    """base64url without padding overhead (inputs are multiples of 3 bytes)."""
    return binascii.b2a_base64(raw, newline=False).translate(_URLSAFE).decode()


def _validity(valid: np.ndarray | None) -> pa.Buffer | None:
    """An Arrow validity bitmap from a boolean array (None when every value is valid)."""
    if valid is None or valid.all():
        return None
    return pa.py_buffer(np.packbits(valid, bitorder="little").tobytes())


def _b64_array(digests: list[bytes] | np.ndarray, width: int, valid: np.ndarray | None = None) -> pa.Array:
    """The first ``width`` bytes of each digest, base64url, as one Arrow string array.

    One base64 call over all digests instead of one per value: ``width`` is a multiple of 3, so every
    value is exactly ``4 * width / 3`` characters and the concatenation splits at fixed offsets.
    """
    if isinstance(digests, np.ndarray):
        n = digests.shape[0]
        raw = np.ascontiguousarray(digests[:, :width]).tobytes() if n else b""
    else:
        n = len(digests)
        raw = np.frombuffer(b"".join(digests), dtype=np.uint8).reshape(n, -1)[:, :width].tobytes() if n else b""
    if n == 0:
        return pa.array([], pa.string())
    text = binascii.b2a_base64(raw, newline=False).translate(_URLSAFE)
    step = width // 3 * 4
    offsets = np.arange(0, step * (n + 1), step, dtype=np.int32)
    return pa.Array.from_buffers(pa.string(), n, [_validity(valid), pa.py_buffer(offsets), pa.py_buffer(text)])


def _hmac_all(base: hmac.HMAC, messages: list[bytes]) -> list[bytes]:
    """HMAC of each message under one keyed, domain-prefixed base (record ids: one call per record)."""
    copy = base.copy
    out: list[bytes] = []
    append = out.append
    for m in messages:
        h = copy()
        h.update(m)
        append(h.finalize())
    return out


def _aes(key: bytes, blocks: np.ndarray) -> np.ndarray:
    """AES-ECB of every 16-byte row of ``blocks`` (uint8 [n, 16]) in one call: the salted PRF of the kit.

    AES is a pseudorandom permutation; every input here is a secret salt XOR a public element code (or a
    keyed digest), so distinct inputs give independent-looking outputs and nothing repeats across salts.
    """
    if blocks.shape[0] == 0:
        return np.zeros((0, 16), dtype=np.uint8)
    enc = Cipher(algorithms.AES(key), modes.ECB()).encryptor()
    data = np.ascontiguousarray(blocks, dtype=np.uint8)
    # straight from and into numpy memory: a bytes copy of the input and of the output was a tenth of a filter's time
    out = np.empty(data.size + 15, dtype=np.uint8)  # update_into wants room for one more block than it writes
    written = enc.update_into(memoryview(data).cast("B"), out)
    enc.finalize()
    return out[:written].reshape(-1, 16)


def _cmac_subkeys(key: bytes) -> tuple[np.ndarray, np.ndarray]:
    """CMAC's subkeys K1, K2 (NIST SP 800-38B, 6.1): L = AES(K, 0), K1 = 2L, K2 = 4L in GF(2^128)."""
    def double(x: int) -> int:
        x <<= 1
        return (x ^ 0x87) & ((1 << 128) - 1) if x >> 128 else x

    k1 = double(int.from_bytes(_aes(key, np.zeros((1, 16), dtype=np.uint8)).tobytes(), "big"))
    k2 = double(k1)
    return tuple(np.frombuffer(k.to_bytes(16, "big"), dtype=np.uint8) for k in (k1, k2))  # type: ignore[return-value]


def _cmac(key: bytes, values: pa.Array) -> np.ndarray:
    """AES-CMAC (NIST SP 800-38B) of every value of a string column without nulls, as uint8 [n, 16].

    Column-wise: values are grouped by their number of 16-byte blocks, padded in one matrix per group (``10*``
    padding and K2 for an incomplete last block, K1 for a complete one), and the CBC chain runs one AES-ECB call
    per block position over the whole group. Equal to ``cryptography``'s CMAC value by value (tested); one HMAC
    call per value in Python cost the kit a fifth of its time.
    """
    values = _as_string(values)
    n = len(values)
    out = np.zeros((n, 16), dtype=np.uint8)
    if n == 0:
        return out
    _, offs_buf, data_buf = values.buffers()
    offsets = np.frombuffer(offs_buf, dtype=np.int32)[values.offset: values.offset + n + 1].astype(np.int64)
    data = np.frombuffer(data_buf, dtype=np.uint8) if data_buf is not None else np.zeros(0, dtype=np.uint8)
    lens = offsets[1:] - offsets[:-1]
    nblocks = np.maximum(1, (lens + 15) // 16)
    k1, k2 = _cmac_subkeys(key)
    for nb in np.unique(nblocks):
        rows = np.flatnonzero(nblocks == nb)
        m, width = len(rows), int(nb) * 16
        ln = lens[rows]
        mat = np.zeros((m, width), dtype=np.uint8)
        within = np.arange(int(ln.sum())) - np.repeat(np.cumsum(ln) - ln, ln)
        mat.reshape(-1)[np.repeat(np.arange(m, dtype=np.int64) * width, ln) + within] = \
            data[np.repeat(offsets[:-1][rows], ln) + within]
        complete = (ln > 0) & (ln % 16 == 0)
        part = np.flatnonzero(~complete)
        mat[part, ln[part]] = 0x80
        mat[:, -16:] ^= np.where(complete[:, None], k1, k2)
        chain = np.zeros((m, 16), dtype=np.uint8)
        for b in range(int(nb)):
            chain = _aes(key, chain ^ mat[:, b * 16:(b + 1) * 16])
        out[rows] = chain
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


def _elements(kind: str, value: str) -> list[int]:
    """The element codes a filter of ``kind`` holds for ``value`` (the scalar reference of ``_element_arrays``).

    bigrams: 256 * byte1 + byte2 of each distinct padded bigram (names are ASCII after normalisation);
    digits: 0x10000 + 16 * position + digit; date (``YYYY-MM-DD``): its eight digits by position, plus
    0x20000 + 32 * min(month, day) + max(month, day), shared by a date and its day/month swap.
    """
    if kind == "bigrams":
        raw = f" {value} ".encode("latin-1", "replace")
        return sorted({raw[i] * 256 + raw[i + 1] for i in range(len(raw) - 1)})
    if kind == "digits":
        return [0x10000 + 16 * i + int(c) for i, c in enumerate(value)]
    digits = value.replace("-", "")
    m, d = int(value[5:7]), int(value[8:10])
    return [0x10000 + 16 * i + int(c) for i, c in enumerate(digits)] + [0x20000 + 32 * min(m, d) + max(m, d)]



def _derive(base: bytes, label: str) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=f"vpdc/enc2/{label}".encode()).derive(base)


#: rows whose unpacked bits are set at a time (one reused buffer of this many x nbits bytes: 1 MiB for 512-bit
#: filters, in cache; one buffer for a whole batch was 51 MB per 100,000 rows and cost twice as much)
_BITS_CHUNK = 2048


def _set_bits(owner: np.ndarray, pos: np.ndarray, n: int, nbits: int) -> np.ndarray:
    """Packed filters (uint8 [n, nbits / 8], bit ``p % 8`` of byte ``p // 8``) with the bits ``pos`` ([m, k], in
    0..nbits-1) set in row ``owner`` ([m], ascending) of each element."""
    out = np.empty((n, nbits // 8), dtype=np.uint8)
    buf = np.zeros(_BITS_CHUNK * nbits, dtype=np.uint8)
    bounds = np.searchsorted(owner, np.arange(0, n + _BITS_CHUNK, _BITS_CHUNK))
    for c, start in enumerate(range(0, n, _BITS_CHUNK)):
        rows = min(_BITS_CHUNK, n - start)
        a, b = bounds[c], bounds[c + 1]
        buf[: rows * nbits] = 0
        # int32 arithmetic: a chunk's offsets are far below 2**31
        at = ((owner[a:b] - start).astype(np.int32) * np.int32(nbits))[:, None] + pos[a:b]
        buf[at.ravel()] = 1
        out[start:start + rows] = np.packbits(buf[: rows * nbits].reshape(rows, nbits), axis=1, bitorder="little")
    return out


class Encoder:
    """Encodes normalised features under one version of the linkage secret (scheme 3).

    ``encode_features`` is the column-wise path the kit uses; ``encode_record`` the scalar reference.
    """

    def __init__(self, secret: LinkageSecret, params: EncodingParams | None = None, *,
                 previous: LinkageSecret | None = None):
        """``previous``: during a linkage-secret rotation, the version being rotated away from; record ids
        are then also computed under it (:meth:`previous_record_ids`) so the warehouse can carry persons over."""
        self.secret = secret
        self.params = params or EncodingParams()
        self.previous = previous
        self._keys: dict[str, bytes] = {}
        self._rid_base: dict[str, hmac.HMAC] = {}

    @property
    def key_version(self) -> str:
        return self.secret.version

    # -- keys ---------------------------------------------------------------------------------------
    def _key(self, label: str) -> bytes:
        """A sub-key of the linkage secret: tokens and digests from its token key, salts, filter positions
        and masks from its Bloom key, one per purpose and field (HKDF info ``vpdc/enc2/<label>``)."""
        key = self._keys.get(label)
        if key is None:
            base = self.secret.token_key if label.split("/")[0] in ("cmac", "token") else self.secret.bloom_key
            key = self._keys[label] = _derive(base, label)
        return key

    # -- record ids (unchanged from scheme 1: the warehouse's person keys hang on them) ----------------
    @staticmethod
    def _rid_hmac(store: dict[str, hmac.HMAC], key: bytes, domain: str) -> hmac.HMAC:
        base = store.get(domain)
        if base is None:
            base = hmac.HMAC(key, hashes.SHA256())
            base.update(domain.encode() + b"\x1f")
            store[domain] = base
        return base

    def record_id(self, namespace: str, value: str) -> str:
        """Pseudonymous record id: stable for one partner namespace, meaningless without the secret."""
        h = self._rid_hmac(self._rid_base, self.secret.record_id_key, namespace).copy()
        h.update(value.encode())
        return _b64(h.finalize()[:15])

    def record_ids(self, namespace: str, values: pa.Array) -> pa.Array:
        """``record_id`` of every value; null for null or blank. No dedupe: record ids are unique."""
        values = _as_string(values)
        blank = pc.fill_null(pc.equal(values, ""), True)
        base = self._rid_hmac(self._rid_base, self.secret.record_id_key, namespace)
        ids = _b64_array(_hmac_all(base, pc.cast(pc.fill_null(values, ""), pa.binary()).to_pylist()), 15)
        return pc.if_else(blank, pa.scalar(None, pa.string()), ids)

    def previous_record_ids(self, namespace: str, values: pa.Array) -> pa.Array:
        """``record_ids`` under the previous linkage-secret version (rotation in transition only)."""
        if self.previous is None:
            raise ValueError("no previous linkage secret: not in a rotation")
        return Encoder(self.previous).record_ids(namespace, values)

    # -- digests ----------------------------------------------------------------------------------
    def _digest(self, field: str, value: str) -> bytes:
        """16-byte keyed digest of one value of ``field``: AES-CMAC under the field's key (the scalar reference,
        through ``cryptography``'s CMAC; :meth:`_digests` computes the same column-wise)."""
        mac = cmac.CMAC(algorithms.AES(self._key(f"cmac/{field}")))
        mac.update(value.encode())
        return mac.finalize()

    def _digests(self, field: str, values: pa.Array) -> tuple[np.ndarray, np.ndarray]:
        """(digests [n, 16], valid [n]) of a string column: AES-CMAC of each distinct value (scheme 4).

        Near-unique fields (SSN, address) are not deduplicated: dictionary-encoding them costs more than it saves.
        A dictionary array (:func:`_sound_codes`) is digested entry by entry as it is.
        """
        if isinstance(values, pa.DictionaryArray):
            return self._dictionary_digests(field, values)
        values = _as_string(values)
        n = len(values)
        valid = pc.is_valid(values).to_numpy(zero_copy_only=False)
        out = np.zeros((n, 16), dtype=np.uint8)
        if not valid.any():
            return out, valid
        key = self._key(f"cmac/{field}")
        if field in _NEAR_UNIQUE:
            out[valid] = _cmac(key, pc.drop_null(values))
            return out, valid
        d = pc.dictionary_encode(values)
        table = _cmac(key, d.dictionary)
        out[valid] = table[pc.drop_null(d.indices).to_numpy()]
        return out, valid

    def _dictionary_digests(self, field: str, values: pa.DictionaryArray) -> tuple[np.ndarray, np.ndarray]:
        n = len(values)
        out = np.zeros((n, 16), dtype=np.uint8)
        entry_valid = pc.is_valid(values.dictionary).to_numpy(zero_copy_only=False)
        if not entry_valid.any():
            return out, np.zeros(n, dtype=bool)
        idx = pc.fill_null(values.indices, 0).to_numpy(zero_copy_only=False)
        valid = pc.is_valid(values.indices).to_numpy(zero_copy_only=False) & entry_valid[idx]
        table = np.zeros((len(values.dictionary), 16), dtype=np.uint8)
        table[entry_valid] = _cmac(self._key(f"cmac/{field}"), pc.drop_null(values.dictionary))
        out[valid] = table[idx[valid]]
        return out, valid

    # -- salts --------------------------------------------------------------------------------------
    def _record_salts(self, rids: pa.Array) -> np.ndarray:
        """A salt unique to each record (from its pseudonymous id): for records without the salting field."""
        text = "".join(_as_string(pc.fill_null(rids, "A" * 20)).to_pylist())
        raw = np.frombuffer(binascii.a2b_base64(text.translate(str.maketrans("-_", "+/"))), dtype=np.uint8)
        blocks = np.zeros((len(rids), 16), dtype=np.uint8)
        blocks[:, :15] = raw.reshape(-1, 15)
        return _aes(self._key("salt/record"), blocks)

    def _pair_digests(self, first: pa.Array, last: pa.Array) -> tuple[np.ndarray, np.ndarray]:
        """Digest of the unordered (first, last) pair: equal for swapped fields. Valid when either name is."""
        a, _ = self._digests("pairname", pc.fill_null(_as_string(first), ""))
        b, _ = self._digests("pairname", pc.fill_null(_as_string(last), ""))
        valid = pc.or_(pc.is_valid(first), pc.is_valid(last)).to_numpy(zero_copy_only=False)
        # order the two digests by their bytes (lexicographically), then CBC-MAC: AES(AES(lo) XOR hi)
        diff = a != b
        first_diff = np.where(diff.any(axis=1), diff.argmax(axis=1), 0)
        rows = np.arange(len(a))
        a_lo = a[rows, first_diff] <= b[rows, first_diff]
        lo, hi = np.where(a_lo[:, None], a, b), np.where(a_lo[:, None], b, a)
        out = _aes(self._key("salt/pair"), _aes(self._key("salt/pair"), lo) ^ hi)
        return out, valid

    def salts(self, features: Mapping[str, pa.Array], rids: pa.Array) -> dict[str, np.ndarray]:
        """The record salts: ``dob`` (from the exact date of birth), ``name`` (from the unordered name pair), ``ssn``
        (from the SSN), ``addr`` (from the street address), and scheme 10's ``dob_last``, ``dob_first`` and ``dob_zip``
        (the DOB salt with the surname's initial, the first name's initial or the ZIP), each falling back to a
        per-record salt where a field is missing; plus the pair digest (``pair``)."""
        record = self._record_salts(rids)
        iso = pc.cast(pc.cast(features["dob"], pa.date32()), pa.string())
        d, vd = self._digests("dob", iso)  # the DOB token's own digest, under another AES key
        s_dob = np.where(vd[:, None], _aes(self._key("salt/dob"), d), record)
        pair, vp = self._pair_digests(features["first"], features["last"])
        s_name = np.where(vp[:, None], _aes(self._key("salt/name"), pair), record)
        d, vs = self._digests("ssn", features["ssn"])  # near-unique: a salt per person, no frequency at all
        s_ssn = np.where(vs[:, None], _aes(self._key("salt/ssn"), d), record)
        a, va = self._digests("addr", features["addr"])  # a household's salt: a few records share it
        s_addr = np.where(va[:, None], _aes(self._key("salt/addr"), a), record)
        # scheme 10: the DOB salt refined by a second field (the other name's initial, or the ZIP), each its own key;
        # a record missing that field (or the date) is salted by itself
        refined = {}
        for name, (label, values) in {"dob_last": ("initial_last", surname_initials(features)),
                                      "dob_first": ("initial_first", initials(features["first"])),
                                      "dob_zip": ("salt_zip", features["zip"])}.items():
            g, vg = self._digests(label, values)
            refined[name] = np.where((vd & vg)[:, None], _aes(self._key(f"salt/{name}"), s_dob ^ g), record)
        return {"dob": s_dob, "name": s_name, "ssn": s_ssn, "addr": s_addr, **refined, "pair": pair, "pair_valid": vp,
                # the digests made for the salts, by (field key, feature): reused for the plain token of the same pair
                "digests": {("ssn", "ssn"): (d, vs), ("addr", "addr"): (a, va)}}

    # -- encodings ----------------------------------------------------------------------------------
    def _salted_tokens(self, field: str, salt: np.ndarray, digests: np.ndarray, valid: np.ndarray) -> pa.Array:
        return _b64_array(_aes(self._key(f"token/{field}"), salt ^ digests), 12, valid)

    def _plain_tokens(self, field: str, values: pa.Array,
                      digests: tuple[np.ndarray, np.ndarray] | None = None) -> pa.Array:
        """Unsalted keyed tokens (near-unique or frequency-free fields): CMAC digest, AES under the field's token key.
        ``digests``: the column's digests when already computed (the SSN's, for its salt)."""
        digests, valid = digests or self._digests(field, values)
        return _b64_array(_aes(self._key(f"token/{field}"), digests), 12, valid)

    def _filters(self, field: str, salt: np.ndarray, kind: str, values: pa.Array) -> pa.Array:
        """Salted, XOR-folded, masked, balanced Bloom filters of a string column (binary; null stays null).

        Bit layout: position p of the unfolded filter is bit ``p % 64`` of 64-bit word ``p // 64``; the stored
        value is the folded-and-masked words followed by their complements, little-endian.
        """
        values = _as_string(values)
        n, nbits = len(values), self.params.bloom_bits
        k = self.params.bloom_k
        words, half = nbits // 64, nbits // 128
        valid = pc.is_valid(values).to_numpy(zero_copy_only=False)
        rows_v = np.flatnonzero(valid)
        if len(rows_v) == 0:
            return pa.nulls(n, pa.binary())
        codes, owner = _element_arrays(kind, values.filter(pa.array(valid)))
        nv = len(rows_v)
        # rows gathered as single 16-byte items (a void view): a uint8 row gather copied byte by byte, 10x slower
        salt_v = np.ascontiguousarray(salt, dtype=np.uint8).view("V16").ravel()[rows_v]
        blocks = salt_v[owner].view(np.uint8).reshape(-1, 16)  # a fresh gather: the codes are XORed into it in place
        blocks.view("<u4")[:, 0] ^= codes.astype("<u4", copy=False)
        salt_v = salt_v.view(np.uint8).reshape(-1, 16)
        pos = _aes(self._key(f"filter/{field}"), blocks).view("<u2")[:, :k] & np.uint16(nbits - 1)
        folded = _set_bits(owner, pos, nv, nbits).view("<u8")
        folded = folded[:, :half] ^ folded[:, half:]
        mask_blocks = np.repeat(salt_v.view("V16").ravel(), half // 2).view(np.uint8).reshape(-1, 16)
        mask_blocks[:, 15] ^= np.tile(np.arange(1, half // 2 + 1, dtype=np.uint8), nv)
        folded ^= _aes(self._key(f"mask/{field}"), mask_blocks).reshape(nv, -1).view("<u8")
        out = np.zeros((n, words), dtype="<u8")
        out[rows_v] = np.concatenate([folded, ~folded], axis=1)
        width = nbits // 8
        offsets = np.arange(0, width * (n + 1), width, dtype=np.int32)
        return pa.Array.from_buffers(pa.binary(), n, [_validity(valid), pa.py_buffer(offsets), pa.py_buffer(out)])

    def encode_features(self, features: Mapping[str, pa.Array], rids: pa.Array) -> dict[str, pa.Array]:
        """Every ``enc_`` column from the normalised features of a batch (:data:`FEATURES`, nulls = missing).

        ``rids``: the records' pseudonymous ids (salt of last resort for records missing a salting field).
        """
        n = len(rids)
        f = {name: (_as_string(features[name]) if name != "dob" else pc.cast(features[name], pa.date32()))
             for name in FEATURES}
        salts = self.salts(f, rids)
        iso = pc.cast(f["dob"], pa.string())
        derived = {**f, "dob_iso": iso, "dob_year": pc.utf8_slice_codeunits(iso, 0, 4),
                   "dob_monthday": pc.utf8_slice_codeunits(iso, 5, 10),
                   "ssn_last4": pc.utf8_slice_codeunits(f["ssn"], 5, 9),
                   # only where the SSN or the address (the salt) is known: a per-record salt would match nothing
                   "name_words_ssn": where_known(f["name_words"], f["ssn"]),
                   "name_words_addr": where_known(f["name_words"], f["addr"]),
                   "first_addr": where_known(f["first"], f["addr"]),
                   "first_zip": where_known(f["first"], f["zip"]), "last_zip": where_known(f["last"], f["zip"]),
                   "first_sound": _sound_codes(f["first"]), "last_sound": _sound_codes(f["last"])}
        out: dict[str, pa.Array] = {"enc_scheme": pa.array([ENCODING_SCHEME] * n, pa.string())}
        first_digests = None  # made for enc_fn_full, reused by the formal-name tokens' fillers
        for col, (field, salt, value) in SALTED_TOKENS.items():
            if value == "pair":
                digests, valid = salts["pair"], salts["pair_valid"]
            else:
                digests, valid = self._digests(field, derived[value])
                if (field, value) == ("first", "first"):
                    first_digests = digests
            out[col] = self._salted_tokens(field, salts[salt], digests, valid)
        for col, (field, value) in PLAIN_TOKENS.items():
            # the SSN's and the address's digests were made for their salts: near-unique values are not cached
            out[col] = self._plain_tokens(field, derived[value], salts["digests"].get((field, value)))
        for col, (field, salt, kind, value) in FILTERS.items():
            out[col] = self._filters(field, salts[salt], kind, derived[value])
        out.update(self._formal_name_tokens(f["first"], salts["dob_last"], first_digests))
        return {c: out[c] for c in ENCODING_COLUMNS}

    def _formal_name_tokens(self, first: pa.Array, s_dob: np.ndarray, own: np.ndarray) -> dict[str, pa.Array]:
        """``enc_fn_alt1..3`` (scheme 8): the tokens ``enc_fn_full`` would give each formal name the first name may
        stand for, filler tokens for the rest, the three in the order of their bytes. Null where the first name is.
        ``s_dob``: the records' first-name salts (the DOB and the surname's initial, scheme 10); ``own``: their first names' digests (made for ``enc_fn_full``).

        A filler is the first name's own digest under the filler key (one per position), then salted and keyed as
        the real ones are: unrelated to any other name's tokens, and the same for two records of one name and
        birthday. Fillers made per record would let two such records share as many tokens as the name has formal
        names, which says how many the table gives it (a grouping of names)."""
        n = len(first)
        valid = pc.is_valid(first).to_numpy(zero_copy_only=False)
        d = pc.dictionary_encode(first)
        formals = formal_names(d.dictionary.to_pylist())
        idx = pc.fill_null(d.indices, -1).to_numpy(zero_copy_only=False)
        tokens = np.zeros((n, MAX_FORMAL, 16), dtype=np.uint8)
        for i in range(MAX_FORMAL):
            # the i-th formal name of each distinct name (null where it has fewer), spread to the records
            per_name = pa.array([f[i] if len(f) > i else None for f in formals], pa.string())
            values = per_name.take(pa.array(np.where(idx >= 0, idx, 0))) if len(per_name) else pa.nulls(n, pa.string())
            digests, real = self._digests("first", values)
            real &= valid
            filler_blocks = own.copy()
            filler_blocks[:, 15] ^= np.uint8(i + 1)
            filler = _aes(self._key("filler/first_alt"), filler_blocks)
            digests = np.where(real[:, None], digests, filler)
            tokens[:, i] = _aes(self._key("token/first"), s_dob ^ digests)
        return _ordered_tokens(tokens, valid)

    def encode_record(self, features: Mapping[str, Any], rid: str) -> dict[str, Any]:
        """The scalar reference of :meth:`encode_features` for one record: the same rules read one value at a
        time with Python integers (slow, obvious; tests hold the column-wise path to it)."""
        return _reference(self, features, rid)


def _ordered_tokens(tokens: np.ndarray, valid: np.ndarray) -> dict[str, pa.Array]:
    """The ``enc_fn_alt`` columns from per-record token blocks [n, k, 16]: each record's k tokens sorted by their
    stored (12-byte) value, so the column a formal name lands in says nothing."""
    k = tokens.shape[1]
    stored = np.ascontiguousarray(tokens[:, :, :12])
    keys = stored.view(">u4").reshape(len(tokens), k, 3)  # big-endian words: integer order = byte order
    order = np.lexsort((keys[:, :, 2], keys[:, :, 1], keys[:, :, 0]), axis=-1)
    stored = np.take_along_axis(stored, order[:, :, None], axis=1)
    return {f"enc_fn_alt{i + 1}": _b64_array(np.ascontiguousarray(stored[:, i]), 12, valid) for i in range(k)}


def _aes1(key: bytes, block: bytes) -> bytes:
    enc = Cipher(algorithms.AES(key), modes.ECB()).encryptor()
    return enc.update(block) + enc.finalize()


def _xor(a: bytes, b: bytes) -> bytes:
    return bytes(x ^ y for x, y in zip(a, b, strict=True))


def _reference(enc: Encoder, features: Mapping[str, Any], rid: str) -> dict[str, Any]:
    f = {k: features.get(k) for k in FEATURES}
    dob: date | None = f["dob"]
    iso = dob.isoformat() if dob else None
    record = _aes1(enc._key("salt/record"), binascii.a2b_base64(rid.translate(str.maketrans("-_", "+/"))) + b"\0")
    s_dob = _aes1(enc._key("salt/dob"), enc._digest("dob", iso)) if iso else record
    pair = None
    if f["first"] is not None or f["last"] is not None:
        a, b = sorted((enc._digest("pairname", f["first"] or ""), enc._digest("pairname", f["last"] or "")))
        pair = _aes1(enc._key("salt/pair"), _xor(_aes1(enc._key("salt/pair"), a), b))
    s_name = _aes1(enc._key("salt/name"), pair) if pair is not None else record
    s_ssn = _aes1(enc._key("salt/ssn"), enc._digest("ssn", f["ssn"])) if f["ssn"] else record
    s_addr = _aes1(enc._key("salt/addr"), enc._digest("addr", f["addr"])) if f["addr"] else record
    salts = {"dob": s_dob, "name": s_name, "ssn": s_ssn, "addr": s_addr}
    last1 = f["last_part1"] if f["last_part1"] is not None else f["last"]
    for name, label, v in (("dob_last", "initial_last", last1[:1] if last1 else None),
                           ("dob_first", "initial_first", f["first"][:1] if f["first"] else None),
                           ("dob_zip", "salt_zip", f["zip"])):
        salts[name] = (_aes1(enc._key(f"salt/{name}"), _xor(s_dob, enc._digest(label, v)))
                       if iso is not None and v is not None else record)
    derived = {**f, "dob_iso": iso, "dob_year": iso[:4] if iso else None, "dob_monthday": iso[5:] if iso else None,
               "ssn_last4": f["ssn"][5:9] if f["ssn"] else None,
               "name_words_ssn": f["name_words"] if f["ssn"] else None,
               "name_words_addr": f["name_words"] if f["addr"] else None,
               "first_addr": f["first"] if f["addr"] else None,
               "first_zip": f["first"] if f["zip"] else None, "last_zip": f["last"] if f["zip"] else None,
               "first_sound": sound(f["first"]), "last_sound": sound(f["last"])}
    out: dict[str, Any] = {"enc_scheme": ENCODING_SCHEME}
    for col, (field, salt, value) in SALTED_TOKENS.items():
        digest = pair if value == "pair" else (enc._digest(field, derived[value]) if derived[value] is not None else None)
        out[col] = None if digest is None else _b64(_aes1(enc._key(f"token/{field}"), _xor(salts[salt], digest))[:12])
    for col, (field, value) in PLAIN_TOKENS.items():
        v = derived[value]
        out[col] = None if v is None else _b64(_aes1(enc._key(f"token/{field}"), enc._digest(field, v))[:12])
    alts = []
    if f["first"] is not None:
        names = formal_names([f["first"]])[0]
        for i in range(MAX_FORMAL):
            if i < len(names):
                digest = enc._digest("first", names[i])
            else:
                own = enc._digest("first", f["first"])
                digest = _aes1(enc._key("filler/first_alt"), own[:15] + bytes([own[15] ^ (i + 1)]))
            alts.append(_aes1(enc._key("token/first"), _xor(salts["dob_last"], digest))[:12])
    for i, token in enumerate(sorted(alts)):
        out[f"enc_fn_alt{i + 1}"] = _b64(token)
    for i in range(len(alts), MAX_FORMAL):
        out[f"enc_fn_alt{i + 1}"] = None
    nbits = enc.params.bloom_bits
    half = nbits // 2
    for col, (field, salt, kind, value) in FILTERS.items():
        v = derived[value]
        if v is None:
            out[col] = None
            continue
        k = enc.params.bloom_k
        acc = 0  # position p = bit p of this integer (word p // 64, bit p % 64, words little-endian)
        for code in _elements(kind, v):
            block = _xor(salts[salt], code.to_bytes(4, "little") + bytes(12))
            digest = _aes1(enc._key(f"filter/{field}"), block)
            for j in range(k):
                acc |= 1 << (int.from_bytes(digest[2 * j: 2 * j + 2], "little") % nbits)
        folded = (acc & ((1 << half) - 1)) ^ (acc >> half)
        pad = b""
        for j in range(half // 128):
            block = bytearray(salts[salt])
            block[15] ^= j + 1
            pad += _aes1(enc._key(f"mask/{field}"), bytes(block))
        folded ^= int.from_bytes(pad, "little")
        stored = folded | (((1 << half) - 1) ^ folded) << half
        out[col] = stored.to_bytes(nbits // 8, "little")
    return {c: out[c] for c in ENCODING_COLUMNS}


def _element_arrays(kind: str, values: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(element codes, owning row) of every value of a non-null string column (column-wise ``_elements``).

    Repeated bigrams of one value are kept (setting a bit twice changes nothing). A value outside the fast
    path (non-ASCII name, a date or SSN of another shape) goes through ``_elements`` itself.
    """
    n = len(values)
    if kind == "bigrams":
        if not pc.all(pc.string_is_ascii(values)).as_py():
            return _element_arrays_slow(kind, values)
        padded = pc.binary_join_element_wise(" ", values, " ", "")
        _, offs_buf, data_buf = padded.buffers()
        offsets = np.frombuffer(offs_buf, dtype=np.int32)[padded.offset: padded.offset + n + 1]
        data = np.frombuffer(data_buf, dtype=np.uint8)
        start, end = int(offsets[0]), int(offsets[-1])
        # a bigram starts at every byte of a padded value but its last
        keep = np.ones(end - start, dtype=bool)
        keep[offsets[1:] - 1 - start] = False
        pos = np.flatnonzero(keep) + start
        owner = np.repeat(np.arange(n, dtype=np.int64), (offsets[1:] - offsets[:-1]) - 1)
        return data[pos].astype(np.uint32) * 256 + data[pos + 1], owner
    width = 9 if kind == "digits" else 10
    if n and not pc.all(pc.equal(pc.binary_length(values), width)).as_py():
        return _element_arrays_slow(kind, values)
    _, offs_buf, data_buf = values.buffers()
    start = int(np.frombuffer(offs_buf, dtype=np.int32)[values.offset]) if n else 0
    # every value is ``width`` bytes, so the values are one contiguous run of the data buffer
    raw = np.frombuffer(data_buf, dtype=np.uint8)[start: start + n * width].reshape(n, width).astype(np.uint32) \
        if n else np.zeros((0, width), dtype=np.uint32)
    if kind == "digits":
        digits = raw - 48
    else:
        digits = raw[:, [0, 1, 2, 3, 5, 6, 8, 9]] - 48
    if (digits > 9).any():
        return _element_arrays_slow(kind, values)
    codes = 0x10000 + 16 * np.arange(digits.shape[1], dtype=np.uint32)[None, :] + digits
    if kind == "date":
        m, d = digits[:, 4] * 10 + digits[:, 5], digits[:, 6] * 10 + digits[:, 7]
        md = 0x20000 + 32 * np.minimum(m, d) + np.maximum(m, d)
        codes = np.concatenate([codes, md[:, None]], axis=1)
    owner = np.repeat(np.arange(n, dtype=np.int64), codes.shape[1])
    return codes.ravel(), owner


def _element_arrays_slow(kind: str, values: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    codes, owner = [], []
    for i, v in enumerate(values.to_pylist()):
        e = _elements(kind, v)
        codes += e
        owner += [i] * len(e)
    return np.array(codes, dtype=np.uint32), np.array(owner, dtype=np.int64)


def _as_string(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    return values if values.type == pa.string() else pc.cast(values, pa.string())
