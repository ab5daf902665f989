"""A minimal OpenAI-compatible server in front of any :class:`~nvrepro.trust.types.ModelAdapter`.

``POST /v1/chat/completions`` (``{"model", "messages", "temperature"=1, "max_tokens"=24, "n"=1, "seed"=0}``;
no streaming) answers with ``adapter.answer``; ``GET /v1/models`` lists the one model (``adapter.name``).
It puts a toy model behind the same kind of endpoint the paper questions GPT-3.5/GPT-4 through, so the
:class:`~nvrepro.trust.adapters.OpenAIEndpointAdapter` path is exercised end to end. Standard library only
(``http.server.ThreadingHTTPServer``); requests are answered one at a time (models are not thread-safe).

    python -m nvrepro.trust.serve --config adapter.yaml --port 8000

where ``adapter.yaml`` holds an :func:`~nvrepro.trust.adapters.adapter_from_config` dict (at the top level or
under ``adapter:``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Iterator

from nvrepro.core.tooling.validation import ConfigError
from nvrepro.trust.types import GenerationSettings, Message

MAX_BODY = 16 * 1024 * 1024


class _BadRequest(ValueError):
    pass


def _parse(body: Any) -> tuple[list[Message], GenerationSettings, int]:
    """``(messages, settings, n)`` from a chat-completions request body; :class:`_BadRequest` naming the field."""
    if not isinstance(body, dict):
        raise _BadRequest("the request body must be a JSON object")
    if body.get("stream"):
        raise _BadRequest("stream: streaming is not supported")
    raw = body.get("messages")
    if not isinstance(raw, list) or not raw:
        raise _BadRequest("messages: must be a non-empty list of {role, content}")
    messages = []
    for i, m in enumerate(raw):
        if not isinstance(m, dict) or not isinstance(m.get("content"), str):
            raise _BadRequest(f"messages[{i}]: must be an object with a string 'content'")
        try:
            messages.append(Message(m.get("role"), m["content"]))
        except ConfigError as e:
            raise _BadRequest(f"messages[{i}].role: {e}") from None
    n = body.get("n", 1)
    temperature = body.get("temperature", 1.0)
    max_tokens = body.get("max_tokens", body.get("max_completion_tokens", 24))
    seed = body.get("seed", 0)
    for field, value, kind in (("n", n, int), ("max_tokens", max_tokens, int), ("seed", seed, int),
                               ("temperature", temperature, (int, float))):
        if isinstance(value, bool) or not isinstance(value, kind):
            raise _BadRequest(f"{field}: must be a number, got {value!r}")
    if n < 1:
        raise _BadRequest(f"n: must be >= 1, got {n}")
    try:
        # Greedy decoding has one answer: it is computed once and repeated n times.
        settings = GenerationSettings(float(temperature), n if temperature > 0 else 1, max_tokens, seed)
    except ConfigError as e:
        raise _BadRequest(str(e)) from None
    return messages, settings, n


def _handler(adapter, lock: threading.Lock):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format, *args):  # quiet: tests and the harness read their own output
            pass

        def _send(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _error(self, status: int, message: str, kind: str) -> None:
            self._send(status, {"error": {"message": message, "type": kind}})

        def do_GET(self):
            if self.path.rstrip("/") == "/v1/models":
                self._send(200, {"object": "list", "data": [{"id": adapter.name, "object": "model",
                                                             "owned_by": "nvrepro"}]})
            else:
                self._error(404, f"no route GET {self.path}", "not_found")

        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(min(length, MAX_BODY + 1))
            if self.path.rstrip("/") != "/v1/chat/completions":
                return self._error(404, f"no route POST {self.path}", "not_found")
            if length > MAX_BODY:
                return self._error(413, "the request body is too large", "invalid_request_error")
            try:
                messages, settings, n = _parse(json.loads(raw or b"null"))
            except json.JSONDecodeError as e:
                return self._error(400, f"the request body is not valid JSON: {e}", "invalid_request_error")
            except _BadRequest as e:
                return self._error(400, str(e), "invalid_request_error")
            try:
                with lock:
                    answers = adapter.answer([messages], settings)[0]
            except Exception as e:  # report the model's failure to the client, keep serving
                return self._error(500, f"{type(e).__name__}: {e}", "server_error")
            answers = (answers * n)[:n]
            self._send(200, {
                "id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion", "created": int(time.time()),
                "model": adapter.name,
                "choices": [{"index": i, "message": {"role": "assistant", "content": a}, "finish_reason": "stop"}
                            for i, a in enumerate(answers)]})

    return Handler


@contextlib.contextmanager
def serve(adapter, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Serve ``adapter`` on ``host:port`` (``0``: a free port) from a background thread; yields the base URL
    ``"http://host:port/v1"`` (what :class:`~nvrepro.trust.adapters.OpenAIEndpointAdapter` takes) and shuts the
    server down on exit."""
    server = ThreadingHTTPServer((host, port), _handler(adapter, threading.Lock()))
    server.daemon_threads = True
    # a short poll interval: shutdown() waits for the loop to notice
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://{host}:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def main(argv: list[str] | None = None) -> int:
    """``python -m nvrepro.trust.serve --config adapter.yaml [--host H] [--port P]``: serve until interrupted."""
    import yaml

    from nvrepro.trust.adapters import adapter_from_config

    parser = argparse.ArgumentParser(prog="python -m nvrepro.trust.serve", description=__doc__.split("\n")[0])
    parser.add_argument("--config", required=True, help="YAML with the adapter config (top level or 'adapter:')")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args(argv)
    with open(args.config, encoding="utf-8") as f:
        cfg = yaml.safe_load(f) or {}
    adapter = adapter_from_config(cfg.get("adapter", cfg) if isinstance(cfg, dict) else cfg)
    with serve(adapter, args.host, args.port) as url:
        print(f"serving {adapter.name} at {url}  (Ctrl-C to stop)", flush=True)
        stop = threading.Event()
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, lambda *_: stop.set())  # `kill PID` shuts down as cleanly as Ctrl-C
        try:
            while not stop.wait(1.0):
                pass
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
