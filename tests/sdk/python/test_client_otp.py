"""One-time codes end to end on a running latchkey-local: the official Python SDK tracks and
validates (the customer's backend), plain HTTP plays the browser SDK's Client API calls
(docs/wire.md §5.1), and codes are read from the `.eml` outbox under the server's data folder, as a
person would read their mail. TOTP codes come from an implementation of RFC 6238 written here,
independently of the server's totp-rs.

Needs what test_server_sdk.py needs, plus `E2E_OUTBOX` (the server's `<data dir>/outbox`);
`run.sh` sets them.
"""

import base64
import email
import hashlib
import hmac
import os
import pathlib
import re
import struct
import time
import uuid

import pytest
import requests

from test_server_sdk import REQUEST_TIMEOUT, _env, assert_jwt, make_client


@pytest.fixture(scope="module")
def client():
    return make_client(_env("LKCLI_SECRET_KEY"))


def base_url():
    return _env("LKCLI_BASE_URL")


def origin():
    # The development tenant allows http://localhost:* ; the browser would send its origin.
    port = base_url().split(":")[2].split("/")[0]
    return f"http://localhost:{port}"


def client_api(path, token, body=None):
    headers = {"Authorization": f"Bearer {token}", "Origin": origin()}
    if body is not None:
        headers["Content-Type"] = "application/json"
    response = requests.post(
        f"{base_url()}{path}", json=body, headers=headers, timeout=REQUEST_TIMEOUT
    )
    assert response.headers.get("Content-Type") == "application/json", response.text
    return response.status_code, response.json()


def outbox_messages():
    folder = pathlib.Path(_env("E2E_OUTBOX"))
    return sorted(folder.glob("*.eml")) if folder.exists() else []


def newest_code(to):
    """The six-digit code of the newest message, checking it was addressed to `to`."""
    path = outbox_messages()[-1]
    message = email.message_from_bytes(path.read_bytes())
    assert message["To"] == to, message["To"]
    assert message.is_multipart()
    parts = {p.get_content_type(): p.get_payload(decode=True).decode() for p in message.walk()
             if not p.is_multipart()}
    assert set(parts) == {"text/plain", "text/html"}, set(parts)
    match = re.search(r"code is (\d{6})", parts["text/plain"])
    assert match, parts["text/plain"]
    assert match.group(1) in parts["text/html"]
    return match.group(1)


def totp(secret_b32, at=None, step=30, digits=6):
    """RFC 6238 TOTP with HMAC-SHA1 (RFC 4226 dynamic truncation)."""
    key = base64.b32decode(secret_b32 + "=" * (-len(secret_b32) % 8))
    counter = int((time.time() if at is None else at) // step)
    mac = hmac.new(key, struct.pack(">Q", counter), hashlib.sha1).digest()
    offset = mac[-1] & 0x0F
    value = struct.unpack(">I", mac[offset:offset + 4])[0] & 0x7FFFFFFF
    return str(value % 10**digits).zfill(digits)


def test_rfc6238_vector():
    # RFC 6238 appendix B, SHA1, T = 59: 94287082 (8 digits).
    secret = base64.b32encode(b"12345678901234567890").decode()
    assert totp(secret, at=59, digits=8) == "94287082"


def test_email_otp_enroll_and_verify_then_the_backend_validates(client):
    user = f"otp-{uuid.uuid4().hex}"
    address = f"{user}@example.com"
    tracked = client.track(user, "enrollEmail")
    token = tracked["token"]

    status, enrolled = client_api("/client/user-authenticators/email-otp", token,
                                  {"email": address})
    assert status == 200, enrolled
    assert enrolled["userId"] == user and enrolled["userAuthenticatorId"]
    code = newest_code(address)

    wrong = "000000" if code != "000000" else "111111"
    status, refused = client_api("/client/verify/email-otp", token, {"verificationCode": wrong})
    assert status == 200 and refused == {"isVerified": False,
                                         "failureReason": "CODE_INVALID_OR_EXPIRED"}, refused

    status, verified = client_api("/client/verify/email-otp", token, {"verificationCode": code})
    assert status == 200 and verified["isVerified"] is True, verified
    assert_jwt(verified["accessToken"])
    assert verified["userAuthenticator"]["verificationMethod"] == "EMAIL_OTP"

    valid = client.validate_challenge({"token": verified["accessToken"]})
    assert valid["is_valid"] is True and valid["state"] == "CHALLENGE_SUCCEEDED", valid
    listed = client.get_authenticators(user)
    assert [a["verification_method"] for a in listed] == ["EMAIL_OTP"], listed

    # A later challenge of the enrolled user, by email.
    tracked = client.track(user, "withdraw")
    status, challenge = client_api("/client/challenge/email-otp", tracked["token"])
    assert status == 200 and challenge["challengeId"], challenge
    status, verified = client_api("/client/verify/email-otp", tracked["token"],
                                  {"verificationCode": newest_code(address)})
    assert verified["isVerified"] is True, verified
    assert client.validate_challenge({"token": tracked["token"]})["is_valid"] is True


def test_totp_enroll_with_an_independent_implementation(client):
    user = f"otp-{uuid.uuid4().hex}"
    tracked = client.track(user, "enrollApp")
    token = tracked["token"]
    status, enrolled = client_api("/client/user-authenticators/totp", token)
    assert status == 200, enrolled
    assert enrolled["uri"].startswith("otpauth://totp/"), enrolled["uri"]
    assert f"secret={enrolled['secret']}" in enrolled["uri"]
    assert len(base64.b32decode(enrolled["secret"] + "=" * (-len(enrolled["secret"]) % 8))) == 20

    status, verified = client_api("/client/verify/totp", token,
                                  {"verificationCode": totp(enrolled["secret"])})
    assert status == 200 and verified["isVerified"] is True, verified
    assert len(verified["recoveryCodes"]) == 10
    assert client.validate_challenge({"token": token})["is_valid"] is True
