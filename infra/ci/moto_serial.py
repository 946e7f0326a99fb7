"""Serve moto on 127.0.0.1, one request at a time.

moto's own `moto_server` is threaded, and its TransactWriteItems rolls back a cancelled
transaction by restoring a deep copy of the whole table: two transactions in flight at once can
resurrect or lose each other's writes, which real DynamoDB never does (each request there is
atomic). Serving requests one at a time restores that per-request atomicity, so the store and
audit-chain race tests test our conditions, not moto's threading.

usage: python moto_serial.py PORT
"""
import sys

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import run_simple

if __name__ == "__main__":
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 5055
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(
        "127.0.0.1",
        port,
        app,
        threaded=False,
        use_reloader=False,
        request_handler=MotoRequestHandler,
    )
