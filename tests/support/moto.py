"""A real S3 server for tests: moto in server mode on 127.0.0.1, from its own venv (tests/setup.d/r2.sh).

``moto_endpoint`` (session scope) starts one server and stops it by PID at the end; each test makes
its own bucket (``s3_bucket``), so tests never see each other's objects. ``r2_settings_env`` gives the
environment variables that point the r2 plugin at it.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
MOTO_SERVER = REPO / ".venvs" / "moto" / "bin" / "moto_server"
# moto accepts any credentials; these only have to look like keys.
ACCESS_KEY_ID = "test-access-key"
SECRET_ACCESS_KEY = "test-secret-key"
REGION = "us-east-1"  # moto refuses CreateBucket in R2's "auto" region


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class MotoServer:
    """One moto_server process on 127.0.0.1; ``start()`` waits until it answers, ``stop()`` ends it."""

    def __init__(self, log_path: Path, *, env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self.env = env or {}  # e.g. MOTO_DISABLE_GLOBAL_CORS=true: then only a bucket's own CORS rules apply
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30.0) -> None:
        if not os.access(MOTO_SERVER, os.X_OK):
            pytest.fail(f"{MOTO_SERVER} is missing: run tests/setup.d/r2.sh to install moto", pytrace=False)
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                [str(MOTO_SERVER), "-H", "127.0.0.1", "-p", str(self.port)],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env={**os.environ, **self.env})
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"moto_server exited with status {self.process.returncode}:\n{self.output()}\n"
                            "run tests/setup.d/r2.sh to (re)install moto", pytrace=False)
            try:
                with urllib.request.urlopen(f"{self.endpoint}/moto-api/", timeout=1):
                    return
            except (urllib.error.URLError, OSError):
                time.sleep(0.1)
        self.stop()
        pytest.fail(f"moto_server did not answer on {self.endpoint} within {timeout:g}s:\n{self.output()}", pytrace=False)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:] if self.log_path.exists() else ""


@pytest.fixture(scope="session")
def moto_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The URL of a moto S3 server running for the whole test session."""
    server = MotoServer(tmp_path_factory.mktemp("moto") / "moto_server.log")
    try:
        server.start()
        yield server.endpoint
    finally:
        server.stop()


@contextlib.asynccontextmanager
async def s3_client(endpoint: str) -> AsyncIterator[object]:
    """A plain aiobotocore S3 client for the test's own look at the bucket (listing, HeadObject…)."""
    from aiobotocore.session import AioSession

    from portal_plugins.r2.storage import botocore_config

    async with AioSession().create_client(
        "s3", endpoint_url=endpoint, region_name=REGION, aws_access_key_id=ACCESS_KEY_ID,
        aws_secret_access_key=SECRET_ACCESS_KEY, config=botocore_config(addressing_style="path"),
    ) as client:
        yield client


@pytest.fixture
async def s3(moto_endpoint: str) -> AsyncIterator[object]:
    """An aiobotocore client on the moto server."""
    async with s3_client(moto_endpoint) as client:
        yield client


@pytest.fixture
async def s3_bucket(s3: object) -> str:
    """A fresh, empty bucket for this test."""
    name = f"test-{uuid.uuid4().hex[:20]}"
    await s3.create_bucket(Bucket=name)
    return name


def r2_env(endpoint: str, bucket: str) -> dict[str, str]:
    """Environment variables pointing the r2 plugin at ``bucket`` on the moto server."""
    return {
        "R2_ACCOUNT_ID": "test-account",
        "R2_ACCESS_KEY_ID": ACCESS_KEY_ID,
        "R2_SECRET_ACCESS_KEY": SECRET_ACCESS_KEY,
        "R2_BUCKET_NAME": bucket,
        "R2_ENDPOINT_URL": endpoint,
        "R2_REGION": REGION,
    }


async def object_keys(client: object, bucket: str) -> list[str]:
    """Every key in ``bucket``."""
    answer = await client.list_objects_v2(Bucket=bucket)
    return [item["Key"] for item in answer.get("Contents", [])]


async def pending_uploads(client: object, bucket: str) -> list[str]:
    """Keys of multipart uploads started in ``bucket`` and neither completed nor aborted."""
    answer = await client.list_multipart_uploads(Bucket=bucket)
    return [item["Key"] for item in answer.get("Uploads", [])]


async def object_exists(client: object, bucket: str, key: str) -> bool:
    """Whether HeadObject finds ``key``."""
    from botocore.exceptions import ClientError

    try:
        await client.head_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        if exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 404:
            return False
        raise
    return True
