"""Pinned virtualenvs for the peers and the chart tool, cached under ``.bench-venvs/<name>``.

A venv is (re)installed when the stamp file inside it does not list exactly the requirements asked
for, so changing a pin here is enough to refresh it on the next run.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENVS = ROOT / ".bench-venvs"
_STAMP = ".bench-requirements"

FASTAPI = ("fastapi==0.163.2", "pydantic==2.14.3", "starlette==1.10.0")
# uvicorn's WebSocket implementations: websockets for `--ws websockets` and
# `--ws websockets-sansio`, wsproto for `--ws wsproto` (the version hypercorn brings itself).
WEBSOCKETS = "websockets==17.4"
WSPROTO = "wsproto==1.3.2"
MATPLOTLIB = ("matplotlib==3.11.2",)


class VenvError(Exception):
    """A virtualenv could not be created or its packages installed; the message says why."""


def _tail(text: str, lines: int = 4) -> str:
    kept = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return " / ".join(kept[-lines:]) or "no output"


def _base_python() -> str:
    # A venv made from inside another venv still links to the base interpreter (PEP 405).
    return getattr(sys, "_base_executable", sys.executable) or sys.executable


def ensure(name: str, requirements: Sequence[str], log: Path | None = None) -> Path:
    """The venv's ``bin`` directory, created and given ``requirements`` first if needed."""
    venv = VENVS / name
    stamp = venv / _STAMP
    wanted = "\n".join(requirements) + "\n"
    python = venv / "bin" / "python"
    if python.exists() and stamp.exists() and stamp.read_text() == wanted:
        return venv / "bin"
    VENVS.mkdir(exist_ok=True)
    if not python.exists():
        made = subprocess.run(
            [_base_python(), "-m", "venv", str(venv)], capture_output=True, text=True, check=False
        )
        if made.returncode != 0:
            raise VenvError(f"python -m venv failed: {_tail(made.stderr + made.stdout)}")
    pip = subprocess.run(
        [str(python), "-m", "pip", "install", "--disable-pip-version-check", "--quiet",
         *requirements],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if log is not None:
        log.write_text(pip.stdout + pip.stderr)
    if pip.returncode != 0:
        raise VenvError(f"pip install {' '.join(requirements)} failed: {_tail(pip.stderr)}")
    stamp.write_text(wanted)
    return venv / "bin"


def package_versions(bin_dir: Path, names: Sequence[str]) -> dict[str, str]:
    """Installed versions of ``names`` as the venv's own interpreter sees them."""
    code = (
        "import importlib.metadata as m, json, sys\n"
        "out = {}\n"
        "for n in sys.argv[1:]:\n"
        "    try: out[n] = m.version(n)\n"
        "    except m.PackageNotFoundError: out[n] = 'missing'\n"
        "print(json.dumps(out))\n"
    )
    done = subprocess.run(
        [str(bin_dir / "python"), "-c", code, *names], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        return {n: "unknown" for n in names}
    versions: dict[str, str] = json.loads(done.stdout)
    return versions
