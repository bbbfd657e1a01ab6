#!/usr/bin/env bash
# Set up everything saltare needs for development, tests and the examples:
#   - Bun, TypeScript and Biome from the npm registry (pinned in package-lock.json)
#   - a virtualenv in .venv with the pinned requirements and saltare installed editable
# Idempotent: a second run only checks that everything is in place.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}

if [ ! -x node_modules/.bin/bun ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: installing Bun and TypeScript tooling from the npm registry"
  npm ci --no-audit --no-fund --loglevel=error
fi

# The router bundle (see find_router in python/saltare/_supervisor.py): rebuilt when a source
# file is newer. Test files are not part of it.
if [ ! -f build/router.js ] || [ -n "$(find src -name '*.ts' -newer build/router.js -print -quit)" ]; then
  echo "setup: bundling the router into build/router.js"
  node_modules/.bin/bun build src/main.ts --target=bun --minify-syntax --outfile=build/router.js >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
  echo "setup: creating virtualenv .venv with $($PYTHON --version)"
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.saltare-setup
if [ ! -f "$stamp" ] || [ requirements-dev.txt -nt "$stamp" ] || [ python/pyproject.toml -nt "$stamp" ]; then
  echo "setup: installing pinned Python packages into .venv"
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
  .venv/bin/python -m pip install --quiet --disable-pip-version-check --no-deps -e python
  touch "$stamp"
fi

# nginx from Debian, for the end-to-end test of the nginx configuration in docs/deployment.md.
# Optional: only as root with apt, bounded in time, and never failing the setup; without nginx
# that one test is skipped and says why. SALTARE_SETUP_NGINX=0 skips the attempt.
NGINX_VERSION=1.22.1-9+deb12u11
if ! command -v nginx >/dev/null && [ ! -x /usr/sbin/nginx ] && [ "$(id -u)" = 0 ] \
  && command -v apt-get >/dev/null && [ "${SALTARE_SETUP_NGINX:-1}" != 0 ]; then
  echo "setup: installing nginx-light $NGINX_VERSION from Debian (optional, for one test)"
  install="apt-get install -y -qq --no-install-recommends nginx-light=$NGINX_VERSION"
  if ! DEBIAN_FRONTEND=noninteractive timeout 240 \
    bash -c "$install || (apt-get update -qq && $install)" >/dev/null 2>&1 < /dev/null; then
    echo "setup: could not install nginx-light; the nginx end-to-end test will be skipped"
  fi
fi
