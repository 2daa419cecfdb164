"""The soak's verdict: what was lost or doubled, resolves, `/healthz` while a loop was dead, and
the figures after warm-up with their slopes, against the goals; `main` runs `make soak`."""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.soak import GOALS, RETENTION_DAYS, WINDOW, Run, soak
from bench.soak_faults import STEPS_UNTIL
from bench.soak_probe import Sample, slope
from monitor.telemetry.metrics import LAG


@dataclass
class Verdict:
    lines: list[str] = field(default_factory=list)
    missed: list[str] = field(default_factory=list)
    """Goals missed, one sentence each."""

    def say(self, line: str) -> None:
        self.lines.append(line)

    def goal(self, ok: bool, what: str) -> None:
        if not ok:
            self.missed.append(what)


def deliveries(run: Run) -> tuple[int, list[str], int, int]:
    """(missed calls, lost keys, duplicates in the send window, duplicates outside it).

    A call is told in a message of its own, or as a line of a summary (the transitions a
    provider piled up while it was unreachable are summed up per rule in one message), or
    among a summary's "… and N more", which names none: those make up for as many calls not
    found otherwise."""
    assert run.receiver is not None
    got: dict[str, list[float]] = {}
    unnamed = 0
    for at, title, body in run.receiver.got:
        got.setdefault(title, []).append(at)
        if "alerts from missed" in title or "× missed" in title:
            for line in body.splitlines():
                if (found := re.search(r"(missed \S+ \S+)$", line)) is not None:
                    got.setdefault(found.group(1), []).append(at)
                elif (more := re.match(r"… and (\d+) more", line)) is not None:
                    unnamed += int(more.group(1))
    lost = [f"{p} {c}" for p, c in run.truth.missed if f"missed {p} {c}" not in got]
    lost = lost[unnamed:] if len(lost) > unnamed else []
    kills = [t for d in run.daemons for t in d.killed_at]
    inside = outside = 0
    for title, times in got.items():
        if not title.startswith("missed "):
            continue  # a door may go offline many times: each outage has its alert
        for again in sorted(times)[1:]:
            if any(0 <= again - k <= WINDOW for k in kills):
                inside += 1
            else:
                outside += 1
    return len(run.truth.missed), lost, inside, outside


def resolves(run: Run) -> tuple[int, int, int]:
    """(long outages, door alerts, resolves)."""
    assert run.receiver is not None
    titles = [title for _, title, _ in run.receiver.got]
    alerts = sum(1 for t in titles if t.startswith("offline "))
    resolved = sum(1 for t in titles if t.startswith("Resolved: offline "))
    return len(run.truth.outages), alerts, resolved


def healthy_while_dead(run: Run) -> tuple[int, int]:
    """(loop deaths seen in the logs, `/healthz` 200s while one of them was dead)."""
    deaths = wrong = 0
    for daemon in run.daemons:
        for line in daemon.log.read_text(errors="replace").splitlines():
            if '"loop failed; restarting it"' not in line:
                continue
            try:
                event = json.loads(line)
            except ValueError:
                continue
            deaths += 1
            from datetime import datetime

            died = datetime.fromisoformat(event["timestamp"]).timestamp()
            back = died + float(event.get("restart_in", 1.0))
            wrong += sum(
                1
                for at, who, status in run.health
                if who == daemon.name and died + 0.5 < at < back - 0.5 and status == 200
            )
    return deaths, wrong


def stretches(samples: list[Sample]) -> list[list[Sample]]:
    """The samples cut where the process or its role changed: a killed replica comes back as a
    new process, and a standby that takes the lease steps up by the leader's working set."""
    cut: list[list[Sample]] = []
    role = ""
    for sample in samples:
        same = cut and cut[-1][-1].pid == sample.pid and sample.role in ("", role)
        role = sample.role or role
        if same:
            cut[-1].append(sample)
        else:
            cut.append([sample])
    return cut


def steady(run: Run, samples: list[Sample]) -> list[Sample]:
    """What RSS, files and threads are judged on: a process's last stretch in one role, from the
    later of the end of the faults that move memory by design (`STEPS_UNTIL`) and the retention
    after the stretch began (what a process holds fills up over it, by design too)."""
    warm_up = min(RETENTION_DAYS, run.days / 4) * run.day
    last = stretches(samples)[-1]
    since = max(samples[0].at + STEPS_UNTIL * run.days * run.day, last[0].at + warm_up)
    return [s for s in last if s.at >= since]


def poll_lag(samples: list[Sample], start: float, day: float) -> str:
    """The worst poll lag p99 between two samples, and on which days it passed a second (a poll
    that takes long starts the next one late, by design: the slow pages and the outages, whose
    polls wait for their deadline, show here)."""
    lags = [(s.lag_p99, (s.at - start) / day) for s in samples if s.lag_p99 is not None]
    if not lags:
        return "poll lag not read"
    worst = max(lag for lag, _ in lags)
    shown = f"over {LAG[-1]:g} s" if worst == float("inf") else f"at most {worst * 1000:.0f} ms"
    late = sorted({round(at) for lag, at in lags if lag > 1.0})
    return f"poll lag p99 {shown}" + (f" (over 1 s on days {late})" if late else "")


def figures(run: Run, samples: list[Sample], verdict: Verdict, name: str) -> None:
    """RSS, files and threads in the steady state, with slopes per simulated day; the store,
    WAL, log bytes and poll lag after warm-up; against the goals."""
    if len(samples) < 4:
        verdict.say(f"  {name}: too few samples")
        verdict.goal(False, f"{name}: too few samples to judge")
        return
    start = samples[0].at
    warm = [s for s in samples if s.at - start >= run.days * run.day * 0.1] or samples
    day = run.day

    def per_day(value: Any, over: list[Sample]) -> float:
        return slope([(s.at, float(value(s))) for s in over]) * day

    first, last = warm[0], warm[-1]
    changes = len(stretches(samples)) - 1
    verdict.say(
        f"  {name}: over the run RSS {first.rss_mib:.0f} → {last.rss_mib:.0f} MiB, files "
        f"{first.fds} → {last.fds}, threads {first.threads} → {last.threads} ({changes} "
        f"change{'' if changes == 1 else 's'} of process or role)"
    )
    judged = steady(run, samples)
    if len(judged) < 4 or judged[-1].at - judged[0].at < min(5.0, run.days / 4) * day:
        verdict.say(f"  {name}: its last role began too late to judge its steady state")
        verdict.goal(False, f"{name}: no steady state to judge")
        return
    rss = per_day(lambda s: s.rss_mib, judged)
    fds = per_day(lambda s: s.fds, judged)
    threads = per_day(lambda s: s.threads, judged)
    role = next((s.role for s in judged if s.role), "?")
    j0, j1 = judged[0], judged[-1]
    verdict.say(
        f"  {name} steady, as {role}, days {(j0.at - start) / day:.1f}–{(j1.at - start) / day:.1f}:"
        f" RSS {j0.rss_mib:.1f} → {j1.rss_mib:.1f} MiB ({rss:+.2f} MiB/day), files {j0.fds} → "
        f"{j1.fds} ({fds:+.2f}/day), threads {j0.threads} → {j1.threads} ({threads:+.2f}/day)"
    )
    verdict.goal(rss < GOALS["rss_slope_mib_per_day"], f"{name}: RSS grows {rss:.2f} MiB/day")
    verdict.goal(fds < 0.5, f"{name}: open files grow {fds:.2f} a day")
    verdict.goal(threads < 0.2, f"{name}: threads grow {threads:.2f} a day")
    logs = per_day(lambda s: s.log_bytes, warm) / 1e6
    half = [s for s in warm if s.at >= (warm[0].at + warm[-1].at) / 2] or warm
    store = slope([(s.at, s.store_bytes / 2**20) for s in half]) * day
    wal = max(s.wal_bytes for s in samples) / 2**20
    verdict.say(
        f"  {name}: store {first.store_bytes / 2**20:.1f} → {last.store_bytes / 2**20:.1f} MiB "
        f"({store:+.2f} MiB/day over the last half), WAL at most {wal:.1f} MiB, logs "
        f"{logs * 1000:.1f} KB/day, {poll_lag(warm, start, day)}"
    )
    verdict.say(f"  {name}: rows at the end: {json.dumps(last.rows)}")
    verdict.goal(wal < GOALS["wal_mib"], f"{name}: the WAL reached {wal:.1f} MiB")
    verdict.goal(logs < GOALS["log_mb_per_day"], f"{name}: {logs:.2f} MB of logs a day")
    bound = max(1.0, 0.02 * last.store_bytes / 2**20)
    verdict.goal(store < bound, f"{name}: the store still grows {store:.2f} MiB/day")


def judge(run: Run) -> Verdict:
    verdict = Verdict()
    total = sum(run.truth.calls.values())
    verdict.say(
        f"[{run.store}] {total:,} calls over {run.days} simulated days of {run.day:g} s "
        f"({dict(run.truth.calls)})"
    )
    kinds = Counter(name for _, name in run.faults)
    verdict.say(f"  faults: {sum(kinds.values())}: " + "; ".join(kinds))
    missed, lost, inside, outside = deliveries(run)
    verdict.say(
        f"  missed calls {missed:,}: lost {len(lost)}, duplicated {inside} in the send window "
        f"(a process killed or frozen), {outside} outside it"
    )
    verdict.goal(not lost, f"{len(lost)} missed calls never notified: {lost[:5]}")
    verdict.goal(outside == 0, f"{outside} duplicates outside the send window")
    outages, alerts, resolved = resolves(run)
    verdict.say(
        f"  door outages long enough to alert: {outages} (and {run.truth.short_outages} too "
        f"short); door alerts {alerts}, resolves {resolved}"
    )
    verdict.goal(alerts > 0 and resolved == alerts, f"{alerts} door alerts, {resolved} resolved")
    deaths, wrong = healthy_while_dead(run)
    verdict.say(f"  loops that died: {deaths}; /healthz 200 while one was dead: {wrong}")
    verdict.goal(wrong == 0, f"/healthz said 200 {wrong} times while a loop was dead")
    verdict.say(f"  exit codes on SIGTERM: {run.exits}")
    verdict.goal(all(code == 0 for code in run.exits.values()), f"exits {run.exits}")
    for watched in run.watched:
        figures(run, watched.samples, verdict, watched.name)
    return verdict


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--store", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--day-seconds", type=float, default=60.0)
    parser.add_argument("--calls", type=int, default=50_000)
    parser.add_argument("--quick", action="store_true", help="6 days of 10 s (harness check)")
    parser.add_argument("--keep", metavar="DIR", help="keep the stores and logs in DIR")
    args = parser.parse_args()
    if args.quick:
        args.days, args.day_seconds, args.calls = 6, 10.0, 2_000
    kinds = ("sqlite", "postgresql") if args.store == "both" else (args.store,)
    verdicts = []
    for kind in kinds:
        with tempfile.TemporaryDirectory(prefix=f"callmon-soak-{kind}-") as folder:
            where = Path(args.keep) / kind if args.keep else Path(folder)
            print(f"soak on {kind}: {args.days} days of {args.day_seconds:g} s", flush=True)
            run = asyncio.run(soak(kind, args.days, args.day_seconds, args.calls, where))
            verdict = judge(run)
            for watched in (w for w in run.watched if w.samples):  # where a slope comes from
                rows = [
                    f"{x.at - watched.samples[0].at:.0f},{x.rss_mib:.1f},{x.fds},{x.threads},"
                    f"{x.store_bytes},{x.log_bytes},{x.healthz},{x.pid},{x.role},"
                    f"{'' if x.lag_p99 is None else x.lag_p99}"
                    for x in watched.samples
                ]
                header = (
                    "seconds,rss_mib,fds,threads,store_bytes,log_bytes,healthz,pid,role,"
                    "poll_lag_p99_seconds\n"
                )
                (where / f"{watched.name}.samples.csv").write_text(header + "\n".join(rows) + "\n")
            if verdict.missed and run.truth is not None:
                lost = deliveries(run)[1]
                (where / "lost.txt").write_text("\n".join(lost) + "\n")
            print("\n".join(verdict.lines), flush=True)
            verdicts.append(verdict)
    missed = [m for v in verdicts for m in v.missed]
    for line in missed:
        print(f"GOAL MISSED: {line}")
    print("soak: every goal met" if not missed else f"soak: {len(missed)} goals missed")
    return 1 if missed else 0
