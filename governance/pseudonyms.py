"""Study-specific pseudonyms and date protection for record-level study outputs (DESIGN.md, "Keys").

Every study sees its own person ids. A study key is derived from the warehouse's study master secret
with HKDF, under a versioned label that names the study, and (in :class:`StudyKeyStore`) a random
per-study salt. From it:

* :func:`pseudonymise` maps a warehouse ``person_key`` to ``S-`` plus 16 base32 characters with
  HMAC-SHA256. Stable within a study (the same person always gets the same id, so a study can add
  files), unlinkable across studies (another study's key gives unrelated ids), and irreversible
  without the key (HMAC, not encryption: there is no "decrypt").
* :func:`date_shift_days` gives each person one secret shift of 1..30 days, forward or back. Shifting
  all of a person's dates by the same amount keeps every interval within the person (days from
  arrest to re-arrest), while exact dates no longer match outside records.
  :func:`coarsen_dates` is the alternative when analysis needs calendar alignment across people.

Why a random salt on top of the master secret: if a study key could be re-derived from the master
secret and the study id alone, "destroying the study key" would destroy nothing while the master
secret lives. With the salt kept only in the study's key file, :meth:`StudyKeyStore.destroy` really
does make that study's pseudonyms and date shifts unlinkable to anything, master secret or not.
(Overwriting a file is best effort on SSDs and copy-on-write file systems; encrypt the key volume.)

Example::

    store = StudyKeyStore(home.keys / "studies")
    key = store.create("ATV-2026-01", keyring.study_master_secret())
    cohort = pseudonymise_frame(cohort, key)               # person_key -> study_pseudonym
    cohort = shift_dates(cohort, ["event_date"], "study_pseudonym", key)
    ...
    record = store.destroy("ATV-2026-01", now=now)         # at retention end; audit the record
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import stat
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import pandas as pd
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF, HKDFExpand

__all__ = [
    "PSEUDONYM_PREFIX",
    "DestructionRecord",
    "StudyKeyError",
    "StudyKeyStore",
    "coarsen_dates",
    "date_shift_days",
    "pseudonymise",
    "pseudonymise_frame",
    "shift_dates",
    "study_key",
]

#: Prefix of every study pseudonym, so a pseudonym is never mistaken for a warehouse person_key.
PSEUDONYM_PREFIX = "S-"
#: Bytes of HMAC output kept: 80 bits -> 16 base32 characters. A million people collide with
#: probability about 4e-13, and the id stays short enough to read aloud.
_PSEUDONYM_BYTES = 10
_KEY_BYTES = 32
_STUDY_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


class StudyKeyError(Exception):
    """A study key is missing, destroyed, unsafely stored or malformed. The message says what to do."""


def _check_study_id(study_id: str) -> str:
    # Study ids name key files and appear in HKDF labels: keep them to a safe, unambiguous alphabet.
    if not isinstance(study_id, str) or not _STUDY_ID.fullmatch(study_id):
        raise StudyKeyError(f"study id {study_id!r} must be 1-64 letters, digits, '.', '_' or '-', "
                            "starting with a letter or digit")
    return study_id


def _check_key(key: bytes) -> bytes:
    if not isinstance(key, (bytes, bytearray)) or len(key) < _KEY_BYTES:
        raise StudyKeyError(f"a study key must be at least {_KEY_BYTES} bytes; derive one with study_key()")
    return bytes(key)


def study_key(master_secret: bytes, study_id: str, version: int = 1, *, salt: bytes | None = None) -> bytes:
    """Derive a study's 32-byte pseudonym key from the warehouse study master secret (HKDF-SHA256).

    The HKDF ``info`` label is ``vpdc/study-pseudonym/v<version>/<study_id>``: a different study or a
    new version gives an unrelated key, and the label says what the key is for so it cannot be
    confused with a linkage key derived from some other secret.

    Args:
        master_secret: the warehouse study master secret (``WarehouseKeyRing.study_master_secret()``).
        study_id: the approved request's study id.
        version: bump to re-key a study (old pseudonyms then no longer match).
        salt: a random per-study value. :class:`StudyKeyStore` always supplies one so that destroying
            the stored key is final; without it the key can be re-derived from the master secret.

    Example:
        >>> k1 = study_key(b"m" * 32, "ATV-1"); k2 = study_key(b"m" * 32, "ATV-2")
        >>> len(k1), k1 == k2, k1 == study_key(b"m" * 32, "ATV-1")
        (32, False, True)
    """
    if not isinstance(master_secret, (bytes, bytearray)) or len(master_secret) < 16:
        raise StudyKeyError("the study master secret must be at least 16 bytes; run `vpdc keys init`")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise StudyKeyError("key version must be a whole number >= 1")
    label = f"vpdc/study-pseudonym/v{version}/{_check_study_id(study_id)}".encode()
    return HKDF(algorithm=hashes.SHA256(), length=_KEY_BYTES, salt=salt, info=label).derive(bytes(master_secret))


def _subkey(key: bytes, purpose: str) -> bytes:
    # One study key, separate sub-keys per use: a date shift never reveals anything about a pseudonym.
    return HKDFExpand(algorithm=hashes.SHA256(), length=_KEY_BYTES,
                      info=f"vpdc/study/{purpose}".encode()).derive(_check_key(key))


def pseudonymise(person_keys: Iterable[str], key: bytes) -> list[str]:
    """Study pseudonyms for ``person_keys``, in order: ``"S-"`` + 16 base32 characters.

    HMAC-SHA256 under the study key, truncated to 80 bits. The same person and key always give the
    same pseudonym; another study's key gives an unrelated one; without the key the mapping cannot be
    recomputed or inverted.

    Raises:
        StudyKeyError: a short key.
        ValueError: a missing or empty person key (every released row must belong to someone).

    Example:
        >>> key = study_key(b"m" * 32, "ATV-1")
        >>> p = pseudonymise(["P1", "P2", "P1"], key)
        >>> p[0] == p[2], p[0] != p[1], p[0].startswith("S-"), len(p[0])
        (True, True, True, 18)
    """
    sub = _subkey(key, "pseudonym")
    out = []
    for person in person_keys:
        if person is None or (not isinstance(person, str)) or not person:
            raise ValueError("person keys must be non-empty strings; missing person keys cannot be pseudonymised")
        digest = hmac.new(sub, person.encode(), hashlib.sha256).digest()[:_PSEUDONYM_BYTES]
        out.append(PSEUDONYM_PREFIX + base64.b32encode(digest).decode().rstrip("="))
    return out


def pseudonymise_frame(df: pd.DataFrame, key: bytes, *, person_col: str = "person_key",
                       out_col: str = "study_pseudonym") -> pd.DataFrame:
    """Replace ``person_col`` with a study pseudonym column (``person_col`` is dropped, not kept alongside).

    The new column takes the old column's position, so the file's layout does not change.
    """
    if person_col not in df.columns:
        raise ValueError(f"{person_col!r} is not a column")
    if out_col in df.columns and out_col != person_col:
        raise ValueError(f"{out_col!r} already exists")
    values = df[person_col].tolist()
    if any(pd.isna(v) for v in values):
        raise ValueError(f"{person_col!r} has missing values; missing person keys cannot be pseudonymised")
    out = df.copy()
    position = list(out.columns).index(person_col)
    out = out.drop(columns=[person_col])
    out.insert(position, out_col, pd.Series(pseudonymise([str(v) for v in values], key), index=df.index))
    return out


def date_shift_days(person_pseudonym: str, key: bytes, max_days: int = 30) -> int:
    """One person's secret date shift: a whole number of days in ``[-max_days, max_days]``, never 0.

    Derived from the study key and the person's pseudonym, so it is the same for all of a person's
    dates (intervals within the person survive) and the same in every file of the study, yet unknown
    to anyone without the key. Zero is excluded so no one's dates are released unshifted.

    Example:
        >>> key = study_key(b"m" * 32, "ATV-1")
        >>> s = date_shift_days("S-ABC", key); s == date_shift_days("S-ABC", key) and 1 <= abs(s) <= 30
        True
    """
    if isinstance(max_days, bool) or not isinstance(max_days, int) or max_days < 1:
        raise ValueError("max_days must be a whole number >= 1")
    if not isinstance(person_pseudonym, str) or not person_pseudonym:
        raise ValueError("a date shift needs a non-empty pseudonym")
    digest = hmac.new(_subkey(key, "date-shift"), person_pseudonym.encode(), hashlib.sha256).digest()
    # 64 bits reduced modulo 2 * max_days: the bias is below 2**-50, far beneath any use.
    r = int.from_bytes(digest[:8], "big") % (2 * max_days)
    return r + 1 if r < max_days else max_days - r - 1


def shift_dates(df: pd.DataFrame, date_cols: Sequence[str], pseudonym_col: str, key: bytes,
                max_days: int = 30) -> pd.DataFrame:
    """Shift every date in ``date_cols`` by its person's :func:`date_shift_days`. Returns a copy.

    Datetime columns stay datetimes; columns of ``datetime.date`` objects (or date strings) come back
    as ``datetime.date``. Missing dates stay missing.

    Raises:
        ValueError: missing pseudonyms, or values that are not dates.
    """
    missing = [c for c in [*date_cols, pseudonym_col] if c not in df.columns]
    if missing:
        raise ValueError(f"columns not in the frame: {', '.join(map(repr, missing))}")
    people = df[pseudonym_col]
    if people.isna().any():
        raise ValueError(f"{pseudonym_col!r} has missing pseudonyms; every shifted row needs its person")
    shifts = {p: date_shift_days(str(p), key, max_days) for p in people.unique()}
    delta = pd.to_timedelta(people.map(shifts).astype("int64"), unit="D")
    out = df.copy()
    for col in date_cols:
        original = df[col]
        as_datetime = pd.api.types.is_datetime64_any_dtype(original.dtype)
        dates = pd.to_datetime(original, errors="coerce")
        if (dates.isna() & original.notna()).any():
            raise ValueError(f"{col!r} has values that are not dates")
        shifted = dates + delta
        out[col] = shifted if as_datetime else shifted.dt.date.where(shifted.notna(), None)
    return out


_PERIODS = {"month": "M", "quarter": "Q", "year": "Y"}


def coarsen_dates(df: pd.DataFrame, date_cols: Sequence[str],
                  to: Literal["month", "quarter", "year"] = "month") -> pd.DataFrame:
    """Replace dates with period labels: ``"2025-03"`` (month), ``"2025Q1"`` (quarter), ``"2025"`` (year).

    The alternative to shifting when analysis needs calendar alignment across people (seasonality,
    program start dates). Labels, not first-of-period dates, so no one mistakes them for exact dates.

    Example:
        >>> coarsen_dates(pd.DataFrame({"d": pd.to_datetime(["2025-02-14", None])}), ["d"], "quarter")["d"].tolist()
        ['2025Q1', None]
    """
    freq = _PERIODS.get(to)
    if freq is None:
        raise ValueError("coarsen_dates: `to` must be 'month', 'quarter' or 'year'")
    missing = [c for c in date_cols if c not in df.columns]
    if missing:
        raise ValueError(f"columns not in the frame: {', '.join(map(repr, missing))}")
    out = df.copy()
    for col in date_cols:
        dates = pd.to_datetime(df[col], errors="coerce")
        if (dates.isna() & df[col].notna()).any():
            raise ValueError(f"{col!r} has values that are not dates")
        out[col] = pd.Series([None if pd.isna(d) else str(d.to_period(freq)) for d in dates],
                             index=df.index, dtype=object)
    return out


# ------------------------------------------------------------------------------------------------
# Key storage and destruction
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DestructionRecord:
    """What :meth:`StudyKeyStore.destroy` did, for the audit log. Holds no key material.

    ``key_id`` is the first 16 hex digits of a SHA-256 over a fixed label and the key: enough to tell
    which key was destroyed, useless for recovering it.
    """

    study_id: str
    file: str
    key_id: str
    bytes_overwritten: int
    destroyed_at: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _key_id(key: bytes) -> str:
    return hashlib.sha256(b"vpdc/study-key-id/" + key).hexdigest()[:16]


class StudyKeyStore:
    """Per-study keys on disk: one ``<study_id>.key`` file each, mode 0600, in a 0700 directory.

    A file holds the derived key itself (32 bytes). It is created from the master secret plus a fresh
    random salt (see the module docstring), so once the file is destroyed the key is gone for good.
    """

    def __init__(self, directory: Path):
        self.directory = Path(directory)

    def _path(self, study_id: str) -> Path:
        return self.directory / f"{_check_study_id(study_id)}.key"

    def exists(self, study_id: str) -> bool:
        return self._path(study_id).exists()

    def create(self, study_id: str, master_secret: bytes, *, version: int = 1) -> bytes:
        """Derive, store (0600) and return a new key for ``study_id``; refuses to replace an existing one.

        Replacing a key would silently change every pseudonym of a running study, so it is an error.
        """
        path = self._path(study_id)
        key = study_key(master_secret, study_id, version, salt=os.urandom(32))
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        try:
            # O_EXCL: two processes creating the same study's key cannot both win.
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            raise StudyKeyError(f"{path}: study {study_id!r} already has a key; use get()") from None
        with os.fdopen(fd, "wb") as f:
            f.write(key)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(path, 0o600)
        return key

    def get(self, study_id: str) -> bytes:
        """The stored key, refusing files that others can read or that are not a key."""
        path = self._path(study_id)
        if not path.exists():
            raise StudyKeyError(f"{path}: no key for study {study_id!r}; it was never created or has been "
                                "destroyed (destroyed keys cannot be recovered)")
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            raise StudyKeyError(f"{path}: study key is readable by group or others (mode {mode:o}); "
                                f"run `chmod 600 {path}`")
        key = path.read_bytes()
        if len(key) != _KEY_BYTES:
            raise StudyKeyError(f"{path}: not a study key ({len(key)} bytes, expected {_KEY_BYTES})")
        return key

    def get_or_create(self, study_id: str, master_secret: bytes) -> bytes:
        if self.exists(study_id):
            return self.get(study_id)
        return self.create(study_id, master_secret)

    def destroy(self, study_id: str, *, now: datetime) -> DestructionRecord:
        """Overwrite the study's key file with random bytes, flush, delete it, and say what was done.

        After this the study's pseudonyms and date shifts cannot be recomputed by anyone, so released
        files can no longer be linked to the warehouse or to another study.

        Args:
            study_id: the study whose key to destroy.
            now: the time of destruction (the clock is passed in), timezone-aware.

        Raises:
            StudyKeyError: no key to destroy (already destroyed, or never created).
        """
        if now.tzinfo is None or now.utcoffset() is None:
            raise StudyKeyError("destroy() needs a timezone-aware `now`")
        path = self._path(study_id)
        if not path.exists():
            raise StudyKeyError(f"{path}: no key for study {study_id!r} to destroy (already destroyed?)")
        key = path.read_bytes()
        size = len(key)
        with path.open("r+b") as f:
            f.write(os.urandom(size))
            f.flush()
            os.fsync(f.fileno())
        path.unlink()
        dir_fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
        return DestructionRecord(study_id=study_id, file=path.name, key_id=_key_id(key),
                                 bytes_overwritten=size, destroyed_at=now.isoformat())
