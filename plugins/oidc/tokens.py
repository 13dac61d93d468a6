"""Checking an id_token (OpenID Connect Core §3.1.3.7) with joserfc.

The signature must verify against the provider's key named by the token's ``kid``, with an
asymmetric algorithm the provider advertises (never "none", never HMAC: the client secret is not a
signing key here). Then iss, aud, azp, exp, iat and nonce are checked, with ``leeway`` seconds of
clock skew tolerated on the times.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from joserfc import jws, jwt
from joserfc.errors import ClaimError, ExpiredTokenError, InvalidKeyIdError, JoseError, MissingClaimError
from joserfc.jwk import KeySet

ASYMMETRIC_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA")


class TokenRejected(Exception):
    """The id_token is not acceptable; the message says why (for the operator's log, not the person)."""


def key_id(raw: str) -> str | None:
    """The ``kid`` in an id_token's protected header (None when absent). Raises :class:`TokenRejected`."""
    try:
        kid = jws.extract_compact(raw.encode("ascii")).headers().get("kid")
    except (JoseError, UnicodeEncodeError, ValueError) as exc:
        raise TokenRejected(f"id_token is not a compact JWS: {exc}") from exc
    return kid if isinstance(kid, str) else None


def allowed_algorithms(advertised: Iterable[str] | None) -> list[str]:
    """The signing algorithms we accept: the provider's advertised ones that are asymmetric (RS256 if none)."""
    algorithms = [alg for alg in (advertised or ["RS256"]) if alg in ASYMMETRIC_ALGORITHMS]
    return algorithms or ["RS256"]


def verify_id_token(raw: str, keys: KeySet, *, issuer: str, client_id: str, nonce: str, leeway: int,
                    algorithms: list[str]) -> dict[str, Any]:
    """The claims of ``raw`` once its signature and claims check out. Raises :class:`TokenRejected`."""
    kid = key_id(raw)
    try:
        key = keys.get_by_kid(kid) if kid is not None else _only_key(keys)
    except InvalidKeyIdError:
        raise TokenRejected(f"id_token is signed with key id {kid!r}, which the provider's JWKS does not list") from None
    try:
        token = jwt.decode(raw, key, algorithms=algorithms)
    except JoseError as exc:
        raise TokenRejected(f"id_token signature does not verify ({exc.error}: {exc.description or exc})") from exc
    claims = token.claims
    registry = jwt.JWTClaimsRegistry(
        leeway=leeway,
        iss={"essential": True, "value": issuer},
        sub={"essential": True},
        aud={"essential": True, "value": client_id},
        exp={"essential": True},
        iat={"essential": True},
        nonce={"essential": True, "value": nonce},
    )
    try:
        registry.validate(claims)
    except ExpiredTokenError:
        raise TokenRejected(f"id_token expired at {claims.get('exp')} (clock skew allowed: {leeway}s)") from None
    except MissingClaimError as exc:
        raise TokenRejected(f"id_token lacks the claim(s) {exc.claim}") from None
    except ClaimError as exc:
        # Name the claim and its value so the log says what to fix (e.g. a client id mismatch).
        raise TokenRejected(f"id_token claim {exc.claim} is not acceptable: {exc.description} "
                            f"(got {claims.get(exc.claim)!r})") from None
    audience = claims["aud"]
    # With several audiences, azp must name us (OIDC Core §3.1.3.7, items 4 and 5).
    if isinstance(audience, list) and len(audience) > 1 and claims.get("azp") != client_id:
        raise TokenRejected(f"id_token has several audiences {audience!r} and azp {claims.get('azp')!r} is not ours")
    return claims


def _only_key(keys: KeySet) -> Any:
    # No kid: acceptable only when the provider publishes exactly one signing key.
    members = list(keys)
    if len(members) != 1:
        raise TokenRejected(f"id_token names no key id and the provider publishes {len(members)} keys")
    return members[0]

