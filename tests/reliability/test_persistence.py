"""`--state-file`: state saved atomically on shutdown and every --save-interval seconds, loaded on start;
a corrupt or incompatible file stops the start with one line, and is left as it was."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from emulator import persistence
from emulator.api.common import BACKEND
from emulator.app import create_app
from emulator.backend import Backend
from emulator.options import Options
from emulator.persistence import StateError
from tests.conftest import OTHER_ORG, START_MS, Aep, aep_headers, assert_matches
from tests.reliability.conftest import Start, launch, request

JOBS = "/data/core/ups/export/jobs"
DATASETS = "/data/foundation/catalog/dataSets"
BATCHES = "/data/foundation/catalog/batches"
MINE = """\
name: mine
description: uploaded during the test
steps:
  - status: NEW
  - status: PROCESSING
    after: {polls: 2}
  - status: FAILED
    after: {polls: 1}
    errors:
      - {code: "42", msg: "it broke", callStack: here}
faults:
  - {operation: get_job, times: 1, respond: {status: 503}}
"""
MINE_AGAIN = MINE.replace("uploaded during the test", "uploaded again").replace("polls: 2", "polls: 9")


def options(path: Path, **more: Any) -> Options:
    return Options(clock="manual", start_time_ms=START_MS, state_file=path, **more)


async def build_every_kind_of_state(aep: Aep) -> None:
    """Datasets, jobs in every status, faults fired, deleted jobs whose batches stay, tokens, uploaded
    (and re-uploaded) scenarios, a default and a queue, and a clock moved forward."""
    client = aep.client
    other = Aep(client, org=OTHER_ORG, sandbox="dev")
    dataset_id = await aep.create_dataset(name="first", fileDescription={"format": "json"})
    other_dataset = await other.create_dataset(name="theirs")
    assert (await client.post("/_emulator/scenarios", data=MINE.encode())).status == 201
    mine = await aep.create_job(dataset_id, headers={"x-emulator-scenario": "mine"})
    assert (await client.get(f"{JOBS}/{mine['id']}", headers=aep.headers())).status == 503  # fault fired
    await aep.get_job(mine["id"])  # one poll counted toward PROCESSING
    assert (await client.post("/_emulator/scenarios", data=MINE_AGAIN.encode())).status == 201
    segments = {"segments": [{"segmentId": "a"}, {"segmentId": "b", "status": ["exited"]}]}
    per_segment = await aep.create_job(
        dataset_id, filter=segments, destination={"datasetId": dataset_id, "segmentPerBatch": True}
    )
    for _ in range(2):
        await aep.get_job(per_segment["id"])  # SUCCEEDED
    done = await aep.create_job(dataset_id)
    await aep.get_job(done["id"])
    await aep.get_job(done["id"])
    await aep.call("DELETE", f"{JOBS}/{done['id']}", status=200, schema="export-job.cancel.response")
    stuck = await aep.create_job(dataset_id, headers={"x-emulator-scenario": "stuck"})
    await aep.call("DELETE", f"{JOBS}/{stuck['id']}", status=200, schema="export-job.cancel.response")
    failing = await other.create_job(other_dataset, headers={"x-emulator-scenario": "failure"})
    await other.get_job(failing["id"])
    forced = await other.create_job(other_dataset, headers={"x-emulator-scenario": "slow"})
    force = await client.post(f"/_emulator/jobs/{forced['id']}/force", json={"status": "PROCESSING"})
    assert force.status == 200
    flaky = await other.create_job(other_dataset, headers={"x-emulator-scenario": "flaky-gateway"})
    await client.get(f"{JOBS}/{flaky['id']}", headers=other.headers())
    await client.get(JOBS, headers=other.headers())
    for client_id in ("one", "two"):
        form = {
            "grant_type": "client_credentials",
            "client_id": client_id,
            "client_secret": "s",
            "scope": "o",
        }
        assert (await client.post("/ims/token/v3", data=form)).status == 200
    assert (await client.put("/_emulator/scenarios/default", json={"name": "mine"})).status == 200
    assert (await client.post("/_emulator/scenarios/next", json={"name": "stuck", "count": 2})).status == 200
    await aep.advance(90.5)


async def observe(aep: Aep) -> dict[str, Any]:
    """What clients see, without changing anything (no job GET: that would count a poll)."""
    client = aep.client
    seen: dict[str, Any] = {}
    for name, tenant in (("mine", aep), ("theirs", Aep(client, org=OTHER_ORG, sandbox="dev"))):
        seen[name] = {
            "datasets": await tenant.call("GET", DATASETS, status=200, schema="dataset.map.response"),
            "batches": await tenant.call("GET", BATCHES, status=200, schema="batch.map.response"),
            "jobs": await tenant.call(
                "GET", f"{JOBS}?limit=100", status=200, schema="export-job.list.response"
            ),
        }
    for path, schema in (
        ("/_emulator/jobs?all=true", "control.jobs.response"),
        ("/_emulator/clock", "control.clock.response"),
        ("/_emulator/scenarios", "control.scenarios.response"),
    ):
        response = await client.get(path)
        seen[path] = await response.json()
        assert_matches(schema, seen[path])
    return seen


async def test_every_kind_of_object_survives_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    first_backend = Backend(options(path))
    async with TestClient(TestServer(create_app(options(path), first_backend))) as client:
        aep = Aep(client)
        await build_every_kind_of_state(aep)
        before = await observe(aep)
    # Shutting the app down saved it; a new emulator loads it.
    assert path.exists()
    loaded = Backend(options(path))
    assert loaded.state() == first_backend.state()
    loaded.close()  # lets the next emulator take the state file
    async with TestClient(TestServer(create_app(options(path)))) as client:
        aep = Aep(client)
        assert await observe(aep) == before
        # ... and carries on exactly as the first one would have: polls, faults, ids, tokens, queue.
        after = await continue_from(aep)
    async with TestClient(TestServer(create_app(Options(clock="manual"), first_backend))) as client:
        assert await continue_from(Aep(client)) == after


async def continue_from(aep: Aep) -> list[Any]:
    """Operations whose answers depend on everything restored."""
    client = aep.client
    answers: list[Any] = []
    mine = next(
        job["job"]
        for job in (await (await client.get("/_emulator/jobs?all=true")).json())["jobs"]
        if job["scenario"] == "mine"
    )
    for _ in range(3):
        response = await client.get(f"{JOBS}/{mine['id']}", headers=aep.headers())
        answers.append((response.status, (await response.json()).get("status")))
    dataset_id = await aep.create_dataset(name="after")
    answers.append(dataset_id)
    queued = await aep.create_job(dataset_id)
    answers.append((queued["id"], queued["destination"]["batchId"]))
    jobs = (await (await client.get("/_emulator/jobs?all=true")).json())["jobs"]
    answers.append(
        sorted((j["job"]["id"], j["scenario"], j["pollsInStep"], j["job"]["status"]) for j in jobs)
    )
    answers.append((await (await client.get("/_emulator/scenarios")).json())["queued"])
    return answers


async def test_a_job_keeps_the_scenario_it_was_created_with(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    async with TestClient(TestServer(create_app(options(path)))) as client:
        aep = Aep(client)
        await client.post("/_emulator/scenarios", data=MINE.encode())
        dataset_id = await aep.create_dataset()
        old = await aep.create_job(dataset_id, headers={"x-emulator-scenario": "mine"})
        await client.post("/_emulator/scenarios", data=MINE_AGAIN.encode())
    async with TestClient(TestServer(create_app(options(path)))) as client:
        aep = Aep(client)
        await client.get(f"{JOBS}/{old['id']}", headers=aep.headers())  # its fault: 503
        await aep.get_job(old["id"])
        # The first upload said PROCESSING after 2 polls; the second one would say 9.
        assert (await aep.get_job(old["id"]))["status"] == "PROCESSING"
        listed = await (await client.get("/_emulator/scenarios")).json()
        mine = next(s for s in listed["scenarios"] if s["name"] == "mine")
        assert mine["description"] == "uploaded again"


def test_the_state_is_plain_json_and_restores_to_the_same(tmp_path: Path) -> None:
    backend = Backend(Options(clock="manual", start_time_ms=START_MS))
    state = backend.state()
    assert json.loads(json.dumps(state)) == state
    again = Backend(Options(clock="manual", start_time_ms=START_MS + 5))
    again.restore(json.loads(json.dumps(state)))
    assert again.state() == state


def test_a_failed_restore_changes_nothing(tmp_path: Path) -> None:
    backend = Backend(Options(clock="manual", start_time_ms=START_MS))
    state = backend.state()
    # Good parts for every component but the last one restored (the catalog), which is malformed.
    state["clock"]["advancedMs"] = 5000
    state["tokens"] = [{"value": "t", "clientId": "c", "expiresMs": START_MS + 1, "orgs": None}]
    state["scenarios"]["default"] = "failure"
    state["jobs"]["lastJobId"] = 99
    state["catalog"]["tenants"] = [{"org": "o", "sandbox": "s", "datasets": [], "batches": [{}]}]
    before = backend.state()
    with pytest.raises(StateError, match="malformed"):
        backend.restore(state)
    assert backend.state() == before


def test_the_file_is_written_atomically_and_privately(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    path.write_text("old")
    persistence.write_atomic(path, b'{"new": true}')
    assert path.read_bytes() == b'{"new": true}'
    assert os.stat(path).st_mode & 0o777 == 0o600  # it holds tokens
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.json"]  # no temporary left


# -- the standalone server -----------------------------------------------------------------------------


def create_things(url: str, name: str, jobs: int) -> None:
    headers = aep_headers()
    status, created = request(url, "POST", DATASETS, {"name": name}, **headers)
    assert status == 201
    dataset_id = created[0].rsplit("/", 1)[1]
    for _ in range(jobs):
        body = {"destination": {"datasetId": dataset_id}, "schema": {"name": "s"}}
        status, job = request(url, "POST", JOBS, body, **headers)
        assert status == 200
        assert_matches("export-job.response", job)


def dataset_names(url: str) -> list[str]:
    status, datasets = request(url, "GET", DATASETS, **aep_headers())
    assert status == 200
    assert_matches("dataset.map.response", datasets)
    return sorted(d["name"] for d in datasets.values())


def test_sigterm_saves_and_the_next_start_loads(serve: Start, tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    first = serve("--clock", "manual", "--state-file", str(path), "--save-interval", "3600")
    create_things(first.url, "kept", 2)
    assert first.stop(signal.SIGTERM) == 0
    second = serve("--clock", "manual", "--state-file", str(path))
    assert dataset_names(second.url) == ["kept"]
    status, listed = request(second.url, "GET", JOBS, **aep_headers())
    assert status == 200 and len(listed["records"]) == 2
    assert second.stop(signal.SIGINT) == 0


def test_sigkill_keeps_what_was_saved_and_loses_what_came_after(serve: Start, tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    # Saves every 50 ms: wait (on its log, no sleeping) for a save that holds both datasets and 3 jobs.
    saving = serve(
        "--clock", "manual", "--state-file", str(path), "--save-interval", "0.05", "--log-level", "INFO"
    )
    create_things(saving.url, "before the save", 2)
    create_things(saving.url, "also before", 1)
    saving.wait_for_stderr(r"state saved to .*: 2 datasets, 3 jobs, 3 batches")
    saving.stop(signal.SIGKILL)
    saved = path.read_bytes()

    # Saves hardly ever: what it does after loading is lost when it is killed.
    lazy = serve("--clock", "manual", "--state-file", str(path), "--save-interval", "3600")
    assert dataset_names(lazy.url) == ["also before", "before the save"]
    create_things(lazy.url, "after the save", 4)
    assert dataset_names(lazy.url) == ["after the save", "also before", "before the save"]
    lazy.stop(signal.SIGKILL)
    assert path.read_bytes() == saved  # untouched, not half-written

    third = serve("--clock", "manual", "--state-file", str(path))
    assert dataset_names(third.url) == ["also before", "before the save"]
    status, listed = request(third.url, "GET", JOBS, **aep_headers())
    assert status == 200 and len(listed["records"]) == 3
    assert third.stop() == 0


def test_a_temporary_file_left_by_a_killed_write_is_removed(serve: Start, tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    stale = tmp_path / ".state.json.abc123.tmp"
    stale.write_bytes(b'{"half": ')
    server = serve("--clock", "manual", "--state-file", str(path))
    assert not stale.exists()
    assert server.stop() == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.json", "state.json.lock"]


def saved_state(tmp_path: Path, *args: str) -> bytes:
    """A real state file, written by a server with `args`."""
    path = tmp_path / "good.json"
    served = launch("--clock", "manual", "--state-file", str(path), *args)
    assert served.url
    create_things(served.url, "x", 1)
    assert served.stop() == 0
    served.process.communicate(timeout=60)
    return path.read_bytes()


def refused(path: Path, *args: str) -> str:
    """The one error line of a start refused because of the state file."""
    served = launch("--clock", "manual", "--state-file", str(path), *args)
    assert not served.url, "the server started"
    _, stderr = served.process.communicate(timeout=60)
    lines = stderr.decode().splitlines()
    assert served.process.returncode == 2, lines
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"aep-emulator: error: state file {path}: ")
    return lines[0]


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"\x00\x01garbage", "not valid JSON"),
        (b"", "empty"),
        (b'{"format": "aep-emulator-state", "version": 1, "tenants": ', "not valid JSON"),
        (b"[1, 2, 3]", "not an aep-emulator state file"),
        (b'{"something": "else"}', "not an aep-emulator state file"),
        (b'{"format": "aep-emulator-state", "version": 999}', "version 999 is not supported"),
        (b'{"format": "aep-emulator-state", "version": "1"}', "version '1' is not supported"),
        (b'{"format": "aep-emulator-state", "version": 1}', "version 1 is not supported"),
        (b'{"format": "aep-emulator-state", "version": 2}', "malformed"),
        (b'{"format": "aep-emulator-state", "version": 2, "compatibility": {}}', "malformed"),
    ],
)
def test_a_corrupt_or_incompatible_file_is_a_one_line_error_and_is_kept(
    tmp_path: Path, content: bytes, reason: str
) -> None:
    path = tmp_path / "state.json"
    path.write_bytes(content)
    assert reason in refused(path)
    assert path.read_bytes() == content  # never silently discarded


def test_a_truncated_real_file_is_refused(tmp_path: Path) -> None:
    good = saved_state(tmp_path)
    path = tmp_path / "state.json"
    path.write_bytes(good[: len(good) // 2])
    assert "not valid JSON" in refused(path)
    tampered = json.loads(good)
    tampered["state"]["jobs"]["tenants"][0]["jobs"][0]["scenario"] = 99  # no such saved scenario
    path.write_text(json.dumps(tampered))
    assert "malformed" in refused(path)


@pytest.mark.parametrize(
    ("saved_with", "started_with", "flag"),
    [
        (["--seed", "1"], ["--seed", "2"], "--seed"),
        (["--speed", "2"], [], "--speed"),
    ],
)
def test_a_file_saved_with_other_options_is_refused(
    tmp_path: Path, saved_with: list[str], started_with: list[str], flag: str
) -> None:
    path = tmp_path / "state.json"
    path.write_bytes(saved_state(tmp_path, *saved_with))
    assert flag in refused(path, *started_with)


def test_a_missing_folder_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "nowhere" / "state.json"
    assert "does not exist" in refused(path)


def test_the_state_file_flag_has_its_environment_variable(serve: Start, tmp_path: Path) -> None:
    from tests.reliability.conftest import clean_env

    path = tmp_path / "state.json"
    env = clean_env(
        AEP_EMULATOR_STATE_FILE=str(path), AEP_EMULATOR_SAVE_INTERVAL="3600", AEP_EMULATOR_CLOCK="manual"
    )
    server = serve(env=env)
    create_things(server.url, "via env", 0)
    assert server.stop() == 0
    state = json.loads(path.read_bytes())["state"]
    assert state["catalog"]["tenants"][0]["datasets"][0]["body"] == {"name": "via env"}


async def test_the_backend_of_an_app_with_a_state_file_is_the_restored_one(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    async with TestClient(TestServer(create_app(options(path)))) as client:
        await Aep(client).create_dataset(name="one")
    app = create_app(options(path))
    datasets = [
        d.body["name"] for state in app[BACKEND].store.tenants.values() for d in state.datasets.values()
    ]
    assert datasets == ["one"]


def test_a_real_clock_comes_back_as_if_it_had_kept_running() -> None:
    """A manual clock comes back where it was; a real one also counts the time the emulator was down."""
    backend = Backend(Options(clock="real", speed=10, start_time_ms=START_MS))
    backend.clock.advance(100)
    state = backend.state()
    # Saved one minute ago, when the clock had run 5 s (emulator time, 0.5 s of wall time) since its start.
    state["clock"]["startedWallMs"] = int(time.time() * 1000) - 60_000 - 500
    restored = Backend(Options(clock="real", speed=10))
    restored.restore(state)
    expected = START_MS + 100_000 + 5_000 + 60_000 * 10
    slack = 300_000  # 30 s of wall time at speed 10, for a slow machine
    assert expected <= restored.clock.now_ms() < expected + slack
    restored.clock.reset()  # forgets the advance, keeps the time that ran
    assert expected - 100_000 <= restored.clock.now_ms() < expected - 100_000 + slack


# -- issue 12: what is not a state file, crafted files, a second server, symbolic links ----------------


@pytest.mark.parametrize("kind", ["device", "fifo", "folder"])
def test_what_is_not_a_regular_file_is_refused_unread(tmp_path: Path, kind: str) -> None:
    """`--state-file /dev/zero` used to read forever (5.7 GB after 7 s); a FIFO would wait for a writer."""
    path = Path("/dev/zero")
    if kind == "fifo":
        path = tmp_path / "state.fifo"
        os.mkfifo(path)
    elif kind == "folder":
        path = tmp_path / "folder"
        path.mkdir()
    assert "not a regular file" in refused(path)


def test_a_file_over_the_size_limit_is_refused_unread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "state.json"
    path.write_bytes(b" " * 2048)
    monkeypatch.setattr(persistence, "MAX_STATE_FILE_BYTES", 1024)
    with pytest.raises(StateError, match=f"state file {path}: 2048 bytes, over the limit of 1024 bytes"):
        Backend(options(path))


def tamper(good: bytes, change: Any) -> bytes:
    document = json.loads(good)
    change(document["state"])
    return json.dumps(document).encode()


def first_job(state: dict[str, Any]) -> dict[str, Any]:
    return dict(state["jobs"]["tenants"][0]["jobs"][0])


def _set(path: list[Any], value: Any) -> Any:
    def change(state: dict[str, Any]) -> None:
        target: Any = state
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return change


JOB = ["jobs", "tenants", 0, "jobs", 0]
CRAFTED = {
    "dataset name is a number": _set(["catalog", "tenants", 0, "datasets", 0, "body", "name"], 5),
    "job's datasetId is a number": _set([*JOB, "request", "destination", "datasetId"], 5),
    "unknown status": _set([*JOB, "progress", "transitions", 0, 0], "BOGUS"),
    "instant past year 9999": _set([*JOB, "progress", "transitions", 0, 1], 10**17),
    "negative clock": _set(["clock", "startMs"], -5),
    "clock past year 9999": _set(["clock", "advancedMs"], 10**15),
    "step past the scenario": _set([*JOB, "progress", "step"], 7),
    "job id past lastJobId": _set(["jobs", "lastJobId"], 0),
    "batch of a missing dataset": _set(["catalog", "tenants", 0, "batches", 0, "datasetId"], "nope"),
    "job of a missing dataset": _set([*JOB, "request", "destination", "datasetId"], "nope"),
    "a string for a count": _set([*JOB, "progress", "pollsInStep"], "7"),
    "an unknown key": _set([*JOB, "extra"], 1),
    "absurd speed": lambda state: None,  # see the compatibility below
}


@pytest.mark.parametrize("case", sorted(CRAFTED))
def test_a_crafted_file_is_refused_at_load_not_answered_with_500s_later(tmp_path: Path, case: str) -> None:
    """Each of these used to load, then make requests answer 500 (or silently misbehave)."""
    good = saved_state(tmp_path)
    path = tmp_path / "state.json"
    crafted = tamper(good, CRAFTED[case])
    if case == "absurd speed":
        document = json.loads(crafted)
        document["compatibility"]["speed"] = 1e308
        crafted = json.dumps(document).encode()
    path.write_bytes(crafted)
    assert "malformed" in refused(path)
    assert path.read_bytes() == crafted  # kept as it was


def test_a_second_server_on_the_same_file_is_refused(serve: Start, tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    first = serve("--clock", "manual", "--state-file", str(path), "--save-interval", "3600")
    create_things(first.url, "first", 1)
    line = refused(path)
    assert "in use by another running aep-emulator" in line
    create_things(first.url, "still first", 0)
    assert first.stop() == 0
    # Once the first has stopped, the file is free again, and holds everything the first one made.
    second = serve("--clock", "manual", "--state-file", str(path))
    assert dataset_names(second.url) == ["first", "still first"]
    assert second.stop() == 0


async def test_two_apps_in_one_process_cannot_share_a_state_file(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    async with TestClient(TestServer(create_app(options(path)))) as client:
        await Aep(client).create_dataset(name="one")
        with pytest.raises(StateError, match="in use by another running aep-emulator"):
            Backend(options(path))
    Backend(options(path)).close()  # the app's shutdown released it


def test_a_symbolic_link_is_followed_and_stays_a_link(serve: Start, tmp_path: Path) -> None:
    """Saves replace the link's target, atomically in the target's folder; the link keeps pointing at it."""
    (tmp_path / "real").mkdir()
    target = tmp_path / "real" / "state.json"
    link = tmp_path / "link.json"
    link.symlink_to(target)  # dangling until the first save
    first = serve("--clock", "manual", "--state-file", str(link), "--save-interval", "3600")
    create_things(first.url, "through the link", 0)
    assert first.stop() == 0
    assert link.is_symlink() and link.resolve() == target
    assert json.loads(target.read_bytes())["format"] == "aep-emulator-state"
    assert sorted(p.name for p in (tmp_path / "real").iterdir()) == ["state.json", "state.json.lock"]
    again = serve("--clock", "manual", "--state-file", str(link))
    assert dataset_names(again.url) == ["through the link"]
    # The lock is the target's: the same file through its real path is in use.
    assert "in use" in refused(target)
    assert again.stop() == 0
