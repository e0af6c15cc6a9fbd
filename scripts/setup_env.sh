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
    # --no-compile: pip would byte-compile all ~15,000 installed modules (torch is most of them; measured: 200 s
    # to install with it, 103 s without); Python compiles the few hundred a run imports on first use instead.
    .venv/bin/python -m pip install -q --disable-pip-version-check --no-compile -r "$req"
    echo "$want" > "$stamp"
  fi
}
export STREAMLIT_BROWSER_GATHER_USAGE_STATS=false
