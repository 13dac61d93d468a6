"""`portal upload FILE… --base-url URL --token TOKEN`: upload files straight to storage, for scripts and CI.

Each file goes through the direct protocol (portal_core.direct_client): parts in parallel, the SHA-256
declared at completion. A state file remembers every upload under way (the portal's URL, the file's path,
size and modification time → its key and upload id), so running the same command again after an
interruption — Ctrl-C, a dropped connection, a killed process — asks the portal which parts storage already
holds and sends only the rest. On a terminal a progress bar shows each file; the exit status is non-zero
with the reason on failure.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fcntl
import json
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

from .redact import mask

EX_USAGE = 64
EX_NOINPUT = 66
INTERRUPTED = 130


def default_state_file() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "portal" / "uploads.json"


class StateFile:
    """The uploads under way, in a JSON file updated under an exclusive lock (several runs may share it)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @contextlib.contextmanager
    def _locked(self) -> Iterator[dict]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_name(self.path.name + ".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                state = json.loads(self.path.read_text()) if self.path.exists() else {}
            except ValueError:
                state = {}  # a damaged state file only costs resuming: start those uploads again
            uploads = state.setdefault("uploads", {})
            yield uploads
            temp = self.path.with_name(f".{self.path.name}.{os.getpid()}")
            temp.write_text(json.dumps(state, indent=1, sort_keys=True))
            os.replace(temp, self.path)

    @staticmethod
    def entry_key(base_url: str, path: Path) -> str:
        return f"{base_url} {path.resolve()}"

    def get(self, base_url: str, path: Path):
        from .direct_client import Resume

        stat = path.stat()
        with self._locked() as uploads:
            entry = uploads.get(self.entry_key(base_url, path))
        if not entry or entry.get("size") != stat.st_size or entry.get("mtime_ns") != stat.st_mtime_ns:
            return None  # never started, or the file changed since: start afresh
        return Resume(entry["key"], entry["upload_id"], int(entry["part_size"]))

    def put(self, base_url: str, path: Path, resume) -> None:
        stat = path.stat()
        with self._locked() as uploads:
            name = self.entry_key(base_url, path)
            if resume is None:
                uploads.pop(name, None)
            else:
                uploads[name] = {"key": resume.key, "upload_id": resume.upload_id, "part_size": resume.part_size,
                                 "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def _human(size: float) -> str:
    for unit, factor in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if size >= factor:
            return f"{size / factor:.1f} {unit}"
    return f"{int(size)} B"


class Progress:
    """A one-line bar on a terminal (redrawn at most ten times a second); silent elsewhere."""

    def __init__(self, name: str, stream) -> None:
        self.name = name if len(name) <= 30 else name[:29] + "…"
        self.stream = stream
        self.tty = stream.isatty()
        self.started = time.monotonic()
        self.first: int | None = None
        self.drawn = 0.0

    def __call__(self, done: int, total: int) -> None:
        if self.first is None:
            self.first = done  # parts already stored before this run do not count towards the speed
        now = time.monotonic()
        if not self.tty or (now - self.drawn < 0.1 and done < total):
            return
        self.drawn = now
        fraction = done / total if total else 1.0
        bar = "#" * int(fraction * 24)
        speed = (done - self.first) / max(now - self.started, 1e-6)
        self.stream.write(f"\r{self.name}  [{bar:<24}] {fraction:4.0%}  {_human(done)} / {_human(total)}"
                          f"  {_human(speed)}/s ")
        self.stream.flush()

    def end(self) -> None:
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()


async def run(args: argparse.Namespace) -> int:
    import aiohttp

    from .direct_client import DirectClient, PortalError, upload_file

    base_url = args.base_url.rstrip("/")
    token = args.token or os.environ.get("PORTAL_TOKEN", "")
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        print(f"portal upload: --base-url must be the portal's http(s) URL, got {mask(repr(args.base_url))}", file=sys.stderr)
        return EX_USAGE
    if not token.strip():
        print("portal upload: give an API token with --token or PORTAL_TOKEN (create one on the account page)",
              file=sys.stderr)
        return EX_USAGE
    files = [Path(name) for name in args.files]
    unreadable = [f"{path}: {'no such file' if not path.exists() else 'not a readable file'}"
                  for path in files if not (path.is_file() and os.access(path, os.R_OK))]
    if unreadable:
        print("portal upload: " + "; ".join(unreadable), file=sys.stderr)
        return EX_NOINPUT
    if args.parallel < 1:
        print("portal upload: --parallel must be 1 or more", file=sys.stderr)
        return EX_USAGE
    state = StateFile(Path(args.state) if args.state else default_state_file())
    failed = 0
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=300)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        client = DirectClient(session, base_url, {"Authorization": f"Bearer {token.strip()}"})
        for path in files:
            resume = state.get(base_url, path)
            progress = Progress(path.name, sys.stderr)
            if resume is not None and progress.tty:
                sys.stderr.write(f"{path.name}: resuming the upload started earlier\n")
            try:
                answer = await upload_file(client, path, parallel=args.parallel, resume=resume,
                                           remember=lambda r, p=path: state.put(base_url, p, r), progress=progress)
            except PortalError as exc:
                progress.end()
                failed += 1
                print(f"portal upload: {path}: {exc.message}", file=sys.stderr)
                if exc.status in (0, 401) or exc.code == "direct_uploads_unsupported":
                    break  # the next files would fail the same way
                continue
            progress.end()
            artifact = answer["artifact"]
            if args.json:
                print(json.dumps(answer), flush=True)
            else:
                print(f"{path}: uploaded as artifact {artifact['id']} ({artifact['size']} bytes, "
                      f"sha256 {artifact['sha256']}; verification {artifact['verification']})", flush=True)
    return 1 if failed else 0


def cmd_upload(args: argparse.Namespace) -> int:
    try:
        return asyncio.run(run(args))
    except KeyboardInterrupt:
        print("\nportal upload: interrupted; run the same command again to resume", file=sys.stderr)
        return INTERRUPTED


def add_upload_command(subparsers) -> None:
    upload = subparsers.add_parser(
        "upload", help="upload files straight to storage, in parallel parts, resumable (for scripts and CI)",
        description="Upload files to a portal with an API token. Parts go straight to storage in parallel; an "
                    "interrupted run is resumed by running the same command again.")
    upload.add_argument("files", nargs="+", metavar="FILE")
    upload.add_argument("--base-url", required=True, help="the portal's URL, e.g. https://portal.example.com")
    upload.add_argument("--token", help="an API token (default: $PORTAL_TOKEN)")
    upload.add_argument("--parallel", type=int, default=4, help="parts sent at once (default 4)")
    upload.add_argument("--state", help=f"where uploads under way are remembered (default {default_state_file()})")
    upload.add_argument("--json", action="store_true", help="print each completed upload as a JSON line")
    upload.set_defaults(func=cmd_upload)
