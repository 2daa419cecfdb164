"""Notifications: the outbox's delivery workers (`delivery`: one ordered queue per notifier,
retries with backoff, drain on shutdown) and the apprise sender behind them (`sender`, the only
module that imports apprise)."""
