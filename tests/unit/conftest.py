"""The unit tier needs no service and writes nothing into the stack's home: its
settings point at a temporary folder for each test."""

from __future__ import annotations

import pytest

from stack.common import settings


@pytest.fixture(autouse=True)
def stack_home(tmp_path, monkeypatch):
    monkeypatch.setattr(settings, "home", tmp_path / "stack")
    return settings.home
