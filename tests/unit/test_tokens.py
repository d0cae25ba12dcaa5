"""JWT matrix: every malformed, forged or expired token is refused with one generic error."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from docgate.config import Settings
from docgate.errors import Unauthenticated
from docgate.tokens import (
    GENERIC_MESSAGE,
    KeyConfigurationError,
    TokenMinter,
    TokenRejected,
    TokenVerifier,
)

SECRET = "s" * 48
USER = uuid.uuid4()


def _claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims: dict[str, Any] = {"sub": str(USER), "iat": now, "exp": now + 60}
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def _hs(**overrides: Any) -> str:
    return jwt.encode(_claims(**overrides), SECRET, algorithm="HS256")


def _refused(verifier: TokenVerifier, token: str) -> None:
    with pytest.raises(Unauthenticated) as caught:
        verifier.verify(token)
    assert caught.value.message == GENERIC_MESSAGE


@pytest.fixture
def hs_verifier() -> TokenVerifier:
    return TokenVerifier(Settings(jwt_secret=SECRET))


def test_valid_token_gives_subject(hs_verifier: TokenVerifier) -> None:
    assert hs_verifier.verify(_hs()) == USER


def test_minted_token_round_trips() -> None:
    settings = Settings(jwt_secret=SECRET, jwt_audience="docgate", jwt_issuer="https://idp")
    assert TokenVerifier(settings).verify(TokenMinter(settings).mint(USER, 60)) == USER


@pytest.mark.parametrize(
    "token",
    [
        pytest.param(_hs(exp=int(time.time()) - 120), id="expired-beyond-leeway"),
        pytest.param(_hs(exp=None), id="missing-exp"),
        pytest.param(_hs(iat=None), id="missing-iat"),
        pytest.param(_hs(sub=None), id="missing-sub"),
        pytest.param(_hs(sub="not-a-uuid"), id="sub-not-uuid"),
        pytest.param(_hs(nbf=int(time.time()) + 600), id="not-yet-valid"),
        pytest.param(jwt.encode(_claims(), "w" * 48, algorithm="HS256"), id="wrong-key"),
        pytest.param(jwt.encode(_claims(), SECRET, algorithm="HS512"), id="other-hmac-alg"),
        pytest.param(jwt.encode(_claims(), None, algorithm="none"), id="alg-none"),
        pytest.param(_hs()[:-3] + "abc", id="bad-signature"),
        pytest.param("not.a.jwt", id="garbage"),
        pytest.param("", id="empty"),
    ],
)
def test_bad_tokens_are_refused(hs_verifier: TokenVerifier, token: str) -> None:
    _refused(hs_verifier, token)


def test_small_clock_skew_is_tolerated(hs_verifier: TokenVerifier) -> None:
    assert hs_verifier.verify(_hs(exp=int(time.time()) - 5)) == USER


def test_audience_and_issuer_are_checked_when_configured() -> None:
    verifier = TokenVerifier(Settings(jwt_secret=SECRET, jwt_audience="docgate", jwt_issuer="idp"))
    assert verifier.verify(_hs(aud="docgate", iss="idp")) == USER
    _refused(verifier, _hs(iss="idp"))  # missing aud
    _refused(verifier, _hs(aud="other", iss="idp"))
    _refused(verifier, _hs(aud=["docgate", "other"], iss="idp"))  # strict audience
    _refused(verifier, _hs(aud="docgate"))  # missing iss
    _refused(verifier, _hs(aud="docgate", iss="idp2"))
    _refused(verifier, _hs(aud="docgate", iss="id"))


def _rsa_files(tmp_path: Path) -> tuple[Path, Path, bytes]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    (tmp_path / "key.pem").write_bytes(private)
    (tmp_path / "pub.pem").write_bytes(public)
    return tmp_path / "key.pem", tmp_path / "pub.pem", public


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _hand_signed_hs256(secret: bytes) -> str:
    """HS256 built by hand: PyJWT itself refuses to use a PEM key as an HMAC secret."""
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    payload = _b64(json.dumps(_claims()).encode())
    signature = hmac.new(secret, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{_b64(signature)}"


def test_rs256_and_key_confusion(tmp_path: Path) -> None:
    private_file, public_file, public = _rsa_files(tmp_path)
    settings = Settings(
        jwt_algorithm="RS256",
        jwt_public_key_file=public_file,
        jwt_private_key_file=private_file,
    )
    verifier = TokenVerifier(settings)
    assert verifier.verify(TokenMinter(settings).mint(USER, 60)) == USER
    # HS256 signed with the public key as the HMAC secret (CVE-2022-29217 pattern).
    _refused(verifier, _hand_signed_hs256(public))
    _refused(verifier, jwt.encode(_claims(), None, algorithm="none"))
    # A token from an ES256 key is refused by an RS256 verifier.
    _refused(verifier, jwt.encode(_claims(), ec.generate_private_key(ec.SECP256R1()), "ES256"))


def test_hs256_needs_a_real_secret() -> None:
    with pytest.raises(KeyConfigurationError):
        TokenVerifier(Settings())
    with pytest.raises(KeyConfigurationError):
        TokenVerifier(Settings(jwt_secret="short"))


def test_rs256_needs_a_key_file(tmp_path: Path) -> None:
    with pytest.raises(KeyConfigurationError):
        TokenVerifier(Settings(jwt_algorithm="RS256"))
    with pytest.raises(KeyConfigurationError):
        TokenVerifier(Settings(jwt_algorithm="RS256", jwt_public_key_file=tmp_path / "missing"))


class FakeClock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def test_a_remembered_token_still_expires() -> None:
    clock = FakeClock()
    verifier = TokenVerifier(Settings(jwt_secret=SECRET, jwt_leeway_seconds=30), clock=clock)
    token = _hs(exp=int(clock.now) + 60)
    assert verifier.verify(token) == USER
    clock.now += 60 + 29
    assert verifier.verify(token) == USER  # within leeway, served from memory
    clock.now += 2
    _refused(verifier, token)
    _refused(verifier, token)  # and stays refused


def test_a_remembered_token_is_not_valid_before_nbf() -> None:
    clock = FakeClock()
    verifier = TokenVerifier(Settings(jwt_secret=SECRET, jwt_leeway_seconds=0), clock=clock)
    token = _hs(nbf=int(clock.now))
    assert verifier.verify(token) == USER
    clock.now -= 10  # a clock that went back: the remembered nbf is checked again
    _refused(verifier, token)


def test_a_token_differing_in_one_byte_is_verified_afresh(hs_verifier: TokenVerifier) -> None:
    token = _hs()
    assert hs_verifier.verify(token) == USER
    tampered = token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1]
    _refused(hs_verifier, tampered)
    assert hs_verifier.verify(token) == USER


def test_the_memory_is_bounded() -> None:
    verifier = TokenVerifier(Settings(jwt_secret=SECRET), cache_size=2)
    subjects = [uuid.uuid4() for _ in range(5)]
    tokens = [_hs(sub=str(subject)) for subject in subjects]
    for token, subject in list(zip(tokens, subjects, strict=True)) * 2:
        assert verifier.verify(token) == subject
    assert len(verifier._cache) <= 2


@pytest.mark.parametrize(
    "claims",
    [
        {"exp": "4102444800"},
        {"iat": "1700000000"},
        {"nbf": "1700000000"},
        {"exp": True},
        {"sub": "{SUB}"},
        {"sub": "SUB_UPPER"},
        {"sub": "urn:uuid:SUB"},
        {"sub": "SUB_NOHYPHENS"},
    ],
    ids=["exp-string", "iat-string", "nbf-string", "exp-bool", "sub-braced", "sub-upper",
         "sub-urn", "sub-hex"],
)  # fmt: skip
def test_only_the_canonical_claims_docgate_mints_are_accepted(claims: dict[str, object]) -> None:
    """RFC 7519: NumericDate for exp/iat/nbf, StringOrURI compared case-sensitively (issue 11
    finding 8)."""
    import time
    import uuid as uuid_module

    import jwt as pyjwt

    from docgate.config import Settings
    from docgate.tokens import TokenVerifier

    secret = "s" * 40
    user = uuid_module.uuid4()
    now = int(time.time())
    body: dict[str, object] = {"sub": str(user), "iat": now, "exp": now + 600}
    for key, value in claims.items():
        if isinstance(value, str):
            value = (
                value.replace("SUB_UPPER", str(user).upper())
                .replace("SUB_NOHYPHENS", user.hex)
                .replace("SUB", str(user))
            )
        body[key] = value
    token = pyjwt.encode(body, secret, algorithm="HS256")
    verifier = TokenVerifier(Settings(jwt_secret=secret))
    with pytest.raises(Unauthenticated):
        verifier.verify(token)
    canonical = pyjwt.encode({"sub": str(user), "iat": now, "exp": now + 600}, secret)
    assert verifier.verify(canonical) == user


# Built at collection time, possibly many minutes before the test runs (a full suite on a busy
# box took 20): each lives a day and the not-yet-valid ones start in 6 hours, so only the
# expired one is expired and those stay in the future.
_HOUR = int(time.time()) + 86400


@pytest.mark.parametrize(
    ("token", "reason", "cause"),
    [
        (_hs(exp=int(time.time()) - 120), "TOKEN_EXPIRED", "token expired"),
        (_hs(nbf=int(time.time()) + 21600, exp=_HOUR), "INVALID_TOKEN", "not yet valid"),
        (_hs(iat=int(time.time()) + 21600, exp=_HOUR), "INVALID_TOKEN", "not yet valid"),
        (jwt.encode(_claims(exp=_HOUR), "w" * 48, algorithm="HS256"), "INVALID_TOKEN",
         "bad signature"),
        (jwt.encode(_claims(exp=_HOUR), None, algorithm="none"), "INVALID_TOKEN", "algorithm"),
        (_hs(exp=None), "INVALID_TOKEN", "'exp'"),
        (_hs(sub="not-a-uuid", exp=_HOUR), "INVALID_TOKEN", "sub is not a user id"),
        ("not.a.jwt", "INVALID_TOKEN", "malformed"),
    ],
)  # fmt: skip
def test_a_refusal_tells_the_log_why_and_the_caller_only_expired_or_not(
    hs_verifier: TokenVerifier, token: str, reason: str, cause: str
) -> None:
    with pytest.raises(TokenRejected) as caught:
        hs_verifier.verify(token)
    assert (caught.value.message, caught.value.reason) == (GENERIC_MESSAGE, reason)
    assert cause in caught.value.cause
    assert token not in caught.value.cause


def test_wrong_audience_and_issuer_are_told_apart() -> None:
    verifier = TokenVerifier(Settings(jwt_secret=SECRET, jwt_audience="docgate", jwt_issuer="idp"))
    for token, cause in (
        (_hs(aud="other", iss="idp"), "wrong audience"),
        (_hs(aud="docgate", iss="idp2"), "wrong issuer"),
    ):
        with pytest.raises(TokenRejected) as caught:
            verifier.verify(token)
        assert caught.value.cause == cause


def test_a_remembered_token_that_expires_says_so() -> None:
    clock = FakeClock()
    verifier = TokenVerifier(Settings(jwt_secret=SECRET, jwt_leeway_seconds=0), clock=clock)
    token = _hs(exp=int(clock.now) + 60)
    assert verifier.verify(token) == USER
    clock.now += 61
    with pytest.raises(TokenRejected) as caught:
        verifier.verify(token)
    assert caught.value.reason == "TOKEN_EXPIRED"
