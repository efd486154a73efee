"""Bounded load test of the portal (issue 14, "Done when"): 50 concurrent reviewers deciding and revoking for 60 s.

The portal runs in its own process (uvicorn, one worker, on 127.0.0.1) over a fresh production registry
(SQLite by default; ``--registry-url postgresql+psycopg://...`` for PostgreSQL, whose ``public`` schema is
emptied first). Its people are made through the library: 45 stewards (9 per partner) and 5 community reviewers,
each with a password and an authenticator; an evaluator submits ``--requests`` requests that need every partner
and the community.

Each reviewer is one thread with its own HTTP session: it signs in (password + TOTP), then until the deadline
opens its queue, opens a request (from the queue, or any request now and then), and posts what the page offers:
approve (with a comment), deny (one time in thirty), or revoke (three times in ten when the page offers it: the
request is active). Sign-in is not timed: the run starts when everyone is in. Every page's wall time is
recorded, and every POST's answer: accepted (the redirect the portal gives after a change), refused (the
refusal page), or an error (anything else: a 5xx, a dropped connection).

After the run, with the server stopped, the registry is checked against what the clients were told:

* no lost decision: the decisions the portal accepted are exactly the review rows (reviewer, request, decision),
  and each has its audit entry; no refused POST left a row;
* no request with two outcomes: at most one revocation per request, the table's revoker is the one in the audit,
  and no decision was recorded after a request's revocation;
* the audit chain verifies.

    .venv/bin/python bench/bench_portal_load.py [--reviewers 50] [--seconds 60] [--requests 12] [--out FILE]

Prints one JSON object on stdout (progress on stderr): page time p50/p95/p99/max (GETs, and POSTs apart),
counts, throughput and each invariant's result. Exit status 1 if an invariant fails.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import random
import re
import shutil
import socket
import sys
import tempfile
import threading
import time
from collections import Counter
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.benchlib import log, machine  # noqa: E402

PASSWORD = "load test pass phrase"
CSRF = re.compile(r'name="csrf" value="([^"]+)"')
STUDY_LINK = re.compile(r'href="/requests/([A-Za-z0-9._-]+)"')


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ------------------------------------------------------------------------------------------ the world
def build(root: Path, url: str | None, reviewers: int, requests: int) -> dict[str, Any]:
    """A production registry with its people and requests, made through the library as an administrator would."""
    from governance.identity import Identity, set_registry_mode
    from governance.identity import signin as si
    from governance.outputs import DEFAULT_COLUMNS
    from governance.registry.db import registry_for
    from governance.registry.seed import PARTNERS, seed_demo
    from governance.registry.workflow import submit_request
    from workspace import Home

    if url:
        from sqlalchemy import create_engine

        with create_engine(url).begin() as c:
            c.exec_driver_sql("drop schema if exists public cascade; create schema public")
    home = Home(root).ensure()
    reg = registry_for(home.root, url)
    now = datetime.now(UTC)
    with reg.transaction() as s:
        set_registry_mode(s, "production", actor="registry", now=now)
        seed_demo(s, now=now, people=False)
    si.bootstrap_administrator(reg, user_id="admin_one", display_name="Administrator", organisation="VPDC",
                               password=PASSWORD, now=now)
    admin = reg.signed_in(Identity("admin_one", "password+totp", "local:admin_one", now))
    for p in PARTNERS:
        si.add_agreement(admin, actor="admin_one", partner_id=p, title=f"DSA {p}", starts_on=date(2024, 1, 1),
                         expires_on=date(2030, 12, 31), now=now)
    people, secrets = [], {}
    community = max(1, reviewers // 10)
    for i in range(reviewers - community):
        p = list(PARTNERS)[i % len(PARTNERS)]
        people.append((f"steward_{p}_{i // len(PARTNERS) + 1}", "steward", p))
    people += [(f"community_{i + 1}", "community_reviewer", None) for i in range(community)]
    for uid, role, partner in people + [("evaluator_one", "evaluator", None)]:
        made = si.add_user(admin, actor="admin_one", user_id=uid, display_name=uid, organisation=partner or "VPDC",
                           role=role, partner_id=partner, password=PASSWORD, totp=True, now=now)
        secrets[uid] = made["totp_secret"]
    evaluator = reg.signed_in(Identity("evaluator_one", "password+totp", "local:evaluator_one", now))
    studies = [f"load-{i:03d}" for i in range(requests)]
    for study in studies:
        with evaluator.transaction() as s:
            submit_request(s, requester="evaluator_one", now=now, study_id=study, title=f"Load {study}",
                           organisation="Evaluation partner", purpose="p", research_questions="q",
                           columns=[{"dataset": "program_cohorts", "column": c} for c in DEFAULT_COLUMNS],
                           output_level="cohort", irb_protocol="IRB-1", irb_expires_on=date(2030, 1, 1),
                           retention_end=date(2030, 6, 1), equity_communities="c", equity_return_of_findings="r",
                           equity_mitigation="m")
    return {"reviewers": [u for u, _, _ in people], "secrets": secrets, "studies": studies}


def serve(root: str, url: str | None, port: int) -> None:
    """The portal in this (child) process, as `vpdc portal` runs it."""
    import uvicorn

    from vpdc.portal import PortalConfig, create_app

    config = PortalConfig(Path(root), base_url=f"http://127.0.0.1:{port}", registry_url=url,
                          sign_in_rate=100_000)  # 50 people sign in from one address within seconds
    uvicorn.run(create_app(config), host="127.0.0.1", port=port, access_log=False, log_level="warning")


# ------------------------------------------------------------------------------------------ the reviewers
class Clock:
    """The run's deadline, set when every reviewer has signed in (sign-in, argon2id by design, is not measured)."""

    def __init__(self, reviewers: int, seconds: float):
        self.deadline = float("inf")
        self.started = 0.0
        self.barrier = threading.Barrier(reviewers, action=self._start)
        self.seconds = seconds

    def _start(self) -> None:
        self.started = time.perf_counter()
        self.deadline = self.started + self.seconds


class Reviewer(threading.Thread):
    def __init__(self, base: str, user: str, secret: str, studies: list[str], clock: Clock, seed: int):
        super().__init__(daemon=True)
        self.base, self.user, self.secret, self.studies, self.clock = base, user, secret, studies, clock
        self.rng = random.Random(seed)
        self.gets: list[float] = []
        self.posts: list[float] = []
        self.outcomes: list[dict[str, Any]] = []
        self.errors: list[str] = []

    def _get(self, c: Any, path: str) -> Any:
        t0 = time.perf_counter()
        res = c.get(path)
        self.gets.append(time.perf_counter() - t0)
        if res.status_code >= 500:
            self.errors.append(f"GET {path}: {res.status_code}")
        return res

    def run(self) -> None:
        import httpx
        import pyotp

        with httpx.Client(base_url=self.base, timeout=60.0) as c:
            try:
                try:
                    page = c.get("/sign-in")
                    res = c.post("/sign-in", data={"csrf": CSRF.search(page.text).group(1), "user_id": self.user,
                                                   "password": PASSWORD, "code": pyotp.TOTP(self.secret).now(),
                                                   "next": "/"})
                    if res.status_code != 303:
                        self.errors.append(f"sign-in: {res.status_code}")
                finally:
                    self.clock.barrier.wait()  # everyone starts together, signed in
                if self.errors:
                    return
                while time.perf_counter() < self.clock.deadline:
                    queue = STUDY_LINK.findall(self._get(c, "/queue").text)
                    study = self.rng.choice(queue if queue and self.rng.random() < 0.8 else self.studies)
                    page = self._get(c, f"/requests/{study}")
                    if page.status_code != 200 or time.perf_counter() >= self.clock.deadline:
                        continue
                    token = CSRF.search(page.text)
                    can_decide, can_revoke = "Record my decision" in page.text, "Revoke the approval" in page.text
                    roll = self.rng.random()
                    if can_revoke and roll < 0.3:
                        action, path, form = "revoke", f"/requests/{study}/revoke", {"reason": "load test"}
                    elif can_decide:
                        decision = "approve" if roll < 0.97 else "deny"
                        action, path = decision, f"/requests/{study}/decide"
                        form = {"decision": decision, "comment": f"{self.user} decides {study}"}
                    else:
                        continue
                    t0 = time.perf_counter()
                    res = c.post(path, data={"csrf": token.group(1), **form})
                    self.posts.append(time.perf_counter() - t0)
                    where = res.headers.get("location", "")
                    if res.status_code == 303 and ("done=decided" in where or "done=revoked" in where):
                        result = "accepted"
                    elif res.status_code in (400, 403, 404, 409):
                        result = "refused"
                    else:
                        result = "error"
                        self.errors.append(f"POST {path}: {res.status_code}")
                    self.outcomes.append({"user": self.user, "study": study, "action": action, "result": result})
            except httpx.HTTPError as exc:
                self.errors.append(f"{type(exc).__name__}: {exc}"[:200])


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    s = sorted(values)
    return round(s[min(len(s) - 1, int(round(q * (len(s) - 1))))] * 1000, 1)


def timing(values: list[float]) -> dict[str, Any]:
    return {"n": len(values), "p50_ms": pct(values, 0.50), "p95_ms": pct(values, 0.95), "p99_ms": pct(values, 0.99),
            "max_ms": pct(values, 1.0)}


# ------------------------------------------------------------------------------------------ the checks
def check(root: Path, url: str | None, outcomes: list[dict[str, Any]]) -> dict[str, Any]:
    from governance.registry import audit
    from governance.registry.db import registry_for
    from governance.registry.models import AuditEntry, Request, Review

    reg = registry_for(root, url)
    with reg.read() as s:
        entries = list(s.query(AuditEntry).order_by(AuditEntry.seq))
        study_of = {r.id: r.study_id for r in s.query(Request)}
        rows = Counter((r.reviewer_id, study_of[r.request_id], "deny" if r.decision.value == "deny" else "approve")
                       for r in s.query(Review))
        revoked = {r.study_id: r.revoked_by for r in s.query(Request) if r.revoked_at is not None}
        verified = audit.verify(s)
    told = Counter((o["user"], o["study"], o["action"]) for o in outcomes
                   if o["result"] == "accepted" and o["action"] != "revoke")
    told_rows = Counter({(u, st, "approve" if a == "approve" else "deny"): n for (u, st, a), n in told.items()})
    review_entries = Counter((e.actor, e.subject, "deny" if e.action == "review.deny" else "approve")
                             for e in entries if e.action.startswith("review."))
    revocations = Counter(e.subject for e in entries if e.action == "request.revoked")
    revoker = {e.subject: e.actor for e in entries if e.action == "request.revoked"}
    revoked_at_seq = {e.subject: e.seq for e in entries if e.action == "request.revoked"}
    late = [e.seq for e in entries if e.action.startswith("review.") and e.subject in revoked_at_seq
            and e.seq > revoked_at_seq[e.subject]]
    accepted_revokes = Counter(o["study"] for o in outcomes if o["action"] == "revoke" and o["result"] == "accepted")
    out = {
        "no_lost_decision": told_rows == rows == review_entries,
        "accepted_decisions": sum(told_rows.values()), "review_rows": sum(rows.values()),
        "review_audit_entries": sum(review_entries.values()),
        "one_outcome_per_request": max(revocations.values(), default=0) <= 1 and not late
        and all(revoked.get(st) == who for st, who in revoker.items()) and set(revoked) == set(revoker)
        and accepted_revokes == revocations,
        "revoked_requests": len(revoked), "accepted_revocations": sum(accepted_revokes.values()),
        "decisions_after_revocation": len(late),
        "audit_chain_verifies": verified.ok, "audit_entries": verified.entries,
    }
    if told_rows != rows:
        out["decision_mismatch"] = [str(k) for k in (told_rows - rows) + (rows - told_rows)][:10]
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reviewers", type=int, default=50)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--requests", type=int, default=12)
    ap.add_argument("--registry-url", default=None, help="PostgreSQL (its public schema is emptied); default SQLite")
    ap.add_argument("--seed", type=int, default=14)
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--out", default=None, help="also write the JSON here")
    args = ap.parse_args(argv)

    root = Path(tempfile.mkdtemp(prefix="vpdc-portal-load-", dir=args.workdir))
    t0 = time.perf_counter()
    try:
        log(f"building the registry in {root} ({args.reviewers} reviewers, {args.requests} requests)")
        world = build(root, args.registry_url, args.reviewers, args.requests)
        setup_s = time.perf_counter() - t0
        port = free_port()
        server = mp.get_context("spawn").Process(target=serve, args=(str(root), args.registry_url, port), daemon=True)
        server.start()
        base = f"http://127.0.0.1:{port}"
        import httpx

        for _ in range(600):  # wait (bounded) for the portal to listen
            try:
                if httpx.get(base + "/sign-in", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        else:
            raise SystemExit("the portal did not start")
        log(f"portal on {base}; {args.reviewers} reviewers for {args.seconds:.0f} s")
        clock = Clock(len(world["reviewers"]), args.seconds)
        threads = [Reviewer(base, u, world["secrets"][u], world["studies"], clock, args.seed + i)
                   for i, u in enumerate(world["reviewers"])]
        signing_in = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        ran_s = time.perf_counter() - clock.started
        sign_in_s = clock.started - signing_in
        server.terminate()
        server.join(timeout=30)
        outcomes = [o for t in threads for o in t.outcomes]
        gets = [g for t in threads for g in t.gets]
        posts = [p for t in threads for p in t.posts]
        errors = [e for t in threads for e in t.errors]
        log("checking the registry against what the reviewers were told")
        checks = check(root, args.registry_url, outcomes)
        by = Counter(f"{o['action']}:{o['result']}" for o in outcomes)
        result = {
            "benchmark": "portal_load", "issue": 14, "machine": machine(),
            "registry": "postgresql" if args.registry_url else "sqlite",
            "reviewers": args.reviewers, "requests": args.requests, "seconds": args.seconds,
            "ran_s": round(ran_s, 1), "setup_s": round(setup_s, 1), "sign_in_all_s": round(sign_in_s, 1),
            "page_get": timing(gets), "post": timing(posts),
            "pages_per_s": round(len(gets) / ran_s, 1), "posts_per_s": round(len(posts) / ran_s, 1),
            "outcomes": dict(sorted(by.items())), "errors": len(errors), "first_errors": errors[:5],
            "checks": checks,
            "ok": not errors and checks["no_lost_decision"] and checks["one_outcome_per_request"]
            and checks["audit_chain_verifies"],
        }
        text = json.dumps(result, indent=1)
        print(text)
        if args.out:
            Path(args.out).write_text(text + "\n")
        return 0 if result["ok"] else 1
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
