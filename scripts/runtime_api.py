"""A minimal Lambda Runtime API server on loopback: hands a function binary the invocations it
is given, one per GET /next, and records when each request and answer came (and, given a
probe, the function's CPU time at each GET /next). Used by bench/e2e.py and
tests/crash_test.py to run the real binaries as Lambda does.
"""

import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class RuntimeApi(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, events, deadline_ms=10_000):
        super().__init__(("127.0.0.1", 0), Handler)
        self.deadline_ms = deadline_ms
        self.events = list(events)
        self.marks = {}  # name -> perf_counter
        self.probe = None  # () -> the function's CPU time so far, in ns
        self.cpu_ns = {}  # invocation index -> probe() when the function asked for it
        self.answers = []
        self.done = threading.Event()
        self.served = 0

    def mark(self, name):
        self.marks.setdefault(name, time.perf_counter())

    def start(self):
        """Serves in the background; returns the AWS_LAMBDA_RUNTIME_API value."""
        threading.Thread(target=self.serve_forever, daemon=True).start()
        return f"127.0.0.1:{self.server_address[1]}"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        api = self.server
        if not self.path.endswith("/runtime/invocation/next"):
            return self.reply(404, b"{}")
        api.mark(f"next{api.served}")
        if api.probe:
            # The function is blocked on this request: its CPU time is settled.
            api.cpu_ns.setdefault(api.served, api.probe())
        if api.served >= len(api.events):
            api.done.set()
            time.sleep(3600)  # no more work: the driver kills the process
            return
        event = api.events[api.served]
        api.served += 1
        deadline_ms = int(time.time() * 1000) + api.deadline_ms
        self.reply(200, event, {
            "Lambda-Runtime-Aws-Request-Id": str(uuid.uuid4()),
            "Lambda-Runtime-Deadline-Ms": str(deadline_ms),
            "Lambda-Runtime-Invoked-Function-Arn": "arn:aws:lambda:us-east-1:123456789012:function:bench",
            "Lambda-Runtime-Trace-Id": "Root=1-00000000-000000000000000000000000",
        })

    def do_POST(self):
        api = self.server
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        api.mark(f"answer{len(api.answers)}")
        api.answers.append((self.path, body))
        self.reply(202, b"{}")

    def reply(self, status, body, headers=None):
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
