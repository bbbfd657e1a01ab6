"""A representative subset of the Autobahn|Testsuite fuzzing client against saltare.

`scripts/autobahn.sh --quick` runs sections 1-10 whole and the first case of every
permessage-deflate subsection (313 of the 517 cases, about 20 s once its Python 2.7 virtualenv
exists); the full suite is `scripts/autobahn.sh` (docs/websockets.md). wstest is Python 2 only:
without a Python 2.7 interpreter on the machine this test is skipped and says why.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]


def _python2() -> str | None:
    explicit = os.environ.get("AUTOBAHN_PYTHON2")
    if explicit:
        return explicit
    for name in ("python2.7", "python2"):
        found = shutil.which(name)
        if (
            found
            and subprocess.run([found, "-V"], capture_output=True, check=False).returncode == 0
        ):
            return found
    root = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))
    candidates = sorted(glob.glob(os.path.join(root, "versions", "2.7*", "bin", "python")))
    return candidates[-1] if candidates else None


@pytest.mark.timeout(900)
def test_autobahn_quick_subset_has_no_failures(tmp_path):
    if _python2() is None:
        pytest.skip("no Python 2.7 for Autobahn's wstest (set AUTOBAHN_PYTHON2)")
    result = subprocess.run(
        ["bash", "scripts/autobahn.sh", "--quick", "--out", str(tmp_path), "--timeout", "600"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=880,
        check=False,
    )
    report = result.stdout + result.stderr
    assert result.returncode == 0, report[-5000:]
    # The report's table ends with a total line: 313 cases, none FAILED.
    total = [line for line in result.stdout.splitlines() if line.startswith("total")]
    assert total, report[-3000:]
    columns = total[-1].split()
    assert columns[-1] == "313", total[-1]
    assert columns[-3] == "0", total[-1]  # FAILED
