"""The collector's settings in one typed object, and ``collector init``: its TLS key and self-signed certificate
and a small ``collector.json`` under ``<home>/collector/``.

The certificate is self-signed because agents pin it (``collector_cert_sha256``, the SHA-256 of its DER bytes):
a pin is stronger than a name, so no CA is involved.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import ipaddress
import json
import os
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ..errors import ConfigError
from ..settings import Settings

CONFIG_FILE = "collector.json"
KEY_FILE = "key.pem"
CERT_FILE = "cert.pem"
OPERATOR_TOKEN_FILE = "operator.token"  # noqa: S105 - a file name
DEFAULT_LISTEN = "127.0.0.1:8443"
CERT_DAYS = 825
MiB = 1024 * 1024


@dataclass(frozen=True)
class CollectorSettings:
    """Everything the collector app and server need; built once (:func:`load`), tests build their own."""

    home: Path
    db_url: str | None
    cert_file: Path
    key_file: Path
    listen_host: str = "127.0.0.1"
    listen_port: int = 8443
    url: str = "https://127.0.0.1:8443"
    operator_token_sha256: str | None = None  # guards /metrics; None: /metrics is refused to everyone
    max_body_bytes: int = 1 * MiB
    max_decompressed_bytes: int = 8 * MiB
    max_records: int = 1000
    # A peer that has not finished the TLS handshake, sent a whole request (headers and body), or sent a next
    # request within this many seconds is disconnected: nothing waits on a silent peer for ever.
    handshake_timeout_seconds: float = 10.0
    request_timeout_seconds: float = 10.0
    limit_concurrency: int = 256
    # The incident engine's pass interval (0: the collector opens and pages no incidents), and the dead-man
    # heartbeat (see deadman.py): a URL pinged every deadman_interval_seconds, None for none.
    incidents_tick_seconds: float = 5.0
    deadman_url: str | None = None
    deadman_interval_seconds: float = 60.0


def collector_dir(settings: Settings) -> Path:
    return settings.home / "collector"


def parse_listen(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    host = host.strip("[]")
    try:
        number = int(port)
        ipaddress.ip_address(host)
    except ValueError:
        number = 0
    if not sep or not 0 < number < 65536:
        raise ConfigError(f"invalid listen address {value!r}", hint="write ADDRESS:PORT, e.g. 127.0.0.1:8443")
    return host, number


def init(settings: Settings, *, listen: str, url: str | None, sans: Sequence[str], force: bool = False) -> Path:
    """Write the key (0600), the certificate and collector.json; refuse to overwrite unless ``force``."""
    host, port = parse_listen(listen)
    url = url or f"https://{host if ':' not in host else f'[{host}]'}:{port}"
    if not url.startswith("https://"):
        raise ConfigError(f"collector URL {url!r} must be https://", hint="the collector serves TLS only")
    directory = collector_dir(settings)
    if (directory / KEY_FILE).exists() and not force:
        raise ConfigError(f"the collector is already initialized in {directory}", hint="pass --force to remake it")
    settings.ensure_home()
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = []
    for san in dict.fromkeys([host, *sans]):
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(san)))
        except ValueError:
            names.append(x509.DNSName(san))
    now = _dt.datetime.now(_dt.UTC)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sentry collector")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _dt.timedelta(minutes=5))
        .not_valid_after(now + _dt.timedelta(days=CERT_DAYS))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    _write_private(directory / KEY_FILE, key_pem)
    (directory / CERT_FILE).write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    operator = secrets.token_urlsafe(32)
    _write_private(directory / OPERATOR_TOKEN_FILE, (operator + "\n").encode())
    config = {
        "listen": f"{host}:{port}" if ":" not in host else f"[{host}]:{port}",
        "url": url,
        "operator_token_sha256": hashlib.sha256(operator.encode()).hexdigest(),
    }
    (directory / CONFIG_FILE).write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    return directory


def _write_private(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.replace(tmp, path)


def cert_sha256(cert_file: Path) -> str:
    """The pin agents compare: SHA-256 of the certificate's DER bytes, lower-case hex."""
    cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


def load(settings: Settings, *, listen: str | None = None) -> CollectorSettings:
    """The collector's settings from ``<home>/collector``; refuses without TLS material (TLS always)."""
    directory = collector_dir(settings)
    key, cert, conf = directory / KEY_FILE, directory / CERT_FILE, directory / CONFIG_FILE
    if not (key.is_file() and cert.is_file() and conf.is_file()):
        raise ConfigError(
            f"no collector TLS key and certificate in {directory}",
            hint="run 'sentryctl collector init' first; the collector serves TLS only",
        )
    if key.stat().st_mode & 0o077:
        raise ConfigError(f"collector key {key} is readable by others", hint=f"chmod 600 {key}")
    try:
        data = json.loads(conf.read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read {conf}: {exc}", hint="run 'sentryctl collector init --force'") from exc
    host, port = parse_listen(listen or str(data.get("listen", DEFAULT_LISTEN)))
    return CollectorSettings(
        home=settings.home,
        db_url=settings.db_url,
        cert_file=cert,
        key_file=key,
        listen_host=host,
        listen_port=port,
        url=str(data.get("url") or f"https://{host}:{port}"),
        operator_token_sha256=data.get("operator_token_sha256"),
        # Optional in collector.json: the bounds on silent peers (tests shorten them).
        handshake_timeout_seconds=float(data.get("handshake_timeout_seconds", 10.0)),
        request_timeout_seconds=float(data.get("request_timeout_seconds", 10.0)),
        incidents_tick_seconds=_seconds(data, "incidents_tick_seconds", 5.0, conf, zero=True),
        deadman_url=_deadman_url(data.get("deadman_url"), conf),
        deadman_interval_seconds=_seconds(data, "deadman_interval_seconds", 60.0, conf),
    )


def _seconds(data: dict[str, Any], key: str, default: float, conf: Path, *, zero: bool = False) -> float:
    value = data.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not (0 if zero else 0.1) <= value <= 3600:
        raise ConfigError(f"{conf}: {key} must be a number of seconds up to 3600", hint=f"e.g. {default:g}")
    return float(value)


def _deadman_url(value: Any, conf: Path) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or "://" not in value or any(c.isspace() for c in value):
        # The value may hold a token: the message never shows it.
        raise ConfigError(f"{conf}: deadman_url must be a URL (http(s):// or an Apprise URL)")
    return value
