"""The offline tools: schemas, silences from the CLI, the recorder and `rules test` basics."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from monitor.cli import main
from monitor.model import Call, CallState, Event, EventKind, Intercom
from monitor.store import SqliteStore
from monitor.tracking.recorder import Recorder, RecordingError, read

CONFIG = """\
store: sqlite:///state.db
rules: [rules]
notifiers:
  chat: {urls: ["json://127.0.0.1:1/hook"]}
"""
RULE = (
    "rules:\n"
    "  - {name: missed, when: {to: missed}, notify: [chat], title: 'missed {{ call.id }}'}\n"
)
T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A config, its rules and the store a daemon created, in the current folder."""
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "r.yaml").write_text(RULE)
    (tmp_path / "callmon.yaml").write_text(CONFIG)
    asyncio.run(SqliteStore(str(tmp_path / "state.db")).close())
    monkeypatch.chdir(tmp_path)
    return tmp_path


def missed(cid: str) -> Event:
    call = Call(
        id=cid,
        state=CallState.MISSED,
        raw_status="missed",
        created_at=T0,
        intercom=Intercom(1, "Gate"),
        raw={"id": cid, "extra": [1, 2]},
    )
    return Event(
        kind=EventKind.TRANSITION,
        provider="door",
        provider_type="vms-intercom",
        from_state="ringing",
        to_state="missed",
        at=T0,
        call=call,
    )


@pytest.mark.parametrize(("which", "key"), [("rules", "rules"), ("config", "providers")])
def test_schemas_are_json_schema(which: str, key: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([which, "schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert schema["$schema"].startswith("https://json-schema.org/")
    assert key in schema["properties"]
    assert schema["additionalProperties"] is False


def test_silences_from_the_cli(site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(
            [
                "silence",
                "add",
                "--rule",
                "missed",
                "--match",
                "call.intercom.id=158",
                "--for",
                "2h",
                "--comment",
                "door repair",
                "-c",
                "callmon.yaml",
            ]
        )
        == 0
    )
    assert capsys.readouterr().out == "silence 1 added: missed for 2h\n"
    assert main(["silence", "list", "-c", "callmon.yaml"]) == 0
    (line,) = capsys.readouterr().out.splitlines()
    assert line.startswith("1\tmissed\tcall.intercom.id=158\tuntil ")
    assert line.endswith("\tdoor repair")
    assert main(["silence", "remove", "1", "-c", "callmon.yaml"]) == 0
    assert main(["silence", "remove", "1", "-c", "callmon.yaml"]) == 1
    assert capsys.readouterr().err == "callmon silence remove: no silence 1\n"


def test_a_relative_store_is_reached_from_any_folder(
    site: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    elsewhere = site / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    config = str(site / "callmon.yaml")
    args = ["silence", "add", "--rule", "missed", "--for", "1h", "--comment", "x", "-c", config]
    assert main(args) == 0
    assert not (elsewhere / "state.db").exists()

    async def stored() -> list[str]:
        store = SqliteStore(str(site / "state.db"))
        try:
            return [s.rule for s in await store.silences()]
        finally:
            await store.close()

    assert asyncio.run(stored()) == ["missed"]  # in the daemon's store, beside the config


def test_a_tool_never_creates_a_missing_store(
    site: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (site / "state.db").unlink()
    assert main(["silence", "list", "-c", "callmon.yaml"]) == 1
    assert capsys.readouterr().err == (
        f"store {site / 'state.db'} not found (is this the daemon's config? a tool never "
        "creates one)\n"
    )
    assert not (site / "state.db").exists()


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["--rule", "nope"], "callmon silence add: unknown rule 'nope'"),
        (
            ["--rule", "missed", "--match", "caller=1"],
            "callmon silence add: --match 'caller=1': unknown event field 'caller'",
        ),
        (
            ["--rule", "missed", "--match", "call.id"],
            "callmon silence add: --match 'call.id': write it as field=value",
        ),
    ],
)
def test_bad_silences_are_refused(
    site: Path, capsys: pytest.CaptureFixture[str], args: list[str], error: str
) -> None:
    assert (
        main(["silence", "add", *args, "--for", "1h", "--comment", "x", "-c", "callmon.yaml"]) == 1
    )
    assert capsys.readouterr().err.strip() == error


def test_the_recorder_rotates_and_keeps_raw(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    recorder = Recorder(path, max_bytes=1500, backups=2)
    for i in range(12):
        recorder.record(missed(str(i)), backlog=i == 3)
    recorder.close()
    assert (tmp_path / "events.jsonl.1").exists()
    assert not (tmp_path / "events.jsonl.3").exists()
    recorded = list(read(tmp_path / "events.jsonl.1")) + list(read(path))
    assert recorded[-1].event.call is not None
    assert recorded[-1].event.call.raw == {"id": "11", "extra": [1, 2]}
    assert path.stat().st_size <= 1500


def test_a_broken_recording_names_its_line(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    Recorder(path).record(missed("1"))
    with path.open("a") as f:
        f.write('{"event": "nope"}\n')
    with pytest.raises(RecordingError, match=r"events.jsonl:2:1: not a recorded event"):
        list(read(path))


def test_rules_test_without_a_config(site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    recorder = Recorder(site / "events.jsonl")
    recorder.record(missed("7"))
    recorder.close()
    assert main(["rules", "test", "rules", "--events", "events.jsonl"]) == 0
    assert capsys.readouterr().out == "2026-11-23T12:00:00Z  missed  missed 7\n"


def test_rules_test_without_a_config_names_the_rule_that_needs_a_schedule(
    site: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without `-c` a rule naming a schedule cannot be tested: the error says which rule needs
    which schedule and that `-c` provides it; with the config it is tested."""
    (site / "rules" / "night.yaml").write_text(
        "rules:\n  - {name: at-night, when: {to: missed}, notify: [chat], during: night}\n"
    )
    (site / "callmon.yaml").write_text(
        CONFIG + 'schedules:\n  night: {from: "22:00", to: "07:00"}\n'
    )
    Recorder(site / "events.jsonl").record(missed("7"))
    assert main(["rules", "test", "rules", "--events", "events.jsonl"]) == 1
    assert capsys.readouterr().err == (
        "rules/night.yaml:2:66: rule 'at-night' needs schedule 'night', which the config "
        "defines: pass -c CONFIG\n"
    )
    assert main(["rules", "test", "rules", "--events", "events.jsonl", "-c", "callmon.yaml"]) == 0
    assert capsys.readouterr().out == "2026-11-23T12:00:00Z  missed  missed 7\n"  # noon: day


@pytest.mark.parametrize(
    "argv",
    [
        ["--debug", "check", "-c", "callmon.yaml"],
        ["check", "--debug", "-c", "callmon.yaml"],
        ["-c", "callmon.yaml", "check"],
        ["check", "-c", "callmon.yaml", "--debug"],
    ],
)
def test_global_options_go_before_or_after_the_command(
    site: Path, argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    (site / "callmon.yaml").rename(site / "elsewhere.yaml")  # found only through -c
    argv = [a.replace("callmon.yaml", "elsewhere.yaml") for a in argv]
    assert main(argv) == 0
    assert capsys.readouterr().out.startswith("ok:")


def test_every_tool_works_on_postgresql_and_store_copy_moves_a_store(
    site: Path, pg_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """The SQLite store of a running site moves to PostgreSQL; the config then names it, and
    `silence` and `outbox` work there as they did on the file."""
    from monitor.store import Delivery, open_store
    from tests.test_store import alert

    async def queue() -> None:
        store = SqliteStore(str(site / "state.db"))
        await store.enqueue([Delivery(alert("a", "first"), 0)])
        await store.add_silence("missed", [], 0, 4e9, "from the file")
        await store.close()

    asyncio.run(queue())
    assert main(["store", "copy", "sqlite:///state.db", pg_url]) == 0
    assert capsys.readouterr().out == f"copied 2 rows from sqlite:///state.db to {pg_url}\n"
    assert main(["store", "copy", "sqlite:///state.db", pg_url]) == 1
    assert capsys.readouterr().err == (
        "the destination already holds silences, outbox: a copy only goes into a new, empty store\n"
    )

    (site / "callmon.yaml").write_text(CONFIG.replace("sqlite:///state.db", pg_url))
    args = ["silence", "add", "--rule", "missed", "--for", "1h", "--comment", "pg"]
    assert main([*args, "-c", "callmon.yaml"]) == 0
    assert capsys.readouterr().out == "silence 2 added: missed for 1h\n"
    assert main(["silence", "list", "-c", "callmon.yaml"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split("\t")[-1] for line in lines] == ["from the file", "pg"]
    assert main(["outbox", "list", "-c", "callmon.yaml"]) == 0
    assert "\tfirst\tattempts=0\t" in capsys.readouterr().out
    assert main(["outbox", "retry", "-c", "callmon.yaml"]) == 0
    assert capsys.readouterr().out == "1 notifications due now\n"

    async def read_back() -> list[str]:
        store = await open_store(pg_url, create=False)
        try:
            return [s.comment for s in await store.silences()]
        finally:
            await store.close()

    assert asyncio.run(read_back()) == ["from the file", "pg"]


def test_store_copy_needs_an_existing_source(
    tmp_path: Path, pg_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = f"sqlite:///{tmp_path / 'nowhere.db'}"
    assert main(["store", "copy", missing, pg_url]) == 1
    assert capsys.readouterr().err.startswith(f"store {tmp_path / 'nowhere.db'} not found")
    assert main(["store", "copy", pg_url, f"sqlite:///{tmp_path / 'copy.db'}"]) == 1
    assert "holds no callmon tables" in capsys.readouterr().err
    assert not (tmp_path / "copy.db").exists()
