#!/usr/bin/env bash
# Install what is missing, then serve DD Studio at http://127.0.0.1:${PORT:-8501}.
source "$(dirname "${BASH_SOURCE[0]}")/setup_env.sh"
ensure_venv requirements.txt
exec .venv/bin/python -m streamlit run app/main.py \
  --server.address 127.0.0.1 --server.port "${PORT:-8501}" --server.headless true \
  --browser.gatherUsageStats false "$@"
