from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.serving import EXAMPLES, ROOT, RunningServer, serve


@pytest.fixture(scope="session")
def examples_repository() -> Path:
    """The bundled examples, with iris/1/model.joblib written by examples/make_models.py."""
    subprocess.run(
        [sys.executable, str(ROOT / "examples" / "make_models.py"), str(EXAMPLES)],
        check=True,
        capture_output=True,
    )
    return EXAMPLES


@pytest.fixture(scope="session")
def server(
    examples_repository: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    """One server on the examples for the whole session (tests must not change its state)."""
    with serve(examples_repository, tmp_dir=tmp_path_factory.mktemp("server")) as running:
        yield running
