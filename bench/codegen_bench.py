"""Is generated code worth it? Each place where callmon generates Python (`rules.codegen`) beside
the closures it would use otherwise, on the same rules and events (`rules_bench`'s):

- matching an event against the candidate rules of its kind and state: one generated function
  per candidate set, or each rule's own `matches` (closures) in turn;
- reading a dotted field (`call.intercom.title`): one generated getter, or a loop over closures;
- filling a template of fields alone (`Missed call at {{ call.intercom.title }}`): one generated
  f-string, or Jinja's own render of the template over the event's fields as a dict (what
  callmon does without it).

Generated code is kept where it is at least 2× faster. Run: `.venv/bin/python
bench/codegen_bench.py`. Prints figures; asserts nothing.
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.rules_bench import events, typical_rules
from monitor.rules.fields import compile_field
from monitor.rules.loader import Context, load_rules
from monitor.rules.matching import Shortlist
from monitor.rules.templates import Templates

N = 100_000


def timed(work: Callable[[], Any]) -> float:
    """Seconds for one run of `work`, the best of three."""
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - started)
    return best


def closure_chain(path: str) -> Callable[[Any], Any]:
    """The getter of `path` as the closures it is made of, applied in a loop."""
    generated = compile_field(path, ())
    steps = generated.__callmon_steps__  # type: ignore[attr-defined]

    def get(value: Any) -> Any:
        for i, step in enumerate(steps):
            if i and value is None:
                return None
            value = step(value)
        return value

    return get


def main() -> list[tuple[str, float, float]]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp, "rules.yaml")
        path.write_text(typical_rules())
        rules = load_rules([path], Context(notifiers=["chat"], providers=["p0", "p1", "p2", "p3"]))
    batch = [e for e in events(N) if e.to_state == "missed"]
    candidates = [r for r in rules if "missed" in (r.to_states or ())]
    shortlist = Shortlist(candidates)
    rows = []

    generated = timed(lambda: [shortlist.match(e) for e in batch])
    closures = timed(lambda: [[r for r in candidates if r.matches(e)] for e in batch])
    rows.append(("match an event against its candidate rules", generated, closures))

    field = "call.intercom.title"
    get, loop = compile_field(field, ()), closure_chain(field)
    generated = timed(lambda: [get(e) for e in batch])
    closures = timed(lambda: [loop(e) for e in batch])
    rows.append((f"read {field}", generated, closures))

    template = Templates().compile("Missed call at {{ call.intercom.title }}")
    fill = template.for_events(lambda path: compile_field(path, ()))
    assert fill is not None
    generated = timed(lambda: [template.fill(fill, e, {}) for e in batch])
    closures = timed(lambda: [template.render(e.as_dict()) for e in batch])
    rows.append(("fill a template of fields alone (vs Jinja)", generated, closures))

    print(f"Generated code against the alternative, {len(batch):,} events each (best of 3)")
    for what, fast, slow in rows:
        print(
            f"  {what:45s} generated {fast / len(batch) * 1e9:6.0f} ns  "
            f"alternative {slow / len(batch) * 1e9:6.0f} ns  {slow / fast:5.1f}×"
        )
    return rows


if __name__ == "__main__":
    main()
