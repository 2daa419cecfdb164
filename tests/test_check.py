"""`callmon check` on broken files: each error is one `file:line:col: message`, exit 1, and
never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.cli import main

CONFIG = """\
store: sqlite:///state.db
timezone: Europe/Berlin
rules: [rules]
providers:
  - name: front-door
    type: vms-intercom
    base_url: https://vms.example.net
    token: t0ken-123
    poll_interval: 5s
notifiers:
  ops-chat:
    urls: ["json://127.0.0.1:1/hook"]
schedules:
  night: {from: "22:00", to: "07:00"}
"""
RULE = """\
rules:
  - name: missed
    when:
      provider_type: vms-intercom
      to: missed
    notify: [ops-chat]
    title: "Missed call at {{ call.intercom.title }}"
"""

# (what to change, the exact error). Config edits replace text in CONFIG; rule edits in RULE.
CASES: list[tuple[str, tuple[str, str] | None, tuple[str, str] | None, str]] = [
    (
        "config unknown key",
        ("timezone:", "timezon:"),
        None,
        "callmon.yaml:2:1: unknown key 'timezon'",
    ),
    (
        "config YAML syntax",
        ('"22:00", to', '"22:00" to'),
        None,
        "callmon.yaml:14:25: invalid YAML: expected ',' or '}', but got '<scalar>'",
    ),
    (
        "config missing base_url",
        ("    base_url: https://vms.example.net\n", ""),
        None,
        "callmon.yaml:5:5: providers[0].base_url: required key is missing",
    ),
    (
        "config bad duration",
        ("poll_interval: 5s", "poll_interval: fast"),
        None,
        "callmon.yaml:9:20: providers[0].poll_interval: invalid duration 'fast': write it as "
        "500ms, 5s, 10m or 1h",
    ),
    (
        "config unknown provider type",
        ("type: vms-intercom", "type: vms"),
        None,
        "callmon.yaml:6:11: providers[0].type: unknown type 'vms' (expected one of "
        "'vms-intercom', 'bird', 'cinnox', 'bandwidth')",
    ),
    (
        "config missing env var",
        ("token: t0ken-123", "token: ${NO_SUCH_TOKEN}"),
        None,
        "callmon.yaml:8:12: environment variable NO_SUCH_TOKEN is not set",
    ),
    (
        "config bad timezone",
        ("Europe/Berlin", "Europe/Atlantis"),
        None,
        "callmon.yaml:2:11: timezone: unknown timezone 'Europe/Atlantis' (use an IANA name "
        "like Europe/Berlin)",
    ),
    (
        "config bad store",
        ("sqlite:///state.db", "mysql://db/callmon"),
        None,
        "callmon.yaml:1:8: store: store must be a SQLite URL such as sqlite:///callmon-state.db "
        "or a PostgreSQL URL such as postgresql://callmon@db/callmon",
    ),
    (
        "config short lease",
        ("timezone: Europe/Berlin", "timezone: Europe/Berlin\nlease_ttl: 100ms"),
        None,
        "callmon.yaml:3:12: lease_ttl: Input should be greater than or equal to 1",
    ),
    (
        "config no notifier urls",
        ('["json://127.0.0.1:1/hook"]', "[]"),
        None,
        "callmon.yaml:12:11: notifiers.ops-chat.urls: Tuple should have at least 1 item after "
        "validation, not 0",
    ),
    (
        "config bad apprise url",
        ("json://127.0.0.1:1/hook", "nosuch://x"),
        None,
        "callmon.yaml:12:12: notifiers.ops-chat.urls[0]: not a valid apprise URL",
    ),
    (
        "config duplicate provider",
        (
            "notifiers:",
            "  - {name: front-door, type: vms-intercom, "
            "base_url: 'http://x', token: t}\nnotifiers:",
        ),
        None,
        "callmon.yaml:10:12: duplicate provider name 'front-door'",
    ),
    (
        "config bad schedule time",
        ('from: "22:00"', 'from: "25:00"'),
        None,
        "callmon.yaml:14:17: schedules.night.from: String should match pattern "
        "'^([01]\\d|2[0-3]):[0-5]\\d$'",
    ),
    (
        "config bad schedule day",
        ("night: {", "night: {days: [mon, someday], "),
        None,
        "callmon.yaml:14:23: schedules.night.days[1]: must be 'mon', 'tue', 'wed', 'thu', 'fri', "
        "'sat' or 'sun'",
    ),
    (
        "config token twice",
        ("token: t0ken-123", "token: t0ken-123\n    token_file: x"),
        None,
        "callmon.yaml:9:5: give either token or token_file, not both",
    ),
    (
        "config per_page too big",
        ("poll_interval: 5s", "per_page: 500"),
        None,
        "callmon.yaml:9:15: providers[0].per_page: Input should be less than or equal to 100",
    ),
    (
        "config missing CA bundle",
        ("poll_interval: 5s", "verify_tls: /no/such/ca.pem"),
        None,
        "callmon.yaml:9:17: providers[0].verify_tls: CA bundle '/no/such/ca.pem' is not a "
        "readable file",
    ),
    (
        "config negative timeout",
        ("poll_interval: 5s", "timeout: -3s"),
        None,
        "callmon.yaml:9:14: providers[0].timeout: invalid duration '-3s': write it as 500ms, "
        "5s, 10m or 1h",
    ),
    (
        "rule YAML syntax",
        None,
        ("      to: missed\n", "      to: [missed\n"),
        "rules/r.yaml:6:11: invalid YAML: expected ',' or ']', but got ':'",
    ),
    (
        "rule unknown key",
        None,
        ("    notify:", "    notfy:"),
        "rules/r.yaml:6:5: unknown key 'notfy' in rules[0]",
    ),
    (
        "rule unknown notifier",
        None,
        ("[ops-chat]", "[ops]"),
        "rules/r.yaml:6:14: unknown notifier 'ops'",
    ),
    (
        "rule unknown provider",
        None,
        ("provider_type: vms-intercom", "provider: back-door"),
        "rules/r.yaml:4:17: unknown provider 'back-door'",
    ),
    (
        "rule unknown provider type",
        None,
        ("provider_type: vms-intercom", "provider_type: vms"),
        "rules/r.yaml:4:22: unknown provider type 'vms'",
    ),
    (
        "rule bad regex",
        None,
        ("      to: missed\n", "      where: {call.id: {regex: '[a-'}}\n"),
        "rules/r.yaml:5:32: invalid regex '[a-': missing ]: [a-",
    ),
    (
        "rule unknown operator",
        None,
        ("      to: missed\n", "      where: {call.id: {like: 4}}\n"),
        "rules/r.yaml:5:25: unknown operator 'like' (expected one of exists, gt, gte, lt, lte, "
        "not, regex)",
    ),
    (
        "rule operator needs a number",
        None,
        ("      to: missed\n", "      where: {call.ring_seconds: {gt: long}}\n"),
        "rules/r.yaml:5:39: operator gt needs a number, got 'long'",
    ),
    (
        "rule template syntax",
        None,
        ("{{ call.intercom.title }}", "{{ call.intercom.title"),
        "rules/r.yaml:7:12: title: template error: unexpected end of template, expected 'end of "
        "print statement'.",
    ),
    (
        "rule template unknown field",
        None,
        ("call.intercom.title", "call.caller"),
        "rules/r.yaml:7:12: title: template reads 'call.caller', which events never have",
    ),
    (
        "rule unknown schedule",
        None,
        ("    notify:", "    during: weekend\n    notify:"),
        "rules/r.yaml:6:13: unknown schedule 'weekend' (known: intercom-timetable, night)",
    ),
    (
        "rule for without state",
        None,
        ("      to: missed\n", ""),
        "rules/r.yaml:5:10: for: needs the state it waits on (to: or state:)",
    ),
    (
        "rule threshold count 0",
        None,
        ("    notify:", "    threshold: {count: 0, within: 1m}\n    notify:"),
        "rules/r.yaml:6:24: rules[0].threshold.count: Input should be greater than or equal to 1",
    ),
    (
        "rule bad severity",
        None,
        ("    notify:", "    severity: urgent\n    notify:"),
        "rules/r.yaml:6:15: rules[0].severity: must be 'info', 'warning' or 'critical'",
    ),
    (
        "rule future version",
        None,
        ("rules:\n", "version: 2\nrules:\n"),
        "rules/r.yaml:1:10: version: must be 1",
    ),
    (
        "rule during and outside",
        None,
        ("    notify:", "    during: night\n    outside: night\n    notify:"),
        "rules/r.yaml:2:5: rules[0]: give either during or outside, not both",
    ),
    (
        "rule file is a list",
        None,
        (RULE, "- name: missed\n"),
        "rules/r.yaml:1:1: a rule file must be a mapping with a `rules:` list",
    ),
    (
        "rule unknown state",
        None,
        ("to: missed", "to: hungup"),
        "rules/r.yaml:5:11: unknown state 'hungup'",
    ),
    (
        "rule kind timer",
        None,
        ("      provider_type: vms-intercom\n", "      kind: timer\n"),
        "rules/r.yaml:4:13: kind: timer cannot be matched (a timer fires only for the rule that "
        "set it); write for: DURATION on a rule with state: instead",
    ),
    (
        "rule where unknown field",
        None,
        ("      to: missed\n", "      where: {caller: x}\n"),
        "rules/r.yaml:5:15: unknown event field 'caller'",
    ),
]


@pytest.mark.parametrize(
    ("config_edit", "rule_edit", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_a_broken_file_is_one_positioned_error(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    config_edit: tuple[str, str] | None,
    rule_edit: tuple[str, str] | None,
    expected: str,
) -> None:
    config, rule = CONFIG, RULE
    if config_edit:
        assert config_edit[0] in config
        config = config.replace(*config_edit)
    if rule_edit:
        assert rule_edit[0] in rule
        rule = rule.replace(*rule_edit)
        if "for without" in expected or "for:" in expected:
            rule = rule.replace("    notify:", "    for: 30s\n    notify:")
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "r.yaml").write_text(rule)
    (tmp_path / "callmon.yaml").write_text(config)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("NO_SUCH_TOKEN", raising=False)
    assert main(["check", "-c", "callmon.yaml"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert any(line.startswith(expected) for line in err.splitlines()), err
    assert all(line.count(":") >= 3 for line in err.splitlines()), err
    assert "t0ken-123" not in err


def test_there_are_at_least_25_cases() -> None:
    assert len(CASES) >= 25


def test_the_valid_files_pass(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "r.yaml").write_text(RULE)
    (tmp_path / "callmon.yaml").write_text(CONFIG)
    monkeypatch.chdir(tmp_path)
    assert main(["check", "-c", "callmon.yaml"]) == 0
    assert capsys.readouterr().out == "ok: 1 providers, 1 notifiers, 1 rules\n"


def test_rules_that_can_never_match_are_warned_about(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    config = CONFIG.replace(
        "notifiers:",
        "  - {name: cc, type: cinnox, base_url: 'http://x', app_id: a, token: t}\nnotifiers:",
    )
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "r.yaml").write_text(
        RULE
        + "  - name: cc-answered\n    when: {provider: cc, to: answered}\n    notify: [ops-chat]\n"
        + "  - name: door-gone\n    when: {kind: intercom, provider: cc, to: offline}\n"
        + "    notify: [ops-chat]\n"
    )
    (tmp_path / "callmon.yaml").write_text(config)
    monkeypatch.chdir(tmp_path)
    assert main(["check", "-c", "callmon.yaml"]) == 0
    out = capsys.readouterr()
    assert out.out == "ok: 2 providers, 1 notifiers, 3 rules, 2 warnings\n"
    assert out.err.splitlines() == [
        "rules/r.yaml:8:5: warning: rule 'cc-answered' can never match: cinnox never reports "
        "answered",
        "rules/r.yaml:11:5: warning: rule 'door-gone' can never match: cinnox reports no door "
        "status",
    ]


def test_a_for_loop_may_read_its_own_loop_variable(tmp_path: Path) -> None:
    """`loop.index` was refused as a field events never have."""
    from monitor.rules.checks import unknown_fields

    source = "{% for line in call.raw.lines %}{{ loop.index }}: {{ line }}{% endfor %}"
    assert unknown_fields(source) == []
    assert unknown_fields("{{ loop.index }}") == [(1, "loop")]  # outside a loop it is unknown
    assert unknown_fields("{{ call.raw_status.upper() }}") == []  # a method, not a field
