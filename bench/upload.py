"""Benchmark 2: POST /api/artifacts of 256 MiB through the portal into S3 (moto) against a direct PUT.

The portal runs with STORAGE_BACKEND=r2 pointed at a moto server on 127.0.0.1; the floor is one plain
HTTP PUT of the same bytes (aiohttp, unsigned — moto does not check signatures) to the same moto. Both
are sent by the same aiohttp client from memory. Throughput is size / (request sent → answer read).
The portal's memory growth is VmHWM after the upload minus VmRSS before it, with the peak reset
(/proc/<pid>/clear_refs "5") just before.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
import uuid
from pathlib import Path

import aiohttp

from tests.support.moto import s3_client

from .harness import BenchError, Figure, Row, cpu_seconds, paired_ratio, r2_portal, reset_peak_rss, status_kb

MiB = 1024 * 1024
SIZE = 256 * MiB
PART_SIZE = 8 * MiB  # the r2 plugin's default R2_PART_SIZE
BUDGET = 0.8
RSS_BUDGET_MB = 64
TIMEOUT = aiohttp.ClientTimeout(total=300)


async def direct_put(session: aiohttp.ClientSession, endpoint: str, bucket: str, body: bytes) -> float:
    """Seconds for one plain PUT of ``body`` to moto (the object is deleted afterwards)."""
    url = f"{endpoint}/{bucket}/direct-{uuid.uuid4().hex}"
    started = time.perf_counter()
    async with session.put(url, data=body, headers={"Content-Type": "application/octet-stream"}) as response:
        await response.read()
        elapsed = time.perf_counter() - started
        if response.status != 200:
            raise BenchError(f"direct PUT to moto answered {response.status}: {await response.text()}")
    async with session.delete(url) as response:
        await response.read()
    return elapsed


async def direct_multipart(s3, bucket: str, body: bytes) -> float:
    """Seconds for a multipart upload of ``body`` straight to moto with aiobotocore, parts of PART_SIZE sent
    one after the other: what moto needs for the upload shape the portal must use (deleted afterwards)."""
    key = f"multipart-{uuid.uuid4().hex}"
    started = time.perf_counter()
    upload_id = (await s3.create_multipart_upload(Bucket=bucket, Key=key))["UploadId"]
    parts = []
    for number, offset in enumerate(range(0, len(body), PART_SIZE), start=1):
        answer = await s3.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number,
                                      Body=body[offset:offset + PART_SIZE])
        parts.append({"PartNumber": number, "ETag": answer["ETag"]})
    await s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts})
    elapsed = time.perf_counter() - started
    await s3.delete_object(Bucket=bucket, Key=key)
    return elapsed


async def portal_upload(session: aiohttp.ClientSession, portal, token: str, body: bytes) -> tuple[float, int, float]:
    """Seconds for one upload through the portal, its RSS growth in kB (peak minus start), its CPU seconds."""
    form = aiohttp.FormData()
    form.add_field("file", body, filename="bench.bin", content_type="application/octet-stream")
    reset_peak_rss(portal.pid)
    before = status_kb(portal.pid, "VmRSS")
    cpu = cpu_seconds(portal.pid)
    started = time.perf_counter()
    async with session.post(portal.url + "/api/artifacts", data=form,
                            headers={"Authorization": f"Bearer {token}"}) as response:
        answer = await response.json(content_type=None)
        elapsed = time.perf_counter() - started
    growth = status_kb(portal.pid, "VmHWM") - before
    cpu = cpu_seconds(portal.pid) - cpu
    if response.status != 201 or answer.get("size") != len(body):
        raise BenchError(f"portal upload answered {response.status}: {answer}")
    async with session.delete(f"{portal.url}/api/artifacts/{answer['id']}",
                              headers={"Authorization": f"Bearer {token}"}) as response:
        if response.status != 204:
            raise BenchError(f"deleting the uploaded artifact answered {response.status}")
    return elapsed, growth, cpu


async def _measure(runs: int, log, portal, endpoint: str, bucket: str, token: str) -> dict[str, list[float]]:
    body = os.urandom(SIZE)
    got: dict[str, list[float]] = {"direct": [], "multipart": [], "portal": [], "rss": [], "cpu": []}
    async with aiohttp.ClientSession(timeout=TIMEOUT) as session, s3_client(endpoint) as s3:
        # Warm every path (connections, imports, moto's first bucket write) before measuring.
        await direct_put(session, endpoint, bucket, body[:8 * MiB])
        await direct_multipart(s3, bucket, body[:16 * MiB])
        await portal_upload(session, portal, token, body[:16 * MiB])
        for i in range(runs):
            steps = {"direct": lambda: direct_put(session, endpoint, bucket, body),
                     "multipart": lambda: direct_multipart(s3, bucket, body),
                     "portal": lambda: portal_upload(session, portal, token, body)}
            order = list(steps)[i % 3:] + list(steps)[:i % 3]  # rotate who goes first
            for name in order:
                if name == "portal":
                    seconds, kb, cpu = await steps[name]()
                    got["rss"].append(kb / 1024)
                    got["cpu"].append(cpu)
                else:
                    seconds = await steps[name]()
                got[name].append(SIZE / MiB / seconds)
            log(f"  run {i + 1}/{runs}: direct PUT {got['direct'][-1]:.0f} MiB/s, direct multipart "
                f"{got['multipart'][-1]:.0f} MiB/s, portal {got['portal'][-1]:.0f} MiB/s "
                f"(RSS +{got['rss'][-1]:.1f} MB, {got['cpu'][-1]:.2f} s CPU)")
    return got


def run(runs: int, log) -> list[Row]:
    with tempfile.TemporaryDirectory(prefix="bench-moto-") as logs, \
            r2_portal(Path(logs), email="upload@example.com", max_file="1GiB", quota="4GiB") as r2:
        got = asyncio.run(_measure(runs, log, r2.portal, r2.endpoint, r2.bucket, r2.token))
    portal_rate = Figure(tuple(got["portal"]))
    ratio = paired_ratio(got["portal"], got["direct"])
    rss = Figure(tuple(got["rss"]))
    return [
        Row(name="POST /api/artifacts, 256 MiB, r2 → moto", unit="MiB/s", portal=portal_rate,
            floor=Figure(tuple(got["direct"])), floor_name="one plain PUT to the same moto (aiohttp, unsigned)",
            ratio=ratio, budget=f"≥ {BUDGET}× floor", met=ratio.median >= BUDGET),
        Row(name="… the same upload (informative floor)", unit="MiB/s", portal=portal_rate,
            floor=Figure(tuple(got["multipart"])),
            floor_name=f"multipart upload to the same moto (aiobotocore, {PART_SIZE // MiB} MiB parts in turn)",
            ratio=paired_ratio(got["portal"], got["multipart"]), budget="(informative)", met=True),
        Row(name="… the portal's peak RSS growth during it", unit="MB", portal=rss, floor=None, floor_name="",
            ratio=None, budget=f"< {RSS_BUDGET_MB} MB", met=max(rss.values) < RSS_BUDGET_MB, fmt="{:.1f}"),
    ]


SETUP = ("256 MiB of random bytes from memory, one aiohttp client; the portal streams multipart parts of "
         "R2_PART_SIZE (default 8 MiB) to moto; the object/artifact is deleted after each run")
