#!/usr/bin/env python3
"""The upstream of the gate's tests: a portal written in another language (Python, standard
library only) on a free loopback port.

  python3 upstream.py [PORT]      prints "listening on http://127.0.0.1:PORT" once it accepts

Routes:
  /large?bytes=N       streams N bytes (chunked, 64 KiB a chunk); byte i is i % 251
  /upload              reads the request body (any length, chunked or not) and answers
                       {"bytes": N, "sha256": HEX}
  /slow?ms=N           answers after N milliseconds
  /ws                  accepts a WebSocket upgrade and echoes every text or binary message
  .../done             ends the visitor's pass: answers with "Surgegate-Command: finish"
  .../form             an HTML page naming the visitor (Surgegate-Visitor), with a link to done
  /hop                 answers with hop-by-hop headers the gate must remove
  anything else        echoes the request as JSON: method, path, headers (names lowercased),
                       body_bytes
"""

import base64
import hashlib
import json
import struct
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):  # quiet: the tests read their own output
        pass

    def read_body(self):
        """The request body, de-chunked when needed."""
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            data = bytearray()
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return bytes(data)
                data += self.rfile.read(size)
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def send_json(self, value, status=200, extra=()):
        body = json.dumps(value).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for name, v in extra:
            self.send_header(name, v)
        self.end_headers()
        self.wfile.write(body)

    def send_html(self, html, extra=()):
        body = html.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        for name, v in extra:
            self.send_header(name, v)
        self.end_headers()
        self.wfile.write(body)

    def handle_any(self):
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        path = url.path
        if path == "/ws" and self.headers.get("Upgrade", "").lower() == "websocket":
            return self.websocket()
        body = self.read_body()
        if path == "/large":
            return self.large(int(query.get("bytes", ["0"])[0]))
        if path == "/upload":
            return self.send_json({"bytes": len(body), "sha256": hashlib.sha256(body).hexdigest()})
        if path == "/slow":
            time.sleep(int(query.get("ms", ["1000"])[0]) / 1000)
        visitor = self.headers.get("Surgegate-Visitor", "")
        if path.endswith("/done"):
            return self.send_html(
                f"<!doctype html><title>Done</title><h1>Thank you</h1><p id=visitor>{visitor}</p>",
                extra=[("Surgegate-Command", "finish")],
            )
        if path.endswith("/form"):
            return self.send_html(
                "<!doctype html><title>Form</title><h1>Registration form</h1>"
                f"<p id=visitor>{visitor}</p><a id=done href=\"{path[:-5]}/done\">I am done</a>"
            )
        if path == "/hop":
            return self.send_json(
                {"hop": True},
                extra=[("Connection", "X-Private"), ("X-Private", "secret"), ("Keep-Alive", "timeout=5"),
                       ("Surgegate-Command", "finish")],
            )
        headers = {}
        for name, value in self.headers.items():
            key = name.lower()
            headers[key] = headers[key] + ", " + value if key in headers else value
        self.send_json({"method": self.command, "path": self.path, "headers": headers, "body_bytes": len(body)})

    def large(self, n):
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        pattern = bytes(i % 251 for i in range(251 * 262))  # 65 762 bytes, whole periods
        sent = 0
        while sent < n:
            size = min(65536, n - sent)
            start = sent % 251
            chunk = (pattern[start:] + pattern)[:size]
            self.wfile.write(b"%x\r\n" % size + chunk + b"\r\n")
            sent += size
        self.wfile.write(b"0\r\n\r\n")

    def websocket(self):
        key = self.headers.get("Sec-WebSocket-Key", "")
        accept = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()
        self.send_response(101)
        self.send_header("Upgrade", "websocket")
        self.send_header("Connection", "Upgrade")
        self.send_header("Sec-WebSocket-Accept", accept)
        self.end_headers()
        self.wfile.flush()
        self.close_connection = True
        while True:
            head = self.rfile.read(2)
            if len(head) < 2:
                return
            opcode, length = head[0] & 0x0F, head[1] & 0x7F
            if length == 126:
                length = struct.unpack("!H", self.rfile.read(2))[0]
            elif length == 127:
                length = struct.unpack("!Q", self.rfile.read(8))[0]
            mask = self.rfile.read(4) if head[1] & 0x80 else b"\0\0\0\0"
            payload = bytes(b ^ mask[i % 4] for i, b in enumerate(self.rfile.read(length)))
            if opcode == 8:
                self.wfile.write(b"\x88\x00")
                self.wfile.flush()
                return
            if opcode in (1, 2):
                frame = bytes([0x80 | opcode])
                if len(payload) < 126:
                    frame += bytes([len(payload)])
                else:
                    frame += bytes([126]) + struct.pack("!H", len(payload))
                self.wfile.write(frame + payload)
                self.wfile.flush()

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = handle_any


class Server(ThreadingHTTPServer):
    daemon_threads = True
    # The listen backlog: socketserver's default of 5 drops the connections a proxy opens at
    # once under a surge, and each dropped one waits a second or more for its SYN again.
    request_queue_size = 1024

    def handle_error(self, request, client_address):
        # A client the tests cut off on purpose (a body over the gate's limit, a timeout).
        pass


def main():
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    server = Server(("127.0.0.1", port), Handler)
    print(f"listening on http://127.0.0.1:{server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
