"""How a provider is reached: the TLS setting a client connects with, and why a request did not
complete, as an operator reads it (the daemon's log and `callmon probe` say the same)."""

from __future__ import annotations

import os
import ssl

import aiohttp

TLS_REASONS = {
    10: "the server's certificate has expired",
    18: "the server's certificate is self-signed (an unknown CA: set verify_tls to its CA)",
    19: "the server's certificate comes from an unknown CA (set verify_tls to its CA)",
    20: "the server's certificate comes from an unknown CA (set verify_tls to its CA)",
    21: "the server's certificate comes from an unknown CA (set verify_tls to its CA)",
    62: "the server's certificate is for another host name",
    64: "the server's certificate is for another host name",
}
"""OpenSSL's verification codes, as an operator reads them."""


def failure(exc: aiohttp.ClientError) -> str:
    """Why a request did not complete, in an operator's words: TLS (which problem), a host
    not found, a connection refused or reset."""
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        cert = exc.certificate_error
        code = getattr(cert, "verify_code", None)
        reason = TLS_REASONS.get(code) if isinstance(code, int) else None
        if reason is None and "hostname" in str(cert).lower():
            reason = TLS_REASONS[62]
        return f"TLS: {reason or getattr(cert, 'verify_message', None) or cert}"
    if isinstance(exc, aiohttp.ClientSSLError):
        return f"TLS: the handshake failed ({exc})"
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return f"host {exc.host} not found"
    if isinstance(exc, aiohttp.ClientConnectorError):
        code = exc.os_error.errno
        why = os.strerror(code).lower() if code else "no connection"
        return f"host {exc.host} unreachable on port {exc.port} ({why})"
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return "the server closed the connection"
    return f"request failed ({type(exc).__name__})"


def tls_context(verify: bool | str) -> ssl.SSLContext | bool:
    """aiohttp's `ssl` argument for `verify_tls`: True, False, or a CA bundle path."""
    if isinstance(verify, str):
        return ssl.create_default_context(cafile=verify)
    return verify
