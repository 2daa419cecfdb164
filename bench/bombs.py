"""What each rule-file attack costs callmon now: CPU seconds and peak RSS, one process per bomb.

Each bomb runs in a fresh Python process that imports callmon and does what the daemon would:
load the rule file (as `check` and a reload do), and for a template that loads, render it against
a missed call. The process's own CPU time and peak resident memory are read with `wait4`, beside
a process that only imports callmon (the floor). Run: `python bench/bombs.py`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests import bombs  # noqa: E402

CHILD = """
import sys, json
from datetime import UTC, datetime
from pathlib import Path
from monitor.text import yamldoc
from monitor.rules.loader import Context, load_document
from monitor.rules.engine import Engine
from monitor.rules.regex import compile_linear
from monitor.model import Call, CallState, Event, EventKind
from monitor.text.yamldoc import SourceError, SourceErrors
kind, payload = sys.argv[1], sys.argv[2]
outcome = "nothing"
if kind == "floor":
    pass
elif kind == "regex":
    found = compile_linear(payload)
    outcome = f"matched: {found(sys.argv[3])}"
else:
    try:
        doc = yamldoc.load(payload)
        rules = load_document(doc, Context(notifiers=["chat"], providers=None))
    except (SourceError, SourceErrors) as exc:
        outcome = "refused: " + str(exc).splitlines()[0].split(": ", 1)[1][:60]
    else:
        at = datetime(2026, 11, 23, 12, tzinfo=UTC)
        call = Call(id="c1", state=CallState.MISSED, raw_status="missed", created_at=at)
        event = Event(kind=EventKind.TRANSITION, provider="p", provider_type="bird",
                      from_state="ringing", to_state="missed", at=at, call=call)
        result = Engine(rules).process([event], at)
        outcome = "failed alone: " + result.errors[0][1][:60] if result.errors else "rendered"
print(outcome)
"""


def measure(kind: str, payload: str, extra: str = "") -> tuple[float, float, str]:
    """(CPU seconds, peak RSS in MiB, outcome) of one child process."""
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, kind, payload, extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.stdout is not None
    output = proc.stdout.read().decode().strip().splitlines()
    _, _, usage = os.wait4(proc.pid, 0)
    cpu = usage.ru_utime + usage.ru_stime
    return cpu, usage.ru_maxrss / 1024, output[-1] if output else "(no output)"


def rule_file(template: str) -> str:
    return (
        "rules:\n  - name: bomb\n    when: {to: missed}\n    notify: [chat]\n"
        f"    title: {json.dumps(template)}\n"
    )


def main() -> None:
    rows = [("floor (imports only)", *measure("floor", ""))]
    with tempfile.TemporaryDirectory() as tmp:
        cases = [(f"template: {n}", rule_file(t)) for n, t in bombs.CHECK_REFUSES]
        cases += [(f"template: {n}", rule_file(t)) for n, t in bombs.RENDER_FAILS]
        cases += [(f"YAML: {n}", text) for n, text in bombs.yaml_bombs()]
        for name, text in cases:
            path = Path(tmp, "bomb.yaml")
            path.write_text(text)
            rows.append((name, *measure("rules", str(path))))
    rows.append(
        (
            "regex: ^(\\+?\\d+)+$ vs 30 digits + x",
            *measure("regex", bombs.REGEX_LINEAR, bombs.HOSTILE_CALLER),
        )
    )
    width = max(len(r[0]) for r in rows)
    print(f"{'bomb':<{width}}  {'CPU s':>6}  {'peak RSS MiB':>12}  outcome")
    for name, cpu, rss, outcome in rows:
        print(f"{name:<{width}}  {cpu:6.2f}  {rss:12.1f}  {outcome}")


if __name__ == "__main__":
    main()
