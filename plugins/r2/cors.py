"""`portal storage cors [--apply]`: the bucket CORS rule browsers need to PUT direct-upload parts to R2.

The portal's pages (at APP_BASE_URL) send each part with a cross-origin PUT to the bucket and must read the
part's ETag from the answer, so the bucket must allow PUT from that origin and expose the ETag header.
Without the rule browsers refuse every part (the CLI does not need it: CORS is a browser rule).
"""

from __future__ import annotations

import asyncio
import json
import sys
from urllib.parse import urlsplit

EX_UNAVAILABLE = 69


def cors_rules(app_base_url: str) -> dict:
    """The CORSConfiguration for a portal served at ``app_base_url`` (an S3 PutBucketCors body)."""
    parts = urlsplit(app_base_url)
    return {"CORSRules": [{
        "AllowedOrigins": [f"{parts.scheme}://{parts.netloc}"],
        "AllowedMethods": ["PUT"],
        "AllowedHeaders": ["Content-Type"],
        "ExposeHeaders": ["ETag"],
        "MaxAgeSeconds": 3600,
    }]}


async def apply_cors(storage, rules: dict) -> list[dict]:
    """Set the bucket's CORS rules (replacing any) and return what the bucket answers afterwards."""
    with storage._remote("PutBucketCors"):
        await storage.client.put_bucket_cors(Bucket=storage.bucket, CORSConfiguration=rules)
    with storage._remote("GetBucketCors"):
        return (await storage.client.get_bucket_cors(Bucket=storage.bucket))["CORSRules"]


def _printable_origin(args) -> str:
    """APP_BASE_URL as given, or (when it is not set) from the whole configuration: DEV_MODE's default, or
    exit 78 listing what production is missing."""
    from portal_core.cli import config_or_exit

    raw = args.env.get("APP_BASE_URL", "").strip()
    parts = urlsplit(raw)
    if parts.scheme in ("http", "https") and parts.netloc:
        return raw
    return config_or_exit(args).core.app_base_url


def cmd_cors(args) -> int:
    from portal_core.cli import config_or_exit
    from portal_core.interfaces import ServiceUnavailable

    if not args.apply:
        print(json.dumps(cors_rules(_printable_origin(args)), indent=2))
        return 0
    config = config_or_exit(args)
    rules = cors_rules(config.core.app_base_url)
    selected = config.selections["storage"].backend.name
    if selected != "r2":
        print(f"portal storage cors: STORAGE_BACKEND is {selected!r}; --apply sets the rule on the R2 bucket "
              "(STORAGE_BACKEND=r2)", file=sys.stderr)
        return 2
    from .storage import R2Storage

    async def run() -> list[dict]:
        async with R2Storage.from_config(config.backend_settings("storage")) as storage:
            return await apply_cors(storage, rules)

    try:
        answered = asyncio.run(run())
    except ServiceUnavailable as exc:
        print(f"portal storage cors: {exc}", file=sys.stderr)
        return EX_UNAVAILABLE
    bucket = config.backend_settings("storage").bucket
    print(f"CORS rule set on bucket {bucket!r}: PUT from {rules['CORSRules'][0]['AllowedOrigins'][0]}, ETag exposed")
    print(json.dumps({"CORSRules": answered}, indent=2))
    return 0


def add_commands(subparsers) -> None:
    storage = subparsers.add_parser("storage", help="R2 bucket settings the portal needs")
    actions = storage.add_subparsers(dest="storage_command", required=True)
    cors = actions.add_parser("cors", help="print the bucket CORS rule direct uploads need from browsers, or --apply it",
                              description="Browsers PUT direct-upload parts to the bucket from APP_BASE_URL and read "
                                          "each part's ETag: the bucket must allow that. Prints the rule; --apply sets it.")
    cors.add_argument("--apply", action="store_true", help="set the rule on R2_BUCKET_NAME (replacing its CORS rules)")
    cors.set_defaults(func=cmd_cors)
