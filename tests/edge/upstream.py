"""A stand-in for Klaviyo's API for tests/edge/run.sh, run as its own process: answers every
request with a small JSON:API document and appends what it received (method, path and query,
headers, body) as one JSON line to the file named by argv[1]. Prints its port on stdout.
Bodies are read by Content-Length or chunked, as a component's runtime may send either."""

import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOG = sys.argv[1]
ANSWER = json.dumps(
    {"data": [{"type": "list", "id": "L1", "attributes": {"name": "VIP"}}], "links": {"next": None}}
).encode()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def body(self) -> bytes:
        if self.headers.get("transfer-encoding", "").lower() == "chunked":
            out = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return out
                out += self.rfile.read(size)
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("content-length") or 0))

    def answer(self) -> None:
        record = {
            "method": self.command,
            "target": self.path,
            "headers": {k.lower(): v for k, v in self.headers.items()},
            "body": self.body().decode("utf-8", "replace"),
        }
        with open(LOG, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
        self.send_response(200)
        self.send_header("content-type", "application/vnd.api+json")
        self.send_header("content-length", str(len(ANSWER)))
        self.end_headers()
        self.wfile.write(ANSWER)

    do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = answer

    def log_message(self, *args) -> None:
        pass


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
server.serve_forever()
