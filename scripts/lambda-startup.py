#!/usr/bin/env python3
"""A Lambda binary run against a local Lambda Runtime API: cold starts, or one warm container.

    scripts/lambda-startup.py BOOTSTRAP EVENT_JSON [RUNS]
    scripts/lambda-startup.py --warm N BOOTSTRAP EVENT_JSON

Serves the Runtime API (the three calls a custom runtime makes: next invocation, response,
error) on loopback, starts BOOTSTRAP with the environment Lambda gives a function (and
whatever the caller exported: CRYPTOMON_BUCKET, AWS_ENDPOINT_URL, ...) and hands it EVENT_JSON.

Without --warm, each of RUNS runs (default 10) is a fresh process answering one invocation: a
cold start. It reports the time from process start to the posted response, the function's
answer, and the peak RSS over the processes.

With --warm N, one process answers N invocations of EVENT_JSON in a row, as a warm container
does; it reports each invocation's time, the answer, and the process's peak RSS (VmHWM).

No Docker and no AWS needed; this is the part of `cargo lambda watch` the measurement uses.
Other scripts (scripts/lambda-memory.py) import it and use `Function` directly: one process,
any sequence of events, its RSS after each.
"""

import json
import os
import queue
import resource
import statistics
import subprocess
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Runtime:
    """The Runtime API's state: the events waiting to be delivered, the answer to the last."""

    def __init__(self, function_name):
        self.function_name = function_name
        self.events = queue.Queue()
        self.answers = queue.Queue()
        self.deadline_ms = 30000


def handler_for(rt):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            if not self.path.endswith("/runtime/invocation/next"):
                self.send_error(404)
                return
            try:
                # Between invocations the function waits here, as Lambda freezes it.
                event = rt.events.get(timeout=3600)
            except queue.Empty:
                return
            request_id = str(uuid.uuid4())
            body = json.dumps(event).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Lambda-Runtime-Aws-Request-Id", request_id)
            self.send_header(
                "Lambda-Runtime-Deadline-Ms", str(int(time.time() * 1000) + rt.deadline_ms)
            )
            self.send_header(
                "Lambda-Runtime-Invoked-Function-Arn",
                f"arn:aws:lambda:us-east-1:123456789012:function:{rt.function_name}",
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
            rt.answers.put((kind, body))

    return Handler


class Function:
    """One process of BOOTSTRAP on its own local Runtime API: one container, cold then warm."""

    def __init__(self, bootstrap, function_name=None, env=None):
        name = function_name or f"cryptomon-{os.path.basename(bootstrap)}"
        self.rt = Runtime(name)
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler_for(self.rt))
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        full_env = dict(os.environ)
        full_env.update(
            {
                "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{self.server.server_port}",
                "AWS_LAMBDA_FUNCTION_NAME": name,
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
                "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
                "AWS_LAMBDA_LOG_FORMAT": "JSON",
            }
        )
        full_env.update(env or {})
        self.started = time.perf_counter()
        self.invoked = False
        self.proc = subprocess.Popen(
            [bootstrap], env=full_env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        # Drain stderr as it comes (a busy function would block on a full pipe); keep the tail.
        self.log = []
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self):
        for line in self.proc.stderr:
            self.log.append(line)
            del self.log[:-200]

    def invoke(self, event, timeout=30):
        """Delivers `event`, waits for its answer: (seconds, "response" | "error", body).

        The first invocation's time counts from the process's start (the cold start)."""
        self.rt.deadline_ms = int(timeout * 1000)
        start = time.perf_counter() if self.invoked else self.started
        self.invoked = True
        self.rt.events.put(event)
        try:
            kind, body = self.rt.answers.get(timeout=timeout)
        except queue.Empty:
            self.stop()
            sys.exit(f"no answer within {timeout} s; the function said:\n{self.tail()}")
        return time.perf_counter() - start, kind, body

    def _status(self, field):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
        return 0.0

    def peak_rss_mb(self):
        """The process's peak RSS so far, MiB: the largest VmHWM read (the kernel's high-water
        mark, the figure `/usr/bin/time` reports; it is brought up to date only when memory is
        unmapped, so a later read can show less)."""
        self.peak = max(getattr(self, "peak", 0.0), self._status("VmHWM"))
        return self.peak

    def reset_peak(self):
        """Sets the process's high-water mark back to its RSS now (Linux 4.0 and later), so
        the next peak_rss_mb() is the peak of the invocations after this call."""
        with open(f"/proc/{self.proc.pid}/clear_refs", "w") as f:
            f.write("5")
        self.peak = 0.0

    def rss_mb(self):
        """The process's RSS now (VmRSS), MiB."""
        return self._status("VmRSS")

    def tail(self):
        return b"".join(self.log[-40:]).decode(errors="replace")

    def stop(self):
        self.proc.kill()
        self.proc.wait()
        self.server.shutdown()
        self.server.server_close()


def run_once(bootstrap, event):
    f = Function(bootstrap)
    elapsed, kind, body = f.invoke(event)
    f.stop()
    return elapsed, kind, body


def cold(bootstrap, event, runs):
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


def warm(bootstrap, event, n):
    f = Function(bootstrap)
    for i in range(n):
        elapsed, kind, body = f.invoke(event)
        if kind != "response":
            f.stop()
            sys.exit(f"invocation {i + 1} failed: {body.decode(errors='replace')}")
        print(
            f"invocation {i + 1}: {elapsed * 1000:.1f} ms"
            f"{' (cold: from process start)' if i == 0 else ''}, RSS {f.rss_mb():.1f} MB"
        )
    peak = f.peak_rss_mb()
    f.stop()
    print(f"{os.path.basename(bootstrap)}: {n} invocations in one process; peak RSS {peak:.1f} MB")


def main():
    args = sys.argv[1:]
    n_warm = None
    if args[:1] == ["--warm"]:
        if len(args) < 2:
            sys.exit(__doc__)
        n_warm, args = int(args[1]), args[2:]
    if len(args) < 2:
        sys.exit(__doc__)
    bootstrap, event_path = args[0], args[1]
    with open(event_path) as f:
        event = json.load(f)
    if n_warm is not None:
        warm(bootstrap, event, n_warm)
    else:
        cold(bootstrap, event, int(args[2]) if len(args) > 2 else 10)


if __name__ == "__main__":
    main()
