"""Atomic writes: a finished run leaves only the extracts and the truth; a crash leaves no partial file."""

from __future__ import annotations

from pathlib import Path

import pytest

import synthetic.build as gen
from synthetic import SynthConfig, generate, sinks

CFG = SynthConfig(persons=300, seed=3, chunk_size=120, periods=("2025-11", "2025-12"))


def files(home: Path) -> list[str]:
    return sorted(str(p.relative_to(home)) for p in home.rglob("*") if p.is_file())


def test_no_temp_files_left(tmp_path):
    progress = []
    generate(CFG, tmp_path, progress=lambda n, d: progress.append((n, d)))
    got = files(tmp_path)
    assert "truth/truth.parquet" in got
    assert all(f.startswith("partners/") or f in ("truth/truth.parquet", "truth/program_effects.json",
                                                    "reference/population_estimates.csv")
               for f in got)
    assert not any(Path(f).name.startswith(".") or f.endswith((".tmp", ".part")) for f in got)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["partners", "reference", "truth"]
    assert sum(n for n, _ in progress) == CFG.persons
    assert all(isinstance(d, str) for _, d in progress)


def test_crash_while_simulating_leaves_no_files(tmp_path, monkeypatch):
    real = gen._Run.chunk
    calls = []

    def failing(self, index, start, n):
        calls.append(index)
        if index == 1:
            raise RuntimeError("boom")
        return real(self, index, start, n)

    monkeypatch.setattr(gen._Run, "chunk", failing)
    with pytest.raises(RuntimeError, match="boom"):
        generate(CFG, tmp_path)
    assert files(tmp_path) == []


def test_crash_while_writing_keeps_old_file_whole(tmp_path, monkeypatch):
    generate(CFG, tmp_path)
    before = {f: (tmp_path / f).read_bytes() for f in files(tmp_path)}
    real = sinks.SortedCsvSink._sorted_chunks

    def failing(self):
        it = real(self)
        yield next(it)  # the header gets written, then the disk "fails"
        raise OSError("disk full")

    monkeypatch.setattr(sinks.SortedCsvSink, "_sorted_chunks", failing)
    with pytest.raises(OSError, match="disk full"):
        generate(CFG, tmp_path)
    after = {f: (tmp_path / f).read_bytes() for f in files(tmp_path)}
    assert after == before  # nothing half-written, no temp file left behind
