#!/usr/bin/env bash
# Create .venv at the repo root and install the pinned requirements (skipped when unchanged).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-}
if [ -z "$PY" ]; then
  if command -v python3.11 >/dev/null 2>&1; then PY=python3.11; else PY=python3; fi
fi
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv with $($PY --version)"
  "$PY" -m venv .venv
fi
stamp=.venv/.requirements.sha256
want=$(cat requirements.txt pyproject.toml $( [ -f requirements-lock.txt ] && echo requirements-lock.txt ) | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null || true)" != "$want" ]; then
  echo "setup: installing requirements (a few minutes on a fresh machine)"
  .venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
  if [ -f requirements-lock.txt ]; then
    .venv/bin/python -m pip install -q --disable-pip-version-check -r requirements.txt -c requirements-lock.txt
  else
    .venv/bin/python -m pip install -q --disable-pip-version-check -r requirements.txt
  fi
  # the project itself, editable: `import seqrec` works from any folder, with no sys.path changes
  .venv/bin/python -m pip install -q --disable-pip-version-check --no-build-isolation --no-deps -e .
  echo "$want" > "$stamp"
fi
