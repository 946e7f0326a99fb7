"""Drives a running Latchkey through Authsignal's official Python SDK (`authsignal` 4.1.0).

Needs `LKCLI_BASE_URL` (e.g. `http://127.0.0.1:8798/v1`, no trailing slash) and
`LKCLI_SECRET_KEY` (the tenant's server secret key). `run.sh` next to this file starts
`latchkey-local` and sets both.

SDK facts these tests rely on (read from authsignal/client.py 4.1.0):
* `AuthsignalClient(api_secret_key, api_url=..., timeout=2.0)`; `timeout` is never applied.
* Request bodies are sent verbatim (callers pass camelCase wire names); response keys are
  `humps.decamelize`d, and a 2xx body is decoded only when `Content-Type` is exactly
  `application/json` (else the method raises AttributeError).
* Non-2xx raises `authsignal.client.ApiException` with `status_code`, `error_code` (from the
  body's `errorCode`) and `error_description` (from `errorDescription`).
* Never pass None values: the SDK drops them after Content-Length was computed and hangs.
"""

import base64
import json
import os
import uuid
from datetime import datetime

import pytest
from authsignal.client import ApiException, AuthsignalClient

ACTION = "sdkSignIn"
DEFAULT_METHODS = ["PASSKEY", "AUTHENTICATOR_APP", "EMAIL_OTP"]
# The SDK applies no timeout of its own (see above); a server that stops answering must fail a
# test, not hang the run. (connect, read) seconds.
REQUEST_TIMEOUT = (5, 30)
UNAUTHORIZED_DESCRIPTION = (
    "The request is unauthorized. Check that your API key and region base URL are "
    "correctly configured."
)


def _env(name):
    value = os.environ.get(name)
    if not value:
        pytest.fail(f"{name} is not set (run tests/sdk/python/run.sh)", pytrace=False)
    return value


def make_client(secret):
    """The official client, plus two test-only guards on its requests.Session:
    a request timeout, and a clear failure when a 2xx body is not `application/json` exactly
    (the SDK itself would only raise AttributeError: 'Response' has no 'decamelized_content')."""
    client = AuthsignalClient(secret, _env("LKCLI_BASE_URL"))
    session = client.session
    sdk_send = session.send

    def send(request, **kwargs):
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = REQUEST_TIMEOUT
        response = sdk_send(request, **kwargs)
        content_type = response.headers.get("Content-Type")
        if response.content and content_type != "application/json":
            raise AssertionError(
                f"{request.method} {request.url} -> {response.status_code} with Content-Type "
                f"{content_type!r}; the Python SDK decodes only exactly 'application/json'"
            )
        return response

    session.send = send
    return client


@pytest.fixture(scope="session")
def client():
    return make_client(_env("LKCLI_SECRET_KEY"))


@pytest.fixture
def user_id():
    return f"sdk-{uuid.uuid4().hex}"


def new_user_id():
    return f"sdk-{uuid.uuid4().hex}"


def b64url_json(part):
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def b64url(obj):
    raw = json.dumps(obj, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def parse_time(value):
    assert isinstance(value, str) and value, value
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def assert_jwt(token):
    assert isinstance(token, str), token
    parts = token.split(".")
    assert len(parts) == 3 and all(parts), f"not a JWT: {token!r}"
    header = b64url_json(parts[0])
    assert header.get("alg") and header["alg"].lower() != "none", header
    b64url_json(parts[1])  # the payload is JSON too


def assert_refused(call, statuses=(400,)):
    """A refused validation is either a 200 with `is_valid: False` or an ApiException with one of
    `statuses`; anything else (above all `is_valid: True`) fails."""
    try:
        response = call()
    except ApiException as e:
        assert e.status_code in statuses, (e.status_code, e.error_code, e.error_description)
        assert isinstance(e.error_code, str) and e.error_code, vars(e)
        return
    assert response["is_valid"] is False, response


def track_succeeded(client, user_id, action=ACTION):
    """Tracks an action and marks it CHALLENGE_SUCCEEDED; returns the track response."""
    tracked = client.track(user_id, action)
    updated = client.update_action(
        user_id, action, tracked["idempotency_key"], {"state": "CHALLENGE_SUCCEEDED"}
    )
    assert updated["state"] == "CHALLENGE_SUCCEEDED", updated
    return tracked


# --- track / actions -----------------------------------------------------------------------------


def test_track_new_user_requires_a_challenge(client, user_id):
    response = client.track(user_id, ACTION)

    assert response["state"] == "CHALLENGE_REQUIRED", response
    assert isinstance(response["idempotency_key"], str) and response["idempotency_key"]
    assert_jwt(response["token"])
    url = response["url"]
    # browser launch() appends "&mode=popup" and does new URL(url): absolute, with a query.
    assert isinstance(url, str) and url.startswith(("http://", "https://")), url
    assert "?" in url, url
    assert response["is_enrolled"] is False, response
    assert sorted(response["allowed_verification_methods"]) == sorted(DEFAULT_METHODS), response
    assert not response.get("enrolled_verification_methods"), response


def test_track_accepts_the_attributes_the_sdk_test_sends(client, user_id):
    # Authsignal's own SDK test sends snake_case attribute names and custom data.
    response = client.track(
        user_id,
        ACTION,
        {
            "redirectUrl": "http://localhost:3000/done",
            "redirect_url": "http://localhost:3000/done",
            "redirectToSettings": True,
            "email": f"{user_id}@example.com",
            "phoneNumber": "+64211234567",
            "ipAddress": "127.0.0.1",
            "user_agent": "Latchkey-Python-SDK-Tests/1.0",
            "deviceId": "device123",
            "custom": {"hello": "world", "n": 3, "ok": True},
        },
    )
    assert response["state"] == "CHALLENGE_REQUIRED", response
    assert response["idempotency_key"]
    assert_jwt(response["token"])


def test_each_track_without_a_key_is_a_new_action(client, user_id):
    first = client.track(user_id, ACTION)
    second = client.track(user_id, ACTION)
    assert first["idempotency_key"] != second["idempotency_key"]


def test_track_with_the_same_idempotency_key_returns_the_same_action(client, user_id):
    key = f"idem-{uuid.uuid4().hex}"
    first = client.track(user_id, ACTION, {"idempotencyKey": key})
    assert first["idempotency_key"] == key, first
    before = client.get_action(user_id, ACTION, key)
    client.update_action(user_id, ACTION, key, {"state": "CHALLENGE_SUCCEEDED"})

    second = client.track(user_id, ACTION, {"idempotencyKey": key})
    assert second["idempotency_key"] == key, second

    # No second action: the existing one was neither replaced nor reset to CHALLENGE_REQUIRED.
    after = client.get_action(user_id, ACTION, key)
    assert after["created_at"] == before["created_at"], (before, after)
    assert after["state"] == "CHALLENGE_SUCCEEDED", after


def test_get_action(client, user_id):
    tracked = client.track(user_id, ACTION)
    response = client.get_action(user_id, ACTION, tracked["idempotency_key"])

    assert response["state"] == "CHALLENGE_REQUIRED", response
    created = parse_time(response["created_at"])
    updated = parse_time(response["state_updated_at"])
    assert updated >= created, response
    assert "output" in response and isinstance(response["output"], dict), response


def test_update_action_echoes_the_state_and_get_action_reflects_it(client, user_id):
    tracked = client.track(user_id, ACTION)
    key = tracked["idempotency_key"]
    updated = client.update_action(user_id, ACTION, key, {"state": "BLOCK"})
    assert updated["state"] == "BLOCK", updated
    response = client.get_action(user_id, ACTION, key)
    assert response["state"] == "BLOCK", response


@pytest.mark.parametrize("code", ["bad code!", "x" * 65, "na\u00efve"])
def test_track_rejects_an_invalid_action_code(client, user_id, code):
    with pytest.raises(ApiException) as caught:
        client.track(user_id, code)
    assert caught.value.status_code == 400, vars(caught.value)
    assert caught.value.error_code == "invalid_request", vars(caught.value)


# --- validate ------------------------------------------------------------------------------------


def test_validate_lifecycle(client, user_id):
    tracked = client.track(user_id, ACTION)
    token = tracked["token"]
    key = tracked["idempotency_key"]

    pending = client.validate_challenge({"token": token})
    assert pending["is_valid"] is False, pending
    assert pending["state"] == "CHALLENGE_REQUIRED", pending
    assert pending["user_id"] == user_id, pending
    assert pending["action"] == ACTION, pending
    assert pending["idempotency_key"] == key, pending

    updated = client.update_action(user_id, ACTION, key, {"state": "CHALLENGE_SUCCEEDED"})
    assert updated["state"] == "CHALLENGE_SUCCEEDED", updated
    action = client.get_action(user_id, ACTION, key)
    assert action["state"] == "CHALLENGE_SUCCEEDED", action

    # A matching userId and action are accepted.
    valid = client.validate_challenge({"token": token, "userId": user_id, "action": ACTION})
    assert valid["is_valid"] is True, valid
    assert valid["state"] == "CHALLENGE_SUCCEEDED", valid
    assert valid["user_id"] == user_id, valid
    assert valid["action"] == ACTION, valid
    assert valid["idempotency_key"] == key, valid

    # A succeeded token validates successfully once only.
    replay = client.validate_challenge({"token": token})
    assert replay["is_valid"] is False, replay


@pytest.mark.parametrize("mismatch", ["userId", "action"])
def test_validate_refuses_a_mismatching_user_or_action(client, user_id, mismatch):
    tracked = track_succeeded(client, user_id)
    attributes = {"token": tracked["token"], "userId": user_id, "action": ACTION}
    attributes[mismatch] = new_user_id() if mismatch == "userId" else "someOtherAction"
    assert_refused(lambda: client.validate_challenge(attributes))


def test_validate_refuses_a_tampered_token(client, user_id):
    tracked = track_succeeded(client, user_id)
    header, payload, signature = tracked["token"].split(".")

    claims = b64url_json(payload)
    if "sub" in claims:
        claims["sub"] = new_user_id()
    else:
        claims["tampered"] = True
    forged_payload = f"{header}.{b64url(claims)}.{signature}"
    flipped = "A" if signature[0] != "A" else "B"
    forged_signature = f"{header}.{payload}.{flipped}{signature[1:]}"

    for forged in (forged_payload, forged_signature, "not-a-token"):
        assert_refused(lambda: client.validate_challenge({"token": forged}), (400, 401))


def test_user_ids_are_percent_decoded(client):
    # Python quotes path segments: "@" arrives as %40. The stored user id is the decoded one.
    user_id = f"sdk-{uuid.uuid4().hex}@example.com"
    tracked = client.track(user_id, ACTION)
    response = client.validate_challenge({"token": tracked["token"]})
    assert response["user_id"] == user_id, response
    action = client.get_action(user_id, ACTION, tracked["idempotency_key"])
    assert action["state"] == "CHALLENGE_REQUIRED", action


# --- users ---------------------------------------------------------------------------------------


def test_get_unknown_user_is_not_enrolled(client, user_id):
    response = client.get_user(user_id)
    assert response["is_enrolled"] is False, response
    assert not response.get("email"), response


def test_update_user_round_trip(client, user_id):
    attributes = {
        "email": f"{user_id}@example.com",
        "phoneNumber": "+64211234567",
        "username": f"user-{user_id}",
        "displayName": "Zo\u00eb SDK-Test",
    }
    expected = {
        "email": attributes["email"],
        "phone_number": attributes["phoneNumber"],
        "username": attributes["username"],
        "display_name": attributes["displayName"],
    }

    updated = client.update_user(user_id, attributes)
    for key, value in expected.items():
        assert updated.get(key) == value, (key, updated)

    fetched = client.get_user(user_id)
    for key, value in expected.items():
        assert fetched.get(key) == value, (key, fetched)
    assert fetched["is_enrolled"] is False, fetched

    # PATCH: attributes left out of a later update are kept.
    renamed = client.update_user(user_id, {"displayName": "Renamed"})
    assert renamed.get("display_name") == "Renamed", renamed
    assert renamed.get("email") == attributes["email"], renamed
    fetched = client.get_user(user_id)
    assert fetched.get("display_name") == "Renamed", fetched
    assert fetched.get("phone_number") == attributes["phoneNumber"], fetched


def test_delete_user(client, user_id):
    email = f"{user_id}@example.com"
    client.update_user(user_id, {"email": email, "displayName": "To Be Deleted"})
    client.enroll_verified_authenticator(user_id, {"verificationMethod": "EMAIL_OTP", "email": email})
    before = client.get_user(user_id)
    assert before["is_enrolled"] is True and before.get("email") == email, before

    assert client.delete_user(user_id) is None

    after = client.get_user(user_id)
    assert after["is_enrolled"] is False, after
    assert not after.get("email"), after
    assert not after.get("display_name"), after
    assert client.get_authenticators(user_id) == []


# --- authenticators ------------------------------------------------------------------------------


def test_authenticator_lifecycle(client, user_id):
    email = f"{user_id}@example.com"
    assert client.get_authenticators(user_id) == []

    enrolled = client.enroll_verified_authenticator(
        user_id, {"verificationMethod": "EMAIL_OTP", "email": email}
    )
    authenticator = enrolled["authenticator"]
    authenticator_id = authenticator["user_authenticator_id"]
    assert isinstance(authenticator_id, str) and authenticator_id, enrolled
    assert authenticator["verification_method"] == "EMAIL_OTP", enrolled
    # Authsignal's own SDK test asserts these two as well.
    assert authenticator["email"] == email, enrolled
    assert authenticator["user_id"] == user_id, enrolled

    listed = client.get_authenticators(user_id)
    assert isinstance(listed, list) and len(listed) == 1, listed
    assert listed[0]["user_authenticator_id"] == authenticator_id, listed
    assert listed[0]["verification_method"] == "EMAIL_OTP", listed
    assert listed[0]["email"] == email, listed

    user = client.get_user(user_id)
    assert user["is_enrolled"] is True, user

    tracked = client.track(user_id, ACTION)
    assert tracked["is_enrolled"] is True, tracked
    assert "EMAIL_OTP" in tracked["enrolled_verification_methods"], tracked

    assert client.delete_authenticator(user_id, authenticator_id) is None
    assert client.get_authenticators(user_id) == []
    user = client.get_user(user_id)
    assert user["is_enrolled"] is False, user


# --- errors --------------------------------------------------------------------------------------

WRONG_SECRET_CALLS = {
    "track": lambda c, u: c.track(u, ACTION),
    "get_action": lambda c, u: c.get_action(u, ACTION, uuid.uuid4().hex),
    "update_action": lambda c, u: c.update_action(
        u, ACTION, uuid.uuid4().hex, {"state": "CHALLENGE_SUCCEEDED"}
    ),
    "validate_challenge": lambda c, u: c.validate_challenge({"token": "a.b.c"}),
    "get_user": lambda c, u: c.get_user(u),
    "update_user": lambda c, u: c.update_user(u, {"displayName": "Nobody"}),
    "delete_user": lambda c, u: c.delete_user(u),
    "get_authenticators": lambda c, u: c.get_authenticators(u),
    "enroll_verified_authenticator": lambda c, u: c.enroll_verified_authenticator(
        u, {"verificationMethod": "EMAIL_OTP", "email": "nobody@example.com"}
    ),
    "delete_authenticator": lambda c, u: c.delete_authenticator(u, uuid.uuid4().hex),
}


def wrong_secrets():
    real = os.environ.get("LKCLI_SECRET_KEY", "")
    secrets = {
        "garbage": "bad-secret",
        "unknown-key-id": "lk_0000000000000000_" + "x" * 30,
    }
    parts = real.split("_", 2)
    if len(parts) == 3 and parts[0] == "lk":
        # The real key id with another secret must not pass either.
        secrets["right-key-id-wrong-secret"] = f"lk_{parts[1]}_{'y' * max(22, len(parts[2]))}"
    return secrets


@pytest.mark.parametrize("secret_name", sorted(wrong_secrets()))
@pytest.mark.parametrize("method", sorted(WRONG_SECRET_CALLS))
def test_wrong_secret_is_unauthorized(user_id, secret_name, method):
    bad_client = make_client(wrong_secrets()[secret_name])
    with pytest.raises(ApiException) as caught:
        WRONG_SECRET_CALLS[method](bad_client, user_id)
    error = caught.value
    assert error.status_code == 401, vars(error)
    assert error.error_code == "unauthorized", vars(error)
    assert isinstance(error.error_description, str) and error.error_description, vars(error)


def test_unauthorized_description_matches_authsignal(user_id):
    # Authsignal's own SDK test asserts this exact text and str() form.
    bad_client = make_client("bad-secret")
    with pytest.raises(ApiException) as caught:
        bad_client.get_action(user_id, ACTION, "test-key")
    assert caught.value.error_description == UNAUTHORIZED_DESCRIPTION
    assert str(caught.value) == f"AuthsignalException: 401 - {UNAUTHORIZED_DESCRIPTION}"


def test_nothing_happened_under_a_wrong_secret(client, user_id):
    # A refused write must not have been applied.
    make_client_bad = make_client("bad-secret")
    with pytest.raises(ApiException):
        make_client_bad.update_user(user_id, {"email": f"{user_id}@example.com"})
    with pytest.raises(ApiException):
        make_client_bad.enroll_verified_authenticator(
            user_id, {"verificationMethod": "EMAIL_OTP", "email": f"{user_id}@example.com"}
        )
    user = client.get_user(user_id)
    assert user["is_enrolled"] is False and not user.get("email"), user
    assert client.get_authenticators(user_id) == []
