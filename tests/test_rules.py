"""Rule files: loading with positioned errors, matching, operators, templates."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.model import Call, CallState, Event, EventKind, Intercom
from monitor.rules.engine import Engine
from monitor.rules.loader import Context, load_rules
from monitor.rules.templates import Templates, duration, mask_number
from monitor.text.yamldoc import SourceErrors

ROOT = Path(__file__).resolve().parent.parent
T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
CONTEXT = Context(notifiers=["ops-chat", "pager"], providers=["front-door", "support"])


def event(
    to: str = "missed",
    frm: str | None = "ringing",
    title: str = "Front door",
    kind: EventKind = EventKind.TRANSITION,
    **call_kw: object,
) -> Event:
    call = Call(
        id="42",
        state=CallState(to) if to in CallState.__members__.values() else CallState.MISSED,
        raw_status=to,
        created_at=T0,
        intercom=Intercom(158, title, "1 Main St"),
        **call_kw,
    )  # type: ignore[arg-type]
    return Event(
        kind=kind,
        provider="front-door",
        provider_type="vms-intercom",
        from_state=frm,
        to_state=to,
        at=T0,
        call=call,
    )


def load(tmp_path: Path, text: str, context: Context = CONTEXT) -> list:  # type: ignore[type-arg]
    path = tmp_path / "rules.yaml"
    path.write_text(text)
    return load_rules([path], context)


def errors(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(SourceErrors) as info:
        load(tmp_path, text)
    return [str(e).replace(str(tmp_path) + "/", "") for e in info.value.errors]


def fired(rules: list, ev: Event) -> list[str]:  # type: ignore[type-arg]
    return Engine(rules).process([ev], T0).fired


def test_the_example_rules_load() -> None:
    rules = load_rules([ROOT / "rules"], Context(notifiers=["ops-chat"], providers=[]))
    assert "missed-intercom-call" in {r.name for r in rules}


def test_the_spec_example_rule_fires_on_a_matching_missed_call(tmp_path: Path) -> None:
    rules = load(
        tmp_path,
        """
rules:
  - name: missed-intercom-call
    when:
      provider_type: vms-intercom
      to: missed
      where:
        call.intercom.title: {regex: "^(Front|Gate)"}
    notify: [ops-chat]
    severity: warning
    title: "Missed call at {{ call.intercom.title }}"
    body: "Rang {{ call.ring_seconds }} s at {{ call.created_at | localtime }}, nobody answered."
""",
    )
    (alert,) = Engine(rules).process([event()], T0).alerts
    assert alert.title == "Missed call at Front door"
    assert alert.body == "Rang  s at 2026-11-23 12:00:00 UTC, nobody answered."
    assert alert.notifier == "ops-chat"
    assert fired(rules, event(title="Back door")) == []
    assert fired(rules, event(to="ended", frm="answered")) == []


@pytest.mark.parametrize(
    ("where", "matches"),
    [
        ("call.intercom.id: 158", True),
        ("call.intercom.id: '158'", True),
        ("call.intercom.id: [1, 158]", True),
        ("call.intercom.id: [1, 2]", False),
        ("call.intercom.id: {gt: 100}", True),
        ("call.intercom.id: {gte: 158, lt: 159}", True),
        ("call.intercom.id: {lte: 157}", False),
        ("call.intercom.title: {not: {regex: '^Back'}}", True),
        ("call.intercom.title: {not: Front door}", False),
        ("call.answered_at: {exists: false}", True),
        ("call.answered_at: {exists: true}", False),
        ("call.raw_status: missed", True),
        ("call.intercom.title: {regex: door$}", True),
    ],
)
def test_where_operators(tmp_path: Path, where: str, matches: bool) -> None:
    rules = load(
        tmp_path,
        f"""
rules:
  - name: r
    when: {{to: missed, where: {{{where}}}}}
    notify: [ops-chat]
""",
    )
    assert (fired(rules, event()) == ["r"]) is matches


def test_from_null_means_a_call_first_seen(tmp_path: Path) -> None:
    rules = load(
        tmp_path,
        """
rules:
  - {name: r, when: {from: null, to: missed}, notify: [ops-chat]}
""",
    )
    assert fired(rules, event(frm=None)) == ["r"]
    assert fired(rules, event(frm="ringing")) == []


def test_kind_defaults_to_transition(tmp_path: Path) -> None:
    rules = load(tmp_path, "rules:\n  - {name: r, when: {to: down}, notify: [ops-chat]}\n")
    provider_event = Event(
        kind=EventKind.PROVIDER,
        provider="front-door",
        provider_type="vms-intercom",
        from_state="up",
        to_state="down",
        at=T0,
    )
    assert fired(rules, provider_event) == []
    rules = load(
        tmp_path, "rules:\n  - {name: r, when: {kind: provider, to: down}, notify: [ops-chat]}\n"
    )
    assert fired(rules, provider_event) == ["r"]


def test_one_alert_per_notifier_with_distinct_keys(tmp_path: Path) -> None:
    rules = load(tmp_path, "rules:\n  - {name: r, when: {to: missed}, notify: [ops-chat, pager]}\n")
    alerts = Engine(rules).process([event()], T0).alerts
    assert [a.notifier for a in alerts] == ["ops-chat", "pager"]
    assert len({a.key for a in alerts}) == 2


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("rules:\n  - name: r\n    when: {to: missed\n", "rules.yaml:4:1: invalid YAML"),
        (
            "rules:\n  - {name: r, when: {to: missed}, notify: [chat]}\n",
            "rules.yaml:2:44: unknown notifier 'chat'",
        ),
        (
            "rules:\n  - {name: r, when: {to: missd}, notify: [ops-chat]}\n",
            "rules.yaml:2:26: unknown state 'missd'",
        ),
        (
            "rules:\n  - {name: r, when: {to: missed}, notify: [ops-chat], severty: info}\n",
            "rules.yaml:2:55: unknown key 'severty' in rules[0]",
        ),
        (
            "rules:\n  - {name: r, when: {provider: nope}, notify: [ops-chat]}\n",
            "rules.yaml:2:32: unknown provider 'nope'",
        ),
        (
            "rules:\n  - name: r\n    when: {where: {call.intercom.title: {regex: '('}}}\n"
            "    notify: [ops-chat]\n",
            "rules.yaml:3:49: invalid regex '('",
        ),
        (
            "rules:\n  - name: r\n    when: {where: {call.x: 1}}\n    notify: [ops-chat]\n",
            "rules.yaml:3:20: unknown call field 'call.x'",
        ),
        (
            "rules:\n  - name: r\n    when: {where: {call.id: {like: 1}}}\n"
            "    notify: [ops-chat]\n",
            "rules.yaml:3:30: unknown operator 'like'",
        ),
        (
            "rules:\n  - name: r\n    when: {to: missed}\n    notify: [ops-chat]\n"
            "    title: 'Missed {{ call.id '\n",
            "rules.yaml:5:12: title: template error",
        ),
        (
            "rules:\n  - {name: r, when: {to: missed}, notify: [ops-chat]}\n"
            "  - {name: r, when: {to: ended}, notify: [ops-chat]}\n",
            "rules.yaml:3:12: duplicate rule name 'r'",
        ),
        (
            "rules:\n  - {name: r, when: {to: missed}, notify: []}\n",
            "rules.yaml:2:43: rules[0].notify: List should have at least 1 item",
        ),
        ("- just a list\n", "rules.yaml:1:1: a rule file must be a mapping"),
    ],
)
def test_rule_errors_name_file_line_and_column(tmp_path: Path, text: str, expected: str) -> None:
    (message,) = errors(tmp_path, text)
    assert message.startswith(expected), message


def test_template_helpers() -> None:
    assert duration(3723) == "1h 2m 3s"
    assert duration(45.4) == "45s"
    assert duration(None) == ""
    assert mask_number("+49 170 1234567") == "+•• ••• •••4567"
    template = Templates(ZoneInfo("Europe/Berlin")).compile("{{ at | localtime('%H:%M') }}")
    assert template.render({"at": T0}) == "13:00"


def test_templates_are_sandboxed() -> None:
    template = Templates().compile("{{ ''.__class__.__mro__ }}|{{ call.__init__ }}")
    assert template.render({"call": {}}) == "|"


def test_a_missing_value_renders_as_nothing_not_none() -> None:
    """A record without a door title rendered "Missed call at None"."""
    from monitor.rules.templates import Templates

    template = Templates().compile("Missed call at {{ call.intercom.title }}")
    assert template.render({"call": {"intercom": {"title": None}}}) == "Missed call at "


FIELD_TEMPLATES = [
    "Missed call at {{ call.intercom.title }}",
    "{{ call.intercom.title }}/{{ call.id }} ({{ provider }}) {{ call.ring_seconds }}s",
    "{{ call.raw.detail.code }}|{{ call.raw.missing.deeper }}|{{ nothing.at.all }}",
    "{{ at }} {{ call.created_at }} {{ inferred }} {{ call.talk_seconds }}",
    "{{ at.year }} {{ call.created_at.hour }}",  # a datetime's attribute: Jinja renders it
    "{{ call.items }}{{ call.raw.keys }}",  # a mapping's method: Jinja renders it
    "plain {{ rule }}\n",
    "{{ rule }}: {{ provider }} {{ call.id or intercom.id or '' }} {{ to }}",  # the default
    """He said "hi" {x} '{y}' \\n {{ rule }}{{ '"' }}{{ "{" }}""",
    "{{ call.state }} {{ kind }} {{ call.from }}/{{ from }} {{ call.raw.n }}{{ call.raw }}",
    "{{ call.intercom }} {{ intercom }}",  # objects print as their dicts: through the context
    "{{ intercom.id or call.nothing or 0 }}|{{ reason or 'no reason' }}|{{ none }}{{ 7 }}",
]


@pytest.mark.parametrize("source", FIELD_TEMPLATES)
def test_field_templates_render_as_jinja_does(source: str) -> None:
    """Templates that only print fields skip Jinja: the text is the same as Jinja's."""
    from monitor.model import Call, CallState, Event, EventKind, Intercom
    from monitor.rules.fields import template_reader
    from monitor.sources.records import LazyJson

    call = Call(
        "7",
        CallState.MISSED,
        "missed",
        created_at=T0,
        ended_at=T0,
        intercom=Intercom(3, "Gate <1>"),
        raw=LazyJson(b'{"detail": {"code": 17}, "n": null}'),
    )
    event = Event(EventKind.TRANSITION, "door", "vms-intercom", "missed", T0, "ringing", call=call)
    context = {**event.as_dict(), "rule": "r", "count": 3}
    compiled = Templates().compile(source)
    jinja = Templates()._env.from_string(source)
    expected = jinja.render(context).strip("\n")
    assert compiled.render(context) == expected
    fill = compiled.for_events(template_reader)  # from the event itself, no dict of it
    if fill is not None:
        assert compiled.fill(fill, event, {"rule": "r", "count": 3}) == expected


def test_field_templates_are_filled_in_without_jinja() -> None:
    """The fast path is taken (the comparison above would pass with Jinja alone), and output
    beyond the bound fails as Jinja's does."""
    from monitor.rules.templates import RenderError

    compiled = Templates().compile("Missed at {{ call.intercom.title }}")
    compiled._template = None  # with no Jinja template left, only the fast path can render it
    compiled._text = "(Jinja's path)"
    assert compiled._fields is not None
    compiled._template = object()
    assert compiled.render({"call": {"intercom": {"title": "Gate"}}}) == "Missed at Gate"
    with pytest.raises(RenderError, match="longer than"):
        compiled.render({"call": {"intercom": {"title": "x" * 20_000}}})


@settings(max_examples=300, deadline=None)
@given(
    expected=st.one_of(
        st.integers(-300, 300),
        st.floats(allow_nan=False, allow_infinity=False, width=32),
        st.sampled_from(["158", "158.0", "1e3", "x", "", " 1", "True", "None"]),
    ),
    value=st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-300, 300),
        st.floats(allow_nan=False, width=32),
        st.sampled_from(["158", "158.0", "1000", "1e3", "x", "", "1.5", "-0.0", "0"]),
    ),
)
def test_index_keys_never_leave_out_a_rule_that_matches(expected: Any, value: Any) -> None:
    """Whenever `where` equality holds, the event's index key is among the rule's keys."""
    from monitor.rules.fields import compile_test
    from monitor.rules.matching import index_key, index_keys

    if compile_test(expected, ())(value):
        keys = index_keys(expected)
        assert keys is not None
        assert index_key(value) in keys


def test_a_regex_remembers_values_and_still_answers_right() -> None:
    from monitor.rules import regex

    search = regex.compile_linear("^Door [0-9]+$")
    for _ in range(2):
        assert search("Door 12") is True
        assert search("Gate 12") is False
    many = [f"Door {i}" for i in range(regex.MEMO_SIZE + 10)]
    assert all(search(text) for text in many)  # past the memory's size: emptied, still right
    assert search("Door 1" + "0" * 300) is True  # too long to remember, answered all the same


def test_a_field_template_whose_record_cannot_be_read_fails_alone() -> None:
    """A call's record that does not decode (read lazily by `{{ call.raw.x }}`) is a render
    error of that template, on both fast paths, as it is through Jinja: never an exception
    out of the engine."""
    from monitor.model import Call, CallState, Event, EventKind
    from monitor.rules.fields import template_reader
    from monitor.rules.templates import RenderError
    from monitor.sources.records import LazyJson

    call = Call("1", CallState.MISSED, "missed", raw=LazyJson(b"{not json"))
    event = Event(EventKind.TRANSITION, "door", "vms-intercom", "missed", T0, call=call)
    compiled = Templates().compile("code {{ call.raw.x }}")
    fill = compiled.for_events(template_reader)
    assert fill is not None
    with pytest.raises(RenderError, match="DecodeError"):
        compiled.fill(fill, event, {})
    with pytest.raises(RenderError, match="DecodeError"):
        compiled.render(event.as_dict())
