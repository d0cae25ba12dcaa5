"""How the server meets the network: TLS (and mTLS) credentials, channel options, the port.

Both are built from Settings by plain functions so that every process that serves (one
server, or each worker of a multi-process one) binds the same way: ``server_options`` for
``grpc.aio.server(options=...)`` and ``add_port`` to bind with or without TLS.

TLS uses grpc's dynamic server credentials: on each new handshake grpc asks
``CertificateFiles.fetch`` whether the configuration changed; it compares the files'
(mtime, size, inode) with what it last loaded and re-reads them only then. A rotated
certificate therefore takes effect for new connections while the open ones keep theirs, and a
half-written or broken file keeps the previous certificate (logged) instead of failing every
handshake.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from docgate.config import Settings

log = logging.getLogger(__name__)


class TlsConfigurationError(RuntimeError):
    """A TLS file cannot be read, or does not hold what it should."""


def server_options(settings: Settings) -> list[tuple[str, Any]]:
    """Message size limits, keepalive enforcement and connection age, as grpc channel args."""

    def ms(seconds: float) -> int:
        return int(seconds * 1000)

    return [
        ("grpc.max_receive_message_length", settings.max_receive_message_bytes),
        ("grpc.max_send_message_length", settings.max_send_message_bytes),
        # The server's own pings find peers that vanished without a FIN (and keep idle
        # connections alive through NATs and L4 balancers that drop silent flows).
        ("grpc.keepalive_time_ms", ms(settings.keepalive_time_seconds)),
        ("grpc.keepalive_timeout_ms", ms(settings.keepalive_timeout_seconds)),
        # Enforcement of the clients' pings: allowed on idle connections too, but no more
        # often than the minimum; after max_ping_strikes offences the client gets GOAWAY.
        ("grpc.keepalive_permit_without_calls", 1),
        (
            "grpc.http2.min_ping_interval_without_data_ms",
            ms(settings.keepalive_min_ping_interval_seconds),
        ),
        ("grpc.http2.max_ping_strikes", 2),
        # grpc spreads the age by ±10%, so connections opened together do not all reconnect
        # at once.
        ("grpc.max_connection_age_ms", ms(settings.max_connection_age_seconds)),
        ("grpc.max_connection_age_grace_ms", ms(settings.max_connection_age_grace_seconds)),
    ]


def _read(path: Path, what: str) -> bytes:
    try:
        data = path.read_bytes()
    except OSError as error:
        raise TlsConfigurationError(f"cannot read {what} {path}: {error.strerror}") from error
    if b"-----BEGIN " not in data:
        raise TlsConfigurationError(f"{what} {path} is not PEM")
    return data


def _check_pair(chain: bytes, key: bytes, cert_file: Path) -> None:
    """The key must be the certificate's: a rotation caught between writing the two files
    would otherwise fail every handshake until the second write."""
    try:
        public = x509.load_pem_x509_certificate(chain).public_key()
        private = serialization.load_pem_private_key(key, password=None)
    except ValueError as error:
        raise TlsConfigurationError(f"cannot parse {cert_file} or its key: {error}") from error
    if public != private.public_key():
        raise TlsConfigurationError(f"the private key is not the key of {cert_file}")


def _stamp(path: Path) -> tuple[int, int, int]:
    try:
        stat = os.stat(path)
    except OSError as error:
        raise TlsConfigurationError(f"cannot read {path}: {error.strerror}") from error
    return (stat.st_mtime_ns, stat.st_size, stat.st_ino)


@dataclass
class CertificateFiles:
    """The certificate, key and (for mTLS) client CA files, re-read when they change."""

    cert_file: Path
    key_file: Path
    client_ca_file: Path | None = None
    _stamps: tuple[tuple[int, int, int], ...] = field(default=(), repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def from_settings(cls, settings: Settings) -> CertificateFiles:
        assert settings.tls_cert_file is not None
        assert settings.tls_key_file is not None
        return cls(settings.tls_cert_file, settings.tls_key_file, settings.tls_client_ca_file)

    @property
    def paths(self) -> tuple[Path, ...]:
        return (self.cert_file, self.key_file) + (
            (self.client_ca_file,) if self.client_ca_file else ()
        )

    def load(self) -> grpc.ServerCertificateConfiguration:
        """Read the files now (raises TlsConfigurationError) and remember their stamps."""
        stamps = tuple(_stamp(path) for path in self.paths)
        chain = _read(self.cert_file, "certificate")
        key = _read(self.key_file, "private key")
        roots = _read(self.client_ca_file, "client CA") if self.client_ca_file else None
        _check_pair(chain, key, self.cert_file)
        config = grpc.ssl_server_certificate_configuration([(key, chain)], roots)
        self._stamps = stamps
        return config

    def fetch(self) -> grpc.ServerCertificateConfiguration | None:
        """grpc's certificate_configuration_fetcher: a new configuration when a file changed,
        None to keep the current one. Runs on a grpc thread at each handshake."""
        with self._lock:
            try:
                if tuple(_stamp(path) for path in self.paths) == self._stamps:
                    return None
                config = self.load()
            except TlsConfigurationError as error:
                log.warning("TLS files changed but cannot be loaded, kept the old: %s", error)
                return None
            log.info("TLS certificate reloaded from %s", self.cert_file)
            return config


def server_credentials(settings: Settings) -> grpc.ServerCredentials | None:
    """TLS credentials from the settings (mTLS with a client CA), or None for plaintext."""
    if not settings.tls:
        return None
    files = CertificateFiles.from_settings(settings)
    return grpc.dynamic_ssl_server_credentials(
        files.load(),
        files.fetch,  # type: ignore[arg-type]  # grpc documents None as "unchanged"
        require_client_authentication=files.client_ca_file is not None,
    )


def add_port(server: Any, address: str, credentials: grpc.ServerCredentials | None) -> int:
    """Bind ``address`` (as grpc spells it) with TLS when ``credentials`` are given."""
    if credentials is None:
        return int(server.add_insecure_port(address))
    return int(server.add_secure_port(address, credentials))
