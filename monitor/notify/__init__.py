"""Notifications: the outbox's delivery workers and the apprise sender behind them."""
