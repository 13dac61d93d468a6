"""portal-filetypes in a real portal (in-process, DEV_MODE, a fresh PostgreSQL database per test), using only
the portal's test kit (portal_core.testing): refusals are 422 with the reason, and nothing is stored."""

from __future__ import annotations

import pytest

from portal_core.testing import signed_in
from portal_filetypes.magic import kinds_of_name, sniff

PDF = b"%PDF-1.7\n" + b"0" * 2000
PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 2000
ZIP = b"PK\x03\x04" + b"\0" * 2000
EXE = b"MZ\x90\x00" + bytes(range(256)) * 20


async def upload(user, data: bytes, name: str):
    response = await user.upload(data, name)
    body = await response.json()
    return response.status, body["error"]["message"] if response.status >= 400 else body["name"]


async def files(user) -> list[str]:
    return [a["name"] for a in (await (await user.get("/api/artifacts")).json())["artifacts"]]


async def test_executables_are_refused_by_name_and_by_content(portal_client, portal_data_dir):
    ada = await signed_in(portal_client, "ada@example.com")
    assert await upload(ada, EXE, "setup.exe") == (422, "exe files are not accepted here")
    assert await upload(ada, EXE, "holiday.jpg") == (
        422, "this file is a Windows program (by its content), which is not accepted here")
    assert await upload(ada, b"\x7fELF\x02\x01\x01" + b"\0" * 100, "notes.txt") == (
        422, "this file is a Linux program (by its content), which is not accepted here")
    assert await upload(ada, PNG, "holiday.png") == (201, "holiday.png")
    assert await files(ada) == ["holiday.png"]
    stored = [p for p in (portal_data_dir / "artifacts").rglob("*") if p.is_file()]
    assert len(stored) == 1  # nothing of the refused files reached storage


@pytest.mark.portal(env={"FILETYPES_DENY": "zip, .SH"})
async def test_the_deny_list_is_a_setting(portal_client):
    ada = await signed_in(portal_client, "ada@example.com")
    assert await upload(ada, ZIP, "report.docx") == (422, "docx files are not accepted here")  # a ZIP inside
    assert await upload(ada, b"#!/bin/sh\necho hi\n", "run.sh") == (422, "sh files are not accepted here")
    assert (await upload(ada, EXE, "setup.exe"))[0] == 201  # no longer denied: the list replaced the default


@pytest.mark.portal(env={"FILETYPES_ALLOW_FREE": "pdf,png,txt"})
async def test_a_plan_can_accept_only_some_types_and_the_content_must_agree(portal_client):
    ada = await signed_in(portal_client, "ada@example.com")
    only = "the free plan accepts only these file types: pdf, png, txt"
    assert await upload(ada, PDF, "report.pdf") == (201, "report.pdf")
    assert await upload(ada, b"plain words", "notes.txt") == (201, "notes.txt")
    assert await upload(ada, ZIP, "archive.zip") == (422, only)
    assert await upload(ada, b"no extension", "README") == (422, only)
    assert await upload(ada, ZIP, "report.pdf") == (
        422, f"this file's content is a ZIP archive, not what its name says; {only}")
    # The pro plan has no list of its own: a customer who upgrades may upload any type (but no executables).
    pay = await ada.post("/dev/billing/checkout", data={"plan": "pro", "csrf_token": ada.csrf}, csrf=False)
    assert pay.status == 302
    assert await upload(ada, ZIP, "archive.zip") == (201, "archive.zip")
    assert (await upload(ada, EXE, "setup.exe"))[0] == 422
    assert sorted(await files(ada)) == ["archive.zip", "notes.txt", "report.pdf"]


def test_names_and_magic_bytes():
    assert kinds_of_name("Report.Final.PDF") == {"pdf"} and kinds_of_name("a.jpg") == {"jpg", "jpeg"}
    assert kinds_of_name("Makefile") == set() and kinds_of_name(".bashrc") == set()
    assert [sniff(data) for data in (PDF, PNG, ZIP, EXE, b"GIF89a..", b"RIFF\0\0\0\0WEBPVP8 ", b"hello")] == [
        "pdf", "png", "zip", "exe", "gif", "webp", None]
