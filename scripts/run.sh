#!/usr/bin/env bash
# Install what is missing, then serve DD Studio at http://127.0.0.1:${PORT:-8501} (loopback only).
#
# A classroom network is an explicit choice: `bash scripts/run.sh --network NAME` binds every interface and
# lets browsers in only under NAME (the address students type, e.g. 192.168.1.20 or studio.local). The Studio
# has no log-in: anyone who can reach NAME can start jobs and delete runs.
source "$(dirname "${BASH_SOURCE[0]}")/setup_env.sh"
ADDRESS=127.0.0.1
if [[ "${1:-}" == "--network" ]]; then
  if [[ -z "${2:-}" ]]; then
    echo "usage: bash scripts/run.sh --network NAME   (NAME: the host name or IP students will open)" >&2
    exit 2
  fi
  ADDRESS=0.0.0.0
  export DDSTUDIO_ALLOWED_HOSTS="${2}${DDSTUDIO_ALLOWED_HOSTS:+,$DDSTUDIO_ALLOWED_HOSTS}"
  echo "WARNING: serving DD Studio on every network interface for http://${2}:${PORT:-8501}." >&2
  echo "WARNING: it has no authentication: anyone who can reach it can start jobs and delete runs." >&2
  shift 2
fi
ensure_venv requirements.txt
exec .venv/bin/python -m streamlit run app/main.py \
  --server.address "$ADDRESS" --server.port "${PORT:-8501}" --server.headless true \
  --browser.gatherUsageStats false --server.fileWatcherType none --runner.postScriptGC false "$@"
