"""The conformance corpus: ``tests/conformance/corpus`` (BPMN files of other projects with
their licences, ``LICENSES.md``, and the expected behaviour, ``MANIFEST.md``), or the folder
``$FLOWLANE_CONFORMANCE`` names."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CORPUS = Path(os.environ.get("FLOWLANE_CONFORMANCE", ROOT / "tests" / "conformance" / "corpus"))


@pytest.fixture
def corpus() -> Path:
    if not (CORPUS / "MANIFEST.md").is_file():
        pytest.fail(f"no conformance corpus at {CORPUS} (MANIFEST.md missing)")
    return CORPUS
