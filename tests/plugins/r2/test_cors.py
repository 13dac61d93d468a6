"""`portal storage cors [--apply]`, the real command: it prints the bucket CORS rule browsers need for direct
uploads (PUT from APP_BASE_URL, ETag exposed), sets it on the R2 bucket (moto here) with --apply, and exits
non-zero saying why when it cannot."""

from __future__ import annotations

import asyncio
import json
import subprocess
import uuid

import pytest
from botocore.exceptions import ClientError

from tests.support.moto import r2_env
from tests.support.portal import PORTAL_BIN, portal_env


async def portal_storage_cors(tmp_path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    full = portal_env(None, env, 8080, tmp_path / "data")
    full.update(env)
    return await asyncio.to_thread(subprocess.run, [str(PORTAL_BIN), "storage", "cors", *args],
                                   capture_output=True, text=True, env=full, timeout=60)


RULE = {"AllowedOrigins": ["https://portal.example.com"], "AllowedMethods": ["PUT"],
        "AllowedHeaders": ["Content-Type"], "ExposeHeaders": ["ETag"], "MaxAgeSeconds": 3600}


async def test_it_prints_the_rule_for_app_base_url_and_touches_no_bucket(tmp_path, moto_endpoint, s3, s3_bucket):
    env = {"APP_BASE_URL": "https://portal.example.com/some/path/", "STORAGE_BACKEND": "r2",
           **r2_env(moto_endpoint, s3_bucket)}
    done = await portal_storage_cors(tmp_path, env)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"CORSRules": [RULE]}  # the origin only: no path
    with pytest.raises(ClientError) as none:
        await s3.get_bucket_cors(Bucket=s3_bucket)
    assert none.value.response["Error"]["Code"] == "NoSuchCORSConfiguration"


async def test_apply_sets_the_rule_on_the_bucket_replacing_any(tmp_path, moto_endpoint, s3, s3_bucket):
    await s3.put_bucket_cors(Bucket=s3_bucket, CORSConfiguration={"CORSRules": [
        {"AllowedOrigins": ["*"], "AllowedMethods": ["GET"]}]})
    env = {"APP_BASE_URL": "https://portal.example.com", "STORAGE_BACKEND": "r2", **r2_env(moto_endpoint, s3_bucket)}
    done = await portal_storage_cors(tmp_path, env, "--apply")
    assert done.returncode == 0, done.stderr
    assert f"CORS rule set on bucket '{s3_bucket}': PUT from https://portal.example.com, ETag exposed" in done.stdout
    rules = (await s3.get_bucket_cors(Bucket=s3_bucket))["CORSRules"]
    assert [{k: v for k, v in rule.items() if k != "ID"} for rule in rules] == [RULE]  # the GET-from-anywhere one went


async def test_apply_refuses_another_storage_and_a_bucket_it_cannot_reach(tmp_path, moto_endpoint):
    done = await portal_storage_cors(tmp_path, {"APP_BASE_URL": "https://portal.example.com"}, "--apply")
    assert done.returncode == 2
    assert "STORAGE_BACKEND is" in done.stderr and "(STORAGE_BACKEND=r2)" in done.stderr
    missing = f"missing-{uuid.uuid4().hex[:12]}"
    env = {"APP_BASE_URL": "https://portal.example.com", "STORAGE_BACKEND": "r2", **r2_env(moto_endpoint, missing)}
    done = await portal_storage_cors(tmp_path, env, "--apply")
    assert done.returncode == 69, done.stderr
    assert done.stderr.startswith("portal storage cors: ") and missing in done.stderr
