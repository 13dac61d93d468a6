"""Benchmark: a 1 GiB direct upload (/api/s3, parts straight to S3) against a plain aiobotocore multipart upload.

The portal runs with STORAGE_BACKEND=r2 on a moto server on 127.0.0.1. Its side is what `portal upload` runs
(portal_core.direct_client.upload_file): create, presign each part, PUT the parts to moto, complete — with the
file's SHA-256 computed in a thread meanwhile. The floor is an aiobotocore multipart upload of the same file to
the same moto with the same part size (the one the portal hands out for 1 GiB) and the same parallelism.
Throughput is size / (first request → completion answered). The portal process's CPU time over that window
is compared with the window's wall time; the verification that follows (the portal reading the object back
and hashing it) is measured on its own, after the window, and waited for before the next run.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import tempfile
import time
import uuid
from pathlib import Path

import aiohttp

from portal_core.direct_client import DirectClient, upload_file
from tests.support.moto import s3_client

from .harness import BenchError, Figure, Row, cpu_seconds, paired_ratio, r2_portal

MiB = 1024 * 1024
SIZE = 1024 * MiB
PARALLEL = 4
BUDGET = 0.9
CPU_BUDGET = 0.05
MAX_RUNS = 3  # each run moves 3 GiB through moto (floor, portal, verification read)
TIMEOUT = aiohttp.ClientTimeout(total=900)


async def floor_upload(s3, bucket: str, path: Path, part_size: int) -> float:
    """Seconds for an aiobotocore multipart upload of ``path``, PARALLEL parts at a time (deleted afterwards)."""
    key = f"floor-{uuid.uuid4().hex}"
    started = time.perf_counter()
    upload_id = (await s3.create_multipart_upload(Bucket=bucket, Key=key))["UploadId"]
    numbers = list(range(1, (SIZE + part_size - 1) // part_size + 1))
    parts: dict[int, str] = {}

    async def worker() -> None:
        with open(path, "rb") as file:
            while numbers:
                number = numbers.pop(0)
                body = await asyncio.to_thread(os.pread, file.fileno(), part_size, (number - 1) * part_size)
                answer = await s3.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=body)
                parts[number] = answer["ETag"]

    await asyncio.gather(*(worker() for _ in range(PARALLEL)))
    await s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={
        "Parts": [{"PartNumber": n, "ETag": parts[n]} for n in sorted(parts)]})
    elapsed = time.perf_counter() - started
    await s3.delete_object(Bucket=bucket, Key=key)
    return elapsed


async def portal_upload(client: DirectClient, portal, path: Path, sha256: str | None) -> tuple[float, float, float, float]:
    """(seconds, portal CPU seconds during the upload, seconds until verified, portal CPU seconds verifying)."""
    cpu = cpu_seconds(portal.pid)
    started = time.perf_counter()
    answer = await upload_file(client, path, parallel=PARALLEL, sha256=sha256)
    elapsed = time.perf_counter() - started
    cpu = cpu_seconds(portal.pid) - cpu
    artifact = answer["artifact"]
    if artifact["size"] != SIZE:
        raise BenchError(f"the direct upload stored {artifact['size']} bytes, not {SIZE}")
    verify_cpu = cpu_seconds(portal.pid)
    deadline = time.monotonic() + 600
    while (shown := await client.call("GET", f"/api/artifacts/{artifact['id']}"))["verification"] == "unverified":
        if time.monotonic() > deadline:
            raise BenchError("the direct upload was not verified within 10 minutes")
        await asyncio.sleep(0.1)
    verified = time.perf_counter() - started - elapsed
    verify_cpu = cpu_seconds(portal.pid) - verify_cpu
    if shown["verification"] != "verified":
        raise BenchError(f"the direct upload ended {shown['verification']}: {shown['verification_detail']}")
    await client.call("DELETE", f"/api/artifacts/{artifact['id']}")
    return elapsed, cpu, verified, verify_cpu


async def _measure(runs: int, log, portal, endpoint: str, bucket: str, token: str, path: Path) -> dict[str, list[float]]:
    got: dict[str, list[float]] = {k: [] for k in ("floor", "portal", "cpu", "known", "verify", "verify_cpu")}
    sha256 = await asyncio.to_thread(lambda: hashlib.sha256(path.read_bytes()).hexdigest())
    async with aiohttp.ClientSession(timeout=TIMEOUT) as session, s3_client(endpoint) as s3:
        client = DirectClient(session, portal.url, {"Authorization": f"Bearer {token}"})
        created = await client.create("probe.bin", SIZE, "application/octet-stream")
        part_size = int(created["partSize"])
        await client.abort(created["uploadId"], created["key"])
        # Warm both paths (connections, moto's first multipart upload) on a small file.
        warm = path.with_name("warm.bin")
        warm.write_bytes(os.urandom(32 * MiB))
        answer = await upload_file(client, warm, parallel=PARALLEL)
        await client.call("DELETE", f"/api/artifacts/{answer['artifact']['id']}")
        for i in range(runs):
            steps = ["floor", "portal", "known"]
            steps = steps[i % 3:] + steps[:i % 3]
            for step in steps:
                if step == "floor":
                    got["floor"].append(SIZE / MiB / await floor_upload(s3, bucket, path, part_size))
                else:
                    seconds, cpu, verified, verify_cpu = await portal_upload(client, portal, path,
                                                                              sha256 if step == "known" else None)
                    got[step].append(SIZE / MiB / seconds)
                    if step == "portal":
                        got["cpu"].append(cpu / seconds)
                        got["verify"].append(verified)
                        got["verify_cpu"].append(verify_cpu)
            log(f"  run {i + 1}/{runs}: floor {got['floor'][-1]:.0f} MiB/s, portal {got['portal'][-1]:.0f} MiB/s "
                f"(portal CPU {got['cpu'][-1]:.1%} of the upload), SHA-256 known beforehand {got['known'][-1]:.0f} MiB/s, "
                f"verified {got['verify'][-1]:.1f} s later ({got['verify_cpu'][-1]:.1f} s CPU)")
    got["part_size"] = [part_size]
    return got


def run(runs: int, log) -> list[Row]:
    runs = min(runs, MAX_RUNS)
    with tempfile.TemporaryDirectory(prefix="bench-direct-") as scratch_dir, \
            r2_portal(Path(scratch_dir), email="direct@example.com", max_file="2GiB", quota="8GiB") as r2:
        scratch = Path(scratch_dir)
        path = scratch / "one-gib.bin"
        with open(path, "wb") as file:
            for _ in range(SIZE // (64 * MiB)):
                file.write(os.urandom(64 * MiB))
        got = asyncio.run(_measure(runs, log, r2.portal, r2.endpoint, r2.bucket, r2.token, path))
    part = got["part_size"][0] // MiB
    portal_rate = Figure(tuple(got["portal"]))
    ratio = paired_ratio(got["portal"], got["floor"])
    cpu = Figure(tuple(100 * c for c in got["cpu"]))
    return [
        Row(name="direct upload (/api/s3), 1 GiB, r2 → moto", unit="MiB/s", portal=portal_rate,
            floor=Figure(tuple(got["floor"])),
            floor_name=f"aiobotocore multipart upload to the same moto ({part} MiB parts, {PARALLEL} at a time)",
            ratio=ratio, budget=f"≥ {BUDGET}× floor", met=ratio.median >= BUDGET),
        Row(name="… the portal process's CPU time during it, as % of the upload's wall time", unit="%", portal=cpu,
            floor=None, floor_name="", ratio=None, budget=f"< {CPU_BUDGET:.0%}", met=max(cpu.values) < CPU_BUDGET * 100,
            fmt="{:.2f}"),
        Row(name="… the same upload with the SHA-256 known beforehand (informative: no hashing while sending)",
            unit="MiB/s", portal=Figure(tuple(got["known"])), floor=Figure(tuple(got["floor"])),
            floor_name="the same floor", ratio=paired_ratio(got["known"], got["floor"]), budget="(informative)", met=True),
        Row(name="… then verified: the portal reads 1 GiB back and hashes it (seconds after completion)", unit="s",
            portal=Figure(tuple(got["verify"])), floor=None, floor_name="", ratio=None, budget="(informative)",
            met=True, fmt="{:.1f}"),
        Row(name="… the portal's CPU time for that verification", unit="s", portal=Figure(tuple(got["verify_cpu"])),
            floor=None, floor_name="", ratio=None, budget="(informative)", met=True, fmt="{:.1f}"),
    ]


SETUP = (f"1 GiB of random bytes in a file, uploaded {PARALLEL} parts at a time by `portal upload`'s code (hashing the "
         "file meanwhile) and by aiobotocore, to the same moto; at most 3 runs (each moves 3 GiB through moto); the "
         "object/artifact is deleted after each run, and the next run starts only once the portal has verified it")
