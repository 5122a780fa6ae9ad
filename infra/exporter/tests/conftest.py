"""Shared by the exporter tests: one fresh export of the tiny bundle (with goldens) per session."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
EXPORT = ROOT / "infra" / "exporter" / "export.py"
sys.path.insert(0, str(EXPORT.parent))


@pytest.fixture(scope="session")
def fresh(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("export") / "tiny-clip"
    subprocess.run([sys.executable, str(EXPORT), "--random-init", "tiny", "--seed", "0", "--out", str(out), "--golden"], check=True)
    return out
