"""`portal admin ...`: the admin console's essentials for operators without a browser.

    portal admin users [--query TEXT] [--frozen] [--json]   list users (newest first)
    portal admin freeze USER / unfreeze USER                USER: an email or a user id
    portal admin grant-admin USER / revoke-admin USER       admin whatever the identity provider says

Changes are recorded as admin.* events with no actor and ``"via": "cli"`` (an operator, not a user).
"""

from __future__ import annotations

import asyncio
import json
import sys

EX_NOUSER = 67  # sysexits.h: addressee unknown — no such user, or the email names several

# action -> (accounts function, value, what was done, what it says when nothing changed, help)
ACTIONS = {
    "freeze": ("set_frozen", True, "froze", "was already frozen",
               "suspend a user at once on every process: sessions and tokens refused, sign-in refused"),
    "unfreeze": ("set_frozen", False, "unfroze", "was not frozen", "give a frozen user their access back"),
    "grant-admin": ("set_admin_granted", True, "made an admin:", "was already granted admin",
                    "make a user an admin whatever the identity provider says (the first admin)"),
    "revoke-admin": ("set_admin_granted", False, "took granted admin from", "had no granted admin",
                     "take back what grant-admin gave (an admin by the provider's group stays one)"),
}


def add_admin_commands(sub) -> None:
    admin = sub.add_parser(
        "admin", help="list users, freeze and unfreeze them, grant admin (see also the /admin pages)",
        description="Operate on accounts without a browser. USER is an email or a user id. Every change is "
                    "recorded in the audit trail (/admin/events, or `portal events`). grant-admin makes someone an "
                    "admin whatever the identity provider says: use it for the first admin when the provider "
                    "has no admin group (POCKET_ID_ADMIN_GROUP); they must have signed in once.")
    actions = admin.add_subparsers(dest="admin_action", required=True, metavar="ACTION")
    users = actions.add_parser("users", help="list users, newest first")
    users.add_argument("--query", "-q", help="only users whose email or name contains this")
    users.add_argument("--frozen", action="store_true", help="only frozen users")
    users.add_argument("--json", action="store_true", help="one JSON object per line")
    users.set_defaults(func=cmd_admin)
    for name, (_fn, _value, _done, _noop, text) in ACTIONS.items():
        action = actions.add_parser(name, help=text)
        action.add_argument("user", metavar="USER", help="the user's email or id")
        action.set_defaults(func=cmd_admin)


def cmd_admin(args) -> int:
    import psycopg2.errors

    from .cli import EX_UNAVAILABLE, config_or_exit
    from .db import DatabaseUnavailable, create_pool

    config = config_or_exit(args)
    if config.core.database_url is None:
        print("portal admin: needs DATABASE_URL", file=sys.stderr)
        return 78

    if args.admin_action != "users" and not args.user.strip():
        print(f"portal admin {args.admin_action}: USER is empty; give the user's email or id", file=sys.stderr)
        return 2

    async def run() -> int:
        pool = await create_pool(config.core.database_url, connect_timeout=config.core.database_connect_timeout)
        try:
            if args.admin_action == "users":
                return await _users(pool, args)
            return await _change(pool, args.admin_action, args.user)
        except (psycopg2.errors.UndefinedTable, psycopg2.errors.UndefinedColumn) as exc:
            print(f"portal admin: the database has no portal schema, or an older one ({exc.pgerror.splitlines()[0]}); "
                  "run `portal schema apply` or start the portal once, then try again", file=sys.stderr)
            return EX_UNAVAILABLE
        finally:
            pool.close()
            await pool.wait_closed()

    try:
        return asyncio.run(run())
    except DatabaseUnavailable as exc:
        print(f"portal: {exc}", file=sys.stderr)
        return EX_UNAVAILABLE


async def _change(pool, action: str, ref: str) -> int:
    from . import accounts

    function, value, done, noop, _help = ACTIONS[action]
    async with pool.acquire() as conn, conn.cursor() as cur:
        async with cur.begin():
            try:
                user_id, email = await accounts.find_user(cur, ref)
            except LookupError as exc:
                print(f"portal admin {action}: {exc}", file=sys.stderr)
                return EX_NOUSER
            changed = await getattr(accounts, function)(cur, user_id, value, actor_id=None, via="cli")
    print(f"{done} {email} (user {user_id})" if changed else f"{email} (user {user_id}) {noop}; nothing changed")
    return 0


async def _users(pool, args) -> int:
    where, params = ["true"], {}
    if args.query:
        where.append("(email ILIKE %(q)s OR name ILIKE %(q)s)")
        params["q"] = "%" + args.query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    if args.frozen:
        where.append("frozen_at IS NOT NULL")
    async with pool.acquire() as conn, conn.cursor() as cur:
        await cur.execute(
            f"""SELECT u.id, u.email, u.name, u.is_admin OR u.admin_granted, u.frozen_at, u.created_at,
                       u.last_sign_in_at, u.bytes_used
                FROM users u WHERE {' AND '.join(where)} ORDER BY u.id DESC""", params)
        rows = await cur.fetchall()
    if args.json:
        for user_id, email, name, admin, frozen_at, created, last, used in rows:
            print(json.dumps({"id": user_id, "email": email, "name": name, "is_admin": admin,
                              "frozen": frozen_at is not None, "created_at": created.isoformat(),
                              "last_sign_in_at": last.isoformat() if last else None, "bytes": int(used)},
                             ensure_ascii=False))
        return 0
    print(f"{'id':>6}  {'email':<32} {'admin':<5} {'frozen':<6} {'bytes':>14}  last sign-in")
    for user_id, email, _name, admin, frozen_at, _created, last, used in rows:
        print(f"{user_id:>6}  {email:<32} {'yes' if admin else '':<5} {'yes' if frozen_at else '':<6} "
              f"{int(used):>14}  {last.isoformat(timespec='seconds') if last else 'never'}")
    print(f"{len(rows)} user(s)", file=sys.stderr)
    return 0
