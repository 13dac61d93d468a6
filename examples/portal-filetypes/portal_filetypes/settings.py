"""FILETYPES_DENY and FILETYPES_ALLOW_<PLAN>, read and validated with the portal's own settings."""

from __future__ import annotations

import attrs

from portal_core.config import setting


def types_of(text: str) -> frozenset[str]:
    """ "PDF, .png ,txt" -> {"pdf", "png", "txt"} """
    return frozenset(part.strip().lower().lstrip(".") for part in text.split(",") if part.strip().strip("."))


def _allow_lists(values: dict[str, str]) -> str | None:
    empty = [plan for plan, text in values.items() if not types_of(text)]
    return f"FILETYPES_ALLOW_{empty[0].upper()} lists no file type" if empty else None


@attrs.frozen
class FiletypesSettings:
    deny: tuple[str, ...] = setting(
        "FILETYPES_DENY", default=("exe", "elf"),
        hint="types refused on every plan, by name or by content: extensions (scr) or kinds (exe, elf, zip, ...)")
    allow: dict = setting(
        "FILETYPES_ALLOW_", prefix=True, check=_allow_lists,
        hint="FILETYPES_ALLOW_<PLAN>=pdf,png,txt accepts only those types on that plan (unset: any type)")

    def __attrs_post_init__(self) -> None:
        # Normalised once: "EXE" and ".exe" mean exe.
        object.__setattr__(self, "deny", tuple(sorted(types_of(",".join(self.deny)))))

    def allowed(self, plan: str) -> frozenset[str] | None:
        """The types ``plan`` accepts, or None when it accepts any."""
        text = self.allow.get(plan.lower())
        return types_of(text) if text is not None else None
