"""A Hugging Face Hub on 127.0.0.1 that speaks the endpoints ``huggingface_hub`` uses to create a repo, commit
files to it and download them, so the real client can be tested offline (``HF_ENDPOINT`` pointed at it)."""

from __future__ import annotations

import base64
import hashlib
import http.server
import json
import threading
from typing import Any


class FakeHub:
    """Repos are dicts of path -> bytes; each commit gets a fake sha1 commit id. Use as a context manager."""

    def __init__(self) -> None:
        self.repos: dict[str, dict[str, bytes]] = {}
        self.commits: dict[str, str] = {}
        self.requests: list[str] = []
        hub = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
                self.send_response(status)
                for key, value in {"Content-Length": str(len(body)), **(headers or {})}.items():
                    self.send_header(key, value)
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def _json(self, status: int, value: Any) -> None:
                self._send(status, json.dumps(value).encode(), {"Content-Type": "application/json"})

            def _body(self) -> bytes:
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def do_POST(self) -> None:
                hub.requests.append(f"POST {self.path}")
                body, path = self._body(), self.path.split("?")[0]
                if path == "/api/repos/create":
                    payload = json.loads(body)
                    repo = (
                        f"{payload['organization']}/{payload['name']}"
                        if payload.get("organization")
                        else payload["name"]
                    )
                    if repo in hub.repos:
                        return self._json(409, {"error": "You already created this model repo"})
                    hub.repos[repo] = {}
                    return self._json(200, {"url": f"http://{self.headers['Host']}/{repo}"})
                if path == "/api/validate-yaml":
                    return self._json(200, {"errors": [], "warnings": []})
                parts = path.split("/")  # /api/models/ORG/NAME/(preupload|commit)/REV
                repo, action = "/".join(parts[3:5]), parts[5]
                if repo not in hub.repos:
                    return self._json(404, {"error": "Repository not found"})
                if action == "preupload":
                    files = json.loads(body)["files"]
                    return self._json(
                        200,
                        {"files": [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False} for f in files]},
                    )
                if action == "commit":
                    for line in body.decode().splitlines():
                        item = json.loads(line)
                        if item["key"] == "file":
                            hub.repos[repo][item["value"]["path"]] = base64.b64decode(item["value"]["content"])
                    oid = hashlib.sha1(json.dumps(sorted(hub.repos[repo])).encode() + body).hexdigest()
                    hub.commits[repo] = oid
                    return self._json(
                        200, {"commitUrl": f"http://{self.headers['Host']}/{repo}/commit/{oid}", "commitOid": oid}
                    )
                return self._json(404, {"error": f"no route {path}"})

            def do_GET(self) -> None:
                hub.requests.append(f"{self.command} {self.path}")
                parts = self.path.split("?")[0].split("/")  # /ORG/NAME/resolve/REV/FILE
                repo, filename = "/".join(parts[1:3]), "/".join(parts[5:])
                if len(parts) < 6 or parts[3] != "resolve" or filename not in hub.repos.get(repo, {}):
                    return self._send(404, b"Entry not found", {"X-Error-Code": "EntryNotFound"})
                data = hub.repos[repo][filename]
                etag = hashlib.sha256(data).hexdigest()
                self._send(200, data, {"ETag": f'"{etag}"', "X-Repo-Commit": hub.commits[repo]})

            do_HEAD = do_GET

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"

    def __enter__(self) -> FakeHub:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()
