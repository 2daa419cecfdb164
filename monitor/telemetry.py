"""Every metric callmon exports, on an injected registry, with label sets created up front."""

from __future__ import annotations

import platform
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from monitor import __version__

RING_BUCKETS = (1, 2, 5, 10, 15, 20, 30, 45, 60, 90, 120, 180)
TALK_BUCKETS = (5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600)
POLL_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
DELIVERY_BUCKETS = (0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 1800, 3600, 21600, 86400)
OUTCOMES = ("sent", "retried", "failed", "dropped")
M = TypeVar("M", Counter, Gauge, Histogram)
DOOR_LIMIT = 200
"""Doors per provider with series of their own unless a provider says otherwise."""


class Telemetry:
    """The metrics of SPEC's table (prefix `callmon_`)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self._doors: dict[str, set[str]] = {}
        self._door_limits: dict[str, int] = {}
        gauge = self._maker(Gauge)
        self.build_info = gauge("build_info", "callmon's version and Python", "version python")
        self.build_info.labels(__version__, platform.python_version()).set(1)
        self._calls()
        self._providers()
        self._rules()
        self._delivery()

    def _calls(self) -> None:
        counter, gauge, histogram = self._maker(Counter), self._maker(Gauge), self._maker(Histogram)
        self.transitions = counter(
            "call_transitions_total", "Call state transitions seen", "provider from_state to_state"
        )
        self.calls_active = gauge("calls_active", "Calls ringing or answered now", "provider state")
        self.ring_seconds = histogram(
            "call_ring_seconds",
            "Time from ring to answer or to the end of an unanswered call",
            "provider outcome",
            buckets=RING_BUCKETS,
        )
        self.talk_seconds = histogram(
            "call_talk_seconds", "Time from answer to end", "provider", buckets=TALK_BUCKETS
        )
        self.intercom_calls = counter(
            "intercom_calls_total",
            "Finished intercom calls per door, answered or not",
            "provider intercom outcome",
        )
        self.intercom_online = gauge(
            "intercom_online", "1 when the intercom is online", "provider intercom"
        )

    def _providers(self) -> None:
        counter, gauge, histogram = self._maker(Counter), self._maker(Gauge), self._maker(Histogram)
        self.provider_up = gauge(
            "provider_up", "1 when the provider's last poll succeeded", "provider"
        )
        self.requests = counter(
            "provider_requests_total", "HTTP requests to providers by status code", "provider code"
        )
        self.poll_duration = histogram(
            "poll_duration_seconds", "Duration of a whole poll", "provider", buckets=POLL_BUCKETS
        )
        self.last_success = gauge(
            "last_poll_success_timestamp_seconds", "When the last poll succeeded", "provider"
        )
        self.records_skipped = counter(
            "provider_records_skipped_total", "Malformed records skipped", "provider"
        )

    def _rules(self) -> None:
        counter = self._maker(Counter)
        self.rule_fired = counter("rule_fired_total", "Alerts decided, by rule", "rule")
        self.silenced = counter(
            "alerts_silenced_total", "Alerts a silence kept from being sent, by rule", "rule"
        )
        self.rule_errors = counter(
            "rule_errors_total",
            "Templates that failed to render (a fallback text was sent instead), by rule",
            "rule",
        )
        self.rule_reloads = counter(
            "rule_reloads_total", "Rule reloads by outcome (success, failure)", "outcome"
        )

    def _delivery(self) -> None:
        counter, gauge, histogram = self._maker(Counter), self._maker(Gauge), self._maker(Histogram)
        self.notifications = counter(
            "notifications_total", "Notification attempts by outcome", "notifier outcome"
        )
        self.delivery_seconds = histogram(
            "notification_delivery_seconds",
            "Time from the event (the provider's time) until the target accepted the message",
            "notifier",
            buckets=DELIVERY_BUCKETS,
        )
        self.oldest_pending = gauge(
            "notification_oldest_pending_age_seconds",
            "Age of the oldest undelivered notification (0 when none waits)",
            "notifier",
        )
        self.queue_depth = gauge(
            "notification_queue_depth", "Notifications waiting to be delivered", "notifier"
        )
        self.task_restarts = counter(
            "task_restarts_total",
            "Long-lived loops that failed and were restarted, by loop",
            "task",
        )

    def _maker(self, kind: type[M]) -> Callable[..., M]:
        """A constructor of `kind` metrics on this registry: name without the prefix, help,
        label names separated by spaces."""

        def make(name: str, help_text: str, labels: str, **options: Any) -> M:
            return kind(
                f"callmon_{name}", help_text, labels.split(), registry=self.registry, **options
            )

        return make

    def door(self, provider: str, door: str) -> str:
        """A door's label value: its id, or `other` past the provider's door limit, so that
        per-door series stay bounded however many doors calls come from."""
        seen = self._doors.setdefault(provider, set())
        if door in seen:
            return door
        if len(seen) >= self._door_limits.get(provider, DOOR_LIMIT):
            return "other"
        seen.add(door)
        return door

    def limit_doors(self, provider: str, limit: int) -> None:
        """At most `limit` doors of `provider` get series of their own."""
        self._door_limits[provider] = limit

    def declare(
        self, providers: Iterable[str], notifiers: Iterable[str], rules: Iterable[str]
    ) -> None:
        """Create every bounded label set now, so series exist before anything happens."""
        for p in providers:
            self.provider_up.labels(p)
            self.last_success.labels(p)
            self.records_skipped.labels(p)
            self.talk_seconds.labels(p)
            self.poll_duration.labels(p)
            for state in ("ringing", "answered"):
                self.calls_active.labels(p, state)
            for outcome in ("answered", "missed", "rejected", "failed"):
                self.ring_seconds.labels(p, outcome)
        for n in notifiers:
            self.queue_depth.labels(n)
            self.oldest_pending.labels(n)
            self.delivery_seconds.labels(n)
            for outcome in OUTCOMES:
                self.notifications.labels(n, outcome)
        for r in rules:
            self.rule_fired.labels(r)
            self.silenced.labels(r)
            self.rule_errors.labels(r)
        for outcome in ("success", "failure"):
            self.rule_reloads.labels(outcome)
