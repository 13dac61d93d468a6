"""Mutation testing of the modules that guard data and access (run by scripts/mutation; not part of CI).

For each module: copy the checkout to a scratch directory (cosmic-ray edits files in place, and the copy
is what both the tests and the `portal` processes they start import, through PYTHONPATH), let cosmic-ray
list its mutants, drop the ones that cannot change behaviour (see ``equivalent``), run the module's own
tests (MODULES: only the tests relevant to it, so a run is feasible on a small machine) once unmutated and
then once per mutant, stopping at the first failure. A mutant the tests fail on is killed; one they pass
with survived. Then the named mutants of ``HAND_MUTANTS`` — realistic bugs cosmic-ray's operators cannot
write (a deleted statement, an edited SQL string), among them the ones that once survived the whole
suite — are run the same way.

Results go to .mutation/<module>/ (the cosmic-ray session, a summary JSON, the survivors' diffs), and a
table of kill rates is printed. A module interrupted by --budget keeps its session: run it again and it
goes on where it stopped.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import json
import os
import re
import shlex
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import attrs

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / ".mutation"


@attrs.frozen
class Module:
    paths: tuple[str, ...]  # the source files mutated
    tests: tuple[str, ...]  # the tests run against each mutant, in this order (the likeliest to fail first)
    pytest_args: tuple[str, ...] = ("-m", "not slow")
    # The functions that guard data or access (empty: every one); the rest of the file (messages, input
    # parsing that other tests cover, module constants) is not mutated.
    functions: tuple[str, ...] = ()


# The modules that guard data and access, and the tests that exercise each (only these run per mutant).
MODULES: dict[str, Module] = {
    "upload": Module(("portal_core/web/upload.py",),
                     ("tests/core/test_upload_commit.py", "tests/core/test_artifacts_api.py",
                      "tests/core/test_file_requests.py"),
                     ("-m", "not slow", "-k", "quota or limit or round_trip or curl or disconnect or without_a_file "
                                              "or row or racing or fills or policy or refused"),
                     functions=("limits_for", "commit_row", "upload", "store_part", "check_upload", "__aiter__",
                                "__init__", "locked_usage", "check_uploads_open", "usage")),
    "direct_complete": Module(("portal_core/web/direct_complete.py",),
                              ("tests/core/test_direct_parts.py", "tests/core/test_direct_uploads.py",
                               "tests/core/test_upload_commit.py"),
                              ("-m", "not slow", "-k", "not r2 and not pages_may_reach"),
                              functions=("complete", "_finish", "_refuse", "check_parts", "vanished", "shielded")),
    "direct": Module(("portal_core/web/direct.py", "portal_core/web/direct_inputs.py", "portal_core/pending_uploads.py"),
                     ("tests/core/test_direct_uploads.py",),
                     functions=("part_size_for", "max_part_number", "create", "start_upload", "_reserve", "_part_number",
                                "_sign", "_signable", "sign_part", "sign_batch", "list_parts", "abort", "answer",
                                "unsupported", "direct_storage", "declared_size", "declared_sha256", "pending_upload",
                                "parse_parts", "from_row", "expired", "reserved_bytes", "find", "claim", "release",
                                "mark_stored", "discard", "_claim_batch", "_discard_all", "expire_uploads",
                                "abort_pending_for_user")),
    "sessions": Module(("portal_core/web/sessions.py",),
                       ("tests/core/test_sessions_and_security.py", "tests/core/test_token_scopes.py",
                        # sign-out reads the signed-in session's data (the provider's id_token hint)
                        "tests/plugins/oidc/test_login_http.py")),
    "sign_in": Module(("portal_core/web/auth.py",),
                      ("tests/core/test_sessions_and_security.py", "tests/plugins/oidc/test_login_http.py")),
    "tokens": Module(("portal_core/web/tokens.py",),
                     ("tests/core/test_token_scopes.py", "tests/core/test_sessions_and_security.py"),
                     ("-m", "not slow", "-k", "token or scopes")),
    "schema": Module(("portal_core/db.py", "portal_core/sqltext.py"),
                     ("tests/core/test_schema.py",),
                     ("-m", "not slow", "-k", "not eight_processes and not unreachable and not show"),
                     functions=("apply_schema", "retry_delays", "_apply_once", "_catalog", "_already_done", "_last_apply",
                                "schema_hash", "schema_parts", "statements", "strip_comments", "index_created",
                                "column_added", "_outside_parentheses")),
    "stripe_webhook": Module(("plugins/stripe/webhooks.py", "plugins/stripe/sync.py"),
                             ("tests/plugins/stripe/test_sync_rules.py", "tests/plugins/stripe/test_webhooks.py")),
    "events": Module(("portal_core/events.py", "portal_core/outbox.py", "portal_core/event_queue.py"),
                     ("tests/core/test_event_rules.py", "tests/core/test_events.py", "tests/core/test_event_operations.py",
                      "tests/testing/test_fixtures.py", "tests/core/test_event_delivery_processes.py")),
    "shares": Module(("portal_core/web/shares.py", "portal_core/web/share_pages.py"),
                     ("tests/core/test_share_rules.py", "tests/core/test_shares.py", "tests/core/test_share_passwords.py"),
                     functions=("share_state", "create_share", "list_shares", "revoke_share", "state", "find",
                                "unavailable", "gone", "_mac", "unlocked", "set_unlock_cookie", "failures",
                                "locked_for", "try_password", "password_from_form", "share_page", "unlock", "download",
                                "count_and_send")),
}

# Bugs cosmic-ray's operators do not write (it replaces operators and numbers; it never deletes a
# statement or edits a string), as (file, text, replacement, what the bug is). Each must be killed.
HAND_MUTANTS: dict[str, list[tuple[str, str, str, str]]] = {
    "upload": [
        ("portal_core/web/upload.py", ' FOR UPDATE", (user_id,))', '", (user_id,))',
         "the commit does not lock the owner's row"),
        ("portal_core/web/upload.py", "            if held + size > limits.quota:\n                return None\n", "",
         "the commit does not re-check the quota"),
        ("portal_core/web/upload.py", "    except BaseException:\n        await storage.delete(key)\n        raise\n",
         "    except BaseException:\n        raise\n", "the object is kept when its row cannot be written"),
        ("portal_core/web/upload.py", "    if artifact is None:\n        await storage.delete(key)\n",
         "    if artifact is None:\n", "the object is kept when the commit refuses it"),
    ],
    "direct_complete": [
        ("portal_core/web/direct_complete.py", "direct_upload=upload.upload_id,", "direct_upload=None,",
         "the completion counts its own reservation and keeps the row"),
        ("portal_core/web/direct_complete.py", "        await shielded(release(pool, upload.upload_id))\n", "",
         "a failed completion does not give the upload back"),
    ],
    "sessions": [
        ("portal_core/web/sessions.py", "    await check_csrf(request, principal)\n", "",
         "a cookie-authenticated change needs no CSRF token"),
        ("portal_core/web/sessions.py", "    if principal.expired:", "    if False:", "an expired API token still works"),
        ("portal_core/web/sessions.py",
         "    if principal.scopes is not None and required is not None and required not in principal.scopes:",
         "    if False:", "a token's scopes are not enforced"),
    ],
    "sign_in": [
        ("portal_core/web/auth.py", '    session.data.pop("login", None)\n    await sessions.save_data(request, session)\n',
         "", "a failed callback leaves the sign-in attempt usable"),
    ],
    "schema": [
        ("portal_core/db.py", '            await cur.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK_ID,))\n', "",
         "the schema is applied without the advisory lock"),
        ("portal_core/db.py", '            await cur.execute(f"SET LOCAL lock_timeout = {SCHEMA_LOCK_TIMEOUT_MS}")\n', "",
         "the schema apply queues behind traffic instead of yielding"),
    ],
}

# Operator replacements kept (cosmic-ray writes every operator in place of every other; most of those are
# not bugs anyone writes). Comparisons: the boundary moved or the test negated; arithmetic: its inverse.
_KEEP_BINARY = {("Add", "Sub"), ("Sub", "Add"), ("Mul", "Div"), ("Div", "Mul"), ("FloorDiv", "Div"), ("Mod", "FloorDiv"),
                ("Pow", "Mul"), ("BitOr", "BitAnd"), ("BitAnd", "BitOr"), ("BitXor", "BitOr"), ("LShift", "RShift"),
                ("RShift", "LShift")}
_KEEP_COMPARISON = {("Gt", "GtE"), ("Gt", "LtE"), ("GtE", "Gt"), ("GtE", "Lt"), ("Lt", "LtE"), ("Lt", "GtE"),
                    ("LtE", "Lt"), ("LtE", "Gt"), ("Eq", "NotEq"), ("NotEq", "Eq"), ("Is", "IsNot"), ("IsNot", "Is"),
                    ("In", "NotIn"), ("NotIn", "In")}
_REPLACEMENT = re.compile(r"Replace(Binary|Comparison)Operator_(\w+?)_(\w+)$")


def annotation_lines(source: str) -> set[tuple[int, int, int, int]]:
    """(start row, start col, end row, end col) of every annotation: with `from __future__ import
    annotations` they are never evaluated, so a mutant inside one cannot change behaviour."""
    spans = set()
    for node in ast.walk(ast.parse(source)):
        annotations = []
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            arguments = node.args
            for arg in [*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs, arguments.vararg, arguments.kwarg]:
                if arg is not None and arg.annotation is not None:
                    annotations.append(arg.annotation)
            if node.returns is not None:
                annotations.append(node.returns)
        elif isinstance(node, ast.AnnAssign):
            annotations.append(node.annotation)
        spans.update((a.lineno, a.col_offset, a.end_lineno, a.end_col_offset) for a in annotations)
    return spans


def equivalent(operator: str, start: tuple[int, int], annotations: set, lines: list[str], function: str | None,
               functions: tuple[str, ...]) -> str | None:
    """Why a mutant is dropped before it runs, or None to run it."""
    if functions and function not in functions:
        return "outside the functions that guard data or access"
    if any((r1, c1) <= start < (r2, c2) for r1, c1, r2, c2 in annotations):
        return "inside a type annotation (never evaluated)"
    if "pragma: no mutate" in lines[start[0] - 1]:
        return "pragma: no mutate"
    if operator.endswith("ReplaceBinaryOperator_Mul_Div") and lines[start[0] - 1][start[1]:].startswith(("*,", "*)")):
        return "the bare * of a signature (keyword-only marker; the swap to / changes no call)"
    if operator.endswith("ReplaceBinaryOperator_Pow_Mul") and lines[start[0] - 1][start[1]:].startswith("**") \
            and lines[start[0] - 1][:start[1]].rstrip().endswith(("{", "(", ",")):
        return "the ** that unpacks a mapping (not a power; the swap to * is not valid Python there)"
    match = _REPLACEMENT.search(operator)
    if match:
        kind, old, new = match.groups()
        keep = _KEEP_BINARY if kind == "Binary" else _KEEP_COMPARISON
        if (old, new) not in keep:
            return "an operator swap nobody writes"
    return None


def copy_tree(dest: Path) -> None:
    """The checkout's files (tracked and untracked, not ignored) into ``dest``, with what the tests need
    beside them: the loopback peers' envs, the OIDC provider's node_modules, and `portal_plugins` (the
    import name the built-in plugins install under)."""
    if dest.exists():
        shutil.rmtree(dest)
    listed = subprocess.run(["git", "ls-files", "-z", "-co", "--exclude-standard"], cwd=ROOT, check=True,
                            capture_output=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = ROOT / name
        target = dest / name
        if not source.exists() and not source.is_symlink():
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_symlink():
            target.symlink_to(os.readlink(source))
        elif source.is_file():
            shutil.copy2(source, target)
    (dest / "portal_plugins").symlink_to("plugins")
    for shared in (".venvs", "tests/oidc_provider/node_modules"):
        if (ROOT / shared).exists():
            (dest / shared).unlink(missing_ok=True)
            (dest / shared).symlink_to(os.path.realpath(ROOT / shared))


def environment(tree: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(tree) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env["PATH"] = os.pathsep.join([str(ROOT / ".venv" / "bin"), str(ROOT / ".venvs" / "node" / "node_modules" / ".bin"),
                                   env.get("PATH", "")])
    env.setdefault("PORTAL_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    env["PYTHONDONTWRITEBYTECODE"] = "1"  # a mutant's bytecode must never be reused for another
    return env


def test_command(module: Module) -> list[str]:
    return [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *module.pytest_args, *module.tests]


def stop_leftovers(tree: Path) -> list[int]:
    """Kill every process still running from ``tree`` — started in it, naming it, or importing from it — (a
    peer: localstripe, moto, the OIDC provider, a `portal`, whose test run was cut off by a timeout or the
    budget, so it never stopped it); their PIDs."""
    marker = str(tree)
    killed = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            cwd = os.readlink(proc / "cwd")
            cmdline = (proc / "cmdline").read_bytes().decode(errors="replace")
            environ = (proc / "environ").read_bytes().decode(errors="replace")  # PYTHONPATH names the copy
        except OSError:
            continue
        if cwd.startswith(marker) or marker in cmdline or marker in environ:
            try:
                os.kill(int(proc.name), signal.SIGKILL)
                killed.append(int(proc.name))
            except ProcessLookupError:
                pass
    return killed


def run_tests(module: Module, tree: Path, timeout: float) -> tuple[bool, str]:
    """(passed, the tail of the output)."""
    process = subprocess.Popen(test_command(module), cwd=tree, env=environment(tree), stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        return False, f"timed out after {timeout:g}s"
    finally:
        stop_leftovers(tree)
    return process.returncode == 0, output[-2000:]


def run_bounded(command: list[str], tree: Path, seconds: float) -> None:
    """Run ``command`` for at most ``seconds``, then stop it with every process it started (its session
    keeps what finished: run the module again to go on)."""
    with open(OUT / "exec.log", "ab") as log:
        process = subprocess.Popen(command, cwd=tree, env=environment(tree), stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True)
        try:
            process.wait(timeout=seconds)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        finally:
            stop_leftovers(tree)


def cosmic_config(name: str, module: Module, path: str, tree: Path, timeout: float) -> Path:
    config = OUT / name / f"{Path(path).stem}.toml"
    command = shlex.join(test_command(module))  # cosmic-ray splits it with shlex
    config.write_text(f"""[cosmic-ray]
module-path = {json.dumps(str(tree / path))}
timeout = {timeout}
excluded-modules = []
test-command = {json.dumps(command)}

[cosmic-ray.distributor]
name = "local"
""")
    return config


def prune(session: Path, source: str, functions: tuple[str, ...]) -> dict[str, int]:
    """Drop the mutants ``equivalent`` rules out from a fresh session; {reason: how many}."""
    annotations = annotation_lines(source)
    lines = source.splitlines()
    dropped: dict[str, int] = {}
    with sqlite3.connect(session) as db:
        rows = db.execute("SELECT job_id, operator_name, start_pos_row, start_pos_col, definition_name "
                          "FROM mutation_specs").fetchall()
        for job_id, operator, row, col, function in rows:
            reason = equivalent(operator, (row, col), annotations, lines, function, functions)
            if reason is None:
                continue
            dropped[reason] = dropped.get(reason, 0) + 1
            db.execute("DELETE FROM work_results WHERE job_id = ?", (job_id,))
            db.execute("DELETE FROM mutation_specs WHERE job_id = ?", (job_id,))
            db.execute("DELETE FROM work_items WHERE job_id = ?", (job_id,))
    return dropped


def outcomes(session: Path) -> dict:
    with sqlite3.connect(session) as db:
        total = db.execute("SELECT count(*) FROM work_items").fetchone()[0]
        results = db.execute(
            "SELECT r.test_outcome, r.worker_outcome, s.operator_name, s.start_pos_row, r.diff "
            "FROM work_results r JOIN mutation_specs s ON s.job_id = r.job_id ORDER BY s.start_pos_row").fetchall()
    outcome = [(r[0] or "").lower() for r in results]  # cosmic-ray writes KILLED, SURVIVED, INCOMPETENT
    killed = outcome.count("killed")
    survivors = [{"line": r[3], "operator": r[2].split("/")[-1], "diff": r[4]}
                 for r, o in zip(results, outcome) if o == "survived"]
    incompetent = len(results) - killed - len(survivors)
    return {"mutants": total, "run": len(results), "killed": killed, "survived": len(survivors),
            "incompetent": incompetent, "survivors": survivors}


def run_module(name: str, budget: float, timeout: float, fresh: bool, recheck: bool = False) -> dict:
    module = MODULES[name]
    workdir = OUT / name
    workdir.mkdir(parents=True, exist_ok=True)
    tree = workdir / "tree"
    copy_tree(tree)
    started = time.monotonic()
    passed, output = run_tests(module, tree, timeout * 3)
    if not passed:
        raise SystemExit(f"scripts/mutation: {name}: the tests fail without any mutant; fix them first:\n{output}")
    summary: dict = {"module": name, "paths": list(module.paths), "tests": list(module.tests), "files": {}}
    for path in module.paths:
        session = workdir / f"{Path(path).stem}.sqlite"
        config = cosmic_config(name, module, path, tree, timeout)
        if recheck and session.exists():
            with sqlite3.connect(session) as db:  # the survivors run again, against the tests as they are now
                db.execute("DELETE FROM work_results WHERE lower(test_outcome) = 'survived'")
        dropped_path = workdir / f"{Path(path).stem}.dropped.json"
        # A session records where each mutant goes in the file as it was: once the file changed, going on
        # would put mutants in the wrong places, so the session starts over.
        source_hash = hashlib.sha256((tree / path).read_bytes()).hexdigest()
        hash_path = workdir / f"{Path(path).stem}.source-sha256"
        restart = fresh
        if session.exists() and not fresh and (not hash_path.exists() or hash_path.read_text() != source_hash):
            print(f"scripts/mutation: {path} changed since its session began; starting it over", flush=True)
            restart = True
        hash_path.write_text(source_hash)
        if restart or not session.exists():
            session.unlink(missing_ok=True)
            dropped_path.unlink(missing_ok=True)
            subprocess.run(["cosmic-ray", "init", str(config), str(session)], cwd=tree, env=environment(tree), check=True)
        # Again on a session that goes on, in case the rules changed since (the counts add up).
        dropped = json.loads(dropped_path.read_text()) if dropped_path.exists() else {}
        for reason, count in prune(session, (tree / path).read_text(), module.functions).items():
            dropped[reason] = dropped.get(reason, 0) + count
        dropped_path.write_text(json.dumps(dropped, indent=1))
        left = budget - (time.monotonic() - started)
        if left > 0:
            run_bounded(["cosmic-ray", "exec", str(config), str(session)], tree, left)
        summary["files"][path] = outcomes(session)
        summary["files"][path]["dropped"] = dropped
    hand = []
    for file, text, replacement, what in HAND_MUTANTS.get(name, []):
        target = tree / file
        original = target.read_text()
        if original.count(text) != 1:
            hand.append({"bug": what, "outcome": "stale: the code it mutates changed"})
            continue
        target.write_text(original.replace(text, replacement))
        try:
            passed, _ = run_tests(module, tree, timeout)
        finally:
            target.write_text(original)
        hand.append({"bug": what, "outcome": "survived" if passed else "killed"})
    summary["hand"] = hand
    summary["seconds"] = round(time.monotonic() - started)
    (workdir / "summary.json").write_text(json.dumps(summary, indent=1))
    shutil.rmtree(tree, ignore_errors=True)
    return summary


def report(summary: dict) -> str:
    lines = []
    run = sum(f["run"] for f in summary["files"].values())
    mutants = sum(f["mutants"] for f in summary["files"].values())
    killed = sum(f["killed"] for f in summary["files"].values())
    rate = f"{100 * killed / run:.0f} %" if run else "-"
    hand_killed = sum(1 for h in summary["hand"] if h["outcome"] == "killed")
    lines.append(f"{summary['module']}: {killed}/{run} killed ({rate}); {run} of {mutants} mutants run; "
                 f"hand-written bugs {hand_killed}/{len(summary['hand'])} killed; {summary['seconds']} s")
    for path, result in summary["files"].items():
        for survivor in result["survivors"]:
            lines.append(f"  survived {path}:{survivor['line']} {survivor['operator']}")
    for hand in summary["hand"]:
        if hand["outcome"] != "killed":
            lines.append(f"  {hand['outcome']}: {hand['bug']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/mutation", description=__doc__.split("\n\n")[0])
    parser.add_argument("modules", nargs="*", help=f"modules to run (default: all): {', '.join(MODULES)}")
    parser.add_argument("--budget", type=float, default=45.0, help="minutes per module before it stops (default 45)")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds one test run may take (default 300)")
    parser.add_argument("--fresh", action="store_true", help="start over instead of going on with a module's session")
    parser.add_argument("--recheck", action="store_true", help="run the survivors of the last run again (after adding tests)")
    parser.add_argument("--report", action="store_true", help="only print what the last runs found")
    args = parser.parse_args(argv)
    unknown = [m for m in args.modules if m not in MODULES]
    if unknown:
        parser.error(f"no such module: {', '.join(unknown)} (known: {', '.join(MODULES)})")
    if shutil.which("cosmic-ray") is None:
        parser.error("cosmic-ray is not installed: pip install -e '.[mutation]'")
    for name in args.modules or list(MODULES):
        if args.report:
            summary_path = OUT / name / "summary.json"
            if summary_path.exists():
                print(report(json.loads(summary_path.read_text())))
            continue
        print(report(run_module(name, args.budget * 60, args.timeout, args.fresh, args.recheck)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
