"""The run's memory limit: a value DuckDB cannot read is refused by name, before the run reads or links anything."""

from datetime import UTC, datetime

import pytest

from linkage.model import LinkageParams
from linkage.run import run_linkage


@pytest.mark.parametrize("bad", ["lots", "3 parsecs", "GB3"])
def test_a_memory_limit_that_is_not_a_size_is_refused_by_name(tmp_path, bad):
    db = tmp_path / "linkage.duckdb"
    with pytest.raises(ValueError, match="memory_limit="):
        run_linkage(db, now=datetime(2026, 12, 4, tzinfo=UTC), params=LinkageParams(memory_limit=bad))


def test_an_empty_zone_under_a_valid_limit_reports_no_records(tmp_path):
    r = run_linkage(tmp_path / "linkage.duckdb", now=datetime(2026, 12, 4, tzinfo=UTC),
                    params=LinkageParams(memory_limit="512MB"))
    assert r.mode == "none" and r.records == {}
