#!/usr/bin/env bash
# Bounded fuzzing: start `aep-emulator serve --port 0`, run schemathesis from the emulator's own OpenAPI
# document, stop the server. Fails on any 5xx, any response that breaks its documented status, headers,
# content type or schema, and any schema-violating request the emulator accepts.
#
# Budget (env): FUZZ_MAX_EXAMPLES test cases per operation and phase (default 25), FUZZ_SEED (default 1, so CI
# runs are reproducible; change it to explore), FUZZ_TIMEOUT hard limit in seconds (default 110).
# Reports go to FUZZ_REPORT_DIR (default: a temporary folder); the last line is the number of test cases tried.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
max_examples="${FUZZ_MAX_EXAMPLES:-25}"
seed="${FUZZ_SEED:-1}"
time_limit="${FUZZ_TIMEOUT:-110}"
reports="${FUZZ_REPORT_DIR:-$(mktemp -d)}"
mkdir -p "$reports"

# The server's first stdout line is its URL; fd 3 stays open so later output never hits a closed pipe.
# Its default scenario finishes jobs at once, so generated call chains reach the exported files.
exec 3< <(exec aep-emulator serve --port 0 --log-level ERROR \
    --scenarios "$here/scenarios" --default-scenario fuzz-quick 2>"$reports/server.log")
server=$!
stop_server() { kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; }
trap stop_server EXIT

if ! read -r -t 30 -u 3 banner; then
    echo "fuzz: the emulator did not start; its log:" >&2
    cat "$reports/server.log" >&2
    exit 1
fi
url="${banner#aep-emulator listening on }"

# One finished export for the generated requests to reach; its ids are pinned in this run's configuration.
config="$reports/schemathesis.toml"
cp "$here/schemathesis.toml" "$config"
python3 "$here/seed.py" "$url" >> "$config"

status=0
timeout --signal=INT "$time_limit" schemathesis --config-file "$config" run \
    "$url/_emulator/openapi.json" \
    --url "$url" \
    --header "Authorization: Bearer fuzz-token" \
    --header "x-api-key: fuzz-client" \
    --header "x-sandbox-name: prod" \
    --max-examples "$max_examples" \
    --seed "$seed" \
    --generation-database none \
    --no-color \
    --report json,har \
    --report-dir "$reports" || status=$?

python3 - "$reports" <<'PY'
import glob, json, sys
folder = sys.argv[1]
reports = sorted(glob.glob(f"{folder}/json-*.json"))
hars = sorted(glob.glob(f"{folder}/har-*.json"))
cases = json.load(open(reports[-1]))["test_cases"]["generated"] if reports else "unknown"
requests = len(json.load(open(hars[-1]))["log"]["entries"]) if hars else "unknown"
print(f"fuzz: {cases} generated test cases, {requests} HTTP requests (reports in {folder})")
PY
if [ "$status" -ne 0 ]; then
    echo "fuzz: schemathesis failed (exit $status); server log: $reports/server.log" >&2
fi
exit "$status"
