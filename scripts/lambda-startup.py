#!/usr/bin/env python3
"""Cold start of a Lambda binary, measured against a local Lambda Runtime API.

    scripts/lambda-startup.py BOOTSTRAP EVENT_JSON [RUNS]

Serves the Runtime API (the three calls a custom runtime makes: next invocation, response,
error) on loopback, starts BOOTSTRAP with the environment Lambda gives a function (and
whatever the caller exported: CRYPTOMON_BUCKET, AWS_ENDPOINT_URL, ...), hands it EVENT_JSON
as its first invocation and reports the time from process start to the posted response, the
function's answer, and the process's peak RSS. Each run is a fresh process: a cold start.
No Docker and no AWS needed; this is the part of `cargo lambda watch` the measurement uses.
"""

import json
import os
import resource
import statistics
import subprocess
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Runtime:
    def __init__(self, event):
        self.event = event
        self.request_id = None
        self.answer = threading.Event()
        self.result = None
        self.delivered = False


def handler_for(rt):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            if not self.path.endswith("/runtime/invocation/next"):
                self.send_error(404)
                return
            if rt.delivered:
                # One invocation per run: park the function like Lambda freezes it.
                time.sleep(60)
                return
            rt.delivered = True
            rt.request_id = str(uuid.uuid4())
            body = json.dumps(rt.event).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Lambda-Runtime-Aws-Request-Id", rt.request_id)
            self.send_header("Lambda-Runtime-Deadline-Ms", str(int(time.time() * 1000) + 30000))
            self.send_header(
                "Lambda-Runtime-Invoked-Function-Arn",
                "arn:aws:lambda:us-east-1:123456789012:function:cryptomon-api",
            )
            self.send_header("Lambda-Runtime-Trace-Id", "Root=1-00000000-000000000000000000000000")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            self.send_response(202)
            self.send_header("Content-Length", "0")
            self.end_headers()
            kind = "response" if self.path.endswith("/response") else "error"
            rt.result = (kind, body)
            rt.answer.set()

    return Handler


def run_once(bootstrap, event):
    rt = Runtime(event)
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler_for(rt))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    env = dict(os.environ)
    env.update(
        {
            "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{server.server_port}",
            "AWS_LAMBDA_FUNCTION_NAME": "cryptomon-api",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_LOG_FORMAT": "JSON",
        }
    )
    started = time.perf_counter()
    proc = subprocess.Popen([bootstrap], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    answered = rt.answer.wait(30)
    elapsed = time.perf_counter() - started
    proc.kill()
    _, stderr = proc.communicate()
    server.shutdown()
    if not answered:
        sys.exit(f"no answer within 30 s; the function said:\n{stderr.decode(errors='replace')}")
    kind, body = rt.result
    return elapsed, kind, body


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    bootstrap, event_path = sys.argv[1], sys.argv[2]
    runs = int(sys.argv[3]) if len(sys.argv) > 3 else 10
    with open(event_path) as f:
        event = json.load(f)
    times = []
    for _ in range(runs):
        elapsed, kind, body = run_once(bootstrap, event)
        if kind != "response":
            sys.exit(f"the function failed: {body.decode(errors='replace')}")
        times.append(elapsed * 1000)
    answer = json.loads(body)
    status = answer.get("statusCode")
    size = len(answer.get("body") or "")
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(
        f"{os.path.basename(bootstrap)}: {runs} cold starts, process start to answer: "
        f"median {statistics.median(times):.1f} ms, min {min(times):.1f}, max {max(times):.1f}; "
        f"answer: status {status}, body {size} bytes; peak RSS {peak:.1f} MB"
    )


if __name__ == "__main__":
    main()
