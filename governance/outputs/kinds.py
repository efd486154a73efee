"""What each kind of release is: its output level, the action whose permission it needs, the dataset its
columns come from. Read by the download gate and by output checking (how many checkers a level needs)."""

from __future__ import annotations

from governance.registry.models import OutputLevel

__all__ = ["KINDS"]

#: a release's kind -> (output level, the action whose permission it needs, the dataset its columns come from)
KINDS: dict[str, tuple[OutputLevel, str, str | None]] = {
    "cohort": (OutputLevel.COHORT, "export.cohort", "program_cohorts"),
    "summary": (OutputLevel.AGGREGATE, "export.summary", None),
    "study": (OutputLevel.LINKED_EXTRACT, "study.run", "events"),
}
