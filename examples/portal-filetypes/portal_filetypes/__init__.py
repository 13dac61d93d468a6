"""portal-filetypes: allow or refuse uploads by file type, per plan (a third-party portal plugin).

A type is an extension ("pdf", "txt") or a kind the file's first bytes reveal ("exe", "zip", "png", ...;
see magic.py). FILETYPES_DENY refuses types on every plan, by name or by content, so a renamed executable
is refused too; FILETYPES_ALLOW_<PLAN> accepts only the listed types on that plan, and the content must not
contradict the name. Built on the portal's public plugin API only: portal_core.hookimpl, portal_core.config
and the portal_check_upload hook (its `plan` and `head` arguments need hooks 1.2).
"""

from __future__ import annotations

from portal_core import hookimpl
from portal_core.config import ConfigSection

from .magic import describe, extension, kinds_of_name, sniff

PORTAL_REQUIRES_HOOKS = "1.2"
SECTION = "filetypes"


@hookimpl
def portal_config_sections():
    from .settings import FiletypesSettings

    return [ConfigSection(SECTION, FiletypesSettings, "file types allowed or refused per plan")]


@hookimpl(tryfirst=True)
def portal_check_upload(plan, filename, head, config):
    """A sentence refusing the upload, or None. ``head`` is None when the portal does not have the bytes yet
    (a direct upload, which is asked again with them before it is kept): the name is judged alone then."""
    settings = config.sections[SECTION]
    names = kinds_of_name(filename)
    sniffed = sniff(head) if head else None
    deny = set(settings.deny)
    if names & deny:
        return f"{extension(filename) or 'these'} files are not accepted here"
    if sniffed in deny:
        return f"this file is {describe(sniffed)} (by its content), which is not accepted here"
    allowed = settings.allowed(plan)
    if allowed is None:
        return None
    listed = ", ".join(sorted(allowed))
    if not names & allowed:
        return f"the {plan} plan accepts only these file types: {listed}"
    if sniffed is not None and sniffed not in allowed:
        return (f"this file's content is {describe(sniffed)}, not what its name says; "
                f"the {plan} plan accepts only these file types: {listed}")
    return None
