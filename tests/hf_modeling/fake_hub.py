"""A stand-in for the Hugging Face Hub's upload API on loopback, so that huggingface_hub's real upload code runs
end to end without the network."""

from __future__ import annotations

import base64
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


class FakeHub:
    """Answers the calls ``hf upload`` makes (create the repository, validate the model card's YAML, choose each
    file's upload mode, commit) and writes every committed file under
    ``root/<namespace>/<name>/``; records each request's path and Authorization header."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.requests: list[tuple[str, str | None]] = []
        self.validated_yaml: list[str] = []
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                hub.requests.append((self.path, self.headers.get("Authorization")))
                path = self.path.split("?")[0]
                if path == "/api/repos/create":
                    request = json.loads(body)
                    answer = {"url": f"{hub.url}/{request.get('organization')}/{request['name']}"}
                elif path == "/api/validate-yaml":
                    hub.validated_yaml.append(json.loads(body)["content"])
                    answer = {"errors": [], "warnings": []}
                elif path.endswith("/preupload/main"):  # every file inline, base64 in the commit (no LFS)
                    files = json.loads(body)["files"]
                    answer = {"files": [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False}
                                        for f in files]}
                elif path.endswith("/commit/main"):
                    repo = path.removeprefix("/api/models/").removesuffix("/commit/main")
                    for line in body.splitlines():
                        item = json.loads(line)
                        if item["key"] == "file":
                            target = hub.root / repo / item["value"]["path"]
                            target.parent.mkdir(parents=True, exist_ok=True)
                            target.write_bytes(base64.b64decode(item["value"]["content"]))
                    answer = {"commitUrl": f"{hub.url}/{repo}/commit/1", "commitOid": "1" * 40,
                              "pullRequestUrl": None}
                else:
                    self.send_error(404, f"the fake Hub does not answer {path}")
                    return
                data = json.dumps(answer).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
