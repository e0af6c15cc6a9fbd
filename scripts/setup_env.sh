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
    # Byte-compile on every core: pip compiles its ~15,000 modules on one (measured on 2 cores: 79 s to install
    # with pip's compile, 41 s without plus 24 s of compileall -j 0). Compiled here, not on first import, because
    # some environments set PYTHONDONTWRITEBYTECODE and would then compile torch in every process.
    .venv/bin/python -m pip install -q --disable-pip-version-check --no-compile -r "$req"
    .venv/bin/python -m compileall -q -j 0 .venv/lib >/dev/null 2>&1 || true  # a few packages ship non-Python .py templates
    echo "$want" > "$stamp"
    # What it includes (`-r requirements.txt` in the dev file) is installed too: stamped as well, so README's run
    # command, which the browser tests start, does not install and byte-compile the whole venv again (seen in CI:
    # pip and compileall on both cores at the start of the Chromium phase).
    sed -n 's/^-r[[:space:]]*//p' "$req" | while read -r included; do
      echo "$want" > ".venv/.installed-$(basename "$included")"
    done
  fi
}
export STREAMLIT_BROWSER_GATHER_USAGE_STATS=false
