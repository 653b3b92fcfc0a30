"""MLServer 1.7.1 in a virtualenv of its own, benchmarks/compare/.mlserver-venv (git-ignored)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
VENV = HERE / ".mlserver-venv"
#: uvloop 0.21.0: without it MLServer 1.7.1's parallel workers crash at start
REQUIREMENTS = {"mlserver": "1.7.1", "mlserver-sklearn": "1.7.1", "uvloop": "0.21.0"}
#: versions reported with the results
REPORTED = ("mlserver", "mlserver-sklearn", "scikit-learn", "numpy", "uvicorn", "grpcio", "uvloop")

_VERSIONS = """
import importlib.metadata as m, json, sys
found = {}
for name in sys.argv[1:]:
    try:
        found[name] = m.version(name)
    except m.PackageNotFoundError:
        found[name] = None
print(json.dumps(found))
"""


def python() -> Path:
    return VENV / "bin" / "python"


def mlserver() -> Path:
    return VENV / "bin" / "mlserver"


def versions(interpreter: Path | str, names: tuple[str, ...] = REPORTED) -> dict[str, str | None]:
    out = subprocess.run(
        [str(interpreter), "-c", _VERSIONS, *names], check=True, capture_output=True, text=True
    ).stdout
    found: dict[str, str | None] = json.loads(out)
    return found


def ensure() -> Path:
    """Create the virtualenv and install MLServer unless it is there already; its python."""
    if python().exists():
        wanted = tuple(REQUIREMENTS)
        if versions(python(), wanted) == REQUIREMENTS:
            return python()
    else:
        print(f"creating {VENV}", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    pins = [f"{name}=={version}" for name, version in REQUIREMENTS.items()]
    print(f"installing {' '.join(pins)} into {VENV}", file=sys.stderr)
    subprocess.run([str(python()), "-m", "pip", "install", "--quiet", *pins], check=True)
    return python()
