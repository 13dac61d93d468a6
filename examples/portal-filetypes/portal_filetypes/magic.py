"""What a file is, by its name and by its first bytes ("magic numbers")."""

from __future__ import annotations

# Kind -> the signatures its files start with.
SIGNATURES: dict[str, tuple[bytes, ...]] = {
    "exe": (b"MZ",),                                   # Windows executables and DLLs (PE)
    "elf": (b"\x7fELF",),                              # Linux executables and libraries
    "macho": (b"\xfe\xed\xfa\xce", b"\xfe\xed\xfa\xcf", b"\xce\xfa\xed\xfe", b"\xcf\xfa\xed\xfe"),
    "script": (b"#!",),
    "pdf": (b"%PDF-",),
    "png": (b"\x89PNG\r\n\x1a\n",),
    "jpeg": (b"\xff\xd8\xff",),
    "gif": (b"GIF87a", b"GIF89a"),
    "zip": (b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08"),
    "gzip": (b"\x1f\x8b",),
    "7z": (b"7z\xbc\xaf\x27\x1c",),
    "rar": (b"Rar!\x1a\x07",),
}
DESCRIPTIONS = {"exe": "a Windows program", "elf": "a Linux program", "macho": "a macOS program",
                "script": "a script", "pdf": "a PDF document", "png": "a PNG image", "jpeg": "a JPEG image",
                "gif": "a GIF image", "zip": "a ZIP archive", "gzip": "a gzip archive", "7z": "a 7-Zip archive",
                "rar": "a RAR archive", "webp": "a WebP image"}
# Extensions whose files are of a kind above (Office documents, JARs and APKs are ZIP archives).
EXTENSIONS: dict[str, str] = {
    **dict.fromkeys(("exe", "dll", "scr", "com", "cpl", "sys", "efi"), "exe"),
    **dict.fromkeys(("so", "elf"), "elf"),
    **dict.fromkeys(("dylib",), "macho"),
    **dict.fromkeys(("sh", "bash", "zsh", "py", "pl", "rb", "ps1", "bat", "cmd", "vbs"), "script"),
    "pdf": "pdf", "png": "png", **dict.fromkeys(("jpg", "jpeg", "jpe"), "jpeg"), "gif": "gif", "webp": "webp",
    **dict.fromkeys(("zip", "docx", "xlsx", "pptx", "odt", "ods", "odp", "epub", "jar", "apk"), "zip"),
    **dict.fromkeys(("gz", "tgz"), "gzip"), "7z": "7z", "rar": "rar",
}


def sniff(head: bytes) -> str | None:
    """The kind the first bytes reveal, or None (plain text, or nothing this module knows)."""
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    for kind, signatures in SIGNATURES.items():
        if head.startswith(signatures):
            return kind
    return None


def extension(filename: str) -> str:
    """ "Report.Final.PDF" -> "pdf"; "" without one. """
    base = filename.replace("\\", "/").rsplit("/", 1)[-1]
    return base.rsplit(".", 1)[-1].strip().lower() if "." in base.strip(".") else ""


def kinds_of_name(filename: str) -> set[str]:
    """What the name says the file is: its extension, and the kind that extension stands for."""
    ext = extension(filename)
    return {name for name in (ext, EXTENSIONS.get(ext)) if name}


def describe(kind: str) -> str:
    return DESCRIPTIONS.get(kind, kind)
