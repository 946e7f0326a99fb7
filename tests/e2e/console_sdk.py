"""Tracks one action with Authsignal's official Python SDK (authsignal 4.1.0), for the console's
browser test (tests/e2e/console.mjs): the secret key is the one the console just showed.

Usage: python console_sdk.py BASE_URL SECRET_KEY USER_ID ACTION [CUSTOM_JSON]
Prints {"state": ...} as JSON.
"""

import json
import sys

from authsignal.client import AuthsignalClient


def main():
    base, secret, user, action = sys.argv[1:5]
    client = AuthsignalClient(secret, base)
    if len(sys.argv) > 5:
        response = client.track(user, action, {"custom": json.loads(sys.argv[5])})
    else:
        response = client.track(user, action)
    print(json.dumps({"state": response["state"]}))


if __name__ == "__main__":
    main()
