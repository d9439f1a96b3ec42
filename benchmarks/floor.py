"""The floor: a bare aiohttp app that answers every GET and POST with the same ~1 KB JSON document.

It is what our framework costs on this machine with no emulator logic at all, so the emulator's numbers are
reported as ratios to it. It starts and serves exactly as `aep-emulator serve` does (AppRunner, no access
log, one ready line on stdout) so that only the emulator's own work differs.

    python -m benchmarks.floor [--host 127.0.0.1] [--port 0]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal

from aiohttp import web

READY_PREFIX = "floor listening on http://"

# Shaped like an export job so that the bytes on the wire are comparable with the emulator's answer.
DOCUMENT = {
    "id": 24115,
    "jobType": "BATCH",
    "destination": {"datasetId": "5b020a27e7040801dedbf46e", "segmentPerBatch": False, "batchId": "0" * 32},
    "schema": {"name": "_xdm.context.profile"},
    "imsOrgId": "TESTORG@AdobeOrg",
    "status": "SUCCEEDED",
    "fields": "identities.id,personalEmail.address",
    "filter": {
        "segments": [
            {
                "segmentId": "52c26d0d-45f2-47a2-ab30-ed06abc981ff",
                "segmentNs": "ups",
                "status": ["realized", "existing"],
            }
        ],
        "emptyProfiles": False,
    },
    "mergePolicy": {"id": "e5bc94de-cd14-4cdf-a2bc-88b6e8cbfac2", "version": 1},
    "profileInstanceId": "ups",
    "metrics": {
        "totalTime": {"startTimeInMs": 1559674261657, "endTimeInMs": 1559674751974, "totalTimeInMs": 490317},
        "profileExportTime": {
            "startTimeInMs": 1559674261657,
            "endTimeInMs": 1559674751974,
            "totalTimeInMs": 490317,
        },
        "aCPDatasetWriteTime": {
            "startTimeInMs": 1559674751974,
            "endTimeInMs": 1559674751974,
            "totalTimeInMs": 0,
        },
        "totalExportedProfileCounter": 20,
        "exportedProfileByNamespaceCounter": {"email": 20, "ECID": 20},
    },
    "computeGatewayJobId": {
        "exportJob": "f3058161-7349-4ca9-807d-212cee2c2e94",
        "pushJob": "9c5c4f1d-3e0b-4c57-bd6b-c3e7d7a1ff5e",
    },
    "creationTime": 1559674261657,
    "updateTime": 1559674751974,
    "requestId": "d995479c-8a08-4240-903b-af469c67be1e",
}
BODY = json.dumps(DOCUMENT, separators=(",", ":")).encode()


async def serve_document(request: web.Request) -> web.Response:
    if request.body_exists:
        await request.read()  # a POST's body is read, as any real handler must
    return web.Response(body=BODY, content_type="application/json")


def create_app() -> web.Application:
    app = web.Application()
    app.router.add_route("GET", "/{tail:.*}", serve_document)
    app.router.add_route("POST", "/{tail:.*}", serve_document)
    return app


async def _serve(host: str, port: int) -> int:
    runner = web.AppRunner(create_app(), access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port, shutdown_timeout=1.0)
    await site.start()
    bound_host, bound_port = runner.addresses[0][:2]
    print(f"{READY_PREFIX}{bound_host}:{bound_port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    await runner.cleanup()
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.floor", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    return asyncio.run(_serve(args.host, args.port))


if __name__ == "__main__":
    raise SystemExit(main())
