#!/usr/bin/env bash
# Bounded fuzzing: start `aep-emulator serve --port 0`, run schemathesis from the emulator's own OpenAPI
# document, stop the server. Two passes:
#   1. every operation, every check (schemathesis.toml): no 5xx, no reply that breaks its documented status,
#      headers, content type or schema, no schema-violating request accepted;
#   2. `--validation lenient`, the AEP operations with a JSON body (lenient.toml): invalid bodies served
#      leniently still get no 5xx and replies that match the document.
#
# Budget (env): FUZZ_MAX_EXAMPLES test cases per operation and phase (default 40), FUZZ_SEED (default 1, so CI
# runs are reproducible; change it to explore), FUZZ_TIMEOUT hard limit per pass in seconds (default 240: 44
# operations since the audience leg, about 90 s per pass on a quiet machine).
# Reports go to FUZZ_REPORT_DIR (default: a temporary folder). Prints how many test cases each pass tried.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
max_examples="${FUZZ_MAX_EXAMPLES:-40}"
seed="${FUZZ_SEED:-1}"
time_limit="${FUZZ_TIMEOUT:-240}"
reports="${FUZZ_REPORT_DIR:-$(mktemp -d)}"
mkdir -p "$reports"
server=""

stop_server() {
    if [ -n "$server" ]; then
        kill "$server" 2>/dev/null || true
        wait "$server" 2>/dev/null || true
        server=""
    fi
}
trap stop_server EXIT

# start_server LABEL SERVE-ARGS...: sets $url. The first stdout line is the URL; fd 3 stays open so that
# later output never meets a closed pipe. The default scenario finishes jobs at once, so that generated call
# chains reach batches, files and bytes.
start_server() {
    local label="$1"
    shift
    exec 3< <(exec aep-emulator serve --port 0 --log-level WARNING \
        --scenarios "$here/scenarios" --default-scenario fuzz-quick "$@" 2>"$reports/$label-server.log")
    server=$!
    local banner
    if ! read -r -t 30 -u 3 banner; then
        echo "fuzz: the emulator did not start; its log:" >&2
        cat "$reports/$label-server.log" >&2
        exit 1
    fi
    url="${banner#aep-emulator listening on }"
}

# fuzz LABEL CONFIG SCHEMATHESIS-ARGS...: one schemathesis run; prints its count; returns its exit status.
fuzz() {
    local label="$1" config="$2" status=0
    shift 2
    mkdir -p "$reports/$label"
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
        --report-dir "$reports/$label" \
        "$@" || status=$?
    python3 - "$label" "$reports/$label" <<'PY'
import glob, json, sys
label, folder = sys.argv[1], sys.argv[2]
reports = sorted(glob.glob(f"{folder}/json-*.json"))
hars = sorted(glob.glob(f"{folder}/har-*.json"))
cases = json.load(open(reports[-1]))["test_cases"]["generated"] if reports else "unknown"
requests = len(json.load(open(hars[-1]))["log"]["entries"]) if hars else "unknown"
print(f"fuzz ({label}): {cases} generated test cases, {requests} HTTP requests (reports in {folder})")
PY
    return "$status"
}

failed=0

start_server strict
# One finished export for generated requests to reach; its ids are pinned in this run's configuration.
config="$reports/strict.toml"
cp "$here/schemathesis.toml" "$config"
python3 "$here/seed.py" "$url" >> "$config"
fuzz strict "$config" || failed=1
stop_server

start_server lenient --validation lenient
fuzz lenient "$here/lenient.toml" \
    --header "x-gw-ims-org-id: FUZZ@AdobeOrg" \
    --include-operation-id createDataset \
    --include-operation-id createExportJob \
    --include-operation-id createSegmentDefinition \
    --include-operation-id patchSegmentDefinition \
    --include-operation-id createSegmentJob \
    --include-operation-id createMergePolicy \
    --include-operation-id patchMergePolicy || failed=1
stop_server

if [ "$failed" -ne 0 ]; then
    echo "fuzz: schemathesis found failures (see above); server logs and reports: $reports" >&2
fi
exit "$failed"
