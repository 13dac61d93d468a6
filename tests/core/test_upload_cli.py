"""`portal upload`: the real command against real portal processes — killed mid-run and resumed against R2 on
moto (behind a gate that holds the later parts, so the kill always lands mid-upload), and its failures."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import signal
import uuid

import aiohttp
import pytest

from tests.support.db import create_token, create_user, run_sql
from tests.support.gate import S3Gate
from tests.support.moto import free_port, object_keys, pending_uploads, r2_env, s3_client
from tests.support.portal import PORTAL_BIN, run_portal, start_portal

MiB = 1024 * 1024


async def portal_upload(*args: str, env: dict | None = None) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        str(PORTAL_BIN), "upload", *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**{k: v for k, v in os.environ.items() if not k.startswith("PORTAL_TOKEN")}, **(env or {})})


async def finished(process: asyncio.subprocess.Process) -> tuple[int, str, str]:
    out, err = await asyncio.wait_for(process.communicate(), 120)
    return process.returncode, out.decode(), err.decode()


@pytest.mark.slow
async def test_portal_upload_killed_mid_run_resumes_with_only_the_missing_parts(database_url, moto_endpoint, tmp_path):
    data = os.urandom(3 * 8 * MiB + MiB)  # four parts of 8 MiB, the last 1 MiB
    path = tmp_path / "build-output.tar"
    path.write_bytes(data)
    state = tmp_path / "state.json"
    async with s3_client(moto_endpoint) as s3, S3Gate(moto_endpoint) as gate:
        bucket = f"cli-{uuid.uuid4().hex[:12]}"
        await s3.create_bucket(Bucket=bucket)
        env = {"STORAGE_BACKEND": "r2", **r2_env(gate.url, bucket)}
        portal = await asyncio.to_thread(start_portal, database_url, env)
        try:
            token = create_token(database_url, create_user(database_url))
            args = (str(path), "--base-url", portal.url, "--token", token, "--parallel", "2", "--state", str(state), "--json")
            gate.hold(lambda request: request.method == "PUT" and int(request.query.get("partNumber", 0)) >= 3)
            first = await portal_upload(*args)
            await gate.wait_for(lambda: gate.parts(200) == [1, 2] and gate.holding() == [3, 4])
            first.send_signal(signal.SIGKILL)
            assert (await finished(first))[0] == -signal.SIGKILL
            gate.drop_held()  # the parts in flight never reach storage: the connection died with the process
            remembered = json.loads(state.read_text())["uploads"]
            (entry,) = remembered.values()
            listed = await s3.list_parts(Bucket=bucket, Key=entry["key"], UploadId=entry["upload_id"])
            assert [p["PartNumber"] for p in listed["Parts"]] == [1, 2]

            before = len(gate.seen)
            code, out, err = await finished(await portal_upload(*args))
            assert code == 0, err
            assert sorted(s.part for s in gate.seen[before:] if s.method == "PUT") == [3, 4]  # only what was missing
            answer = json.loads(out)
            assert answer["key"] == entry["key"]  # the same upload, finished
            artifact = answer["artifact"]
            assert (artifact["name"], artifact["size"]) == ("build-output.tar", len(data))
            assert artifact["sha256"] == hashlib.sha256(data).hexdigest()  # declared by the command
            assert await object_keys(s3, bucket) == [entry["key"]] and await pending_uploads(s3, bucket) == []
            assert run_sql(database_url, "SELECT count(*) FROM direct_uploads") == [(0,)]
            assert json.loads(state.read_text())["uploads"] == {}
            async with aiohttp.ClientSession() as http:
                for _ in range(200):
                    async with http.get(f"{portal.url}/api/artifacts/{artifact['id']}",
                                        headers={"Authorization": f"Bearer {token}"}) as response:
                        shown = await response.json()
                    if shown["verification"] != "unverified":
                        break
                    await asyncio.sleep(0.05)
            assert shown["verification"] == "verified"
        finally:
            portal.stop()
            portal.remove()


@pytest.fixture
def dev_portal(database_url):
    with run_portal(database_url, {"PLAN_FREE_MAX_FILE": "1MiB"}) as process:
        yield process


@pytest.mark.slow
async def test_portal_upload_says_why_it_failed_and_exits_non_zero(dev_portal, database_url, tmp_path):
    token = create_token(database_url, create_user(database_url))
    small, big = tmp_path / "small.txt", tmp_path / "big.bin"
    small.write_bytes(b"hello")
    big.write_bytes(os.urandom(MiB + 1))
    state = ["--state", str(tmp_path / "state.json")]
    url = ["--base-url", dev_portal.url]

    code, out, err = await finished(await portal_upload(str(small), *url, *state))
    assert code == 64 and "--token or PORTAL_TOKEN" in err
    code, out, err = await finished(await portal_upload(str(small), "--base-url", "portal.example.com", "--token", token))
    assert code == 64 and "--base-url" in err
    code, out, err = await finished(await portal_upload(str(small), str(tmp_path / "missing.bin"), *url, "--token", token, *state))
    assert code == 66 and "missing.bin: no such file" in err
    assert run_sql(database_url, "SELECT count(*) FROM artifacts") == [(0,)]  # nothing was sent
    code, out, err = await finished(await portal_upload(str(big), str(small), *url, "--token", token, *state))
    assert code == 1
    assert "big.bin: the file is larger than the free plan's per-file limit of 1 MiB" in err
    assert "small.txt: uploaded as artifact" in out  # the others still go
    code, out, err = await finished(await portal_upload(str(small), *url, "--token", "pt_not-a-real-token", *state))
    assert code == 1 and "sign in, or send an API token" in err
    code, out, err = await finished(await portal_upload(str(small), "--base-url", f"http://127.0.0.1:{free_port()}",
                                                        "--token", token, *state))
    assert code == 1 and "cannot reach the portal" in err
    code, out, err = await finished(await portal_upload(str(small), *url, *state, env={"PORTAL_TOKEN": token}))
    assert code == 0 and "small.txt: uploaded as artifact" in out


def test_a_terminal_shows_a_progress_bar_and_a_pipe_shows_none():
    import io

    from portal_core.upload_cli import Progress

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    terminal, pipe = Terminal(), io.StringIO()
    for stream in (terminal, pipe):
        progress = Progress("a-rather-long-build-artifact-name.tar.gz", stream)
        progress(0, 4 * MiB)
        progress(4 * MiB, 4 * MiB)  # the end is always drawn
        progress.end()
    assert pipe.getvalue() == ""
    last = terminal.getvalue().split("\r")[-1]
    assert last.startswith("a-rather-long-build-artifact-…  [" + "#" * 24 + "] 100%  4.0 MiB / 4.0 MiB  ")
    assert last.rstrip().endswith("/s") and terminal.getvalue().endswith("\n")


async def test_portal_upload_refuses_a_parallelism_below_one(tmp_path):
    path = tmp_path / "a.txt"
    path.write_bytes(b"a")
    code, _out, err = await finished(await portal_upload(str(path), "--base-url", "http://127.0.0.1:9", "--token", "t",
                                                         "--parallel", "0"))
    assert code == 64 and "--parallel must be 1 or more" in err
