"""Checking an OpenID Connect ID token the way IAM does for a federated login (iam_13_0605).

IAM trusts an identity provider by its signing keys (a JWKS, for Kubernetes the API server's
``/openid/v1/jwks``) and by the audience it expects; a token is accepted if its signature is
one of those keys', it has not expired, and its ``aud`` names the expected audience. ES256
(the keys our control plane signs ServiceAccount tokens with) and RS256 (the Kubernetes default)
are supported. Pure: no I/O.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Mapping
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

# Seconds of clock difference tolerated on exp/nbf, as most OIDC verifiers allow.
LEEWAY_SECONDS = 60


class InvalidIdToken(ValueError):
    """The ID token is not acceptable; the message says why (never the token itself)."""


def verify(
    token: str, jwks: Mapping[str, Any], audiences: Iterable[str], now: float
) -> dict[str, Any]:
    """The token's claims, if it is signed by one of ``jwks``' keys, current, and for us."""
    try:
        head, body, sig = token.split(".")
        header = json.loads(_b64(head))
        claims = json.loads(_b64(body))
        signature = _b64(sig)
    except ValueError:
        raise InvalidIdToken("the id_token is not a JWT") from None
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise InvalidIdToken("the id_token is not a JWT")
    signed = f"{head}.{body}".encode("ascii")
    keys = [k for k in jwks.get("keys", []) if k.get("kid") in (None, header.get("kid"))]
    if not any(_verifies(key, header.get("alg"), signed, signature) for key in keys):
        raise InvalidIdToken("the id_token signature does not match the identity provider's keys")
    _check_claims(claims, set(audiences), now)
    return claims


def _check_claims(claims: dict[str, Any], audiences: set[str], now: float) -> None:
    exp = claims.get("exp")
    if not isinstance(exp, int | float) or exp + LEEWAY_SECONDS < now:
        raise InvalidIdToken("the id_token has expired")
    nbf = claims.get("nbf")
    if isinstance(nbf, int | float) and nbf - LEEWAY_SECONDS > now:
        raise InvalidIdToken("the id_token is not valid yet")
    aud = claims.get("aud")
    given = {aud} if isinstance(aud, str) else set(aud or [])
    if audiences and not given & audiences:
        raise InvalidIdToken(f"the id_token audience {sorted(given)} is not {sorted(audiences)}")


def _verifies(key: Mapping[str, Any], alg: object, signed: bytes, signature: bytes) -> bool:
    try:
        if alg == "ES256" and key.get("kty") == "EC" and key.get("crv") == "P-256":
            public = ec.EllipticCurvePublicNumbers(
                _int(key["x"]), _int(key["y"]), ec.SECP256R1()
            ).public_key()
            half = len(signature) // 2
            der = encode_dss_signature(
                int.from_bytes(signature[:half], "big"), int.from_bytes(signature[half:], "big")
            )
            public.verify(der, signed, ec.ECDSA(hashes.SHA256()))
            return True
        if alg == "RS256" and key.get("kty") == "RSA":
            rsa_key = rsa.RSAPublicNumbers(_int(key["e"]), _int(key["n"])).public_key()
            rsa_key.verify(signature, signed, padding.PKCS1v15(), hashes.SHA256())
            return True
    except (InvalidSignature, KeyError, ValueError):
        return False
    return False


def _b64(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def _int(part: str) -> int:
    return int.from_bytes(_b64(part), "big")
