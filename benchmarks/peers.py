"""The peers (`python -m benchmarks --peers`): WireMock and Prism under the same load as the floor and us.

- **WireMock**, the standalone jar, with a job-shaped stub: `GET .../export/jobs/{id}` and
  `POST .../export/jobs` answer the floor's ~1 KB job document (the POST with an `X-Location`), matched on
  method and path only; WireMock checks nothing else. It runs on Java (17 here) with its defaults: its
  request journal is on and unbounded (bounding it, `--max-request-journal-entries 10000` as our journal
  is bounded, made it several times slower: each eviction walks its queue). Its JIT needs a while under
  load before it runs at full speed, hence the longer warm-up peers get (`Config.peer_warmup`).
- **Prism**, mocking Adobe's `segmentation.yaml` (`GET /export/jobs/{EXPORT_JOB_ID}`, `POST /export/jobs`):
  it validates each request's headers and body against the document, as we do, and answers its example.
  The document is not ours: it is found beside the repository, in `../shared/reference/specs/`, and Prism
  is skipped, with a message saying so, when it is absent. Its examples hold `$ref`s to
  `https://ns.adobe.com/...` that Prism would try to download; it is given a copy, in the cache, in which
  those (in examples only, never a schema's) are renamed `x-ref`, so nothing leaves the machine.

Both come from the npm registry (the `wiremock` package ships the standalone jar) at pinned versions,
installed by the benchmark itself with `npm install` into `benchmarks/.peers/` (gitignored), once.
Each runs as our servers do (`http_bench.Server`: pinned to the servers' core, its own process group, a
hard lifetime), and is ready when it answers the benchmark's own GET with a 200.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from benchmarks.floor import DOCUMENT
from benchmarks.servers import HOST, JOBS, REPO, free_port, log

HERE = Path(__file__).resolve().parent
CACHE = HERE / ".peers"
SPEC = REPO.parent / "shared" / "reference" / "specs" / "segmentation.yaml"
WIREMOCK_PACKAGE = ("wiremock", "3.13.2")
PRISM_PACKAGE = ("@stoplight/prism-cli", "5.16.0")
NPM_TIMEOUT_S = 600
PRISM_JOBS = "/export/jobs"  # segmentation.yaml's paths are relative to its base path, /data/core/ups
STUB_JOB_ID = 24115


@dataclass(frozen=True)
class Peer:
    """A peer server: how to start it on `port`, and the paths the benchmark loads on it."""

    name: str  # wiremock | prism
    title: str  # shown in the table
    version: str
    port: int
    argv: tuple[str, ...]
    get_path: str  # a job GET (also the readiness check: ready when it answers 200)
    post_path: str  # a job create


@dataclass(frozen=True)
class Peers:
    ready: tuple[Peer, ...]
    skipped: dict[str, str]  # name -> why it is not measured

    def to_json(self) -> dict[str, Any]:
        return {
            "measured": {p.name: {"title": p.title, "version": p.version} for p in self.ready},
            "skipped": self.skipped,
        }


def prepare() -> Peers:
    """Install what is missing and describe each peer that can run, each on a free port."""
    skipped: dict[str, str] = {}
    if shutil.which("npm") is None or shutil.which("node") is None:
        reason = "npm and node are needed to install the peers (Debian: apt-get install nodejs npm)"
        return Peers((), {"wiremock": reason, "prism": reason})
    wanted = [WIREMOCK_PACKAGE, PRISM_PACKAGE]
    missing = [f"{name}@{version}" for name, version in wanted if installed_version(name) != version]
    if missing:
        CACHE.mkdir(exist_ok=True)
        log(f"installing {', '.join(missing)} from the npm registry into {CACHE}")
        argv = ["npm", "install", "--prefix", str(CACHE), "--no-audit", "--no-fund", *missing]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=NPM_TIMEOUT_S, check=False)
        if done.returncode != 0:
            tail = " / ".join(done.stderr.strip().splitlines()[-2:])[:300]
            reason = f"npm install failed (exit {done.returncode}): {tail}"
            return Peers((), {"wiremock": reason, "prism": reason})
    ready: list[Peer] = []
    for name, describe in (("wiremock", wiremock), ("prism", prism)):
        peer = describe(free_port())
        if isinstance(peer, str):
            skipped[name] = peer
            log(f"skipping {name}: {peer}")
        else:
            ready.append(peer)
    return Peers(tuple(ready), skipped)


def installed_version(package: str) -> str | None:
    manifest = CACHE / "node_modules" / package / "package.json"
    try:
        return str(json.loads(manifest.read_text())["version"])
    except (OSError, ValueError, KeyError):
        return None


def wiremock(port: int) -> Peer | str:
    """The standalone jar with the job stub, or why it cannot run."""
    if shutil.which("java") is None:
        return "WireMock needs java (Debian: apt-get install openjdk-17-jre-headless)"
    name, version = WIREMOCK_PACKAGE
    jars = sorted((CACHE / "node_modules" / name / "build").glob("wiremock-standalone-*.jar"))
    if not jars:
        return f"WireMock: no standalone jar in the npm package {name}@{version}"
    root = CACHE / "wiremock-root"
    (root / "mappings").mkdir(parents=True, exist_ok=True)
    (root / "mappings" / "export-job.json").write_text(json.dumps(wiremock_stub(), indent=2))
    argv = (
        "java", "-jar", str(jars[-1]), "--port", str(port), "--bind-address", HOST,
        "--root-dir", str(root), "--disable-banner",
    )  # fmt: skip
    title = f"WireMock {version} (stub)"
    return Peer("wiremock", title, version, port, argv, f"{JOBS}/{STUB_JOB_ID}", JOBS)


def wiremock_stub() -> dict[str, Any]:
    """Two stub mappings shaped like the export job calls, answering the floor's job document."""
    body = json.dumps(DOCUMENT, separators=(",", ":"))
    headers = {"Content-Type": "application/json"}
    return {
        "mappings": [
            {
                "request": {"method": "GET", "urlPathPattern": f"{JOBS}/[0-9]+"},
                "response": {"status": 200, "headers": headers, "body": body},
            },
            {
                "request": {"method": "POST", "urlPath": JOBS},
                "response": {
                    "status": 200,
                    "headers": {**headers, "X-Location": f"{JOBS}/{STUB_JOB_ID}"},
                    "body": body,
                },
            },
        ]
    }


def prism(port: int) -> Peer | str:
    """Prism mocking segmentation.yaml, or why it cannot run."""
    if not SPEC.is_file():
        return f"Prism: Adobe's segmentation.yaml is not at {SPEC} (a checkout of shared/ beside the repo)"
    name, version = PRISM_PACKAGE
    cli = CACHE / "node_modules" / ".bin" / "prism"
    if not cli.exists():
        return f"Prism: {cli} is missing after installing {name}@{version}"
    local = CACHE / "segmentation.local.yaml"
    local.write_text(yaml.dump(offline_document(SPEC), Dumper=yaml.SafeDumper, sort_keys=False))
    argv = (str(cli), "mock", "--host", HOST, "--port", str(port), "--verboseLevel", "warn", str(local))
    title = f"Prism {version} (segmentation.yaml)"
    return Peer("prism", title, version, port, argv, f"{PRISM_JOBS}/1", PRISM_JOBS)


class _TextTimestamps(yaml.SafeLoader):
    """YAML without the timestamp type: a date in an example stays the string it was written as."""


_TextTimestamps.yaml_implicit_resolvers = {
    first: [(tag, regex) for tag, regex in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def offline_document(path: Path) -> Any:
    """The OpenAPI document with every remote `$ref` (an `https://` URL, found in examples) renamed."""
    document = yaml.load(path.read_text(), Loader=_TextTimestamps)  # a SafeLoader
    pending = [document]
    while pending:
        node = pending.pop()
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith(("http://", "https://")):
                node["x-ref"] = node.pop("$ref")
            pending.extend(node.values())
        elif isinstance(node, list):
            pending.extend(node)
    return document
