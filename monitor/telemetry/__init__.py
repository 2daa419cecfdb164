"""What callmon tells about itself: its metrics (on an injected registry), its structured log
lines, and the heartbeats its loops beat for `/healthz`."""

from monitor.telemetry.metrics import OTHER, Telemetry

__all__ = ["OTHER", "Telemetry"]
