"""What the CLI and the demo print about a linkage run (vpdc.stages)."""

from vpdc import stages


def test_a_failed_linkage_says_its_cause_and_that_the_figures_shown_are_the_previous_runs():
    run = {"run_id": "20261201T000000-abc123", "mode": "full", "total_records": 10, "persons": 8, "new_records": 10,
           "pairs": 3}
    with stages.console.capture() as cap:
        stages.print_link({"success": False, "error": "current encodings include another encoding scheme", "run": run,
                           "report": {}})
    out = " ".join(cap.get().split())
    assert "linkage stopped: current encodings include another encoding scheme" in out
    assert "previous run's (20261201T000000-abc123), not this one's" in out
    with stages.console.capture() as cap:
        stages.print_link({"success": True, "error": "", "run": run, "report": {}})
    assert "previous run" not in cap.get() and "20261201T000000-abc123" in cap.get()
