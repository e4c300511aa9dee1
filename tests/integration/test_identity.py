"""The operator's identities without static keys, against the emulator's IAM and metadata service.

Most tests run in-process (``httpx.ASGITransport``) on the emulator's ``FakeClock``: an ID token
signed here stands in for a projected ServiceAccount token, the keys IAM hands out are used to
sign real DLI calls, and moving the clock shows them renewed before they expire. The last two
hold the emulator to the reference: ``huaweicloudsdkcore``'s own FederalAccessor and
MetadataAccessor against the live emulator.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from huaweicloudsdkcore.auth.credentials import BasicCredentials
from huaweicloudsdkcore.auth.internal import MetadataAccessor
from huaweicloudsdkcore.http.http_config import HttpConfig
from huaweicloudsdkdli.v1 import DliClient as SdkDliClient
from huaweicloudsdkdli.v1 import ListSparkJobsRequest
from starlette.applications import Starlette

from dli_operator.dli.auth import AkSkAuth, Credentials
from dli_operator.dli.client import DliClient
from dli_operator.dli.errors import DliAuthError
from dli_operator.dli.identity import (
    CredentialsProvider,
    FileCredentials,
    IdentityError,
    MetadataCredentials,
    OidcCredentials,
)
from dli_operator.dli.retries import NO_RETRIES
from dli_operator.emulator.clock import FakeClock
from dli_operator.emulator.config import EmulatorConfig

if TYPE_CHECKING:
    from conftest import LiveEmulator

ENDPOINT = "http://dli.emulator"
IDP = "cce-cluster"
AUDIENCE = "dli.dev"
LIFETIME = 900.0  # what the emulator's IAM grants in these tests


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class Issuer:
    """An OpenID Connect issuer: an EC key, its JWKS, and ES256 ID tokens."""

    def __init__(self, kid: str = "sa-key") -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.kid = kid

    def jwks(self) -> dict[str, Any]:
        numbers = self.key.public_key().public_numbers()
        coords = {n: b64(v.to_bytes(32, "big")) for n, v in (("x", numbers.x), ("y", numbers.y))}
        return {"keys": [{"kty": "EC", "crv": "P-256", "kid": self.kid, "alg": "ES256", **coords}]}

    def token(self, now: float, *, audience: str = AUDIENCE, lifetime: float = 600) -> str:
        header = {"alg": "ES256", "kid": self.kid, "typ": "JWT"}
        claims = {
            "iss": "https://kubernetes.default.svc",
            "sub": "system:serviceaccount:dli-operator-system:dli-operator",
            "aud": [audience],
            "iat": int(now),
            "exp": int(now + lifetime),
        }
        signing = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
        der = self.key.sign(signing.encode(), ec.ECDSA(hashes.SHA256()))
        r, s = decode_dss_signature(der)
        return f"{signing}.{b64(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"


@pytest.fixture
def issuer() -> Issuer:
    return Issuer()


@pytest.fixture
async def trusting(control: httpx.AsyncClient, issuer: Issuer) -> Issuer:
    """The emulator's IAM trusts ``issuer`` and grants keys for ``LIFETIME`` seconds."""
    spec = {
        "idpId": IDP,
        "jwks": issuer.jwks(),
        "audiences": [AUDIENCE],
        "credentialSeconds": LIFETIME,
    }
    response = await control.post("/iam", json=spec)
    assert response.status_code == 200, response.text
    return issuer


def rotate(path: Path, token: str) -> None:
    """What the kubelet does to a projected token file: new content in place."""
    path.write_text(token)


def wall(clock: FakeClock) -> Callable[[], datetime]:
    return lambda: datetime.fromtimestamp(clock(), tz=UTC)


@pytest.fixture
def token_file(tmp_path: Path, issuer: Issuer, fake_clock: FakeClock) -> Path:
    path = tmp_path / "token"
    path.write_text(issuer.token(fake_clock()))
    return path


@pytest.fixture
async def oidc(
    emulator_app: Starlette, token_file: Path, fake_clock: FakeClock
) -> AsyncIterator[OidcCredentials]:
    provider = OidcCredentials(
        iam_endpoint=ENDPOINT,
        idp_id=IDP,
        token_file=token_file,
        transport=httpx.ASGITransport(app=emulator_app),
        clock=wall(fake_clock),
    )
    yield provider
    await provider.aclose()


async def list_batches(
    app: Starlette, config: EmulatorConfig, clock: FakeClock, keys: Credentials
) -> None:
    """One signed DLI call with ``keys``; raises DliAuthError if the gateway refuses them."""
    auth = AkSkAuth(keys, clock=wall(clock))
    async with DliClient(
        project_id=config.project_id,
        endpoint=ENDPOINT,
        allow_insecure=True,
        auth=auth,
        transport=httpx.ASGITransport(app=app),
        retry_policy=NO_RETRIES,
    ) as client:
        await client.list_batches()


async def iam_issued(control: httpx.AsyncClient) -> dict[str, int]:
    issued: dict[str, int] = (await control.get("/iam")).json()["issued"]
    return issued


async def test_a_service_account_token_becomes_temporary_keys_that_dli_accepts(
    trusting: Issuer,
    oidc: OidcCredentials,
    emulator_app: Starlette,
    emulator_config: EmulatorConfig,
    fake_clock: FakeClock,
    control: httpx.AsyncClient,
) -> None:
    keys = await oidc.get()
    assert keys.security_token
    assert oidc.expires_at is not None
    assert abs(oidc.expires_at.timestamp() - (fake_clock() + LIFETIME)) < 1
    await list_batches(emulator_app, emulator_config, fake_clock, keys)
    assert await iam_issued(control) == {"id_token": 1, "securitytoken": 1}
    assert await oidc.get() is keys, "fresh keys are reused, not fetched per call"


async def test_temporary_keys_are_renewed_before_they_expire_and_the_old_ones_then_fail(
    trusting: Issuer,
    oidc: OidcCredentials,
    token_file: Path,
    emulator_app: Starlette,
    emulator_config: EmulatorConfig,
    fake_clock: FakeClock,
    control: httpx.AsyncClient,
) -> None:
    first = await oidc.get()
    # The kubelet rotates the projected token; the next exchange must read the new one.
    fake_clock.advance(LIFETIME / 2 + 1)
    rotate(token_file, trusting.token(fake_clock()))
    second = await oidc.get()
    assert second.access_key != first.access_key
    assert await iam_issued(control) == {"id_token": 2, "securitytoken": 2}
    fake_clock.advance(LIFETIME / 2)
    with pytest.raises(DliAuthError, match="token expires"):
        await list_batches(emulator_app, emulator_config, fake_clock, first)
    await list_batches(emulator_app, emulator_config, fake_clock, second)


@pytest.mark.parametrize("token", ["gQ-someone-elses-token", None])
async def test_temporary_keys_are_refused_without_their_own_security_token(
    trusting: Issuer,
    oidc: OidcCredentials,
    emulator_app: Starlette,
    emulator_config: EmulatorConfig,
    fake_clock: FakeClock,
    token: str | None,
) -> None:
    keys = await oidc.get()
    stripped = Credentials(keys.access_key, keys.secret_key, token)
    with pytest.raises(DliAuthError, match="security token does not belong"):
        await list_batches(emulator_app, emulator_config, fake_clock, stripped)


async def test_an_id_token_from_an_untrusted_key_is_refused_with_iams_reason(
    trusting: Issuer, oidc: OidcCredentials, token_file: Path, fake_clock: FakeClock
) -> None:
    forged = Issuer(kid=trusting.kid).token(fake_clock())
    rotate(token_file, forged)
    with pytest.raises(DliAuthError, match="signature does not match") as caught:
        await oidc.get()
    assert forged not in str(caught.value)


async def test_an_id_token_for_another_audience_is_refused(
    trusting: Issuer, oidc: OidcCredentials, token_file: Path, fake_clock: FakeClock
) -> None:
    rotate(token_file, trusting.token(fake_clock(), audience="kubernetes"))
    with pytest.raises(DliAuthError, match="audience"):
        await oidc.get()


async def test_a_failed_renewal_keeps_the_current_keys_while_they_are_valid(
    trusting: Issuer, oidc: OidcCredentials, token_file: Path, fake_clock: FakeClock
) -> None:
    first = await oidc.get()
    fake_clock.advance(LIFETIME / 2 + 1)
    rotate(token_file, "")
    assert await oidc.get() is first
    fake_clock.advance(LIFETIME)
    with pytest.raises(IdentityError, match="is empty"):
        await oidc.get()


async def test_the_metadata_service_hands_out_keys_dli_accepts(
    emulator_app: Starlette, emulator_config: EmulatorConfig, fake_clock: FakeClock
) -> None:
    provider: CredentialsProvider = MetadataCredentials(
        endpoint=ENDPOINT, transport=httpx.ASGITransport(app=emulator_app), clock=wall(fake_clock)
    )
    keys = await provider.get()
    await list_batches(emulator_app, emulator_config, fake_clock, keys)
    await provider.aclose()


async def test_mounted_keys_are_read_again_when_the_files_change(tmp_path: Path) -> None:
    (tmp_path / "accessKey").write_text("AK-ONE\n")
    (tmp_path / "secretKey").write_text("SK-ONE")
    provider = FileCredentials(tmp_path)
    assert await provider.get() == Credentials("AK-ONE", "SK-ONE")
    (tmp_path / "secretKey").write_text("SK-TWO-LONGER")
    (tmp_path / "securityToken").write_text("TOKEN")
    assert await provider.get() == Credentials("AK-ONE", "SK-TWO-LONGER", "TOKEN")


def test_the_official_sdks_federated_credentials_work_against_the_emulators_iam(
    live_emulator: LiveEmulator, issuer: Issuer, tmp_path: Path
) -> None:
    """``huaweicloudsdkcore``'s FederalAccessor is the reference for the exchange (issue 11)."""
    spec = {"idpId": IDP, "jwks": issuer.jwks(), "audiences": [AUDIENCE]}
    httpx.post(live_emulator.url + "/_emulator/iam", json=spec).raise_for_status()
    token = tmp_path / "sdk-token"
    token.write_text(issuer.token(time.time()))
    config = live_emulator.config
    credentials = (
        BasicCredentials()
        .with_project_id(config.project_id)
        .with_idp_id(IDP)
        .with_id_token_file(str(token))
        .with_iam_endpoint(live_emulator.url)
    )
    http = HttpConfig.get_default_config()
    http.timeout = (5, 10)
    client = (
        SdkDliClient.new_builder()
        .with_credentials(credentials)
        .with_endpoints([live_emulator.url])
        .with_http_config(http)
        .build()
    )
    listed = client.list_spark_jobs(ListSparkJobsRequest(size=10))
    assert listed.total == 0
    issued = httpx.get(live_emulator.url + "/_emulator/iam").json()["issued"]
    assert issued == {"id_token": 1, "securitytoken": 1}


def test_the_official_sdks_metadata_accessor_reads_the_emulators_security_key(
    live_emulator: LiveEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The SDK's metadata address is a class constant (169.254.169.254); point it at the emulator.
    monkeypatch.setattr(MetadataAccessor, "_METADATA_ENDPOINT", live_emulator.url)
    credential = MetadataAccessor().get_credential()
    assert all((credential.access, credential.secret, credential.security_token))
    assert credential.expire_at > time.time()
    issued = httpx.get(live_emulator.url + "/_emulator/iam").json()["issued"]
    assert issued == {"metadata": 1}
