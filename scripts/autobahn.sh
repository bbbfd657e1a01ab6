#!/usr/bin/env bash
# Run the Autobahn|Testsuite WebSocket fuzzing client against saltare and report by section.
#
#   scripts/autobahn.sh [--cases "1.*,2.*" | --quick] [--exclude "9.*"] [--out DIR]
#                       [--server saltare|reference] [--timeout SECONDS] [-- SERVER ARGS...]
#
#   --cases     comma-separated case patterns to run (default: "*", every case). wstest matches
#               a pattern with a `*` as a prefix (`*` is any text): "6.*" is section 6, "12.1.1*"
#               is 12.1.1 and 12.1.10-12.1.18; one without is an exact case id ("7.1.5").
#               12.* and 13.* (permessage-deflate) take nine tenths of the time
#   --exclude   comma-separated case patterns to leave out (default: none)
#   --quick     sections 1-10 whole and the first, smallest case of each compression subsection:
#               --cases "1.*,2.*,3.*,4.*,5.*,6.*,7.*,9.*,10.*,12.1.1,12.2.1,...,13.7.1"
#               (313 cases, about 30 s where the whole suite, 517 cases, takes about 10 min)
#   --out       directory for the spec, the logs and the report (default: reports/autobahn);
#               wstest writes its HTML/JSON report to OUT/servers/ (index.html, index.json)
#   --server    saltare (default): `python -m saltare ws_app:raw_echo` from tests/py/apps;
#               reference: tests/autobahn/reference_server.py, an echo server built on the
#               `websockets` library, to check the harness itself
#   --timeout   seconds the fuzzing client may run before it is stopped (default: 3600)
#   -- ARGS     passed on to the server's command line (e.g. -- --no-ws-per-message-deflate)
#
# wstest (autobahntestsuite 0.8.2) runs only on Python 2.7: the script creates a virtualenv in
# .autobahn-venv/ with the pinned tests/autobahn/requirements-*.txt on first use (about half a
# minute) and reuses it after. It finds Python 2.7 as $AUTOBAHN_PYTHON2, `python2.7` on PATH or
# a pyenv 2.7 install. The server gets a free port on 127.0.0.1 and is stopped (SIGTERM to the
# process the script started) when the run ends. The exit status is the report's: non-zero
# when a case FAILED, a case did not run, or the harness itself failed.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

QUICK_CASES="1.*,2.*,3.*,4.*,5.*,6.*,7.*,9.*,10.*,12.1.1,12.2.1,12.3.1,12.4.1,12.5.1"
QUICK_CASES+=",13.1.1,13.2.1,13.3.1,13.4.1,13.5.1,13.6.1,13.7.1"
CASES="*"
EXCLUDE=""
OUT=reports/autobahn
SERVER=saltare
RUN_TIMEOUT=3600
SERVER_ARGS=()
while [ $# -gt 0 ]; do
  case "$1" in
    --cases) CASES=$2; shift 2 ;;
    --cases=*) CASES=${1#*=}; shift ;;
    --quick) CASES=$QUICK_CASES; shift ;;
    --exclude) EXCLUDE=$2; shift 2 ;;
    --exclude=*) EXCLUDE=${1#*=}; shift ;;
    --out) OUT=$2; shift 2 ;;
    --out=*) OUT=${1#*=}; shift ;;
    --server) SERVER=$2; shift 2 ;;
    --server=*) SERVER=${1#*=}; shift ;;
    --timeout) RUN_TIMEOUT=$2; shift 2 ;;
    --timeout=*) RUN_TIMEOUT=${1#*=}; shift ;;
    --) shift; SERVER_ARGS=("$@"); break ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "autobahn: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
case "$SERVER" in
  saltare|reference) ;;
  *) echo "autobahn: --server must be saltare or reference" >&2; exit 2 ;;
esac

log() { echo "autobahn: $*" >&2; }

# --- wstest in a pinned Python 2.7 virtualenv -------------------------------------------------
VENV_DIR=$ROOT/.autobahn-venv
WSTEST=$VENV_DIR/env/bin/wstest
REQ_BOOT=$ROOT/tests/autobahn/requirements-bootstrap.txt
REQ_WSTEST=$ROOT/tests/autobahn/requirements-wstest.txt

find_python2() {
  local candidates=() c
  [ -n "${AUTOBAHN_PYTHON2:-}" ] && candidates+=("$AUTOBAHN_PYTHON2")
  candidates+=(python2.7 python2)
  local pyenv_root=${PYENV_ROOT:-$HOME/.pyenv}
  for c in "$pyenv_root"/versions/2.7*/bin/python; do
    [ -x "$c" ] && candidates+=("$c")
  done
  for c in "${candidates[@]}"; do
    if "$c" -c 'import sys; sys.exit(sys.version_info[:2] != (2, 7))' >/dev/null 2>&1; then
      command -v "$c"
      return 0
    fi
  done
  return 1
}

ensure_wstest() {
  local stamp=$VENV_DIR/env/.saltare-stamp want
  want=$(cat "$REQ_BOOT" "$REQ_WSTEST" | cksum)
  if [ -x "$WSTEST" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    return 0
  fi
  local py2
  if ! py2=$(find_python2); then
    log "Python 2.7 not found (wstest needs it): set AUTOBAHN_PYTHON2 to a python2.7 binary"
    exit 2
  fi
  log "creating $VENV_DIR with wstest on $py2 (pinned versions, once)"
  rm -rf "$VENV_DIR"
  mkdir -p "$VENV_DIR"
  local pip_opts=(--quiet --disable-pip-version-check --no-cache-dir --no-warn-script-location)
  local setup_log=$VENV_DIR/setup.log
  {
    "$py2" -m pip install "${pip_opts[@]}" --no-deps --target "$VENV_DIR/bootstrap" \
      -r "$REQ_BOOT" &&
      PYTHONPATH=$VENV_DIR/bootstrap "$py2" -m virtualenv --no-download --no-periodic-update \
        --app-data "$VENV_DIR/app-data" "$VENV_DIR/env" &&
      "$VENV_DIR/env/bin/python" -m pip install "${pip_opts[@]}" --no-deps -r "$REQ_WSTEST" &&
      "$VENV_DIR/env/bin/python" -m pip check &&
      "$WSTEST" --autobahnversion
  } >"$setup_log" 2>&1 </dev/null || {
    tail -n 30 "$setup_log" >&2
    log "creating the wstest virtualenv failed (whole log: $setup_log)"
    exit 2
  }
  echo "$want" >"$stamp"
}

ensure_wstest

# --- the server under test --------------------------------------------------------------------
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
rm -rf "$OUT/servers"

PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
if [ "$SERVER" = saltare ]; then
  if [ ! -x .venv/bin/python ]; then
    log ".venv is missing: run bash scripts/setup.sh first"
    exit 2
  fi
  AGENT=saltare
  SERVER_CMD=(.venv/bin/python -m saltare ws_app:raw_echo --app-dir tests/py/apps --port "$PORT"
    --log-level warning)
else
  AGENT=reference-websockets
  PY3=python3
  [ -x .venv/bin/python ] && PY3=.venv/bin/python
  # websockets refuses messages of more than 4096 fragments (a DoS guard): cases 9.3.1-9.3.3
  # and 9.4.1-9.4.3 send up to 65536, so lift it to keep the reference a clean baseline.
  SERVER_CMD=(env WEBSOCKETS_MAX_FRAGMENTS=1048576 "$PY3" tests/autobahn/reference_server.py
    --port "$PORT")
fi
SERVER_CMD+=("${SERVER_ARGS[@]}")

SERVER_PID=""
stop_server() {
  [ -n "$SERVER_PID" ] || return 0
  local pid=$SERVER_PID i
  SERVER_PID=""
  kill -TERM "$pid" 2>/dev/null || return 0
  for i in $(seq 1 100); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    log "server (pid $pid) still running 10 s after SIGTERM: sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
}
trap stop_server EXIT
trap 'exit 130' INT TERM

log "starting $SERVER on 127.0.0.1:$PORT: ${SERVER_CMD[*]}"
"${SERVER_CMD[@]}" >"$OUT/server.log" 2>&1 </dev/null &
SERVER_PID=$!

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; }
for i in $(seq 1 300); do
  port_open && break
  if ! kill -0 "$SERVER_PID" 2>/dev/null; then
    tail -n 30 "$OUT/server.log" >&2
    log "the server exited before it listened"
    exit 2
  fi
  if [ "$i" = 300 ]; then
    tail -n 30 "$OUT/server.log" >&2
    log "the server did not listen on port $PORT within 30 s"
    exit 2
  fi
  sleep 0.1
done

# --- the fuzzing client -----------------------------------------------------------------------
python3 - "$ROOT/tests/autobahn/fuzzingclient.json" "$OUT/fuzzingclient.json" \
  "ws://127.0.0.1:$PORT" "$AGENT" "$OUT/servers" "$CASES" "$EXCLUDE" <<'PY'
import json
import sys

template, target, url, agent, outdir, cases, exclude = sys.argv[1:]
with open(template) as f:
    spec = json.load(f)
spec["servers"] = [{**spec["servers"][0], "agent": agent, "url": url}]
spec["outdir"] = outdir
spec["cases"] = [c.strip() for c in cases.split(",") if c.strip()]
spec["exclude-cases"] = [c.strip() for c in exclude.split(",") if c.strip()]
with open(target, "w") as f:
    json.dump(spec, f, indent=2)
PY

log "running wstest -m fuzzingclient (cases: $CASES${EXCLUDE:+, excluding $EXCLUDE}); log: $OUT/wstest.log"
start=$(date +%s)
set +e
(cd "$OUT" && PYTHONWARNINGS=ignore timeout --signal=TERM --kill-after=10 "$RUN_TIMEOUT" \
  "$WSTEST" -m fuzzingclient -s "$OUT/fuzzingclient.json") >"$OUT/wstest.log" 2>&1 </dev/null
rc=$?
set -e
log "wstest finished in $(($(date +%s) - start)) s (exit $rc)"
stop_server

if [ "$rc" != 0 ]; then
  tail -n 30 "$OUT/wstest.log" >&2
  [ "$rc" = 124 ] && log "wstest ran out of time (--timeout $RUN_TIMEOUT)"
  log "wstest failed; the report below covers the cases that finished"
fi

EXPECT=$(sed -n 's/^Ok, will run \([0-9]*\) test cases.*/\1/p' "$OUT/wstest.log" | head -n 1)
report_rc=0
python3 scripts/autobahn_report.py "$OUT/servers/index.json" --agent "$AGENT" \
  ${EXPECT:+--expect "$EXPECT"} || report_rc=$?
if [ "$rc" != 0 ] && [ "$report_rc" = 0 ]; then
  report_rc=1
fi
log "HTML report: $OUT/servers/index.html"
exit "$report_rc"
