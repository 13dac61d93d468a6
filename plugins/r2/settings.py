"""The R2 plugin's settings section. Small on purpose: imported at startup, before anything is selected."""

from __future__ import annotations

import re

import attrs

from portal_core.config import ByteSize, between, setting

MiB = 1024 * 1024
GiB = 1024 * MiB
MIN_PART_SIZE = 5 * MiB  # S3/R2: every part but the last must be at least 5 MiB...
MAX_PART_SIZE = 5 * GiB  # ...and at most 5 GiB (also the largest single PutObject).
MAX_PRESIGN_SECONDS = 7 * 24 * 3600  # SigV4 presigned URLs live at most a week.


def _part_size(value: int) -> str | None:
    if not MIN_PART_SIZE <= value <= MAX_PART_SIZE:
        return "must be between 5MiB and 5GiB (R2's multipart part size limits)"
    return None


def _threshold(value: int) -> str | None:
    if not 0 < value <= MAX_PART_SIZE:
        return "must be more than 0 and at most 5GiB (the largest single PutObject)"
    return None


def _account_id(value: str) -> str | None:
    if not re.fullmatch(r"[A-Za-z0-9-]+", value):
        return "must be the account id only (letters, digits, hyphens), not a URL"
    return None


def _endpoint(value: str) -> str | None:
    if not re.match(r"^https?://[^/]+/?$", value):
        return "must be an http(s) URL with no path, like https://<account id>.r2.cloudflarestorage.com"
    return None


def _addressing(value: str) -> str | None:
    return None if value in {"path", "virtual"} else 'must be "path" or "virtual"'


@attrs.frozen
class R2Settings:
    """Where artifacts are stored: one Cloudflare R2 bucket (or any S3-compatible endpoint)."""

    account_id: str = setting(
        "R2_ACCOUNT_ID", check=_account_id,
        hint="the Cloudflare account id (dashboard → R2 → Overview, right-hand side)")
    access_key_id: str = setting(
        "R2_ACCESS_KEY_ID",
        hint="create an R2 API token with Object Read & Write on the bucket; this is its Access Key ID")
    secret_access_key: str = setting(
        "R2_SECRET_ACCESS_KEY", secret=True,
        hint="the Secret Access Key shown once when the R2 API token is created")
    bucket: str = setting(
        "R2_BUCKET_NAME", hint="the name of an existing R2 bucket the token can write to")
    endpoint_url: str | None = setting(
        "R2_ENDPOINT_URL", default=None, check=_endpoint,
        hint="leave unset for https://<R2_ACCOUNT_ID>.r2.cloudflarestorage.com; set it for a jurisdiction "
             "endpoint (…eu.r2.cloudflarestorage.com) or a local S3 server")
    region: str = setting(
        "R2_REGION", default="auto", hint='R2 wants "auto"; other S3 servers need a real region (us-east-1)')
    addressing_style: str = setting(
        "R2_ADDRESSING_STYLE", default="path", check=_addressing,
        hint='"path" (bucket in the URL path; works with R2 and local servers) or "virtual" (bucket in the host name)')
    presign_seconds: int = setting(
        "R2_PRESIGN_SECONDS", default=300, check=between(1, MAX_PRESIGN_SECONDS, " seconds"),
        hint="how long a download link stays valid; short is safer, the link is made on every click")
    multipart_threshold: ByteSize = setting(
        "R2_MULTIPART_THRESHOLD", default=ByteSize(8 * MiB), check=_threshold,
        hint="uploads up to this size are sent in one PutObject; larger ones go multipart (memory: about one part)")
    part_size: ByteSize = setting(
        "R2_PART_SIZE", default=ByteSize(8 * MiB), check=_part_size,
        hint="multipart part size, 5MiB..5GiB; raised automatically when the upload limit needs over 10,000 parts")
    health_timeout: float = setting(
        "R2_HEALTH_TIMEOUT", default=3.0, check=between(0.1, 60, " seconds"),
        hint="seconds /health waits for the bucket to answer before reporting storage down")

    @property
    def endpoint(self) -> str:
        """The S3 endpoint: R2_ENDPOINT_URL, or the account's R2 endpoint."""
        return (self.endpoint_url or f"https://{self.account_id}.r2.cloudflarestorage.com").rstrip("/")
