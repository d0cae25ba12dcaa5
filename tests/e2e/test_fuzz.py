"""Fuzz every RPC of every served service (issue 11, "the class, not the instance").

For each method (docgate's registry, health, reflection) and each kind of caller (anonymous,
free_user, paid_user, admin), hypothesis draws requests from the method's input descriptor
(tests.fuzzing: hostile field values mixed with the real ids, names, etags and page tokens of
a seeded world; bytes that are no valid encoding) and sends them through a real server of
this module's own, on a database of its own. Every answer must be a status docgate means:
never INTERNAL or UNKNOWN; after every call each pooled connection is back; after each method
and caller the server still reports SERVING.

Reproducible: hypothesis runs derandomized (the same examples on every run; no example
database), EXAMPLES per method and caller kind (25; DOCGATE_FUZZ_EXAMPLES=500 for a deeper
run). Each method gets a world of its own (see the `group` fixture): what one method's admin
calls delete cannot starve the calls of the methods after it.

Findings still open are listed in KNOWN, each with the evidence that identifies it (code,
methods, and a piece of the call's details or of what the server logged for it) and a minimal
reproduction. While an entry is listed the fuzz tolerates a failure that matches it, and
`test_known_finding_is_still_open` expects its reproduction to fail (strict xfail). When the
fix lands, that test XPASSes, which fails the run: delete the entry, and the fuzz holds those
methods to the rule like every other.
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import grpc
import grpc.aio
import pytest
from docgate.v1 import documents_pb2
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from docgate.bootstrap import build_app
from docgate.server import start_server
from tests.conftest import settings_for
from tests.e2e.fuzz_harness import DEADLINE, Outcome, Server, ServerLog, Target, targets
from tests.e2e.fuzz_world import seed
from tests.fuzzing import MIB, Payload, distinct_words, payloads
from tests.support import TestUser, make_user, pool_drained, served_bindings

EXAMPLES = int(os.environ.get("DOCGATE_FUZZ_EXAMPLES", "25"))
CALLERS = ("anonymous", "free_user", "paid_user", "admin")
NEVER = (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN)
TARGETS = targets()
DOCGATE = frozenset(path for b in served_bindings() for path in b.method_paths())
HEALTH = frozenset(t.path for t in TARGETS if t.service == "grpc.health.v1.Health")
REFLECTION = frozenset(t.path for t in TARGETS if "ServerReflection" in t.service)


# --- findings still open --------------------------------------------------------------------


@dataclass(frozen=True)
class Finding:
    """An open finding of issue 11: how the fuzz recognises it, and its reproduction."""

    name: str
    code: grpc.StatusCode
    evidence: str  # in the call's details or in what the server logged for it
    methods: frozenset[str]
    repro_method: str
    repro_caller: str  # "anonymous", or the one role the caller has
    repro_request: Callable[[], bytes]

    def matches(self, target: Target, outcome: Outcome) -> bool:
        return (
            outcome.code == self.code
            and target.path in self.methods
            and self.evidence in f"{outcome.details}\n{outcome.server_log}"
        )


def _create_document(content: str) -> bytes:
    document = documents_pb2.Document(title="t", content=content)
    return documents_pb2.CreateDocumentRequest(document=document).SerializeToString()


# Issue 11's findings the fuzz found, all fixed since: each reproduction stays a regression
# test (test_former_findings_stay_fixed).
FIXED: tuple[Finding, ...] = (
    # Undecodable request bytes: grpc's own "Unexpected <class DecodeError>: ..." with the
    # exception text, before authentication.
    Finding(
        "finding-7-malformed-bytes-unknown-docgate-services",
        grpc.StatusCode.UNKNOWN,
        "DecodeError",
        DOCGATE,
        "/docgate.v1.UserService/GetCurrentUser",
        "anonymous",
        lambda: b"\xff",
    ),
    Finding(
        "finding-7-malformed-bytes-unknown-health",
        grpc.StatusCode.UNKNOWN,
        "DecodeError",
        HEALTH,
        "/grpc.health.v1.Health/Check",
        "anonymous",
        lambda: b"\xff",
    ),
    # On a stream the request is decoded inside the handler: docgate's error mapping logs the
    # DecodeError as a bug and answers INTERNAL.
    Finding(
        "finding-7-malformed-bytes-internal-reflection-stream",
        grpc.StatusCode.INTERNAL,
        "DecodeError",
        REFLECTION,
        "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
        "anonymous",
        lambda: b"\x00",
    ),
    Finding(
        "finding-14-health-list-not-implemented-internal",
        grpc.StatusCode.INTERNAL,
        "NotImplementedError",
        frozenset({"/grpc.health.v1.Health/List"}),
        "/grpc.health.v1.Health/List",
        "anonymous",
        lambda: b"",
    ),
    Finding(
        "finding-2-tsvector-over-1-mib-internal",
        grpc.StatusCode.INTERNAL,
        "string is too long for tsvector",
        frozenset(
            {
                "/docgate.v1.DocumentService/CreateDocument",
                "/docgate.v1.DocumentService/UpdateDocument",
                "/docgate.v1.ProjectService/CreateDocumentFromTemplate",
            }
        ),
        "/docgate.v1.DocumentService/CreateDocument",
        "free_user",
        lambda: _create_document(distinct_words(MIB)),
    ),
)


# Findings still open, tolerated by the fuzz only when the evidence matches: none.
KNOWN: tuple[Finding, ...] = ()


def _known(target: Target, outcome: Outcome) -> Finding | None:
    return next((f for f in KNOWN if f.matches(target, outcome)), None)


# --- fixtures -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
async def fuzz(module_database_url: str) -> AsyncIterator[Server]:
    """A server and a database of the module's own, so that whatever the fuzz breaks (and what
    admins' fuzzed calls do) stays there."""
    app = build_app(settings_for(module_database_url), module_database_url)
    running = await start_server(app, "127.0.0.1:0")
    log = ServerLog()
    logging.getLogger().addHandler(log)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            yield Server(app, running, channel, log)
    finally:
        logging.getLogger().removeHandler(log)
        await running.stop(None)


@dataclass(frozen=True)
class Group:
    """One method and one kind of caller: who calls, and what they send."""

    who: TestUser | None
    requests: st.SearchStrategy[Payload]

    def __repr__(self) -> str:  # not the strategy's: computing that is slow and unreadable
        return f"<calling as {self.who.username if self.who else 'anonymous'}>"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:  # as hypothesis prints it
        printer.text(repr(self))


WORLD_CALLERS = {"free_user": "free", "paid_user": "paid", "admin": "admin"}


@pytest.fixture
async def group(fuzz: Server, target: Target, caller: str) -> AsyncIterator[Group]:
    """A world for each method, seeded on its first group (so that no method's admin calls
    use up another method's world) and again whenever an admin's fuzzed calls have deleted,
    deactivated or demoted one of its users; they are the callers, so that callers own
    documents and projects. Afterwards the server must still report SERVING (its health
    watcher ran meanwhile)."""
    world = fuzz.worlds.get(target.path)
    if world is None or not await world.intact(fuzz.app):
        first = next(iter(fuzz.worlds.values()), None)
        tokens = first.values["page_token"] if first else ()
        world = fuzz.worlds[target.path] = await seed(fuzz.app, fuzz.channel, tokens)
    who = world.users[WORLD_CALLERS[caller]] if caller in WORLD_CALLERS else None
    yield Group(who, payloads(target.method.input_type, world.vocabulary()))
    assert await fuzz.serving(), f"not SERVING after fuzzing {target} as {caller}"


# --- the tests ------------------------------------------------------------------------------


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize("target", TARGETS, ids=str)
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    # The group fixture is per method and caller on purpose, not per example.
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
async def test_fuzz(
    fuzz: Server, group: Group, target: Target, caller: str, data: st.DataObject
) -> None:
    payload = data.draw(group.requests, label="request")
    outcome = await fuzz.send(target, payload.data, group.who)
    if outcome.code in NEVER:
        assert _known(target, outcome) is not None, (
            f"{target} as {caller} answered {outcome}\nrequest: {payload!r}"
        )
    assert await pool_drained(fuzz.app), f"a connection leaked: {target} as {caller}: {payload!r}"


async def test_every_served_service_is_fuzzed(fuzz: Server) -> None:
    stub = reflection_pb2_grpc.ServerReflectionStub(fuzz.channel)
    request = reflection_pb2.ServerReflectionRequest(list_services="")
    (reply,) = [r async for r in stub.ServerReflectionInfo(iter([request]), timeout=DEADLINE)]
    served = {service.name for service in reply.list_services_response.service}
    assert served == {target.service for target in TARGETS}


@pytest.mark.parametrize("finding", FIXED, ids=[f.name for f in FIXED])
async def test_former_findings_stay_fixed(fuzz: Server, finding: Finding) -> None:
    """Each reproduction the fuzz once failed on answers as the rule wants."""
    (target,) = [t for t in TARGETS if t.path == finding.repro_method]
    anonymous = finding.repro_caller == "anonymous"
    who = None if anonymous else await make_user(fuzz.app, finding.repro_caller)
    outcome = await fuzz.send(target, finding.repro_request(), who)
    assert outcome.code not in NEVER, str(outcome)
