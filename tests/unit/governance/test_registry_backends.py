"""The registry tests' database switch: SQLite by default; PostgreSQL when `.ci/run` sets the URL, and then a
server that cannot be used fails the run, never skips it. And names with a NUL (which PostgreSQL refuses to
store) are refused as bad input, never a database error."""

import pytest

from governance.identity import signin as si
from governance.registry.workflow import GovernanceError
from tests.conftest import postgres_url
from tests.identity_helpers import free_port
from tests.unit.governance.test_registry import NOW, submit


def test_an_unset_url_means_sqlite(monkeypatch):
    monkeypatch.delenv("VPDC_TEST_X_URL", raising=False)
    assert postgres_url("VPDC_TEST_X_URL") is None


def test_a_set_but_unreachable_server_fails_the_test_never_skips_it(monkeypatch):
    monkeypatch.setenv("VPDC_TEST_X_URL", f"postgresql+psycopg://nobody:secret@127.0.0.1:{free_port()}/none")
    with pytest.raises(pytest.fail.Exception, match="VPDC_TEST_X_URL=.*is set but PostgreSQL cannot be used") as err:
        postgres_url("VPDC_TEST_X_URL")
    assert "secret" not in str(err.value)


def test_a_nul_in_a_column_name_or_a_user_id_is_refused_as_input(reg):
    with pytest.raises(GovernanceError, match="columns: item 1 is not a catalogue name"):
        submit(reg, cols=[{"dataset": "program_cohorts\x00", "column": "sex"}])
    with pytest.raises(si.SignInRefused):
        si.password_sign_in(reg, user_id="admin_ids\x00", password="x" * 12, code="000000", now=NOW)


def test_a_reader_sees_one_snapshot_of_the_chain_while_others_append(reg):
    """PostgreSQL's default isolation would show an entry committed after the head was read, and the chain would
    look cut: read sessions take one snapshot (and writers queue on the head first)."""
    from governance.registry import audit
    from governance.registry.models import AuditEntry, AuditHead

    with reg.read() as s:
        seen = s.get(AuditHead, 1).seq
        with reg.transaction() as w:  # someone else decides meanwhile
            audit.append(w, actor="engineer_ids", action="test.appended", subject="x", at=NOW)
        assert audit.verify(s).ok and s.query(AuditEntry).count() == seen
    with reg.read() as s:
        assert audit.verify(s).ok and s.get(AuditHead, 1).seq == seen + 1
