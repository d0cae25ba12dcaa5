"""Prometheus metrics: the go-grpc-prometheus server family, and docgate's own.

Names and labels follow go-grpc-prometheus, so dashboards written for Go services work:
``grpc_server_started_total``, ``grpc_server_handled_total`` (with ``grpc_code`` spelled as Go
spells codes: ``OK``, ``NotFound``, ``PermissionDenied`` …), ``grpc_server_handling_seconds``
(histogram), ``grpc_server_msg_received_total`` / ``_sent_total``; each with ``grpc_type``
(``unary``, ``client_stream``, ``server_stream``, ``bidi_stream``), ``grpc_service`` and
``grpc_method``. docgate's own are prefixed ``docgate_`` (docs/operations.md lists them).

One `Metrics` per application, on a registry of its own (tests build many applications in one
process). Every metric is a plain Counter, Gauge or Histogram — no callback collectors — so
prometheus-client's multiprocess mode works unchanged: with ``PROMETHEUS_MULTIPROC_DIR`` set
in every worker, values go to that directory and `registry_to_scrape` returns a registry
that aggregates all workers (gauges say how: pool figures are summed over live processes,
health is the minimum). Without it, each process serves its own registry (one port each).

The per-call path touches only pre-bound children (`MethodMetrics`, built once per method),
never ``labels(...)`` lookups, and does not update them itself: a call notes its updates
(`Notes`) and they are applied a batch at a time with the access log's records
(docgate.edge.batches: 32 calls, or 50 ms after the first, and at shutdown). Every scrape of
this process's registry applies what is noted first, so a scrape counts every call that ended
before it; in multiprocess mode the other workers' last 50 ms may be missing from a scrape (the
next one has them).
"""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from typing import Any, Final

import grpc
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.multiprocess import MultiProcessCollector

from docgate.db.uow import PoolState
from docgate.edge.batches import Batcher

MULTIPROC_ENV: Final = "PROMETHEUS_MULTIPROC_DIR"
# go-grpc-prometheus's default buckets (prometheus.DefBuckets), so histogram_quantile over a
# mixed fleet agrees.
HANDLING_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
POOL_WAIT_BUCKETS: Final = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0)
_METHOD_LABELS: Final = ("grpc_type", "grpc_service", "grpc_method")


def go_code(code: grpc.StatusCode) -> str:
    """The code as Go's codes.Code.String() writes it (``NOT_FOUND`` → ``NotFound``)."""
    if code is grpc.StatusCode.CANCELLED:
        return "Canceled"  # Go's spelling
    if code is grpc.StatusCode.OK:
        return "OK"
    return "".join(part.capitalize() for part in code.name.split("_"))


_GO_CODES: Final = {code: go_code(code) for code in grpc.StatusCode}


def grpc_type(request_streaming: bool, response_streaming: bool) -> str:
    if request_streaming:
        return "bidi_stream" if response_streaming else "client_stream"
    return "server_stream" if response_streaming else "unary"


def split_method(path: str) -> tuple[str, str]:
    """``/pkg.Service/Method`` → (``pkg.Service``, ``Method``)."""
    service, _, method = path.lstrip("/").partition("/")
    return service, method


# The cause an UNAUTHENTICATED was logged with (docgate.tokens, docgate.edge.auth), as a
# bounded label: causes quote user ids and claim names, labels must not.
_AUTH_REASONS: Final = (
    ("token expired", "expired"),
    ("token not yet valid", "not_yet_valid"),
    ("bad signature", "bad_signature"),
    ("wrong audience", "wrong_audience"),
    ("wrong issuer", "wrong_issuer"),
    ("token algorithm", "wrong_algorithm"),
    ("token lacks", "missing_claim"),
    ("malformed token", "malformed_token"),
    ("no authorization", "missing_token"),
    ("user ", "unknown_or_inactive_user"),
    ("more than one authorization", "malformed_header"),
    ("authorization is not", "malformed_header"),
    ("empty bearer", "malformed_header"),
    ("bearer token longer", "malformed_header"),
)


def auth_reason(cause: str) -> str:
    for prefix, reason in _AUTH_REASONS:
        if cause.startswith(prefix):
            return reason
    return "other"


def _package_version() -> str:
    try:
        return version("docgate")
    except PackageNotFoundError:  # pragma: no cover - running from a bare checkout
        return "unknown"


class Notes:
    """Counter and histogram updates noted during calls, applied by `write` (which runs with
    each batch). Children are the pre-bound ones of `Metrics`."""

    def __init__(self, batcher: Batcher) -> None:
        self._batcher = batcher
        self._counts: dict[Any, int] = {}
        self._observed: list[tuple[Any, float]] = []
        batcher.add_writer(self.write)

    def count(self, child: Any) -> None:
        counts = self._counts
        counts[child] = counts.get(child, 0) + 1
        self._batcher.soon()

    def observe(self, child: Any, value: float) -> None:
        observed = self._observed
        observed.append((child, value))
        self._batcher.noted(len(observed))

    def write(self) -> None:
        counts, self._counts = self._counts, {}
        observed, self._observed = self._observed, []
        for child, n in counts.items():
            child.inc(n)
        for child, value in observed:
            child.observe(value)


@dataclass(eq=False)
class MethodMetrics:
    """The children of one method, bound once; `handled` binds per code on first use."""

    labels: tuple[str, str, str]
    started: Any
    handling: Any
    received: Any
    sent: Any
    _handled_family: Any
    _permission_denied: Any
    _notes: Notes
    _handled: dict[grpc.StatusCode, Any] = field(default_factory=dict)

    def start(self) -> None:
        self._notes.count(self.started)

    def receive(self) -> None:
        self._notes.count(self.received)

    def send(self) -> None:
        self._notes.count(self.sent)

    def finished(self, code: grpc.StatusCode, seconds: float) -> None:
        child = self._handled.get(code)
        if child is None:
            child = self._handled[code] = self._handled_family.labels(*self.labels, _GO_CODES[code])
        notes = self._notes
        notes.count(child)
        if code is grpc.StatusCode.PERMISSION_DENIED:
            notes.count(self._permission_denied)
        notes.observe(self.handling, seconds)


class _WriteNotesFirst:
    """Registered first on a registry: a scrape applies what calls noted before it reads."""

    def __init__(self, batcher: Batcher) -> None:
        self._batcher = batcher

    def describe(self) -> list[Any]:
        return []

    def collect(self) -> list[Any]:
        self._batcher.flush_from_thread()
        return []


class Metrics:
    """Every metric docgate exports, registered on ``registry`` (a fresh one by default)."""

    def __init__(
        self, registry: CollectorRegistry | None = None, batcher: Batcher | None = None
    ) -> None:
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        self.batcher = batcher if batcher is not None else Batcher()
        self._notes = Notes(self.batcher)
        r = self.registry
        r.register(_WriteNotesFirst(self.batcher))
        self.started = Counter(
            "grpc_server_started_total", "RPCs started on the server.", _METHOD_LABELS, registry=r
        )
        self.handled = Counter(
            "grpc_server_handled_total",
            "RPCs completed on the server, regardless of success or failure.",
            (*_METHOD_LABELS, "grpc_code"),
            registry=r,
        )
        self.handling = Histogram(
            "grpc_server_handling_seconds",
            "Response latency (seconds) of gRPC that had been application-level handled by the "
            "server.",
            _METHOD_LABELS,
            buckets=HANDLING_BUCKETS,
            registry=r,
        )
        self.received = Counter(
            "grpc_server_msg_received_total",
            "RPC stream messages received on the server.",
            _METHOD_LABELS,
            registry=r,
        )
        self.sent = Counter(
            "grpc_server_msg_sent_total",
            "gRPC stream messages sent on the server.",
            _METHOD_LABELS,
            registry=r,
        )
        self.permission_denied = Counter(
            "docgate_permission_denied_total",
            "Calls answered PERMISSION_DENIED, by method.",
            ("grpc_service", "grpc_method"),
            registry=r,
        )
        self.auth_failures = Counter(
            "docgate_auth_failures_total",
            "Calls answered UNAUTHENTICATED, by the cause the server logged.",
            ("reason",),
            registry=r,
        )
        self.pool_size = Gauge(
            "docgate_db_pool_size",
            "Connections the pool keeps (DOCGATE_POOL_SIZE).",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.pool_max_overflow = Gauge(
            "docgate_db_pool_max_overflow",
            "Connections the pool may open beyond its size (DOCGATE_MAX_OVERFLOW).",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.pool_checked_out = Gauge(
            "docgate_db_pool_checked_out",
            "Connections in use by calls right now.",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.pool_overflow = Gauge(
            "docgate_db_pool_overflow",
            "Connections open beyond the pool size right now.",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.pool_wait = Histogram(
            "docgate_db_pool_wait_seconds",
            "Time a call waited for a pooled connection (a new connection's connect included).",
            buckets=POOL_WAIT_BUCKETS,
            registry=r,
        )
        self.pool_timeouts = Counter(
            "docgate_db_pool_timeouts_total",
            "Calls that found no connection within DOCGATE_POOL_TIMEOUT (answered UNAVAILABLE).",
            registry=r,
        )
        self.health = Gauge(
            "docgate_health_status",
            "1 while the health service reports SERVING for the service, else 0.",
            ("service",),
            registry=r,
            multiprocess_mode="livemin",
        )
        self.build_info = Gauge(
            "docgate_build_info",
            "Always 1; the labels say which build is running.",
            ("version", "python_version", "grpc_version"),
            registry=r,
            multiprocess_mode="max",
        )
        self.build_info.labels(_package_version(), platform.python_version(), grpc.__version__).set(
            1
        )
        self._auth_reasons: dict[str, Any] = {}
        # Set by the first call's connection (docgate.db.uow); each batch reads the pool's
        # state through it, once, for the checked-out and overflow gauges.
        self._pool_state: PoolState | None = None
        self.batcher.add_writer(self._write_pool_state)

    def for_method(self, path: str, kind: str) -> MethodMetrics:
        service, method = split_method(path)
        labels = (kind, service, method)
        return MethodMetrics(
            labels=labels,
            started=self.started.labels(*labels),
            handling=self.handling.labels(*labels),
            received=self.received.labels(*labels),
            sent=self.sent.labels(*labels),
            _handled_family=self.handled,
            _permission_denied=self.permission_denied.labels(service, method),
            _notes=self._notes,
        )

    def auth_failure(self, reason: str) -> None:
        child = self._auth_reasons.get(reason)
        if child is None:
            child = self._auth_reasons[reason] = self.auth_failures.labels(reason)
        child.inc()

    def health_changed(self, service: str, serving: bool) -> None:
        self.health.labels(service).set(1 if serving else 0)

    # The pool (docgate.db.uow.PoolObserver).
    def pool_configured(self, size: int, max_overflow: int) -> None:
        self.pool_size.set(size)
        self.pool_max_overflow.set(max_overflow)

    def pool_acquired(self, waited: float, state: PoolState) -> None:
        self._pool_state = state
        self._notes.observe(self.pool_wait, waited)

    def pool_released(self, state: PoolState) -> None:
        self._pool_state = state
        self.batcher.soon()  # the gauges then show the connection back in the pool

    def _write_pool_state(self) -> None:
        if self._pool_state is not None:
            checked_out, overflow = self._pool_state()
            self.pool_checked_out.set(checked_out)
            self.pool_overflow.set(max(0, overflow))

    def pool_timed_out(self, waited: float) -> None:
        self.pool_wait.observe(waited)
        self.pool_timeouts.inc()


def registry_to_scrape(metrics: Metrics) -> CollectorRegistry:
    """What /metrics serves: this process's registry, or (multiprocess mode) every worker's."""
    if not os.environ.get(MULTIPROC_ENV):
        return metrics.registry
    registry = CollectorRegistry()
    registry.register(_WriteNotesFirst(metrics.batcher))
    MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return registry


@dataclass
class MetricsEndpoint:
    """The /metrics HTTP server (prometheus-client's, on a thread of its own)."""

    server: Any
    thread: Any

    @property
    def port(self) -> int:
        return int(self.server.server_port)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def serve_metrics(metrics: Metrics, listen: str) -> MetricsEndpoint:
    """Serve ``/metrics`` on ``listen`` (HOST:PORT, ``:PORT`` or ``[::]:PORT`` for every
    interface, port 0 for a free one). OSError when it cannot bind."""
    host, sep, port = listen.rpartition(":")
    if not sep or not port.isdigit():
        raise OSError(f"expected HOST:PORT, got {listen!r}")
    host = host.strip("[]") or "0.0.0.0"  # noqa: S104 - ":PORT" asks for every interface
    server, thread = start_http_server(int(port), host, registry=registry_to_scrape(metrics))
    return MetricsEndpoint(server, thread)
