"""Rule-file attacks callmon must withstand (used by tests/test_hostile.py and bench/bombs.py).

Each entry is (name, what it attacks with). `CHECK_REFUSES` are refused by `callmon check` (and a
reload) with their position; `RENDER_FAILS` cannot be known in advance, so each fails alone at
render time within the sandbox's bounds, and the alert goes out with a fallback text.
"""

from __future__ import annotations

CHECK_REFUSES: tuple[tuple[str, str], ...] = (
    ("folded repeat", "{{ 'A' * 10**9 }}"),
    ("huge range", "{{ range(10**9) | list }}"),
    ("huge center", "{{ 'x' | center(10**9) }}"),
    ("format width", "{{ '%0999999999d' | format(1) }}"),
    ("huge power", "{{ 2 ** 100000 }}"),
    ("huge batch", "{{ [1] | batch(10**9, 'x') | list }}"),
)
RENDER_FAILS: tuple[tuple[str, str], ...] = (
    ("repeat a field", "{{ call.raw_status * 10**9 }}"),
    (
        "nested loops",
        "{% for a in call.raw_status * 1000 %}{% for b in call.raw_status * 1000 %}"
        "{% for c in call.raw_status * 1000 %}{% endfor %}{% endfor %}{% endfor %}",
    ),
    (
        "doubling",
        "{% set ns = namespace(s=call.raw_status) %}{% for i in range(60) %}"
        "{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s }}",
    ),
    ("format method", "{{ '{:>999999999}'.format(call.id) }}"),
    ("ljust", "{{ call.raw_status.ljust(10**9) }}"),
    ("replace empty", "{{ call.raw_status | replace('', call.raw_status * 1500) }}"),
    ("recursion", "{% macro m(n) %}{{ m(n) }}{% endmacro %}{{ m(1) }}"),
    ("long output", "{% for i in range(1000) %}{{ call.raw_status * 1000 }}{% endfor %}"),
)
REGEX_REFUSED: tuple[tuple[str, str], ...] = (
    ("backreference", r"^(\d)\1+$"),
    ("look-ahead", r"^(?=\d+$)"),
)
REGEX_LINEAR = r"^(\+?\d+)+$"
"""Catastrophic for a backtracking engine against 30 digits and an `x`; linear for RE2."""
HOSTILE_CALLER = "1" * 30 + "x"


def yaml_bombs() -> tuple[tuple[str, str], ...]:
    """YAML that a plain loader turns into gigabytes or a RecursionError."""
    laughs = ["a: &a [x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 10):
        previous = "a" if i == 1 else f"b{i - 1}"
        laughs.append(f"b{i}: &b{i} [" + ", ".join([f"*{previous}"] * 9) + "]")
    return (
        ("billion laughs", "rules: []\n" + "\n".join(laughs) + "\n"),
        ("3,000 deep", "rules: " + "[" * 3000 + "]" * 3000 + "\n"),
        ("2 MiB", "rules: []\n" + "# padding\n" * (2 * 1024 * 1024 // 10)),
    )
