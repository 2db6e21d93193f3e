#!/usr/bin/env python3
"""moto's S3 server for the tests, with its requests handled one at a time.

`python3 -m moto.server` answers requests on parallel threads, and its conditional writes
(`If-None-Match: *`, `If-Match`) check the current object, then write, without a lock: two
racing writers can both win. Real S3 makes them atomic, and the S3 store's conformance suite
races writers on purpose, so under load it failed now and then on moto (two winners of a
create, or of an update). Handling one request at a time makes moto's check and write atomic;
moto's Python work is serialised by the GIL anyway, so the tests lose little.

    python3 scripts/moto_server.py PORT
"""

import os
import sys
import threading

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import run_simple


def main() -> None:
    port = int(sys.argv[1])
    os.environ.setdefault("MOTO_PORT", str(port))  # as `python3 -m moto.server` sets it
    app = DomainDispatcherApplication(create_backend_app)
    lock = threading.Lock()

    def one_at_a_time(environ, start_response):
        with lock:
            # moto's responses are whole byte strings: materialise them inside the lock.
            return list(app(environ, start_response))

    run_simple("127.0.0.1", port, one_at_a_time, threaded=True)


if __name__ == "__main__":
    main()
