"""A rule changed through the management API (`/v1/admin`, with a management key) decides the
next track the official Python SDK sends: issue #15's "a track through the Python SDK shows the
new rule's effect".

Needs `LKCLI_BASE_URL`, `LKCLI_SECRET_KEY` and `LKCLI_MANAGEMENT_KEY` (an admin-role key of the
SDK tenant, minted by `run.sh` with `latchkey-admin management-key create`).
"""

import os
import uuid

import pytest
import requests
from authsignal.client import AuthsignalClient

TENANT = "sdk-tenant"
ACTION = "sdkManagedRule"


def _env(name):
    value = os.environ.get(name)
    if not value:
        pytest.fail(f"{name} is not set (run tests/sdk/python/run.sh)", pytrace=False)
    return value


def admin(method, path, body=None, key=None):
    base = _env("LKCLI_BASE_URL")  # .../v1
    return requests.request(
        method,
        f"{base}/admin{path}",
        json=body,
        headers={"Authorization": f"Bearer {key or _env('LKCLI_MANAGEMENT_KEY')}"},
        timeout=(5, 30),
    )


def set_outcome(outcome):
    r = admin(
        "PATCH",
        f"/tenants/{TENANT}",
        {"actions": {ACTION: {"defaultOutcome": outcome}}},
    )
    assert r.status_code == 200, r.text
    assert r.json()["actions"][ACTION]["defaultOutcome"] == outcome, r.text


def test_a_rule_set_through_the_management_api_decides_the_next_sdk_track():
    client = AuthsignalClient(_env("LKCLI_SECRET_KEY"), _env("LKCLI_BASE_URL"))
    user = f"managed-{uuid.uuid4().hex[:12]}"
    set_outcome("BLOCK")
    assert client.track(user, ACTION)["state"] == "BLOCK"
    set_outcome("ALLOW")
    assert client.track(user, ACTION)["state"] == "ALLOW"
    # The change is in the tenant's audit log, by the key.
    r = admin("GET", f"/tenants/{TENANT}/audit?action=tenant.settings.update")
    assert r.status_code == 200, r.text
    actors = {e["actor"] for e in r.json()["events"]}
    assert any(a.startswith("mkey:") for a in actors), actors


def test_a_management_key_is_refused_what_only_people_may_do_and_other_tenants():
    r = admin(
        "POST",
        f"/tenants/{TENANT}/grants",
        {"scope": "read", "hours": 1, "reason": "a key may not grant support access"},
    )
    assert r.status_code == 403, r.text
    assert r.json()["errorCode"] == "forbidden", r.text
    assert admin("GET", "/tenants/another-tenant").status_code == 403
    assert admin("GET", f"/tenants/{TENANT}", key="lkm_0000000000000000_" + "x" * 43).status_code == 401
