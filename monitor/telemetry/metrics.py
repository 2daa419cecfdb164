"""Every metric callmon exports, on an injected registry, with label sets created up front."""

from __future__ import annotations

import platform
from collections.abc import Iterable
from typing import Any, Generic, TypeVar

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from monitor import __version__
from monitor.telemetry.looplag import BUCKETS as LOOP_LAG

RING = (1, 2, 5, 10, 15, 20, 30, 45, 60, 90, 120, 180)
TALK = (5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600)
POLL = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
DELIVERY = (0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 1800, 3600, 21600, 86400)
DETECTION = (0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300)
LAG = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 30)
"""Histogram buckets, seconds: ring time to 3 minutes, talk time to an hour, poll duration from
5 ms to 30 s, delivery from 250 ms to a day."""
OUTCOMES = ("sent", "retried", "failed", "dropped")
M = TypeVar("M", Counter, Gauge, Histogram)
HELP = {
    "build_info": "callmon's version and Python",
    "call_transitions_total": "Call state transitions seen",
    "calls_active": "Calls ringing or answered now",
    "call_ring_seconds": "Time from ring to answer or to the end of an unanswered call",
    "call_talk_seconds": "Time from answer to end",
    "intercom_calls_total": "Finished intercom calls per door, answered or not",
    "intercom_online": "1 when the intercom is online",
    "provider_up": "1 when the provider's last poll succeeded",
    "provider_requests_total": "HTTP requests to providers by status code",
    "poll_duration_seconds": "Duration of a whole poll",
    "poll_lag_seconds": "How late polls start after they were due (all providers): a busy process",
    "last_poll_success_timestamp_seconds": "When the last poll succeeded",
    "provider_records_skipped_total": "Malformed records skipped",
    "provider_rechecks_waiting": (
        "Open calls the list no longer shows that wait for a poll with budget to re-check them"
    ),
    "rule_fired_total": "Alerts decided, by rule",
    "alerts_silenced_total": "Alerts a silence kept from being sent, by rule",
    "rule_errors_total": "Templates that failed to render (a fallback text was sent instead)",
    "rule_reloads_total": "Rule reloads by outcome (success, failure)",
    "notifications_total": "Notification attempts by outcome",
    "notification_delivery_seconds": "From the event (provider time) to the target's acceptance",
    "notification_oldest_pending_age_seconds": "Age of the oldest undelivered notification",
    "notification_queue_depth": "Notifications waiting to be delivered",
    "task_restarts_total": "Long-lived loops that failed and were restarted, by loop",
    "event_detection_seconds": (
        "From the provider's timestamp of a call change to callmon's decision, by poll or push"
    ),
    "webhook_requests_total": "Provider pushes received, by outcome",
    "leader": "1 on the replica that leads (polls, decides, sends), 0 on a standby",
    "event_loop_lag_seconds": (
        "How late a task asking to wake every 50 ms woke: how long the event loop was held"
    ),
}
"""Each metric's help text, by its name after `callmon_`."""
DOOR_LIMIT = 200
"""Doors per provider with series of their own unless a provider says otherwise."""
OTHER = "other"
"""The label value standing for every provider past the config's `provider_series`, and for
every door past a provider's door limit."""


class Metric(Generic[M]):
    """One metric of `Telemetry`, declared in one line: its kind, name (after `callmon_`) and
    label names; its help is in `HELP`. It is made on the instance's registry when first read,
    and then kept in the instance, so that reading it costs an attribute lookup."""

    def __init__(self, kind: type[M], name: str, labels: str, **options: Any) -> None:
        self._kind: type[M] = kind
        self._name, self._labels, self._options = name, labels.split(), options

    def __set_name__(self, owner: type, attribute: str) -> None:
        self._attribute = attribute

    def __get__(self, telemetry: Telemetry, owner: type | None = None) -> M:
        made: M = self._kind(
            f"callmon_{self._name}",
            HELP[self._name],
            self._labels,
            registry=telemetry.registry,
            **self._options,
        )
        telemetry.__dict__[self._attribute] = made
        return made


class Telemetry:
    """The metrics of SPEC's table (prefix `callmon_`), made on an injected registry."""

    build_info = Metric(Gauge, "build_info", "version python")
    transitions = Metric(Counter, "call_transitions_total", "provider from_state to_state")
    calls_active = Metric(Gauge, "calls_active", "provider state")
    ring_seconds = Metric(Histogram, "call_ring_seconds", "provider outcome", buckets=RING)
    talk_seconds = Metric(Histogram, "call_talk_seconds", "provider", buckets=TALK)
    intercom_calls = Metric(Counter, "intercom_calls_total", "provider intercom outcome")
    intercom_online = Metric(Gauge, "intercom_online", "provider intercom")
    provider_up = Metric(Gauge, "provider_up", "provider")
    requests = Metric(Counter, "provider_requests_total", "provider code")
    poll_duration = Metric(Histogram, "poll_duration_seconds", "provider", buckets=POLL)
    poll_lag = Metric(Histogram, "poll_lag_seconds", "", buckets=LAG)
    last_success = Metric(Gauge, "last_poll_success_timestamp_seconds", "provider")
    records_skipped = Metric(Counter, "provider_records_skipped_total", "provider")
    rechecks_waiting = Metric(Gauge, "provider_rechecks_waiting", "provider")
    rule_fired = Metric(Counter, "rule_fired_total", "rule")
    silenced = Metric(Counter, "alerts_silenced_total", "rule")
    rule_errors = Metric(Counter, "rule_errors_total", "rule")
    rule_reloads = Metric(Counter, "rule_reloads_total", "outcome")
    notifications = Metric(Counter, "notifications_total", "notifier outcome")
    delivery_seconds = Metric(
        Histogram, "notification_delivery_seconds", "notifier", buckets=DELIVERY
    )
    oldest_pending = Metric(Gauge, "notification_oldest_pending_age_seconds", "notifier")
    queue_depth = Metric(Gauge, "notification_queue_depth", "notifier")
    task_restarts = Metric(Counter, "task_restarts_total", "task")
    leader = Metric(Gauge, "leader", "")
    loop_lag = Metric(Histogram, "event_loop_lag_seconds", "", buckets=LOOP_LAG)
    detection_seconds = Metric(
        Histogram, "event_detection_seconds", "provider via", buckets=DETECTION
    )
    webhook_requests = Metric(Counter, "webhook_requests_total", "provider outcome")

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self._doors: dict[str, set[str]] = {}
        self._door_limits: dict[str, int] = {}
        self._detailed: frozenset[str] | None = None
        self._summed: dict[tuple[object, ...], int] = {}
        """What each provider under `other` adds to a summed gauge, by (gauge, provider, …)."""
        for name, value in vars(Telemetry).items():
            if isinstance(value, Metric):
                getattr(self, name)  # every metric exists from the start
        self.build_info.labels(__version__, platform.python_version()).set(1)

    def provider(self, name: str) -> str:
        """A provider's label value on detail series (every metric but `provider_up` and
        `last_poll_success_timestamp_seconds`): its name, or `other` past `provider_series`.
        A fleet of ten thousand accounts would otherwise make over a million series (a
        scrape of them takes seconds, and hundreds of MiB)."""
        detailed = self._detailed
        return name if detailed is None or name in detailed else OTHER

    def set_active(self, provider: str, state: str, count: int) -> None:
        """`calls_active` of a provider; the providers under `other` are summed."""
        self._set_summed(self.calls_active, provider, (state,), count)

    def set_rechecks_waiting(self, provider: str, count: int) -> None:
        """`provider_rechecks_waiting` of a provider; the providers under `other` are summed."""
        self._set_summed(self.rechecks_waiting, provider, (), count)

    def _set_summed(self, gauge: Gauge, provider: str, labels: tuple[str, ...], count: int) -> None:
        label = self.provider(provider)
        if label != OTHER:
            gauge.labels(label, *labels).set(count)
            return
        key = (id(gauge), provider, *labels)
        before = self._summed.get(key, 0)
        if count != before:
            self._summed[key] = count
            gauge.labels(OTHER, *labels).inc(count - before)

    def door(self, provider: str, door: str) -> str:
        """A door's label value: its id, or `other` past the provider's door limit, so that
        per-door series stay bounded however many doors calls come from (a provider under
        `other` has no door series of its own: every door is `other`)."""
        if self.provider(provider) == OTHER:
            return OTHER
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
        self,
        providers: Iterable[str],
        notifiers: Iterable[str],
        rules: Iterable[str],
        *,
        provider_series: int | None = None,
    ) -> None:
        """Create every bounded label set now, so series exist before anything happens; with
        `provider_series`, only that many providers get detail series of their own."""
        providers = list(providers)
        detail = providers
        if provider_series is not None:
            self._detailed = frozenset(providers[:provider_series])
            detail = providers[:provider_series]
            if len(providers) > provider_series:
                detail.append(OTHER)
        for p in providers:
            self.provider_up.labels(p)
            self.last_success.labels(p)
        for p in detail:
            self.records_skipped.labels(p)
            self.rechecks_waiting.labels(p)
            self.talk_seconds.labels(p)
            self.poll_duration.labels(p)
            for via in ("poll", "push"):
                self.detection_seconds.labels(p, via)
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
