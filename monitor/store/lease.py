"""The lease row's statements (PostgreSQL only: a single SQLite process never needs one), on the
database's clock."""

from __future__ import annotations

from monitor.store import sql

NOW = "EXTRACT(EPOCH FROM clock_timestamp())"
"""The database's clock, in seconds since the epoch: the one every replica agrees on."""


def _acquire(holder: str, ttl: float) -> sql.Program[int | None]:
    # The expiry of a takeover is computed once the row's lock is had (a wait for a fenced
    # write to end must not eat into the new lease).
    rows = yield sql.Query(
        "INSERT INTO lease (id, holder, token, expires_at) "
        f"VALUES (1, %s, 1, {NOW} + %s) "
        "ON CONFLICT (id) DO UPDATE SET holder = excluded.holder, token = lease.token + 1, "
        f"expires_at = {NOW} + %s "
        f"WHERE lease.expires_at <= {NOW} OR lease.holder = excluded.holder "
        "RETURNING token",
        (holder, ttl, ttl),
    )
    return int(rows[0][0]) if rows else None


def _renew(holder: str, token: int, ttl: float) -> sql.Program[bool]:
    changed = yield sql.Exec(
        f"UPDATE lease SET expires_at = {NOW} + %s WHERE id = 1 AND holder = %s AND token = %s",
        (ttl, holder, token),
    )
    return bool(changed)


def _release(token: int) -> sql.Program[None]:
    changed = yield sql.Exec(
        "UPDATE lease SET expires_at = 0 WHERE id = 1 AND token = %s", (token,)
    )
    if changed:
        yield sql.Notify("lease")


def _leader() -> sql.Program[tuple[str, int, float] | None]:
    rows = yield sql.Query(f"SELECT holder, token, expires_at - {NOW} FROM lease WHERE id = 1")
    return (str(rows[0][0]), int(rows[0][1]), float(rows[0][2])) if rows else None


def _renumber() -> sql.Program[None]:
    for table in ("outbox", "silences", "pushes", "decisions", "attempts"):
        yield sql.Query(
            f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
            f"COALESCE(MAX(id), 0) + 1, false) FROM {table}"
        )
