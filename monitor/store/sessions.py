"""The limits every PostgreSQL session of callmon's runs under (`SessionBounds`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from psycopg import AsyncConnection
from psycopg.conninfo import conninfo_to_dict

CONNECT_TIMEOUT = 5.0
"""How long an operation waits for a connection before it fails (the server is down)."""


KEEPALIVE = {"keepalives": 1, "keepalives_idle": 5, "keepalives_interval": 2, "keepalives_count": 3}
"""libpq's TCP keepalives: a silent peer is noticed within about 11 s."""


@dataclass(frozen=True)
class SessionBounds:
    """The limits every database session runs under, so that no stuck peer (a replica frozen
    mid-transaction, a link that stops forwarding) holds a lock for long: a lock wait, a
    transaction left idle, a statement, and unacknowledged data on the socket (both ends).

    With a lease of `ttl`, a frozen leader's locks go within a third of it, so a standby takes
    over within `ttl` plus that.
    """

    lock: float = 10.0
    idle_in_transaction: float = 10.0
    statement: float = 0.0
    """0: none (a tool's `store copy` may take long)."""
    socket: float = 10.0
    """TCP_USER_TIMEOUT: data unacknowledged this long breaks the connection."""
    operation: float = 0.0
    """How long one operation may take, as the client sees it (0: no limit): a link that
    stops forwarding without breaking leaves a query unanswered for ever otherwise."""

    @classmethod
    def for_lease(cls, ttl: float) -> SessionBounds:
        """The daemon's bounds under a lease of `ttl` seconds."""
        third = max(1.0, ttl / 3)
        return cls(
            lock=third, idle_in_transaction=third, statement=max(30.0, 2 * ttl), socket=third
        )

    def settings(self) -> dict[str, int]:
        """The session's settings (server side): times in milliseconds, keepalives in seconds."""
        return {
            "lock_timeout": _ms(self.lock),
            "idle_in_transaction_session_timeout": _ms(self.idle_in_transaction),
            "statement_timeout": _ms(self.statement),
            "tcp_keepalives_idle": KEEPALIVE["keepalives_idle"],
            "tcp_keepalives_interval": KEEPALIVE["keepalives_interval"],
            "tcp_keepalives_count": KEEPALIVE["keepalives_count"],
            "tcp_user_timeout": _ms(self.socket),
        }

    def connect_args(self, url: str) -> dict[str, Any]:
        """libpq's connection settings: the client's, and the session's (`settings`) sent with
        the connection request (libpq's `options`, after any the URL gives), so that a new
        connection costs no round trip more than the connection itself (a `SET` each was seven
        more: 3.5 s to connect over a link slowed by 0.5 s)."""
        given = conninfo_to_dict(url).get("options")
        ours = " ".join(f"-c {name}={value}" for name, value in self.settings().items())
        return {
            "autocommit": True,
            "connect_timeout": int(CONNECT_TIMEOUT),
            **KEEPALIVE,
            "tcp_user_timeout": _ms(self.socket),
            "options": f"{given} {ours}" if given else ours,
        }

    async def connect(self, url: str) -> AsyncConnection[Any]:
        """A new connection under these bounds."""
        return await AsyncConnection.connect(url, **self.connect_args(url))


def _ms(seconds: float) -> int:
    return round(seconds * 1000)
