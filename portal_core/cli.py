"""The `portal` command: serve (the default), check-config, plugins, schema show|apply, healthcheck, smoke,
events, upload, admin, and whatever plugins add through the ``portal_cli`` hook.

``main`` reads the environment (.env + os.environ) and builds the plugin manager once; every command
finds them on ``args.env`` and ``args.pm``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import sys
from collections.abc import Sequence

import attrs

from . import __version__
from .admin_cli import EX_NOUSER, add_admin_commands
from .config import EX_CONFIG, ConfigError, describe, environment
from .events_cli import add_events_commands
from .logs import configure_logging
from .redact import mask
from .upload_cli import add_upload_command

EX_UNAVAILABLE = 69  # sysexits.h: a service we depend on is unavailable
EX_OSERR = 71  # sysexits.h: an operating-system error, e.g. the port to listen on is taken

EPILOG = f"""\
configuration:
  Settings come from the environment and from a .env file in the working directory (the environment
  wins); .env.example lists every one. In production every required setting must be present, or the
  portal refuses to start and lists everything missing at once (`portal check-config` shows the same).
  DEV_MODE=true runs on one machine with no outside services: a development sign-in form, files on
  local disk, pretend billing, and a throwaway PostgreSQL when DATABASE_URL is unset.

exit status:
  0   success
  1   a check failed (healthcheck, smoke), or a file could not be uploaded (upload)
  2   wrong command-line usage
  64  smoke or upload was given no usable --base-url or token
  66  upload: a file does not exist or cannot be read (nothing was sent)
  {EX_NOUSER}  admin: no user matches (or the email names several: use the id)
  {EX_UNAVAILABLE}  a service the portal needs (its database) could not be reached, or (admin) has no schema yet
  {EX_OSERR}  serve could not listen on HOST:PORT (the port is taken, or the address is not this machine's)
  73  new-plugin could not write its directory (it exists and is not empty)
  {EX_CONFIG}  the configuration is incomplete or malformed (nothing was started)
"""

log = logging.getLogger("portal")


def _disabled(env) -> tuple[str, ...]:
    """PORTAL_DISABLE_PLUGINS, read before the configuration: it decides which plugins take part in it."""
    return tuple(p.strip() for p in env.get("PORTAL_DISABLE_PLUGINS", "").split(",") if p.strip())


def _load(args):
    from .settings import load_config

    return args.pm, load_config(args.env, args.pm)


def _config_or_exit(args, lead: str = "the portal cannot start"):
    try:
        return _load(args)
    except ConfigError as exc:
        print(f"portal: {exc.report(lead)}", file=sys.stderr)
        raise SystemExit(EX_CONFIG) from None


def config_or_exit(args):
    """The validated configuration for a command (plugins' commands too); exits 78 listing every problem."""
    return _config_or_exit(args)[1]


def cmd_serve(args) -> int:
    from .app import create_app
    from .db import DatabaseUnavailable
    from .devdb import NoPostgres, throwaway_postgres
    from .serve import CannotListen, Timeouts, serve

    pm, config = _config_or_exit(args)
    core = config.core
    configure_logging(core.log_format, core.log_level, config.secrets())
    with contextlib.ExitStack() as stack:
        if core.database_url is None:
            try:
                url = stack.enter_context(throwaway_postgres(core.data_dir))
            except NoPostgres as exc:
                print(f"portal: {exc}", file=sys.stderr)
                return EX_UNAVAILABLE
            config = attrs.evolve(config, core=attrs.evolve(core, database_url=url))
        app = create_app(config, pm)
        log.info("portal %s starting on http://%s:%s (public URL %s); the port opens once startup is done",
                 __version__, core.host, core.port, core.app_base_url)
        try:
            # Not web.run_app: its shutdown stops reading request bodies, so uploads in flight could never finish.
            serve(app, host=core.host, port=core.port, grace=core.shutdown_grace_seconds,
                  delay=core.shutdown_delay_seconds,
                  timeouts=Timeouts(core.http_header_timeout_seconds, core.http_body_idle_timeout_seconds))
        except DatabaseUnavailable as exc:
            log.error("%s", exc)
            print(f"portal: {mask(str(exc), config.secrets())}", file=sys.stderr)
            return EX_UNAVAILABLE
        except CannotListen as exc:
            log.error("%s", exc)
            print(f"portal: {exc} (set PORT or HOST to another)", file=sys.stderr)
            return EX_OSERR
    return 0


def cmd_check_config(args) -> int:
    # Nothing is being started here: say what `portal serve` would do with this configuration.
    _pm, config = _config_or_exit(args, "the portal would refuse to start")
    print(f"portal {__version__}: configuration OK ({'DEV_MODE' if config.core.dev_mode else 'production'})")
    print("\n[core]")
    for name, value in describe(config.core):
        print(f"  {name}={value}")
    for section, value in config.sections.items():
        print(f"\n[{section}]")
        for name, shown in describe(value):
            print(f"  {name}={shown}")
    print("\n[backends]")
    for service, selection in config.selections.items():
        print(f"  {service}: {selection.backend.name} (plugin {selection.plugin}; {selection.reason})")
    return 0


def cmd_plugins(args) -> int:
    from .backends import offered, select
    from .hookspecs import HOOKS_VERSION
    from .plugins import compatibility_warnings, describe_plugins

    env, pm = args.env, args.pm
    disabled = _disabled(env)
    dev_mode = env.get("DEV_MODE", "").strip().lower() in ("1", "true", "yes", "on")
    selections, problems = select(pm, env, dev_mode)
    warnings = compatibility_warnings(pm)
    if args.json:
        print(json.dumps({
            "hooks_version": HOOKS_VERSION,
            "warnings": warnings,
            "plugins": describe_plugins(pm),
            "blocked": list(disabled),
            "offered": {service: [{"name": b.name, "plugin": plugin, "description": b.description,
                                   "development_only": b.development_only} for plugin, b in items]
                        for service, items in offered(pm).items()},
            "selected": {service: {"name": s.backend.name, "plugin": s.plugin, "reason": s.reason}
                         for service, s in selections.items()},
            "problems": [str(p) for p in problems],
        }, indent=2))
        return 0 if not problems else EX_CONFIG
    print(f"Plugins (this portal provides hooks {HOOKS_VERSION}):")
    for row in describe_plugins(pm):
        print(f"  {row['name']}  ({row['distribution']} {row['version']})".rstrip())
        print(f"      hooks: {', '.join(row['hooks']) or '(none)'}")
        if row["requires_hooks"]:
            print(f"      requires hooks: {row['requires_hooks']}")
    if disabled:
        print(f"  blocked by PORTAL_DISABLE_PLUGINS: {', '.join(disabled)}")
    print("\nBackends offered:")
    for service, items in offered(pm).items():
        names = ", ".join(f"{b.name} (from {plugin})" for plugin, b in items) or "(none)"
        print(f"  {service}: {names}")
    print("\nSelected:")
    for service, selection in selections.items():
        print(f"  {service}: {selection.backend.name} from plugin {selection.plugin} — {selection.reason}")
    for problem in problems:
        print(f"  problem: {problem}")
    if warnings:
        print("\nWarnings:")
        for warning in warnings:
            print(f"  warning: {warning}")
    return 0 if not problems else EX_CONFIG


def cmd_schema(args) -> int:
    from .db import apply_schema, create_pool, schema_parts

    if args.action == "show":
        try:
            pm, config = _load(args)
            parts = schema_parts(pm, config)
        except ConfigError:
            from .db import core_schema

            parts = [("schema.sql", core_schema() + "\n-- (plugin SQL is shown once the configuration is valid)")]
        for name, sql in parts:
            print(f"-- ===== {name} =====\n{sql.rstrip()}\n")
        return 0
    pm, config = _config_or_exit(args)
    if config.core.database_url is None:
        print("portal: schema apply needs DATABASE_URL", file=sys.stderr)
        return EX_CONFIG
    configure_logging(config.core.log_format, config.core.log_level, config.secrets())

    async def run():
        pool = await create_pool(config.core.database_url, connect_timeout=config.core.database_connect_timeout)
        try:
            return await apply_schema(pool, schema_parts(pm, config), version=__version__)
        finally:
            pool.close()
            await pool.wait_closed()

    from .db import DatabaseUnavailable

    try:
        result = asyncio.run(run())
    except DatabaseUnavailable as exc:
        print(f"portal: {mask(str(exc), config.secrets())}", file=sys.stderr)
        return EX_UNAVAILABLE
    print(f"schema {result.schema_hash[:12]} applied in {result.seconds * 1000:.0f} ms"
          f"{' (recorded as a new provisioning)' if result.recorded else ' (already provisioned by this build)'}")
    return 0


def cmd_healthcheck(args) -> int:
    import urllib.error
    import urllib.request

    env = args.env
    port = env.get("PORT", "").strip() or "8080"
    host = env.get("HOST", "").strip()
    # A wildcard bind is reachable on loopback; a specific address only on itself.
    host = "127.0.0.1" if host in ("", "0.0.0.0", "::", "127.0.0.1") else (f"[{host}]" if ":" in host else host)
    url = args.url or f"http://{host}:{port}/health"
    # With the operators' token (the container has OPS_TOKEN in its environment) the answer names what is wrong.
    token = env.get("OPS_TOKEN", "").strip()
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=args.timeout) as response:
            body = json.loads(response.read() or b"{}")
            print(f"{response.status} {body.get('status', '?')}{_not_ok(body)}")
            return 0 if response.status == 200 else 1
    except urllib.error.HTTPError as exc:
        try:
            body = json.loads(exc.read() or b"{}")
            print(f"{exc.code} {body.get('status', '?')}{_not_ok(body)}")
        except ValueError:
            print(f"{exc.code} (not a health answer)")
        return 1
    except (urllib.error.URLError, OSError, ValueError) as exc:
        print(f"unreachable: {url}: {exc}")
        return 1


def _not_ok(body: dict) -> str:
    """": storage down (detail), ..." for the checks that are not ok; details only when the portal gave them."""
    checks = body.get("checks") if isinstance(body.get("checks"), dict) else {}
    bad = [f"{name} {check.get('status')}" + (f" ({check['detail']})" if check.get("detail") else "")
           for name, check in checks.items() if isinstance(check, dict) and check.get("status") != "ok"]
    return ": " + ", ".join(bad) if bad else ""


def cmd_smoke(args) -> int:
    # Imported here: `portal serve` should not pay for the smoke test's HTTP client at every start.
    from .smoke import cmd_smoke as run

    return run(args)


def cmd_new_plugin(args) -> int:
    from .scaffold import cmd_new_plugin as run

    return run(args)


def build_parser(pm=None) -> argparse.ArgumentParser:
    """The ``portal`` parser; with a plugin manager, plugins' ``portal_cli`` commands are added too."""
    parser = argparse.ArgumentParser(prog="portal", description="The customer portal. With no command, serve.",
                                     epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"portal {__version__}")
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("serve", help="run the portal (the default)").set_defaults(func=cmd_serve)
    sub.add_parser("check-config", help="validate the configuration and print it, secrets redacted").set_defaults(
        func=cmd_check_config)
    plugins = sub.add_parser("plugins", help="list plugins, their hooks, and which backend serves each service")
    plugins.add_argument("--json", action="store_true", help="print the listing as JSON")
    plugins.set_defaults(func=cmd_plugins)
    schema = sub.add_parser("schema", help="print or apply the embedded schema")
    schema.add_argument("action", choices=["show", "apply"])
    schema.set_defaults(func=cmd_schema)
    health = sub.add_parser("healthcheck", help="exit 0 when the local /health answers 200, else 1")
    health.add_argument("--url", help="default: http://$HOST:$PORT/health (127.0.0.1 when HOST is a wildcard)")
    health.add_argument("--timeout", type=float, default=5.0)
    health.set_defaults(func=cmd_healthcheck)
    smoke = sub.add_parser("smoke", help="post-deploy check: health, sign-in redirect, upload/list/download/delete")
    smoke.add_argument("--base-url", required=True, help="the portal's public URL, e.g. https://portal.example.com")
    smoke.add_argument("--token", help="an API token of a test account (default: $PORTAL_SMOKE_TOKEN)")
    smoke.add_argument("--timeout", type=float, default=30.0, help="seconds per request (default 30)")
    smoke.add_argument("--ops-token", help="the operators' OPS_TOKEN, so a failing health check is named with its "
                                           "detail (default: $OPS_TOKEN)")
    smoke.set_defaults(func=cmd_smoke)
    add_events_commands(sub)
    add_upload_command(sub)
    add_admin_commands(sub)
    new_plugin = sub.add_parser("new-plugin", help="write a ready plugin package (pyproject, hooks, settings, "
                                                   "README, tests on the portal's test kit)")
    new_plugin.add_argument("name", help="the plugin's name: lower-case words joined by - or _ (e.g. virus-scan)")
    new_plugin.add_argument("--dir", help="where to write it (default: ./portal-NAME); must not exist or be empty")
    new_plugin.set_defaults(func=cmd_new_plugin)
    if pm is not None:
        pm.hook.portal_cli(subparsers=sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from .plugins import make_plugin_manager

    env = environment()
    pm = make_plugin_manager(_disabled(env))
    args = build_parser(pm).parse_args(argv)
    args.env, args.pm = env, pm
    func = getattr(args, "func", cmd_serve)
    try:
        return func(args)
    except Exception:  # noqa: BLE001 - the traceback Python would print, without a URL's password
        import traceback

        print(mask(traceback.format_exc()).rstrip(), file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
