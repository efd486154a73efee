"""Keyed values must look keyed: a test that tokens, pseudonymous ids and Bloom filters are not text.

The kit's tokens (16 characters), pseudonymous record ids (20 characters) and bigram Bloom filters (64 bytes)
are HMAC outputs: every token and id is uniformly random over its alphabet (base64url), every Bloom filter a
uniformly random set of bit positions given how many bits are set. A partner (or an attacker holding a
partner's signing key) who pads a name, a date of birth or an address into such a column writes something the
format checks (length, alphabet) accept, so each value is also tested against text:

* ``p1``, a *text model*: a character trigram model (a byte bigram model for Bloom filters) trained on
  disguised identifiers (names of the name list in every casing and order, joined and padded with the
  alphabet's characters; dates of birth, SSNs, phone numbers and street addresses in every format; ASCII
  and zero-padded text and regular byte patterns for the filters);
* ``p0``, the honest distribution: uniform over ``64**L`` strings for tokens and ids; for a Bloom filter of
  ``m`` set bits, uniform over the ``C(512, m)`` such filters (and uniform over ``m``).

A value is refused when ``log2 p1(x) - log2 p0(x) >= THRESHOLD_BITS``. Both are probability distributions
over the same set, so for an honest value ``P(p1/p0 >= 2**t) <= 2**-t`` (Markov's inequality on the
likelihood ratio, whose expectation under ``p0`` is 1): at 36 bits, at most one false refusal per 6.9 * 10**10
honest values, whatever the text model looks like. The text model only decides which disguises are caught
(tests hold it to every disguise of the attack suite, down to one value). What it cannot catch is a value
that *is* random-looking: an identifier encrypted or hashed without the collaborative's key is, by
construction, indistinguishable from a token (docs/threat-model.md).

Scores are computed column-wise in numpy on the distinct values, in constant memory per batch.
"""

from __future__ import annotations

import math
import random
from functools import cache
from importlib import resources

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["ALPHABET", "THRESHOLD_BITS", "bloom_text_bits", "token_text_bits"]

#: base64url: the alphabet of every token and pseudonymous id the kit writes
ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
#: a value whose text model likelihood beats the honest one by this many bits is refused (false refusal <= 2**-36)
THRESHOLD_BITS = 36.0
_START = 64  # the trigram model's start symbol

_MONTHS = ("JANUARY", "FEBRUARY", "MARCH", "APRIL", "MAY", "JUNE", "JULY", "AUGUST", "SEPTEMBER", "OCTOBER",
           "NOVEMBER", "DECEMBER")
_STREET_TYPES = ("ST", "STREET", "AVE", "AVENUE", "RD", "ROAD", "DR", "DRIVE", "LN", "LANE", "CT", "COURT", "BLVD",
                 "WAY", "PL", "CIR", "PKWY", "HWY", "TER", "TRL")
_STREETS = ("MAIN", "OAK", "MAPLE", "PINE", "CEDAR", "ELM", "TRYON", "SHARON", "AMITY", "BEATTIES", "FORD", "CENTRAL",
            "PARK", "LAKE", "HILL", "CHURCH", "MILL", "SUGAR", "CREEK", "NATIONS", "ARROWOOD", "LASALLE", "WILKINSON",
            "ALBEMARLE", "MONROE", "STATESVILLE", "FREEDOM", "TUCKASEEGEE", "GRAHAM", "BROOKSHIRE", "PROVIDENCE")


@cache
def name_words() -> frozenset[str]:
    """The name list (``landing/data/names.txt``): uppercase ASCII name parts."""
    text = resources.files("landing.data").joinpath("names.txt").read_text(encoding="utf-8")
    return frozenset(w for line in text.splitlines() if not line.startswith("#") for w in line.split())


# ------------------------------------------------------------------------------------------ disguises
def _date(rng: random.Random) -> str:
    y, m, d = rng.randint(1920, 2025), rng.randint(1, 12), rng.randint(1, 28)
    month = _MONTHS[m - 1]
    return rng.choice([f"{y}-{m:02d}-{d:02d}", f"{y}{m:02d}{d:02d}", f"{m:02d}-{d:02d}-{y}", f"{m:02d}{d:02d}{y}",
                       f"{d:02d}-{month[:3]}-{y}", f"{month} {d} {y}", f"{month[:3]} {d} {y}", f"{m}-{d}-{y}",
                       f"{y}_{m:02d}_{d:02d}", f"{d:02d}{month[:3]}{y}"])


def _ssn(rng: random.Random) -> str:
    a, g, s = rng.randint(1, 899), rng.randint(1, 99), rng.randint(1, 9999)
    return rng.choice([f"{a:03d}{g:02d}{s:04d}", f"{a:03d}-{g:02d}-{s:04d}", f"{a:03d} {g:02d} {s:04d}"])


def _phone(rng: random.Random) -> str:
    a, e, n = rng.randint(200, 999), rng.randint(200, 999), rng.randint(0, 9999)
    return rng.choice([f"{a}{e}{n:04d}", f"{a}-{e}-{n:04d}", f"1{a}{e}{n:04d}"])


def _address(rng: random.Random) -> str:
    n = rng.choice([str(rng.randint(1, 99)), str(rng.randint(100, 9999)), str(rng.randint(10000, 99999))])
    words = " ".join(rng.choice(_STREETS) for _ in range(rng.randint(1, 2)))
    pre = rng.choice(["", "", "N ", "S ", "E ", "W "])
    return f"{n} {pre}{words} {rng.choice(_STREET_TYPES)}"


def _disguise(rng: random.Random, names: list[str], length: int) -> str:
    """One identifier written into a ``length``-character value of the base64url alphabet."""
    first, last, middle = rng.choice(names), rng.choice(names), rng.choice(names)
    kind = rng.random()
    if kind < 0.45:
        text = rng.choice([first, last, f"{first} {last}", f"{last} {first}", f"{last} {first} {middle[0]}",
                           f"{first} {middle[0]} {last}", f"{first} {middle} {last}", f"{last} {first[0]}",
                           f"{first[0]} {last}", f"{last} {last}"])
    elif kind < 0.6:
        text = _date(rng)
    elif kind < 0.68:
        text = _ssn(rng)
    elif kind < 0.73:
        text = _phone(rng)
    elif kind < 0.85:
        text = _address(rng)
    else:  # identifiers side by side: "FIRST LAST 2011-11-16", "610052 FIRST LAST", a name and its SSN
        parts = [rng.choice([first, last, f"{first} {last}"]),
                 rng.choice([_date(rng), _ssn(rng), str(rng.randint(0, 999999)), _phone(rng)])]
        rng.shuffle(parts)
        text = " ".join(parts)
    case = rng.random()
    text = text.lower() if case < 0.25 else text.title() if case < 0.45 else text
    sep = rng.choice(["_", "-", "", "_", "0", "X"])
    text = text.replace(" ", sep)
    text = "".join(c if c in ALPHABET else sep for c in text)
    if len(text) >= length:
        return text[:length]
    pad = rng.choice(["_", "-", "0", "X", "x", "A", "a", "1", "9", "Z", text[-1] if text else "_"])
    fill = length - len(text)
    where = rng.random()
    if where < 0.6:
        return text + pad * fill
    if where < 0.85:
        return pad * fill + text
    left = rng.randint(0, fill)
    return pad * left + text + pad * (fill - left)


@cache
def _shipped_models() -> dict[str, np.ndarray]:
    """The text models as built by :func:`build_token_model` and :func:`build_bloom_model`, shipped in
    ``landing/data/text_models.npz`` (building them costs seconds per process; a test holds the file to a fresh
    build, and ``python -m landing.keyed`` writes it again after the name list or the disguises change)."""
    with resources.files("landing.data").joinpath("text_models.npz").open("rb") as f, np.load(f) as z:
        return {k: z[k] for k in z.files}


def _token_model() -> np.ndarray:
    return _shipped_models()["token"]


def _bloom_model() -> np.ndarray:
    return _shipped_models()["bloom"]


@cache
def build_token_model() -> np.ndarray:
    """log2 P(c | a, b) of the text model over the 64-character alphabet, as a flat float32 table indexed by
    ``(a * 65 + b) * 64 + c`` (a, b in 0..64, 64 = start of value)."""
    rng = random.Random(20261121)  # fixed: the model is the same on every machine
    names = sorted(name_words())
    texts = [_disguise(rng, names, rng.choice((16, 20))) for _ in range(120_000)]
    codes = _char_codes()[np.frombuffer("".join(texts).encode(), dtype=np.uint8)].astype(np.int64)
    lengths = np.fromiter((len(t) for t in texts), dtype=np.int64, count=len(texts))
    starts = np.zeros(len(codes), dtype=bool)
    starts[np.concatenate(([0], np.cumsum(lengths)[:-1]))] = True
    b = np.concatenate(([_START], codes[:-1]))
    b[starts] = _START
    a = np.concatenate(([_START], b[:-1]))
    a[starts] = _START
    a[np.roll(starts, 1) & ~starts] = _START  # the second character of a value follows the start twice
    tri = np.bincount((a * 65 + b) * 64 + codes, minlength=65 * 65 * 64).astype(np.float64).reshape(65, 65, 64)
    bi = tri.sum(axis=0)  # (b, c)
    uni = bi.sum(axis=0)  # (c)
    # interpolated trigram -> bigram -> unigram -> uniform: each term a distribution, so the mixture is one too
    p_uni = uni / uni.sum()
    with np.errstate(invalid="ignore", divide="ignore"):
        p_bi = np.where(bi.sum(1, keepdims=True) > 0, bi / bi.sum(1, keepdims=True), p_uni)
        p_tri = np.where(tri.sum(2, keepdims=True) > 0, tri / tri.sum(2, keepdims=True), p_bi[None, :, :])
    p = 0.80 * p_tri + 0.15 * p_bi[None, :, :] + 0.04 * p_uni + 0.01 / 64
    assert np.allclose(p.sum(axis=2), 1.0)
    return np.log2(p).astype(np.float32).reshape(-1)


@cache
def _char_codes() -> np.ndarray:
    lut = np.zeros(256, dtype=np.uint32)
    for i, c in enumerate(ALPHABET):
        lut[ord(c)] = i
    return lut


@cache
def _in_alphabet() -> np.ndarray:
    ok = np.zeros(256, dtype=bool)
    ok[np.frombuffer(ALPHABET.encode(), dtype=np.uint8)] = True
    return ok


def well_formed(values: pa.Array, width: int, *, alphabet: bool) -> tuple[np.ndarray, np.ndarray]:
    """The values of exactly ``width`` bytes (of the base64url alphabet if ``alphabet``) as an (m, width) byte
    matrix, and a mask over ``values``: which are non-null and well formed (validation refuses the others:
    ``token_format``, ``bloom_length``). Read from the Arrow buffers: no copy when every value is well formed."""
    values = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
    n = len(values)
    if n == 0:
        return np.zeros((0, width), dtype=np.uint8), np.zeros(0, dtype=bool)
    large = pa.types.is_large_string(values.type) or pa.types.is_large_binary(values.type)
    bufs = values.buffers()
    offsets = np.frombuffer(bufs[1], dtype=np.int64 if large else np.int32, count=n + 1,
                            offset=values.offset * (8 if large else 4))
    data = np.frombuffer(bufs[2], dtype=np.uint8) if bufs[2] is not None else np.zeros(0, dtype=np.uint8)
    ok = np.diff(offsets) == width
    if values.null_count:
        ok &= values.is_valid().to_numpy(zero_copy_only=False)
    start = int(offsets[0])
    if ok.all() and int(offsets[-1]) - start == n * width:
        matrix = data[start:start + n * width].reshape(n, width)
    else:
        rows = offsets[:-1][ok].astype(np.int64)
        matrix = data[rows[:, None] + np.arange(width)] if len(rows) else np.zeros((0, width), dtype=np.uint8)
    if alphabet and len(matrix):
        good = _in_alphabet()[matrix].all(axis=1)
        if not good.all():
            matrix = matrix[good]
            ok[np.flatnonzero(ok)[~good]] = False
    return matrix, ok


def _fixed_width(values: pa.Array, width: int) -> np.ndarray:
    return well_formed(values, width, alphabet=False)[0]


def token_text_bits(values: pa.Array | np.ndarray, width: int) -> np.ndarray:
    """For each value (``width`` base64url characters; an array, or the byte matrix of :func:`well_formed`),
    how many bits more likely the text model finds it than a uniformly random token.
    ``>= THRESHOLD_BITS``: not a token.

    The text model is an even mixture of the character trigram model and :func:`_segment_log2p` (names
    of the list, digit runs, separators and padding, in one casing). The second is computed only for values
    the first already finds text-like (``CANDIDATE_BITS``), and taken as 0 for the others: a lower bound of the
    mixture, so the false-refusal bound holds as stated.
    """
    raw = values if isinstance(values, np.ndarray) else _fixed_width(values, width)
    if len(raw) == 0:
        return np.zeros(0, dtype=np.float32)
    codes = _char_codes()[raw]
    trigram = _trigram_log2p(codes)
    mixture = trigram - np.float32(1.0)  # log2(p_tri / 2)
    for i in np.flatnonzero(trigram + 6.0 * width >= CANDIDATE_BITS)[:MAX_SEGMENTED]:
        seg = _segment_log2p(raw[i].tobytes().decode("ascii"))
        if seg > -math.inf:
            mixture[i] = np.logaddexp2(mixture[i], seg - 1.0)
    return mixture + np.float32(6.0 * width)  # log2 p0 = -6 bits per character


def _trigram_log2p(codes: np.ndarray) -> np.ndarray:
    """log2 p_tri of each row of a code matrix, in three vectorised lookups (no loop over positions)."""
    table = _token_model()
    start2 = _START * 65
    total = table[start2 * 64 + codes[:, 0]]  # (start, start) -> c0
    total = total + table[(start2 + codes[:, 0]) * 64 + codes[:, 1]]  # (start, c0) -> c1
    pairs = codes[:, :-1] * 65 + codes[:, 1:]
    idx = pairs[:, :-1] * 64 + codes[:, 2:]
    return total + table[idx].sum(axis=1, dtype=np.float32)


#: values the trigram model scores at least this far above random are also scored by the segment model
CANDIDATE_BITS = 8.0
#: at most this many values of a batch are segmented (a column of text is refused long before)
MAX_SEGMENTED = 50_000
_PAD = 0.1  # probability of each segment kind (the rest of the mass: names)
_SEGMENT_P = {"digits": 0.15, "separator": 0.1, "padding": 0.1}


@cache
def _name_prefixes() -> tuple[frozenset[str], dict[str, int]]:
    words = name_words()
    prefixes: dict[str, int] = {}
    for w in words:
        for k in range(1, len(w)):
            prefixes[w[:k]] = prefixes.get(w[:k], 0) + 1
    return words, prefixes


def _segment_log2p(value: str) -> float:
    """log2 of the probability that a segment generator writes ``value`` exactly (a sub-distribution over
    strings of its length): choose a casing (upper, lower, title, or capitalised as ``str.title`` leaves
    ``"Mariagarcia"``: 1/4 each), then emit segments until the
    value is full, the last one cut at the end: a name of the list (0.65, uniform over the list), a run of
    1-12 digits (0.15, uniform length and digits), one separator character of the alphabet (0.1: "_" or "-" 0.4 each),
    a run of 1-20 copies of one alphabet character (0.1, uniform). Summed over every way to write it
    (dynamic programming over positions)."""
    words, prefixes = _name_prefixes()
    n_words, length = len(words), len(value)
    p_name = (1.0 - sum(_SEGMENT_P.values())) / n_words
    total = 0.0
    for case in ("upper", "lower", "title", "sentence"):
        f = [0.0] * (length + 1)
        f[0] = 1.0 / 4
        for i in range(length):
            if f[i] == 0.0:
                continue
            fi = f[i]
            # digits
            j = i
            while j < length and j - i < 12 and value[j].isdigit():
                j += 1
                f[j] += fi * _SEGMENT_P["digits"] / 12 * 10.0 ** -(j - i) * (12 - (j - i) + 1 if j == length else 1)
            # one separator: "_" or "-" mostly
            f[i + 1] += fi * _SEGMENT_P["separator"] * (0.4 if value[i] in "_-" else 0.2 / 62)
            # a padding run
            j = i
            while j < length and j - i < 20 and value[j] == value[i]:
                j += 1
                f[j] += fi * _SEGMENT_P["padding"] / 64 / 20 * ((20 - (j - i) + 1) if j == length else 1)
            # a name (whole, or cut by the end of the value)
            for j in range(i + 2, min(i + 16, length) + 1):
                part = value[i:j]
                if case == "upper" and not part.isupper() or case == "lower" and not part.islower():
                    continue
                if case == "title" or case == "sentence" and i == 0:
                    if not (part[0].isupper() and (len(part) == 1 or part[1:].islower())):
                        continue
                elif case == "sentence" and not part.islower():
                    continue
                key = part.upper()
                if not key.isalpha():
                    break
                if j == length:
                    count = prefixes.get(key, 0) + (key in words)
                    f[j] += fi * p_name * count
                elif key in words:
                    f[j] += fi * p_name
        total += f[length]
    return math.log2(total) if total > 0 else -math.inf


# ------------------------------------------------------------------------------------------ Bloom filters
def _bloom_disguise(rng: random.Random, names: list[str], size: int) -> bytes:
    kind = rng.random()
    if kind < 0.7:
        text = _disguise(rng, names, rng.randint(4, 40)).replace("_", rng.choice([" ", "", ",", "_"]))
        if rng.random() < 0.3:
            text = f"{rng.choice(names)}, {rng.choice(names)} {_date(rng)}"
        raw = text.encode()
        if rng.random() < 0.15:
            raw = rng.choice(names).title().replace("E", "É").encode()  # accents in UTF-8
        pad = rng.choice([b"\x00", b"\x00", b" ", b"\xff", raw[-1:] or b"\x00"])
        raw = raw[:size]
        fill = size - len(raw)
        return raw + pad * fill if rng.random() < 0.8 else pad * fill + raw
    if kind < 0.8:  # a constant or a short repeated pattern
        unit = bytes(rng.randrange(256) for _ in range(rng.randint(1, 4)))
        return (unit * size)[:size]
    if kind < 0.9:  # counting bytes
        start, step = rng.randrange(256), rng.choice((1, 1, 2, 255))
        return bytes((start + step * i) % 256 for i in range(size))
    # sparse structure: zeros with a few set bytes (an unkeyed bitmap, a length-prefixed string)
    out = bytearray(size)
    for _ in range(rng.randint(1, 6)):
        out[rng.randrange(size)] = rng.choice((1, 2, 4, 8, 16, 32, 64, 128, 255))
    return bytes(out)


@cache
def build_bloom_model() -> np.ndarray:
    """log2 P(byte | previous byte) of the filter text model, flat float32 indexed by ``prev * 256 + byte``
    (prev 256 = start)."""
    rng = random.Random(20261122)
    names = sorted(name_words())
    counts = np.zeros((257, 256), dtype=np.float64)
    for _ in range(20_000):
        raw = np.frombuffer(_bloom_disguise(rng, names, 64), dtype=np.uint8).astype(np.int64)
        prev = np.concatenate(([256], raw[:-1]))
        np.add.at(counts, (prev, raw), 1)
    uni = counts.sum(axis=0)
    p_uni = uni / uni.sum()
    with np.errstate(invalid="ignore", divide="ignore"):
        p_bi = np.where(counts.sum(1, keepdims=True) > 0, counts / counts.sum(1, keepdims=True), p_uni)
    p = 0.85 * p_bi + 0.10 * p_uni + 0.05 / 256
    assert np.allclose(p.sum(axis=1), 1.0)
    return np.log2(p).astype(np.float32).reshape(-1)


@cache
def _log2_honest_bloom(bits: int) -> np.ndarray:
    """log2 p0 of a filter with m set bits: uniform over m in 1..7/8 of the bits (a keyed filter of a name has
    some bits set and never nearly all: 12 positions per bigram), then over the C(bits, m) filters; a filter
    outside that range is impossible (+inf bits against it)."""
    top = bits * 7 // 8
    return np.array([-(math.log2(math.comb(bits, m)) + math.log2(top)) if 1 <= m <= top else -np.inf
                     for m in range(bits + 1)], dtype=np.float32)


@cache
def _popcount() -> np.ndarray:
    return np.array([bin(i).count("1") for i in range(256)], dtype=np.int32)


def bloom_text_bits(values: pa.Array | np.ndarray, size: int) -> np.ndarray:
    """For each filter (``size`` bytes; an array, or the byte matrix of :func:`well_formed`), how many bits more
    likely the text model finds it than a keyed filter with as many bits set. ``>= THRESHOLD_BITS``: not a keyed
    filter."""
    raw = values if isinstance(values, np.ndarray) else _fixed_width(values, size)
    if len(raw) == 0:
        return np.zeros(0, dtype=np.float32)
    table = _bloom_model()
    prev = np.concatenate((np.full((len(raw), 1), 256, dtype=np.uint32), raw[:, :-1].astype(np.uint32)), axis=1)
    text = table[prev * 256 + raw].sum(axis=1)
    ones = _popcount()[raw].sum(axis=1)
    return text - _log2_honest_bloom(size * 8)[ones]


def distinct(values: pa.Array) -> pa.Array:
    """The distinct non-null values of a column (names and dates repeat: scores are computed once each)."""
    return pc.unique(values.filter(pc.is_valid(values)))


if __name__ == "__main__":  # python -m landing.keyed: rebuild the shipped text models
    from pathlib import Path

    target = Path(__file__).resolve().parent / "data" / "text_models.npz"
    np.savez_compressed(target, token=build_token_model(), bloom=build_bloom_model())
    print(f"{target}: written")
