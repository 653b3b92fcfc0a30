#!/usr/bin/env bash
# Triton's perf_analyzer against oipserve, over HTTP and then gRPC, printing its output.
#
#   benchmarks/perf_analyzer.sh [perf_analyzer args...]
#
# Writes the example models, starts `oipserve serve examples/models` pinned to core $SERVER_CORE
# (default 0), waits until it is ready, then runs perf_analyzer (installed on first use into
# ./.perf-analyzer by ../shared/tools/perf-analyzer.sh, or $PERF_ANALYZER) pinned to core
# $CLIENT_CORE (default 1) against model $MODEL (default iris) with -i http and -i grpc.
# Defaults: --concurrency-range $CONCURRENCY (8) -p 2000 -s 50; extra arguments are appended.
# perf_analyzer reads the model's metadata, configuration and statistics, and prints the server's
# view of each measurement next to its own (the "Server:" lines).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
PYTHON=${PYTHON:-$ROOT/.venv/bin/python}
PERF_ANALYZER=${PERF_ANALYZER:-$ROOT/../shared/tools/perf-analyzer.sh}
MODEL=${MODEL:-iris}
CONCURRENCY=${CONCURRENCY:-8}
SERVER_CORE=${SERVER_CORE:-0}
CLIENT_CORE=${CLIENT_CORE:-1}

pin() {
  if command -v taskset >/dev/null && [[ -n $1 ]]; then echo "taskset -c $1"; fi
}
free_port() {
  "$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

"$PYTHON" examples/make_models.py examples/models >/dev/null
HTTP_PORT=$(free_port)
GRPC_PORT=$(free_port)
LOG=$(mktemp -t oipserve-perf-analyzer.XXXXXX.log)
# shellcheck disable=SC2046
$(pin "$SERVER_CORE") "$PYTHON" -m oipserve serve examples/models --host 127.0.0.1 \
  --http-port "$HTTP_PORT" --grpc-port "$GRPC_PORT" --log-level warning >"$LOG" 2>&1 &
SERVER=$!
trap 'kill "$SERVER" 2>/dev/null; wait "$SERVER" 2>/dev/null || true; rm -f "$LOG"' EXIT

"$PYTHON" - "$HTTP_PORT" <<'EOF'
import sys, time, httpx
url = f"http://127.0.0.1:{sys.argv[1]}/v2/health/ready"
deadline = time.monotonic() + 60
while time.monotonic() < deadline:
    try:
        if httpx.get(url, timeout=2).status_code == 200:
            sys.exit(0)
    except httpx.TransportError:
        pass
    time.sleep(0.1)
sys.exit("oipserve did not become ready within 60 s")
EOF

for protocol in http grpc; do
  port=$HTTP_PORT
  [[ $protocol == grpc ]] && port=$GRPC_PORT
  echo "=== perf_analyzer -m $MODEL -i $protocol (server on core $SERVER_CORE, client on core $CLIENT_CORE) ==="
  # shellcheck disable=SC2046
  $(pin "$CLIENT_CORE") "$PERF_ANALYZER" -m "$MODEL" -u "127.0.0.1:$port" -i "$protocol" \
    --concurrency-range "$CONCURRENCY" -p 2000 -s 50 "$@"
  echo
done
