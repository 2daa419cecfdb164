"""The domain types every layer speaks, and nothing else: frozen, typed, free of I/O.

This package imports nothing of callmon's: providers, the tracker, the rules, the store and the
delivery all depend on it, never the other way round (see the import contracts in
pyproject.toml).
"""

from monitor.model.calls import (
    TERMINAL_STATES,
    Alert,
    Call,
    CallState,
    Event,
    EventKind,
    Intercom,
    Severity,
)
from monitor.model.polls import PollResult, Tracked, shared
from monitor.model.rules import Silence, StateKey, moment

__all__ = [
    "TERMINAL_STATES",
    "Alert",
    "Call",
    "CallState",
    "Event",
    "EventKind",
    "Intercom",
    "PollResult",
    "Severity",
    "Silence",
    "StateKey",
    "Tracked",
    "moment",
    "shared",
]
