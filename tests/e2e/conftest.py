"""End-to-end tests of the recipes: the HTTP API of a live server on loopback
(:mod:`tests.live`) with a real SMTP server (aiosmtpd, :class:`tests.smtp_sink.SmtpSink`).

``live_server("course")`` starts a server over a seeded copy of the recipe (users of every
role: ``live.users``, API tokens: ``live.api(role)``); ``live.advance(td)`` moves the clock,
``live.work()`` runs what is due with a worker that sends through SMTP; ``smtp`` is the SMTP
server (``smtp.messages`` are what it received).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from tests.live import Live, live_servers
from tests.smtp_sink import SmtpSink


@pytest.fixture
def smtp() -> Iterator[SmtpSink]:
    with SmtpSink() as sink:
        yield sink


@pytest.fixture(scope="session")
def _e2e_seed_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("e2e-seeds")


@pytest.fixture
def live_server(
    tmp_path: Path, _e2e_seed_cache: Path, smtp: SmtpSink
) -> Iterator[Callable[..., Live]]:
    """``live_server("course")`` -> a :class:`Live` server whose worker sends to ``smtp``."""
    with live_servers(tmp_path, _e2e_seed_cache, smtp=smtp) as start:
        yield start
