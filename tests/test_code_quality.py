"""What reviewers check, run by the one test command: ruff's lint and format checks, and mypy.

Each tool runs with the repository's settings (pyproject.toml) from the repository root, as
`python -m <tool>` of the interpreter running the tests, so `pip install -e '.[test]'` is all
it needs. A failure prints the tool's own report.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

# Trains models or starts processes: the file runs among the first (tests/conftest.py orders them).
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]

CHECKS = {
    "ruff check": ["ruff", "check", "."],
    "ruff format --check": ["ruff", "format", "--check", "."],
    "mypy": ["mypy"],  # The packages to check and how strictly are in [tool.mypy].
}


@pytest.mark.parametrize("name", list(CHECKS))
def test_code_passes(name: str) -> None:
    command = [sys.executable, "-m", *CHECKS[name]]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
    report = (result.stdout + result.stderr).strip()
    if result.returncode != 0:
        pytest.fail(f"`{name}` found problems; fix them and run it again:\n{report}", pytrace=False)
