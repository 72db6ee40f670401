"""The conformance corpus (``$FLOWLANE_CONFORMANCE``, else ``../shared/conformance``)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CORPUS = Path(os.environ.get("FLOWLANE_CONFORMANCE", ROOT.parent / "shared" / "conformance"))


@pytest.fixture
def corpus() -> Path:
    if not (CORPUS / "MANIFEST.md").is_file():
        pytest.skip(f"no conformance corpus at {CORPUS} (set FLOWLANE_CONFORMANCE)")
    return CORPUS
