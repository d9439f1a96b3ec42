#!/usr/bin/env bash
# The whole AEP export flow against a standalone emulator, with curl only: a recipe for clients that are
# not written in Python. Start the emulator, then run this script:
#
#   aep-emulator serve --port 8080 &
#   AEP_URL=http://127.0.0.1:8080 bash curl_walkthrough.sh
#
# 1. IMS token  2. dataset  3. export job, polled to SUCCEEDED  4. its Catalog batch  5. its files
# (Data Access)  6. a failing job  7. a stuck job, cancelled.  Needs bash, curl, grep and sed.
set -euo pipefail

AEP_URL=${AEP_URL:-http://127.0.0.1:8080}
ORG=${AEP_ORG:-EMULATOR@AdobeOrg}
SANDBOX=${AEP_SANDBOX:-prod}
CLIENT_ID=${AEP_CLIENT_ID:-my-client-id}
CLIENT_SECRET=${AEP_CLIENT_SECRET:-my-client-secret}
JOBS="$AEP_URL/data/core/ups/export/jobs"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

# The first value of "KEY" in the JSON on stdin (a string without escapes, or a number).
field() {
  grep -oE "\"$1\":(\"[^\"]*\"|[0-9]+)" | head -n 1 | sed -E "s/^\"$1\"://; s/^\"(.*)\"$/\1/"
}

# GET/POST/DELETE on the AEP surface with the headers AEP requires; fails on an HTTP error.
aep() {
  local method=$1 url=$2
  shift 2
  curl -sS --fail-with-body -X "$method" "$url" \
    -H "Authorization: Bearer $TOKEN" \
    -H "x-api-key: $CLIENT_ID" \
    -H "x-gw-ims-org-id: $ORG" \
    -H "x-sandbox-name: $SANDBOX" \
    -H "Content-Type: application/json" \
    "$@"
}

# Instead of sleeping between polls, move the emulator's clock (the control plane needs no token).
advance() {
  curl -sS --fail-with-body -X POST "$AEP_URL/_emulator/clock/advance" \
    -H "Content-Type: application/json" -d "{\"seconds\": $1}" >/dev/null
}

# Poll an export job until it leaves NEW/PROCESSING (at most 20 polls); prints its final JSON.
wait_for() {
  local job status
  for _ in $(seq 1 20); do
    job=$(aep GET "$JOBS/$1")
    status=$(field status <<<"$job")
    if [ "$status" != NEW ] && [ "$status" != PROCESSING ]; then
      echo "$job"
      return 0
    fi
    advance 5
  done
  echo "job $1 is still $status" >&2
  return 1
}

echo "1. token from IMS"
TOKEN=$(curl -sS --fail-with-body -X POST "$AEP_URL/ims/token/v3" \
  -d grant_type=client_credentials -d "client_id=$CLIENT_ID" -d "client_secret=$CLIENT_SECRET" \
  -d scope=openid,AdobeID,read_organizations | field access_token)

echo "2. dataset"
DATASET=$(aep POST "$AEP_URL/data/foundation/catalog/dataSets" -d '{
  "name": "curl export target",
  "schemaRef": {"id": "https://ns.adobe.com/xdm/context/profile__union",
                "contentType": "application/vnd.adobe.xed+json;version=1"}
}' | sed -E 's|.*"@/dataSets/([^"]+)".*|\1|')
echo "   dataset $DATASET"

EXPORT_REQUEST="{\"fields\": \"identityMap,person.name\", \"destination\": {\"datasetId\": \"$DATASET\"},
  \"schema\": {\"name\": \"_xdm.context.profile\"}}"

echo "3. export job"
JOB_ID=$(aep POST "$JOBS" -d "$EXPORT_REQUEST" | field id)
JOB=$(wait_for "$JOB_ID")
STATUS=$(field status <<<"$JOB")
BATCH=$(field batchId <<<"$JOB")
echo "   job $JOB_ID $STATUS, batch $BATCH, $(field totalExportedProfileCounter <<<"$JOB") profiles"
[ "$STATUS" = SUCCEEDED ]

echo "4. Catalog batch"
BATCH_STATUS=$(aep GET "$AEP_URL/data/foundation/catalog/batches/$BATCH" | field status)
echo "   batch $BATCH_STATUS"
[ "$BATCH_STATUS" = success ]

echo "5. files (Data Access)"
FILE_ID=$(aep GET "$AEP_URL/data/foundation/export/batches/$BATCH/files" | field dataSetFileId)
LISTING=$(aep GET "$AEP_URL/data/foundation/export/files/$FILE_ID")
NAME=$(field name <<<"$LISTING")
LENGTH=$(field length <<<"$LISTING")
aep GET "$AEP_URL/data/foundation/export/files/$FILE_ID?path=$NAME" -o "$WORK/$NAME"
SIZE=$(wc -c <"$WORK/$NAME" | tr -d ' ')
echo "   downloaded $NAME: $SIZE bytes"
[ "$SIZE" = "$LENGTH" ]

echo "6. a failing job (scenario chosen by header)"
FAILING=$(aep POST "$JOBS" -H "x-emulator-scenario: failure" -d "$EXPORT_REQUEST" | field id)
FAILED=$(wait_for "$FAILING")
echo "   job $FAILING $(field status <<<"$FAILED"): $(field msg <<<"$FAILED")"
[ "$(field status <<<"$FAILED")" = FAILED ]

echo "7. a stuck job, cancelled"
STUCK=$(aep POST "$JOBS" -H "x-emulator-scenario: stuck" -d "$EXPORT_REQUEST" | field id)
aep GET "$JOBS/$STUCK" >/dev/null
advance 3600
echo "   job $STUCK $(aep GET "$JOBS/$STUCK" | field status) after an hour"
echo "   DELETE: $(aep DELETE "$JOBS/$STUCK" | field message)"
CANCELLED=$(aep GET "$JOBS/$STUCK" | field status)
echo "   job $STUCK $CANCELLED"
[ "$CANCELLED" = CANCELLED ]

echo "done"
