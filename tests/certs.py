"""Certificates made with the `openssl` command for TLS tests: self-signed, for another host, or
expired (signed with past dates by `openssl ca`, which takes them)."""

from __future__ import annotations

import ssl
import subprocess
from dataclasses import dataclass
from pathlib import Path

CA_CONFIG = """[ ca ]
default_ca = here
[ here ]
database = index.txt
new_certs_dir = .
serial = serial
default_md = sha256
policy = any
copy_extensions = copy
[ any ]
commonName = supplied
"""


@dataclass(frozen=True)
class Cert:
    cert: Path
    key: Path

    def server(self) -> ssl.SSLContext:
        """A server's TLS context presenting this certificate."""
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert, self.key)
        return context


def make(folder: Path, name: str = "127.0.0.1", *, expired: bool = False) -> Cert:
    """A self-signed certificate for `name` (an IP address or a host name), valid now (or long
    expired); it is its own CA, so a client may be told to trust it."""
    folder.mkdir(parents=True, exist_ok=True)
    cert, key, request = folder / "cert.pem", folder / "key.pem", folder / "request.csr"
    alt = f"IP:{name}" if name.replace(".", "").isdigit() else f"DNS:{name}"
    subject = ["-subj", f"/CN={name}", "-addext", f"subjectAltName={alt}"]
    subject += ["-addext", "basicConstraints=critical,CA:TRUE"]
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    if not expired:
        run(["openssl", "req", "-x509", *ec, "-keyout", key, "-out", cert, "-days", "2", *subject])
        return Cert(cert, key)
    (folder / "ca.cnf").write_text(CA_CONFIG)
    (folder / "index.txt").write_text("")
    (folder / "serial").write_text("01\n")
    run(["openssl", "req", "-new", *ec, "-keyout", key, "-out", request, *subject])
    dates = ["-startdate", "20200101000000Z", "-enddate", "20200102000000Z"]
    sign: list[str | Path] = [
        "openssl",
        "ca",
        "-batch",
        "-config",
        "ca.cnf",
        "-selfsign",
        "-keyfile",
        key,
    ]
    run([*sign, "-in", request, "-out", cert, *dates], cwd=folder)
    return Cert(cert, key)


def run(command: list[str | Path], cwd: Path | None = None) -> None:
    subprocess.run([str(c) for c in command], check=True, capture_output=True, cwd=cwd)
