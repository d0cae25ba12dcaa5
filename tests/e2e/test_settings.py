"""Settings keep their promises: README's table is exactly config.Settings (names and
defaults), and every setting in it is exercised by a named test."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import grpc
import jwt
from docgate.v1 import documents_pb2, documents_pb2_grpc, users_pb2

from docgate.bootstrap import build_app
from docgate.config import ENV_PREFIX, Settings
from tests.conftest import settings_for
from tests.e2e.test_cli import _env, _run
from tests.e2e.test_faults import _serving, _users_locked
from tests.support import TEST_SECRET, blocked_backends, expect_error, make_user, unique

ROOT = Path(__file__).resolve().parents[2]
CLI, FAULTS = "tests/e2e/test_cli.py::", "tests/e2e/test_faults.py::"
TOKENS = "tests/unit/test_tokens.py::"
HERE = "tests/e2e/test_settings.py::"
TLS, LIMITS = "tests/e2e/test_tls.py::", "tests/e2e/test_transport_limits.py::"
# Each README setting -> the test that shows it does what the table says.
REPLICAS = "tests/e2e/test_replicas.py::"
COVERED_BY = {
    "DATABASE_URL": CLI + "test_serve_answers_then_stops_cleanly_on_sigterm",
    "DATA_DIR": "tests/e2e/test_devmode.py::test_first_start_seeds_and_data_survives_restart",
    "LISTEN": "tests/e2e/test_listen.py::test_port_zero_binds_a_free_port_and_logs_it",
    "GRACE_SECONDS": CLI + "test_serve_answers_then_stops_cleanly_on_sigterm",
    "MAX_CONCURRENT_RPCS": HERE + "test_max_concurrent_rpcs",
    "HEALTH_INTERVAL_SECONDS": "tests/e2e/test_schema_health.py::test_health_follows_the_schema",
    "POOL_SIZE": FAULTS + "test_exhausted_pool_answers_unavailable_then_recovers",
    "MAX_OVERFLOW": FAULTS + "test_exhausted_pool_answers_unavailable_then_recovers",
    "POOL_TIMEOUT": FAULTS + "test_exhausted_pool_answers_unavailable_then_recovers",
    "POOL_RECYCLE": HERE + "test_pool_recycle_reaches_the_pool",
    "POOL_PRE_PING": FAULTS + "test_database_restart_costs_at_most_one_failed_call",
    "STATEMENT_TIMEOUT_MS": FAULTS + "test_statement_timeout_is_deadline_exceeded_not_unavailable",
    "JWT_ALGORITHM": TOKENS + "test_rs256_and_key_confusion",
    "JWT_SECRET": TOKENS + "test_hs256_needs_a_real_secret",
    "JWT_PUBLIC_KEY_FILE": TOKENS + "test_rs256_needs_a_key_file",
    "JWT_PRIVATE_KEY_FILE": TOKENS + "test_rs256_and_key_confusion",
    "JWT_AUDIENCE": TOKENS + "test_audience_and_issuer_are_checked_when_configured",
    "JWT_ISSUER": TOKENS + "test_audience_and_issuer_are_checked_when_configured",
    "JWT_LEEWAY_SECONDS": TOKENS + "test_a_remembered_token_still_expires",
    "TOKEN_TTL_SECONDS": HERE + "test_token_ttl_seconds",
    "MAX_CONTENT_BYTES": HERE + "test_max_content_bytes",
    "MAX_RESPONSE_BYTES": "tests/e2e/test_response_budget.py::"
    "test_batch_get_over_the_budget_is_resource_exhausted",
    "PAGE_TOKEN_SECRET": "tests/unit/test_pagination.py::test_page_token_secret_decides_the_key",
    "PRINCIPAL_CACHE": "tests/e2e/test_principal_cache.py::test_cache_off_reads_every_call",
    "ALEMBIC_INI": "tests/e2e/test_cli_admin.py::test_usage_errors_exit_2_without_a_traceback",
    "TLS_CERT_FILE": TLS + "test_tls_serves_grpc_and_grpcurl_and_refuses_plaintext",
    "TLS_KEY_FILE": TLS + "test_tls_serves_grpc_and_grpcurl_and_refuses_plaintext",
    "TLS_CLIENT_CA_FILE": TLS + "test_mtls_requires_a_client_certificate_from_the_ca",
    "MAX_RECEIVE_MESSAGE_BYTES": LIMITS
    + "test_a_request_over_max_receive_message_bytes_is_resource_exhausted",
    "MAX_SEND_MESSAGE_BYTES": LIMITS
    + "test_an_answer_over_max_send_message_bytes_is_resource_exhausted",
    "KEEPALIVE_TIME_SECONDS": LIMITS
    + "test_keepalive_and_connection_age_settings_become_grpc_arguments",
    "KEEPALIVE_TIMEOUT_SECONDS": LIMITS
    + "test_keepalive_and_connection_age_settings_become_grpc_arguments",
    "KEEPALIVE_MIN_PING_INTERVAL_SECONDS": LIMITS
    + "test_keepalive_min_ping_interval_seconds_is_enforced",
    "MAX_CONNECTION_AGE_SECONDS": LIMITS
    + "test_max_connection_age_sends_goaway_and_clients_reconnect",
    "MAX_CONNECTION_AGE_GRACE_SECONDS": LIMITS
    + "test_max_connection_age_sends_goaway_and_clients_reconnect",
    "METRICS_LISTEN": "tests/e2e/test_metrics.py::test_counters_after_known_calls",
    "LOG_FORMAT": "tests/e2e/test_access_log.py::"
    "test_log_format_json_is_one_object_per_line_with_the_access_record",
    "LOG_LEVEL": "tests/e2e/test_access_log.py::test_log_level_warning_keeps_info_out",
    "ACCESS_LOG": "tests/e2e/test_access_log.py::test_access_log_false_writes_none",
    "DATABASE_READ_URLS": REPLICAS + "test_reads_land_on_the_replica_and_callers_on_the_primary",
    "REPLICA_MAX_LAG_SECONDS": REPLICAS + "test_a_replica_too_far_behind_is_skipped",
    "WORKERS": "tests/e2e/test_workers.py::"
    "test_two_workers_both_serve_and_a_killed_one_is_replaced",
    "WORKER_INDEX": "tests/e2e/test_workers.py::"
    "test_two_workers_both_serve_and_a_killed_one_is_replaced",
    "DATABASE_POOLER": "tests/e2e/test_pgbouncer.py::"
    "test_docgate_through_pgbouncer_transaction_mode",
}  # fmt: skip


def _readme_table() -> dict[str, str]:
    text = (ROOT / "README.md").read_text()
    return dict(re.findall(r"^\| `DOCGATE_(\w+)` \| ([^|]+) \|", text, re.MULTILINE))


def test_readme_lists_exactly_the_settings_with_their_defaults() -> None:
    table = _readme_table()
    assert set(table) == {name.upper() for name in Settings.model_fields} | {"ALEMBIC_INI"}
    for name, field in Settings.model_fields.items():
        shown = table[name.upper()].strip().strip("`")
        if isinstance(field.default, int | float) and not isinstance(field.default, bool):
            assert float(shown) == field.default, name
        else:
            expected = "unset" if field.default is None else str(field.default)
            assert shown.lower() == expected.lower(), name


def test_every_setting_has_its_test() -> None:
    assert set(COVERED_BY) == set(_readme_table())
    for setting, node in COVERED_BY.items():
        path, function = node.split("::")
        source = (ROOT / path).read_text()
        assert f"def {function}(" in source, node
        body = source.split(f"def {function}(", 1)[1].split("\ndef ", 1)[0]
        helpers = source if setting in ("JWT_ALGORITHM", "DATA_DIR", "LISTEN") else body
        mentioned = (setting.lower(), f"{ENV_PREFIX}{setting}", setting)
        assert any(word in helpers for word in mentioned), f"{node} never sets {setting}"


async def test_max_concurrent_rpcs(database_url: str) -> None:
    app = build_app(settings_for(database_url, max_concurrent_rpcs=1), database_url)
    user = await make_user(app, "free_user")
    request = users_pb2.GetCurrentUserRequest()
    async with _serving(app) as (_, stub):
        async with _users_locked(database_url):
            holder = asyncio.ensure_future(
                stub.GetCurrentUser(request, metadata=user.metadata, timeout=30)
            )
            await blocked_backends(database_url)
            await expect_error(
                stub.GetCurrentUser(request, metadata=user.metadata, timeout=10),
                grpc.StatusCode.RESOURCE_EXHAUSTED,
            )
        assert (await holder).username == user.username


async def test_pool_recycle_reaches_the_pool(database_url: str) -> None:
    app = build_app(settings_for(database_url, pool_recycle=123), database_url)
    try:
        assert app.engine.pool._recycle == 123  # type: ignore[attr-defined]
    finally:
        await app.close()


async def test_token_ttl_seconds(database_url: str) -> None:
    env = _env(database_url, DOCGATE_TOKEN_TTL_SECONDS="120")
    name = unique()
    await _run(env, "users", "create", name, "--email", f"{name}@x.io")
    code, out, err = await _run(env, "token", name)
    assert code == 0, err
    claims = jwt.decode(out.strip(), TEST_SECRET, algorithms=["HS256"])
    assert claims["exp"] - claims["iat"] == 120


async def test_max_content_bytes(database_url: str) -> None:
    app = build_app(settings_for(database_url, max_content_bytes=10), database_url)
    user = await make_user(app, "free_user")
    async with (
        _serving(app) as (running, _),
        grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel,
    ):
        stub = documents_pb2_grpc.DocumentServiceStub(channel)

        def create(content: str):  # type: ignore[no-untyped-def]
            document = documents_pb2.Document(title="t", content=content)
            request = documents_pb2.CreateDocumentRequest(document=document)
            return stub.CreateDocument(request, metadata=user.metadata, timeout=10)

        assert (await create("é" * 5)).content == "é" * 5  # 10 bytes in UTF-8
        await expect_error(create("x" * 11), grpc.StatusCode.INVALID_ARGUMENT, "CONTENT_TOO_LARGE")
