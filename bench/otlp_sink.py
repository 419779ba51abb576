"""`python -m bench.otlp_sink PORT`: an OTLP/HTTP receiver that accepts and drops what it is
sent, counting requests and bytes, so `python -m bench` can run with tracing on
(OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:PORT) and measure the exporting side only."""

from __future__ import annotations

import signal
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

_counts = {"requests": 0, "bytes": 0}


class _Sink(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        size = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(size)
        _counts["requests"] += 1
        _counts["bytes"] += size
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        return


def main() -> None:
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 4318
    server = ThreadingHTTPServer(("127.0.0.1", port), _Sink)
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt))  # stop by PID: print counts
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        print(f"otlp sink: {_counts['requests']} export request(s), {_counts['bytes']} bytes", flush=True)


if __name__ == "__main__":
    main()
