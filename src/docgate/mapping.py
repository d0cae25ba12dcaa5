"""Rows to protobuf messages: small pure functions, the only place messages are built from
database values."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from google.protobuf.timestamp_pb2 import Timestamp

from docgate.v1 import users_pb2


def timestamp(value: datetime) -> Timestamp:
    ts = Timestamp()
    ts.FromDatetime(value)
    return ts


def user(
    *,
    id: uuid.UUID,
    username: str,
    email: str,
    is_active: bool,
    roles: Sequence[str],
    create_time: datetime,
    update_time: datetime,
) -> users_pb2.User:
    return users_pb2.User(
        id=str(id),
        username=username,
        email=email,
        is_active=is_active,
        roles=sorted(roles),
        create_time=timestamp(create_time),
        update_time=timestamp(update_time),
    )
