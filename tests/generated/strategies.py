"""Hypothesis strategies for hostile HTTP requests: raw bytes, so nothing a client library would tidy up
(non-UTF-8 header values, NUL, lone surrogates, broken multipart framing) is out of reach.

Every strategy draws mostly plausible input with hostile details, because a request the portal refuses at
the first check exercises nothing behind it.
"""

from __future__ import annotations

import base64
import json
import re
from urllib.parse import quote

import attrs
from hypothesis import strategies as st

# Text that has hurt parsers before: NUL, lone surrogates, bidi controls, very long, odd digits, offsets.
NASTY_TEXT = [
    "", " ", "\x00", "a\x00b", "\ud800", "x\udfffy", "\u202etxt.exe", "²", "١٢", "-1", "0", "1e9", "NaN",
    "9" * 30, "a" * 5000, "../../etc/passwd", "%00", "%ff", "<script>", "' OR 1=1 --", "\r\nX-Injected: 1",
    "2020-01-01T00:00:00+23:59:59.999999", "0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59-23:59",
    "pt_", "pt_" + "A" * 43, "null", "true", "[]", "{}",
]
text = st.one_of(st.sampled_from(NASTY_TEXT), st.text(max_size=40))
raw_bytes = st.one_of(st.sampled_from([b"\xff\xfe", b"\x80", b"\xc3", b"\xed\xa0\x80", b"\x00"]), st.binary(max_size=40))


def utf8(value: str) -> bytes:
    return value.encode("utf-8", "surrogatepass")


# ---------------------------------------------------------------------------------------------------
# URLs


def percent(value: str) -> str:
    return quote(value.encode("utf-8", "surrogatepass"), safe="")


path_value = st.one_of(
    st.uuids().map(str),
    st.sampled_from(["1", "0", "99999999999999999999", "abc", "%00", "%ff%fe", "%ed%a0%80", "a%2Fb", "..", "x" * 300]),
    text.map(percent),
)

QUERY_NAMES = ["cursor", "limit", "sort", "order", "q", "key", "next", "state", "code", "error", "partNumbers",
               "expires", "signature", "type", "before", "after", "page", "user", "plan", "session_id"]


@st.composite
def query_string(draw) -> bytes:
    """``?name=value&...`` with the names routes read and hostile values: percent-encoded, raw non-UTF-8
    bytes, NUL, cursors that decode to odd timestamps."""
    pairs = draw(st.lists(st.tuples(st.one_of(st.sampled_from(QUERY_NAMES), text), query_value()), max_size=4))
    if not pairs:
        return b""
    return b"?" + b"&".join(utf8(percent(name)) + b"=" + value for name, value in pairs)


@st.composite
def query_value(draw) -> bytes:
    kind = draw(st.sampled_from(["text", "raw", "cursor", "number"]))
    if kind == "raw":
        return draw(raw_bytes).replace(b" ", b"").replace(b"#", b"").replace(b"&", b"")
    if kind == "cursor":
        key = draw(st.one_of(st.sampled_from(NASTY_TEXT), st.datetimes(timezones=st.timezones()).map(str)))
        prefix = draw(st.sampled_from(["", "name.asc:", "size.desc:", "created_at.asc:"]))
        raw = f"{prefix}{key}|{draw(st.uuids())}".encode("utf-8", "surrogatepass")
        return base64.urlsafe_b64encode(raw).rstrip(b"=")
    if kind == "number":
        return str(draw(st.integers(min_value=-(2**70), max_value=2**70))).encode()
    return utf8(percent(draw(text)))


# ---------------------------------------------------------------------------------------------------
# Bodies


json_scalar = st.one_of(st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
                        st.floats(allow_nan=False), text)
json_value = st.recursive(json_scalar, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                                 st.dictionaries(text, inner, max_size=4)),
                          max_leaves=12)
FIELDS = ["name", "scopes", "expires_in", "password", "expires_at", "max_downloads", "filename", "type", "metadata",
          "size", "sha256", "parts", "url", "events", "title", "max_files", "max_bytes", "plan", "quota",
          "max_file", "frozen", "admin", "note", "reason", "message", "enabled", "uploads_paused", "banner"]


@st.composite
def json_body(draw) -> bytes:
    """A JSON object with the fields routes read, holding hostile values; sometimes nested absurdly deep,
    sometimes not JSON at all."""
    kind = draw(st.sampled_from(["object", "object", "object", "deep", "scalar", "broken"]))
    if kind == "deep":
        depth = draw(st.integers(min_value=30, max_value=5000))
        return b'{"name":' + b"[" * depth + b"]" * depth + b"}"
    if kind == "scalar":
        return json.dumps(draw(json_value)).encode()
    if kind == "broken":
        return draw(st.sampled_from([b"{", b'{"name": "\\ud800"}', b'{"name": "\\u0000"}', b"\xff\xfe{}",
                                     b'{"name": 1e99999}', b"[" * 100000]))
    fields = draw(st.dictionaries(st.one_of(st.sampled_from(FIELDS), text), json_value, max_size=5))
    return json.dumps(fields).encode("utf-8", "surrogatepass")


@st.composite
def form_body(draw) -> bytes:
    """application/x-www-form-urlencoded fields, some with raw non-UTF-8 bytes or NUL."""
    pairs = draw(st.lists(st.tuples(st.sampled_from(["csrf_token", "plan", "url", "password", "email", "name", "state",
                                                     "events", "admin"]), query_value()), max_size=4))
    return b"&".join(utf8(name) + b"=" + value for name, value in pairs)


BOUNDARY = "FuzzBoundary7MA4YWxkTrZu0gW"


@attrs.frozen
class Multipart:
    body: bytes
    content_type: bytes
    complete: bool  # every part and the closing boundary are there (the framing may still be malformed)


@st.composite
def multipart_body(draw) -> Multipart:
    """A form with a 'file' part (and maybe other fields) — whole, cut off anywhere, with garbage or
    over-long part headers, or without a boundary at all."""
    boundary = draw(st.sampled_from([BOUNDARY, "b", "x" * 70]))
    filename = draw(st.one_of(st.sampled_from(["a.txt", "\u202etxt.exe", "r\u00e9sum\u00e9.pdf", "", "a\x00b",
                                               "%22quoted%22", "x" * 300]), text))
    # Near-misses of the delimiter inside the file (a real one would end the file there, and the form
    # after it would be whole or not by other rules than the cut's).
    near = boundary[:-1].encode()
    content = draw(st.one_of(st.binary(max_size=2048), st.sampled_from([b"", b"\r\n--" + near + b"\x00",
                                                                        b"--" + near, b"\r\n--" + near])))
    headers = draw(st.sampled_from([
        b"", b"Content-Type: text/plain\r\n", b"Content-Type: \xff\xfe\r\n", b"X-Long: " + b"a" * 9000 + b"\r\n",
        b"\xff\xfe\x00garbage\r\n", b"Content-Transfer-Encoding: base64\r\n",
    ]))
    parts = []
    if draw(st.booleans()):
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="note"\r\n\r\n'.encode() + utf8(draw(text)) + b"\r\n")
    parts.append(f"--{boundary}\r\n".encode() + b'Content-Disposition: form-data; name="file"; filename="'
                 + utf8(filename).replace(b'"', b"%22").replace(b"\r", b"%0D").replace(b"\n", b"%0A") + b'"\r\n'
                 + headers + b"\r\n" + content + b"\r\n")
    whole = b"".join(parts) + f"--{boundary}--\r\n".encode()
    cut = draw(st.one_of(st.just(len(whole)), st.integers(min_value=0, max_value=len(whole))))
    content_type = draw(st.sampled_from([
        f"multipart/form-data; boundary={boundary}".encode(), b"multipart/form-data",
        b"multipart/form-data; boundary=", b"multipart/form-data; boundary=" + b"z" * 100,
        f"multipart/form-data; boundary={boundary}".encode(),
    ]))
    # The CRLF after the closing boundary is optional (RFC 2046): without it the form is still whole.
    return Multipart(whole[:cut], content_type, cut >= len(whole) - 2)


@st.composite
def body(draw) -> tuple[bytes, bytes | None]:
    """(body, Content-Type) of any kind a route might take, or none."""
    kind = draw(st.sampled_from(["none", "json", "form", "multipart", "bytes"]))
    if kind == "none":
        return b"", None
    if kind == "json":
        return draw(json_body()), draw(st.sampled_from([b"application/json", b"text/plain", b"application/json; charset=latin-1"]))
    if kind == "form":
        return draw(form_body()), b"application/x-www-form-urlencoded"
    if kind == "multipart":
        form = draw(multipart_body())
        return form.body, form.content_type
    return draw(st.binary(max_size=512)), draw(st.one_of(st.none(), raw_bytes))


# ---------------------------------------------------------------------------------------------------
# Headers and credentials

EXTRA_HEADERS = [b"X-CSRF-Token", b"X-Request-Id", b"User-Agent", b"Accept", b"Accept-Language", b"Origin",
                 b"Referer", b"Stripe-Signature", b"X-Forwarded-For", b"Range", b"If-None-Match", b"Cookie",
                 b"Authorization", b"webhook-signature"]


@st.composite
def extra_headers(draw) -> list[tuple[bytes, bytes]]:
    """A few headers with hostile values: raw bytes, NUL-free (HTTP forbids it) but not UTF-8."""
    chosen = draw(st.lists(st.tuples(st.sampled_from(EXTRA_HEADERS),
                                     st.one_of(text.map(utf8), raw_bytes)), max_size=3))
    return [(name, value.replace(b"\r", b"").replace(b"\n", b"").replace(b"\x00", b"")) for name, value in chosen]


def header_block(headers: list[tuple[bytes, bytes]]) -> bytes:
    return b"".join(name + b": " + value + b"\r\n" for name, value in headers)


def raw_request(method: str, target: bytes, headers: list[tuple[bytes, bytes]], payload: bytes,
                content_type: bytes | None) -> bytes:
    """One HTTP/1.1 request, ``Connection: close``, with a Content-Length that matches ``payload``."""
    all_headers = [(b"Host", b"127.0.0.1"), (b"Connection", b"close"), *headers]
    if content_type is not None:
        all_headers.append((b"Content-Type", content_type))
    all_headers.append((b"Content-Length", str(len(payload)).encode()))
    return method.encode() + b" " + target + b" HTTP/1.1\r\n" + header_block(all_headers) + b"\r\n" + payload


_PARAM = re.compile(r"\{([^}:]+)(?::[^}]+)?\}")


def fill_path(canonical: str, values: dict[str, str]) -> str:
    """``/api/artifacts/{id}`` with each ``{name}`` replaced by ``values[name]``."""
    return _PARAM.sub(lambda m: values[m.group(1)], canonical)


def path_params(canonical: str, known: dict[str, list[str]]):
    """A strategy for the route's path parameters: often a value that exists (``known[name]``: an artifact's
    id, a share link's token), else a hostile one."""
    return st.fixed_dictionaries({
        name: st.one_of(st.sampled_from(known[name]), path_value) if known.get(name) else path_value
        for name in _PARAM.findall(canonical)})
