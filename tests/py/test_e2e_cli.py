"""The command line and ``saltare.run()``: exit codes, messages, and serving from Python."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest
import saltare
from saltare._options import OPTIONS

APPS = Path(__file__).parent / "apps"
SALTARE = Path(sys.executable).parent / "saltare"


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str


def run_cli(
    *args: str, timeout: float = 30.0, module: bool = False, env: dict[str, str] | None = None
) -> Result:
    """Run the CLI to completion; a CLI that keeps running is a failure, not a hang."""
    command = [sys.executable, "-m", "saltare"] if module else [str(SALTARE)]
    proc = subprocess.Popen(
        [*command, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
        env={**os.environ, **(env or {})},
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f"saltare {' '.join(args)} still running after {timeout} s:\n{err.decode()}")
    return Result(proc.returncode, out.decode(), err.decode())


def lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def test_unknown_option_exits_2_with_one_line_naming_it():
    result = run_cli("echo_scope:app", "--app-dir", str(APPS), "--no-such-flag")
    assert result.code == 2
    assert len(lines(result.stderr)) == 1, result.stderr
    assert "--no-such-flag" in result.stderr


@pytest.mark.parametrize(
    ("args", "option", "allowed"),
    [
        (["--port", "abc"], "--port", "integer"),
        (["--port", "70000"], "--port", "65535"),
        (["--workers", "-1"], "--workers", ">= 0"),
        (["--log-level", "loud"], "--log-level", "critical, error, warning, info, debug"),
        (["--max-request-body", "lots"], "--max-request-body", "size"),
        (["--root-path", "api/"], "--root-path", "starting with '/'"),
    ],
    ids=["port-not-a-number", "port-too-big", "negative-workers", "log-level", "size", "root"],
)
def test_invalid_option_value_exits_2_naming_the_option_and_what_is_allowed(args, option, allowed):
    result = run_cli("echo_scope:app", "--app-dir", str(APPS), *args)
    assert result.code == 2
    assert len(lines(result.stderr)) == 1, result.stderr
    assert option in result.stderr
    assert allowed in result.stderr
    assert args[1] in result.stderr, "the message should quote the rejected value"


def test_invalid_value_from_the_environment_exits_2_naming_the_option():
    result = run_cli("echo_scope:app", "--app-dir", str(APPS), env={"SALTARE_WORKERS": "many"})
    assert result.code == 2
    assert "--workers" in result.stderr or "SALTARE_WORKERS" in result.stderr
    assert "'many'" in result.stderr


def test_app_module_raising_on_import_exits_1_with_the_traceback():
    result = run_cli("import_error:app", "--app-dir", str(APPS), "--port", "0")
    assert result.code == 1
    assert "Traceback (most recent call last)" in result.stderr
    assert "RuntimeError: import-time failure from import_error.py" in result.stderr
    assert "listening" not in result.stderr


def test_missing_module_exits_1_with_a_clear_message():
    result = run_cli("nosuchmodule:app", "--app-dir", str(APPS), "--port", "0")
    assert result.code == 1
    assert "Traceback" not in result.stderr
    errors = [line for line in lines(result.stderr) if line.startswith("saltare: error:")]
    assert len(errors) == 1, result.stderr
    assert "nosuchmodule" in errors[0]


def test_missing_attribute_exits_1_naming_it():
    result = run_cli("echo_scope:nope", "--app-dir", str(APPS), "--port", "0")
    assert result.code == 1
    assert "nope" in result.stderr
    assert "Traceback" not in result.stderr


def test_app_string_without_attribute_exits_1_explaining_the_format():
    result = run_cli("echo_scope", "--app-dir", str(APPS), "--port", "0")
    assert result.code == 1
    assert "MODULE:ATTR" in result.stderr


def test_address_already_in_use_exits_1_saying_so():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli("echo_scope:app", "--app-dir", str(APPS), "--port", str(port))
    assert result.code == 1
    assert "address already in use" in result.stderr.lower()
    assert str(port) in result.stderr


def test_version_prints_the_package_version():
    result = run_cli("--version")
    assert result.code == 0
    assert result.stdout.strip() == f"saltare {saltare.__version__}"


def test_python_dash_m_saltare_is_the_same_command():
    result = run_cli("--version", module=True)
    assert result.code == 0
    assert result.stdout.strip() == f"saltare {saltare.__version__}"


def test_help_lists_every_option():
    result = run_cli("--help")
    assert result.code == 0
    for option in OPTIONS:
        assert option.flag in result.stdout, f"{option.flag} missing from --help"
        assert option.env in result.stdout, f"{option.env} missing from --help"
    assert "--version" in result.stdout


RUN_SCRIPT = """
import os, re, sys, threading

sys.path.insert(0, {apps!r})

import httpx
import saltare
from echo_scope import app

# The router and the workers inherit fd 2: read it through a pipe to see "listening on".
real_stderr = os.dup(2)
read_end, write_end = os.pipe()
os.dup2(write_end, 2)
os.close(write_end)
ready = threading.Event()
url = []

def pump():
    with os.fdopen(read_end, "rb") as pipe:
        for line in pipe:
            os.write(real_stderr, line)
            match = re.search(rb"listening on (\\S+)", line)
            if match and not ready.is_set():
                url.append(match.group(1).decode())
                ready.set()

threading.Thread(target=pump, daemon=True).start()
threading.Thread(
    target=lambda: saltare.run(app, host="127.0.0.1", port=0, workers=1), daemon=True
).start()
if not ready.wait(30):
    print("not ready", flush=True)
    os._exit(3)
response = httpx.get(url[0] + "/from-a-thread?x=1")
print(response.status_code, response.json()["path"], response.json()["query_string"], flush=True)
os._exit(0)
"""


def test_run_from_python_in_a_background_thread_serves_requests(tmp_path):
    script = tmp_path / "serve_in_thread.py"
    script.write_text(textwrap.dedent(RUN_SCRIPT.format(apps=str(APPS))))
    proc = subprocess.Popen(
        [sys.executable, str(script)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        # communicate() also waits for the router and workers to let go of the pipes: if they
        # outlived the script, this would time out.
        out, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f"script or its server did not exit:\n{out.decode()}\n{err.decode()}")
    assert proc.returncode == 0, err.decode()
    assert out.decode().split() == ["200", "/from-a-thread", "x=1"], err.decode()
    assert "listening on http://127.0.0.1:" in err.decode()


def test_run_rejects_an_invalid_option_before_starting():
    with pytest.raises(saltare.ConfigError, match="workers"):
        saltare.run("echo_scope:app", workers=-1)
    with pytest.raises(saltare.ConfigError, match="no_such_option"):
        saltare.run("echo_scope:app", no_such_option=1)


HANGUP_SCRIPT = """
import os, signal, sys, threading, time
sys.path.insert(0, {apps!r})
import saltare

def hangup_later():
    time.sleep(3)
    os.kill(os.getpid(), signal.SIGHUP)
    time.sleep(1)
    os.kill(os.getpid(), signal.SIGTERM)

threading.Thread(target=hangup_later, daemon=True).start()
saltare.run("echo_scope:app", host="127.0.0.1", port=0)
print("run returned", flush=True)
"""


def test_sighup_under_run_is_logged_and_does_not_kill_the_server(tmp_path):
    script = tmp_path / "hangup.py"
    script.write_text(HANGUP_SCRIPT.format(apps=str(APPS)))
    result = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        start_new_session=True,
    )
    assert "reload is only available" in result.stderr, result.stderr
    # It stopped because of the SIGTERM that followed, gracefully.
    assert result.returncode == 0, result.stderr
    assert "run returned" in result.stdout
