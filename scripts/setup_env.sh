# Sourced by run.sh and test.sh: create .venv and install requirements only when they changed.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PY="${PYTHON:-python3.11}"
command -v "$PY" >/dev/null 2>&1 || PY=python3
ensure_venv() {  # $1: requirements file
  local req="$1"
  local stamp=".venv/.installed-$(basename "$req")"
  [ -x .venv/bin/python ] || "$PY" -m venv .venv
  local want; want="$(cat requirements*.txt | sha256sum | cut -c1-16)"
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    echo "[setup] installing $req into .venv (torch installs from local disk, about a minute)"
    .venv/bin/python -m pip install -q --disable-pip-version-check -r "$req"
    echo "$want" > "$stamp"
  fi
}
export STREAMLIT_BROWSER_GATHER_USAGE_STATS=false
