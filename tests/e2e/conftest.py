"""Fixtures shared by the end-to-end suites."""

from __future__ import annotations

import pytest

from docgate.bootstrap import App
from tests.support import TestUser, make_user


@pytest.fixture
async def admin(app: App) -> TestUser:
    """A fresh admin for one test."""
    return await make_user(app, "admin")
