"""A lock that dies with its process, and telling a live run's process from a dead one."""

import signal
import subprocess
import sys

from workspace.files import process_lock
from workspace.processes import owner_alive, owner_token


def test_the_lock_of_a_killed_process_is_free_at_once(tmp_path):
    lock = tmp_path / "x.lock"
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; sys.path.insert(0, sys.argv[1]);"
        "from workspace.files import process_lock\n"
        "with process_lock(__import__('pathlib').Path(sys.argv[2])):\n"
        "    print('held', flush=True); time.sleep(600)"), str(__import__("pathlib").Path(__file__).parents[3]),
        str(lock)], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    token = owner_token(holder.pid)
    assert owner_alive(token)
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    assert not owner_alive(token)
    with process_lock(lock):  # would wait forever if a dead holder kept it
        pass


def test_a_reused_pid_is_not_the_owner():
    me = owner_token()
    boot, pid, start = me.split(":")
    assert owner_alive(me)
    assert not owner_alive(f"{boot}:{pid}:{int(start) + 1 if start != '-' else 0}") or start == "-"
    assert not owner_alive(f"another-boot:{pid}:{start}") or boot == "-"
    assert owner_alive("garbage")  # never reap what cannot be judged


def test_the_children_a_killed_run_left_are_found_by_its_token_and_ended(tmp_path):
    """A killed `vpdc marts` leaves its dbt running (and holding the warehouse's lock); the dbt inherited the run's
    owner token in its environment, so the next run finds it and ends it, and nothing else."""
    import os

    from workspace.processes import OWNER_ENV, end_orphans, orphans

    parent = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    token = owner_token(parent.pid)
    sleeper = [sys.executable, "-c", "import time; time.sleep(600)"]
    child = subprocess.Popen(sleeper, env={**os.environ, OWNER_ENV: token})
    bystander = subprocess.Popen(sleeper, env={**os.environ, OWNER_ENV: token + "0"})
    try:
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        assert not owner_alive(token)
        assert orphans(token) == [child.pid]
        assert end_orphans(token, grace=2) == [child.pid]
        # SIGTERM, or SIGKILL after the grace when SIGTERM is ignored (a test runner's worker may ignore it, and
        # an ignored signal stays ignored across exec)
        assert child.wait(timeout=10) in (-signal.SIGTERM, -signal.SIGKILL)
        assert orphans(token) == []
        assert bystander.poll() is None  # another run's child is left alone
    finally:
        for p in (child, bystander):
            p.kill()
            p.wait()
