"""The time-aware rule engine on a fake clock: every `now` is passed in, nothing sleeps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import msgspec

from monitor.model import Alert, Call, CallState, Event, EventKind, Intercom
from monitor.rules.engine import Engine
from monitor.rules.loader import Context, load_rules
from monitor.rules.run import Outcome
from monitor.rules.schedule import from_config, from_timetable
from monitor.rules.state import RuleState, encode_changes
from monitor.store import Changes, SqliteStore

T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)  # a Monday
BERLIN = ZoneInfo("Europe/Berlin")
SCHEDULES = {
    "night": from_config(
        "night", ("mon", "tue", "wed", "thu", "fri", "sat", "sun"), "22:00", "07:00", BERLIN
    ),
    "business-hours": from_config(
        "business-hours", ("mon", "tue", "wed", "thu", "fri"), "08:00", "18:00", BERLIN
    ),
}


def rules(tmp_path: Path, text: str) -> Any:
    path = tmp_path / "rules.yaml"
    path.write_text(text)
    context = Context(notifiers=["chat"], providers=["door", "phones"], schedules=list(SCHEDULES))
    return load_rules([path], context)


def engine(tmp_path: Path, text: str, state: RuleState | None = None) -> Engine:
    return Engine(rules(tmp_path, text), SCHEDULES, zone=BERLIN, state=state)


def call_event(
    cid: str,
    to: str,
    at: datetime,
    *,
    frm: str | None = "ringing",
    door: int = 158,
    title: str = "Gate",
    provider: str = "door",
) -> Event:
    call = Call(
        id=cid, state=CallState(to), raw_status=to, created_at=at, intercom=Intercom(door, title)
    )
    return Event(
        kind=EventKind.TRANSITION,
        provider=provider,
        provider_type="vms-intercom",
        from_state=frm,
        to_state=to,
        at=at,
        call=call,
    )


def door_event(to: str, at: datetime, frm: str | None) -> Event:
    return Event(
        kind=EventKind.INTERCOM,
        provider="door",
        provider_type="vms-intercom",
        from_state=frm,
        to_state=to,
        at=at,
        intercom=Intercom(180, "Gate"),
    )


def provider_event(to: str, at: datetime, frm: str | None) -> Event:
    return Event(
        kind=EventKind.PROVIDER,
        provider="door",
        provider_type="vms-intercom",
        from_state=frm,
        to_state=to,
        at=at,
        reason="HTTP 503" if to == "down" else None,
    )


def step(e: Engine, outcome: Outcome) -> list[Alert]:
    e.apply(outcome)
    return outcome.alerts


def titles(alerts: list[Alert]) -> list[str]:
    return [a.title for a in alerts]


RINGING_TOO_LONG = """
rules:
  - name: ringing-too-long
    when: {provider_type: vms-intercom, state: ringing}
    for: 45s
    notify: [chat]
    title: "{{ call.intercom.title }} ringing for {{ for | duration }}"
"""


def test_a_for_timer_fires_once_from_the_providers_timestamp(tmp_path: Path) -> None:
    e = engine(tmp_path, RINGING_TOO_LONG)
    created = T0 - timedelta(seconds=30)  # first seen 30 s after it started ringing
    assert step(e, e.process([call_event("1", "ringing", created, frm=None)], T0)) == []
    assert step(e, e.tick(T0 + timedelta(seconds=14))) == []
    assert titles(step(e, e.tick(T0 + timedelta(seconds=15)))) == ["Gate ringing for 45s"]
    assert step(e, e.tick(T0 + timedelta(minutes=5))) == []


def test_a_call_answered_in_time_cancels_its_timer(tmp_path: Path) -> None:
    e = engine(tmp_path, RINGING_TOO_LONG)
    step(e, e.process([call_event("1", "ringing", T0, frm=None)], T0))
    step(e, e.process([call_event("1", "answered", T0 + timedelta(seconds=20))], T0))
    assert step(e, e.tick(T0 + timedelta(minutes=1))) == []
    assert e.next_due() is None


async def test_a_restart_in_the_middle_of_a_timer_neither_loses_nor_repeats_it(
    tmp_path: Path,
) -> None:
    store = SqliteStore(str(tmp_path / "state.db"))
    first = engine(tmp_path, RINGING_TOO_LONG)
    outcome = first.process([call_event("1", "ringing", T0, frm=None)], T0)
    await store.commit(Changes(rules=encode_changes(outcome.changes)))
    # the process dies here; a new one loads the rule state from the store
    second = engine(tmp_path, RINGING_TOO_LONG, await stored_state(store))
    fired = second.tick(T0 + timedelta(seconds=45))
    assert titles(fired.alerts) == ["Gate ringing for 45s"]
    await store.commit(Changes(rules=encode_changes(fired.changes)))
    third = engine(tmp_path, RINGING_TOO_LONG, await stored_state(store))
    assert third.tick(T0 + timedelta(seconds=50)).alerts == []
    await store.close()


DOOR_OFFLINE = """
rules:
  - name: intercom-offline
    when: {kind: intercom, to: offline}
    for: 5m
    resolve: true
    notify: [chat]
    title: "{{ intercom.title }} offline"
"""


def test_an_offline_door_alerts_after_5_minutes_and_resolves_when_back(tmp_path: Path) -> None:
    e = engine(tmp_path, DOOR_OFFLINE)
    step(e, e.process([door_event("offline", T0, "online")], T0))
    assert step(e, e.tick(T0 + timedelta(minutes=4))) == []
    assert titles(step(e, e.tick(T0 + timedelta(minutes=5)))) == ["Gate offline"]
    back = step(e, e.process([door_event("online", T0 + timedelta(minutes=9), "offline")], T0))
    assert titles(back) == ["Resolved: Gate offline"]
    assert back[0].severity == "info"


def test_a_door_back_before_the_timer_sends_nothing(tmp_path: Path) -> None:
    e = engine(tmp_path, DOOR_OFFLINE)
    step(e, e.process([door_event("offline", T0, "online")], T0))
    assert (
        step(e, e.process([door_event("online", T0 + timedelta(minutes=2), "offline")], T0)) == []
    )
    assert step(e, e.tick(T0 + timedelta(minutes=10))) == []


MISSED_BURST = """
rules:
  - name: missed-burst
    when: {to: missed}
    threshold: {count: 5, within: 10m, by: [call.intercom.id]}
    notify: [chat]
    title: "{{ count }} missed calls at {{ call.intercom.title }}"
"""


def test_a_threshold_fires_once_per_burst_per_key(tmp_path: Path) -> None:
    e = engine(tmp_path, MISSED_BURST)
    sent: list[str] = []
    for i in range(7):
        at = T0 + timedelta(minutes=i)
        sent += titles(step(e, e.process([call_event(f"g{i}", "missed", at)], at)))
    for i in range(4):
        at = T0 + timedelta(minutes=i)
        sent += titles(
            step(e, e.process([call_event(f"f{i}", "missed", at, door=1, title="Front")], at))
        )
    assert sent == ["5 missed calls at Gate"]
    later = T0 + timedelta(hours=1)  # the window emptied: a new burst fires again
    for i in range(5):
        at = later + timedelta(seconds=i)
        sent += titles(step(e, e.process([call_event(f"h{i}", "missed", at)], at)))
    assert sent == ["5 missed calls at Gate", "5 missed calls at Gate"]


async def test_a_restart_in_the_middle_of_a_threshold_window_keeps_the_count(
    tmp_path: Path,
) -> None:
    store = SqliteStore(str(tmp_path / "state.db"))
    first = engine(tmp_path, MISSED_BURST)
    for i in range(3):
        outcome = first.process([call_event(f"g{i}", "missed", T0 + timedelta(minutes=i))], T0)
        await store.commit(Changes(rules=encode_changes(outcome.changes)))
        first.apply(outcome)
    second = engine(tmp_path, MISSED_BURST, await stored_state(store))
    sent = []
    for i in range(3, 5):
        at = T0 + timedelta(minutes=i)
        sent += titles(step(second, second.process([call_event(f"g{i}", "missed", at)], at)))
    assert sent == ["5 missed calls at Gate"]
    await store.close()


RING_STORM = """
rules:
  - name: ring-storm
    when: {to: ringing}
    threshold: {count: 5, within: 2m, by: [call.intercom.id]}
    notify: [chat]
    title: "{{ call.intercom.title }} rang {{ count }} times in 2 minutes: stuck button?"
"""


def test_a_ring_storm_is_one_alert(tmp_path: Path) -> None:
    e = engine(tmp_path, RING_STORM)
    sent = []
    for i in range(12):
        at = T0 + timedelta(seconds=10 * i)
        sent += titles(step(e, e.process([call_event(f"r{i}", "ringing", at, frm=None)], at)))
    assert sent == ["Gate rang 5 times in 2 minutes: stuck button?"]


THROTTLED = """
rules:
  - name: missed-calls
    when: {to: missed}
    throttle: {every: 15m, by: [call.intercom.id]}
    notify: [chat]
    title: "Missed call at {{ call.intercom.title }}"
"""


def test_a_throttle_sends_one_per_period_and_then_says_how_many_it_held(tmp_path: Path) -> None:
    e = engine(tmp_path, THROTTLED)
    sent: list[Alert] = []
    for i in range(4):
        now = T0 + timedelta(minutes=i)
        sent += step(e, e.process([call_event(f"c{i}", "missed", now)], now))
    assert titles(sent) == ["Missed call at Gate"]
    now = T0 + timedelta(minutes=16)
    (alert,) = step(e, e.process([call_event("c9", "missed", now)], now))
    assert alert.body == "(3 more like this held back since 2026-11-23 13:00:00 CET)"


GROUPED = """
rules:
  - name: missed-calls
    when: {to: missed}
    group: {by: [provider], wait: 30s, max: 20}
    notify: [chat]
    title: "Missed call at {{ call.intercom.title }}"
"""


def test_twenty_missed_calls_in_a_burst_are_one_message(tmp_path: Path) -> None:
    e = engine(tmp_path, GROUPED)
    events = [call_event(f"c{i}", "missed", T0 + timedelta(seconds=i)) for i in range(20)]
    (alert,) = step(e, e.process(events, T0 + timedelta(seconds=20)))
    assert alert.title == "20 × Missed call at Gate"
    assert len(alert.body.splitlines()) == 20
    assert alert.body.splitlines()[0] == "- 23 Nov 13:00 Missed call at Gate"
    assert step(e, e.tick(T0 + timedelta(minutes=5))) == []


def test_a_small_group_goes_out_when_its_wait_is_over(tmp_path: Path) -> None:
    e = engine(tmp_path, GROUPED)
    step(e, e.process([call_event(f"c{i}", "missed", T0) for i in range(3)], T0))
    assert step(e, e.tick(T0 + timedelta(seconds=29))) == []
    assert titles(step(e, e.tick(T0 + timedelta(seconds=30)))) == ["3 × Missed call at Gate"]


QUIET = """
rules:
  - name: missed-calls
    when: {to: missed}
    quiet: night
    notify: [chat]
    title: "Missed call at {{ call.intercom.title }}"
    summary:
      title: "{{ count }} missed calls overnight"
"""


def test_a_night_of_missed_calls_is_one_digest_when_quiet_hours_end(tmp_path: Path) -> None:
    e = engine(tmp_path, QUIET)
    night = datetime(2026, 11, 23, 22, 30, tzinfo=BERLIN)
    for i in range(7):
        at = night + timedelta(minutes=40 * i)
        assert step(e, e.process([call_event(f"n{i}", "missed", at)], at)) == []
    end = datetime(2026, 11, 24, 7, 0, tzinfo=BERLIN)
    assert step(e, e.tick(end - timedelta(seconds=1))) == []
    (digest,) = step(e, e.tick(end))
    assert digest.title == "7 missed calls overnight"
    assert len(digest.body.splitlines()) == 7
    day = datetime(2026, 11, 24, 9, 0, tzinfo=BERLIN)
    assert titles(step(e, e.process([call_event("d", "missed", day)], day))) == [
        "Missed call at Gate"
    ]


def test_during_and_outside_a_schedule(tmp_path: Path) -> None:
    e = engine(
        tmp_path,
        """
rules:
  - {name: office, when: {to: missed}, during: business-hours, notify: [chat], title: office}
  - {name: after-hours, when: {to: missed}, outside: business-hours, notify: [chat],
     title: after}
""",
    )
    monday_noon = datetime(2026, 11, 23, 12, 0, tzinfo=BERLIN)
    saturday = datetime(2026, 11, 28, 12, 0, tzinfo=BERLIN)
    assert titles(e.process([call_event("1", "missed", monday_noon)], T0).alerts) == ["office"]
    assert titles(e.process([call_event("2", "missed", saturday)], T0).alerts) == ["after"]


async def stored_state(store: SqliteStore) -> RuleState:
    state, unreadable = RuleState.load(await store.load_rule_state())
    assert unreadable == []
    return state


def test_during_the_doors_own_timetable(tmp_path: Path) -> None:
    e = engine(
        tmp_path,
        """
rules:
  - {name: open-hours, when: {to: missed}, during: intercom-timetable, notify: [chat],
     title: open}
""",
    )
    timetable = {"days": [{"type": "monday", "from": "09:00:00+01:00", "to": "17:00:00+01:00"}]}
    schedule = from_timetable(timetable, BERLIN)
    assert schedule is not None
    doors = {("door", 158): schedule}
    monday_noon = datetime(2026, 11, 23, 12, 0, tzinfo=BERLIN)
    monday_night = datetime(2026, 11, 23, 20, 0, tzinfo=BERLIN)
    noon = e.process([call_event("1", "missed", monday_noon)], T0, timetables=doors)
    assert titles(noon.alerts) == ["open"]
    assert e.process([call_event("2", "missed", monday_night)], T0, timetables=doors).alerts == []
    unknown_door = call_event("3", "missed", monday_night, door=999)
    unknown = e.process([unknown_door], T0, timetables=doors)
    assert titles(unknown.alerts) == ["open"]  # a door whose timetable is unknown: rather alert


HEALTH = """
rules:
  - name: provider-down
    when: {kind: provider, to: down}
    resolve: true
    notify: [chat]
    severity: critical
    title: "{{ provider }} unreachable"
  - name: missed-calls
    when: {to: missed}
    notify: [chat]
    title: "Missed call at {{ call.intercom.title }}"
""" + RINGING_TOO_LONG.replace("rules:\n", "")


def test_an_outage_with_a_backlog_is_one_alert_one_recovery_and_one_summary(
    tmp_path: Path,
) -> None:
    e = engine(tmp_path, HEALTH)
    sent: list[Alert] = []
    sent += step(e, e.process([call_event("r", "ringing", T0, frm=None)], T0))
    sent += step(e, e.process([provider_event("down", T0, "up")], T0))
    # while the provider is down its timers wait: the call may have been answered meanwhile
    sent += step(e, e.tick(T0 + timedelta(minutes=10), down=frozenset({"door"})))
    back = T0 + timedelta(minutes=30)
    sent += step(e, e.process([provider_event("up", back, "down")], back))
    backlog = [
        call_event(f"b{i}", "missed", T0 + timedelta(minutes=i), frm=None) for i in range(12)
    ]
    backlog.append(call_event("r", "answered", T0 + timedelta(seconds=20)))
    sent += step(e, e.process(backlog, back, backlog=True))
    sent += step(e, e.tick(back + timedelta(minutes=1)))
    assert titles(sent) == [
        "door unreachable",
        "Resolved: door unreachable",
        "12 × Missed call at Gate (while door was unreachable)",
    ]
    assert len(sent[2].body.splitlines()) == 12


def test_reloading_keeps_the_state_of_unchanged_rules_only(tmp_path: Path) -> None:
    e = engine(tmp_path, MISSED_BURST + RING_STORM.replace("rules:\n", ""))
    for i in range(3):
        step(e, e.process([call_event(f"g{i}", "missed", T0)], T0))
        step(e, e.process([call_event(f"g{i}", "ringing", T0, frm=None)], T0))
    changed = RING_STORM.replace("count: 5", "count: 6")
    dropped = e.set_rules(rules(tmp_path, MISSED_BURST + changed.replace("rules:\n", "")))
    assert {k.rule for k in dropped.changes} == {"ring-storm"}
    e.apply(dropped)
    sent = titles(step(e, e.process([call_event(f"g{i}", "missed", T0) for i in (3, 4)], T0)))
    assert sent == ["5 missed calls at Gate"]


def test_a_call_timer_waits_for_a_poll_after_its_deadline(tmp_path: Path) -> None:
    e = engine(tmp_path, RINGING_TOO_LONG)
    step(e, e.process([call_event("1", "ringing", T0, frm=None)], T0))
    due = (T0 + timedelta(seconds=45)).timestamp()
    late = T0 + timedelta(seconds=47)
    assert step(e, e.tick(late, polled={"door": due - 3})) == []  # last poll before the deadline
    assert step(e, e.tick(late, polled={})) == []  # not polled since the start
    assert titles(step(e, e.tick(late, polled={"door": due + 1}))) == ["Gate ringing for 45s"]


def test_a_timer_on_provider_health_fires_while_the_provider_is_down(tmp_path: Path) -> None:
    e = engine(
        tmp_path,
        """
rules:
  - {name: down-long, when: {kind: provider, to: down}, for: 5m, notify: [chat],
     title: "{{ provider }} down for 5 minutes"}
""",
    )
    step(e, e.process([provider_event("down", T0, "up")], T0))
    later = T0 + timedelta(minutes=5)
    fired = e.tick(later, down=frozenset({"door"}), polled={})
    assert titles(step(e, fired)) == ["door down for 5 minutes"]


def test_every_candidate_rule_says_what_it_decided_and_why(tmp_path: Path) -> None:
    """The decision record's verdicts: fired, and each way of not firing with its reason."""
    from monitor.model import Silence
    from monitor.rules.silence import Silencer

    eng = engine(
        tmp_path,
        """
rules:
  - {name: gate, when: {to: missed, where: {call.intercom.id: 158}}, notify: [chat]}
  - {name: other-door, when: {to: missed, where: {call.intercom.id: 180}}, notify: [chat]}
  - {name: storm, when: {to: missed}, notify: [chat], threshold: {count: 3, within: 10m}}
  - {name: nightly, when: {to: missed}, notify: [chat], during: night}
  - {name: hushed, when: {to: missed}, notify: [chat]}
  - {name: calm, when: {to: missed}, notify: [chat], throttle: {every: 1h}}
  - {name: slow, when: {to: ringing}, notify: [chat], for: 30s}
""",
    )
    noon = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)  # 13:00 in Berlin: not night
    silencer = Silencer([Silence(7, "hushed", (), 0, 4e9, "works")])
    first = eng.process([call_event("1", "missed", noon)], noon, silencer=silencer)
    eng.apply(first)
    second = eng.process([call_event("2", "missed", noon)], noon, silencer=silencer)
    said = {(v.rule, v.verdict, v.detail) for v in [*second.verdicts, *second.misses()]}
    assert said == {
        ("gate", "fired", "sent"),
        ("other-door", "not matched", "where call.intercom.id: 180 does not hold"),
        ("storm", "below threshold", "2 of 3 within 600 s"),
        ("nightly", "outside schedule", "outside its night schedule"),
        ("hushed", "silenced", "silence 7: works"),
        ("calm", "throttled", "one alert per 3600 s; this one is counted"),
    }
    (alert,) = second.alerts
    (fired,) = [v.alert for v in second.verdicts if v.verdict == "fired"]
    assert alert.key == f"{fired}|chat"  # the alert of the fired verdict, to its notifier
    ringing = eng.process([call_event("3", "ringing", noon, frm=None)], noon)
    assert [(v.rule, v.verdict) for v in ringing.verdicts] == [("slow", "waiting")]


def test_the_index_by_door_chooses_the_rules_matching_all_would(tmp_path: Path) -> None:
    """Rules about one door each are looked up by the event's door; the verdicts (and the rules
    said not to match, for the decision record) are those of trying every rule."""
    text = "rules:\n" + "".join(
        f"  - {{name: door-{i}, when: {{to: missed, where: {{call.intercom.id: {spec}}}}}, "
        "notify: [chat]}\n"
        for i, spec in enumerate(["158", "'158'", "[7, 158.0]", "7", "{gt: 100}", "'x'"])
    )
    text += "  - {name: any-door, when: {to: missed}, notify: [chat]}\n"
    eng = engine(tmp_path, text)
    for door, fired in ((158, {0, 1, 2, 4}), (7, {2, 3}), (99, set())):
        outcome = eng.process([call_event(f"c{door}", "missed", T0, door=door)], T0)
        names = {f"door-{i}" for i in fired} | {"any-door"}
        assert {v.rule for v in outcome.verdicts} == names
        assert {v.rule for v in outcome.misses()} == {r.name for r in eng.rules} - names
    probe = call_event("x", "missed", T0, door=99)
    shortlist = eng._shortlist(probe.kind, probe.to_state)
    assert len(shortlist.rules(call_event("x", "missed", T0, door=99))) == 2  # any-door, gt


def test_generated_matching_agrees_with_each_rules_own_test(tmp_path: Path) -> None:
    """The matcher generated per candidate set (fields read once, rules in a row) matches what
    each rule's own `matches` says, over rules sharing fields and a few thousand events."""
    import random

    from monitor.rules.matching import Shortlist

    text = """\
rules:
  - {name: a, when: {to: missed, where: {call.intercom.id: 158}}, notify: [chat]}
  - {name: b, when: {to: missed, where: {call.intercom.id: [158, 7], call.id: {regex: '1$'}}},
     notify: [chat]}
  - {name: c, when: {provider: door, to: [missed, ended], from: ringing}, notify: [chat]}
  - {name: d, when: {provider_type: bird, where: {call.ring_seconds: {gt: 5}}}, notify: [chat]}
  - {name: e, when: {to: missed, where: {call.ring_seconds: {lte: 5}, call.intercom.id: 7}},
     notify: [chat]}
  - {name: f, when: {from: null, where: {call.intercom.title: {not: {regex: '^G'}}}},
     notify: [chat]}
  - {name: g, when: {to: missed}, notify: [chat]}
"""
    rules_in_force = rules(tmp_path, text)
    rng = random.Random(7)
    checked = 0
    for _ in range(3000):
        to = rng.choice(["missed", "ended", "ringing"])
        frm = rng.choice([None, "ringing", "answered"])
        event = call_event(
            str(rng.randrange(30)),
            to,
            T0 + timedelta(seconds=rng.randrange(60)),
            frm=frm,
            door=rng.choice([158, 7, 9]),
            title=rng.choice(["Gate", "Front"]),
            provider=rng.choice(["door", "phones"]),
        )
        assert event.call is not None
        call = msgspec.structs.replace(
            event.call, ended_at=event.at + timedelta(seconds=rng.randrange(10))
        )
        kind = rng.choice(["vms-intercom", "bird"])
        event = msgspec.structs.replace(event, call=call, provider_type=kind)
        candidates = [
            r for r in rules_in_force if event.to_state in (r.to_states or {event.to_state})
        ]
        expected = [r.name for r in candidates if r.matches(event)]
        assert [r.name for r in Shortlist(candidates).match(event)] == expected
        checked += bool(expected)
    assert checked > 500  # most events match something: the comparison is not vacuous


DOOR_REMINDED = DOOR_OFFLINE.replace("    resolve: true\n", "    resolve: true\n    remind: 1h\n")


def test_a_door_still_offline_is_reminded_of_every_hour_until_it_is_back(tmp_path: Path) -> None:
    """#25: `remind:` (SPEC "Rule files") as one stage: the alert again every hour while the
    state holds, each saying for how long, then the resolve; on the engine's injected clock."""
    e = engine(tmp_path, DOOR_REMINDED)
    step(e, e.process([door_event("offline", T0, "online")], T0))
    assert titles(step(e, e.tick(T0 + timedelta(minutes=5)))) == ["Gate offline"]
    assert step(e, e.tick(T0 + timedelta(minutes=64))) == []  # not an hour yet
    assert titles(step(e, e.tick(T0 + timedelta(minutes=65)))) == [
        "Still: Gate offline (for 1h 5m)"
    ]
    assert titles(step(e, e.tick(T0 + timedelta(minutes=125)))) == [
        "Still: Gate offline (for 2h 5m)"
    ]
    assert step(e, e.tick(T0 + timedelta(minutes=126))) == []  # once per hour, not per tick
    back = step(e, e.process([door_event("online", T0 + timedelta(minutes=150), "offline")], T0))
    assert titles(back) == ["Resolved: Gate offline"]
    assert step(e, e.tick(T0 + timedelta(minutes=300))) == []  # cleared: no more reminders


def test_a_reminder_waits_while_its_provider_is_down_and_for_a_poll_after_it(
    tmp_path: Path,
) -> None:
    e = engine(tmp_path, DOOR_REMINDED)
    step(e, e.process([door_event("offline", T0, "online")], T0))
    assert titles(step(e, e.tick(T0 + timedelta(minutes=5)))) == ["Gate offline"]
    later = T0 + timedelta(minutes=70)
    assert step(e, e.tick(later, frozenset({"door"}))) == []  # the provider is down
    before = (T0 + timedelta(minutes=64)).timestamp()
    assert step(e, e.tick(later, polled={"door": before})) == []  # no poll since it was due
    assert titles(step(e, e.tick(later, polled={"door": later.timestamp()}))) == [
        "Still: Gate offline (for 1h 5m)"
    ]


async def test_a_restart_between_reminders_neither_skips_nor_repeats_one(tmp_path: Path) -> None:
    store = SqliteStore(str(tmp_path / "state.db"))
    first = engine(tmp_path, DOOR_REMINDED)
    for work in (
        lambda: first.process([door_event("offline", T0, "online")], T0),
        lambda: first.tick(T0 + timedelta(minutes=5)),
    ):
        outcome = work()
        first.apply(outcome)
        await store.commit(Changes(rules=encode_changes(outcome.changes)))
    # the process dies here; a new one loads the rule state from the store
    second = engine(tmp_path, DOOR_REMINDED, await stored_state(store))
    reminded = second.tick(T0 + timedelta(minutes=65))
    assert titles(reminded.alerts) == ["Still: Gate offline (for 1h 5m)"]
    await store.commit(Changes(rules=encode_changes(reminded.changes)))
    third = engine(tmp_path, DOOR_REMINDED, await stored_state(store))
    assert third.tick(T0 + timedelta(minutes=66)).alerts == []
    assert titles(third.tick(T0 + timedelta(minutes=125)).alerts) == [
        "Still: Gate offline (for 2h 5m)"
    ]
    await store.close()


def test_remind_needs_a_state_held(tmp_path: Path) -> None:
    import pytest

    from monitor.text.yamldoc import SourceErrors

    text = "rules:\n  - {name: r, when: {to: missed}, remind: 1h, notify: [chat]}\n"
    with pytest.raises(SourceErrors) as info:
        rules(tmp_path, text)
    assert "remind: needs for:" in str(info.value.errors[0])
