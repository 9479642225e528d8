"""The MCP server as the official MCP Python SDK sees it (a client we did not write), over
stdio and over Streamable HTTP, in the SDK's default connection mode (server/discover, then
protocol 2026-07-28 without a session) and in legacy mode (initialize, 2025-11-25).

Run by tests/mcp-python/run.sh: `python3 test_mcp.py HARNESS_BINARY`. Every check prints a
line; any failure makes the script exit 1.
"""

import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx2
import mcp.types as types
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

HARNESS = sys.argv[1]
KEY = "pk_test_SECRET_python_0000"
TOKENS = {"alice": "alice-token-0123456789abcdef", "bob": "bob-token-0123456789abcdef01"}
FAILURES = []


def check(name, ok, detail=""):
    print(("PASS " if ok else "FAIL ") + name + ("" if ok else f": {detail}"), flush=True)
    if not ok:
        FAILURES.append(name)


class Upstream:
    """A Klaviyo-shaped local server that records every request."""

    def __init__(self, slow_post=0.0):
        self.requests = []
        up = self

        class H(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def _reply(self, status, doc):
                body = json.dumps(doc).encode()
                self.send_response(status)
                self.send_header("content-type", "application/vnd.api+json")
                self.send_header("content-length", str(len(body)))
                self.send_header("x-klaviyo-req-id", "req-123")
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                up.requests.append(("GET", self.path, dict(self.headers), b""))
                self._reply(200, {"data": [{"type": "list", "id": "L1", "attributes": {"name": "VIP"}}], "links": {"next": None}})

            def do_POST(self):
                n = int(self.headers.get("content-length", 0))
                body = self.rfile.read(n)
                up.requests.append(("POST", self.path, dict(self.headers), body))
                if slow_post:
                    time.sleep(slow_post)
                self._reply(201, {"data": {"type": "list", "id": "L9", "attributes": {"name": "VIP"}}})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def posts(self):
        return [r for r in self.requests if r[0] == "POST"]


def env_for(home, upstream, policy=None, audit=None):
    env = {
        "HOME": home,
        "PATH": os.environ.get("PATH", ""),
        "KLAVIYO_BASE_URL": upstream.url,
        "KLAVIYO_API_KEY": KEY,
        "KLAVIYO_CACHE_DIR": os.path.join(home, "cache"),
        "KLAVIYO_STATE_DIR": os.path.join(home, "state"),
    }
    if policy:
        path = os.path.join(home, f"policy-{abs(hash(policy))}.toml")
        with open(path, "w") as f:
            f.write(policy)
        env["KLAVIYO_POLICY"] = path
    if audit:
        env["KLAVIYO_AUDIT_LOG"] = audit
    return env


def answer_with(action):
    async def cb(ctx, params):
        # The question shows the exact request.
        msg = getattr(params, "message", "")
        if "POST " not in msg or "/api/lists" not in msg or "Klaviyo-API-Key [redacted]" not in msg:
            return types.ElicitResult(action="decline")
        if action == "accept":
            return types.ElicitResult(action="accept", content={"approve": True})
        return types.ElicitResult(action=action)

    return cb


ASK = '[defaults]\nwrite = "ask"\n'
WRITE = {"name": "create_list", "arguments": {"body": {"name": "VIP"}}}


def stdio_client(home, upstream, mode, policy=None, cb=None, args=()):
    params = StdioServerParameters(command=HARNESS, args=["serve", *args], env=env_for(home, upstream, policy))
    kw = {} if mode == "auto" else {"mode": mode}
    if cb:
        kw["elicitation_callback"] = cb
    return Client(params, **kw)


async def stdio_suite(home, mode):
    label = f"stdio/{mode}"
    up = Upstream()
    async with stdio_client(home, up, mode) as c:
        want = "2026-07-28" if mode == "auto" else "2025-11-25"
        check(f"{label}: negotiated {want}", c.protocol_version == want, c.protocol_version)
        names = [t.name for t in (await c.list_tools()).tools]
        check(f"{label}: discovery lists three meta-tools", names == ["search_actions", "describe_action", "call_action"], names)
        r = await c.call_tool("search_actions", {"query": "subscribe someone to SMS marketing"})
        top = r.structured_content["results"][0]["name"]
        check(f"{label}: search finds bulk_subscribe_profiles", top == "bulk_subscribe_profiles", top)
        r = await c.call_tool("describe_action", {"name": top})
        check(f"{label}: describe is compact", not r.is_error and len(json.dumps(r.structured_content)) < 8192)
        r = await c.call_tool("call_action", {"name": "get_lists", "arguments": {}})
        ok = not r.is_error and r.structured_content["result"]["data"][0]["id"] == "L1"
        check(f"{label}: a read returns structured data", ok, r)
        sent = up.requests[-1] if up.requests else None
        headers = {k.lower(): v for k, v in (sent[2] if sent else {}).items()}
        check(f"{label}: the read is the exact request with the key", sent and sent[1] == "/api/lists" and headers.get("authorization") == f"Klaviyo-API-Key {KEY}" and headers.get("revision") == "2026-07-15", sent)
        r = await c.call_tool("call_action", WRITE)
        text = r.content[0].text
        check(f"{label}: a write is denied by the read-only default, with the rule to add", r.is_error and 'decision = "allow"' in text and not up.posts(), text)
        check(f"{label}: no output carries the key", KEY not in json.dumps(r.structured_content) + text)
    for action, sends in [("accept", 1), ("decline", 0), ("cancel", 0)]:
        up = Upstream()
        async with stdio_client(home, up, mode, ASK, answer_with(action)) as c:
            r = await c.call_tool("call_action", WRITE)
            check(f"{label}: ask, {action} → {sends} write sent", len(up.posts()) == sends and r.is_error == (sends == 0), (len(up.posts()), r.content[0].text))
    up = Upstream()
    async with stdio_client(home, up, mode, ASK, None) as c:
        r = await c.call_tool("call_action", WRITE)
        text = r.content[0].text
        check(f"{label}: a client that cannot ask is refused with the rule to add", r.is_error and "cannot ask" in text and 'tools = "create_list"' in text and not up.posts(), text)


class HttpServer:
    """`klaviyo-harness serve --http 127.0.0.1:0` as a child process."""

    def __init__(self, home, upstream, policy=None, extra=(), audit=None):
        tokens = os.path.join(home, "tokens")
        with open(tokens, "w") as f:
            f.write("".join(f"{n}:{t}\n" for n, t in TOKENS.items()))
        os.chmod(tokens, 0o600)
        env = env_for(home, upstream, policy, audit)
        self.proc = subprocess.Popen(
            [HARNESS, "serve", "--http", "127.0.0.1:0", "--http-token-file", tokens, "--http-allowed-origin", "http://localhost:3000", *extra],
            env=env, stderr=subprocess.PIPE, text=True,
        )
        self.lines = []
        deadline = time.time() + 60
        self.url = None
        while time.time() < deadline and self.url is None:
            line = self.proc.stderr.readline()
            if not line:
                break
            self.lines.append(line)
            if "serving MCP at " in line:
                self.url = line.split("serving MCP at ")[1].split()[0]
        threading.Thread(target=self._drain, daemon=True).start()
        if self.url is None:
            raise RuntimeError("the server did not start: " + "".join(self.lines))
        self.base = self.url.rsplit("/mcp", 1)[0]

    def _drain(self):
        for line in self.proc.stderr:
            self.lines.append(line)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(30)


def http_client(url, token="alice", mode="auto", cb=None, origin=None):
    headers = {"Authorization": f"Bearer {TOKENS.get(token, token)}"}
    if origin:
        headers["Origin"] = origin
    hc = httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(60, read=120))
    kw = {} if mode == "auto" else {"mode": mode}
    if cb:
        kw["elicitation_callback"] = cb
    return hc, Client(streamable_http_client(url, http_client=hc), **kw)


async def http_suite(home):
    up = Upstream()
    audit = os.path.join(home, "audit-http.jsonl")
    srv = HttpServer(home, up, audit=audit)
    try:
        async with httpx2.AsyncClient() as raw:
            h = (await raw.get(srv.base + "/healthz")).json()
            check("http: /healthz answers JSON", h == {"status": "ok"}, h)
            rz = await raw.get(srv.base + "/readyz")
            check("http: /readyz says ready with a key check", rz.status_code == 200 and rz.json()["key_check"]["ok"], rz.text)
            r = await raw.post(srv.url, json={"jsonrpc": "2.0", "id": 1, "method": "ping"}, headers={"Authorization": "Bearer wrong-token-0123456789"})
            check("http: a wrong token gets 401, saying nothing more", r.status_code == 401 and "alice" not in r.text, (r.status_code, r.text))
            r = await raw.post(srv.url, json={"jsonrpc": "2.0", "id": 1, "method": "ping"}, headers={"Authorization": f"Bearer {TOKENS['alice']}", "Origin": "https://evil.example"})
            check("http: a foreign Origin gets 403", r.status_code == 403, (r.status_code, r.text))
            r = await raw.post(srv.url, json={"jsonrpc": "2.0", "id": 1, "method": "ping"}, headers={"Authorization": f"Bearer {TOKENS['alice']}", "Host": "evil.example"})
            check("http: a foreign Host gets 403 (DNS rebinding)", r.status_code == 403, (r.status_code, r.text))
        for mode in ["auto", "legacy"]:
            hc, client = http_client(srv.url, mode=mode, origin="http://localhost:3000")
            async with hc, client as c:
                want = "2026-07-28" if mode == "auto" else "2025-11-25"
                check(f"http/{mode}: negotiated {want}", c.protocol_version == want, c.protocol_version)
                names = [t.name for t in (await c.list_tools()).tools]
                check(f"http/{mode}: lists the meta-tools", "call_action" in names, names)
                r = await c.call_tool("call_action", {"name": "get_lists", "arguments": {}})
                check(f"http/{mode}: a read", not r.is_error and r.structured_content["result"]["data"][0]["id"] == "L1", r)
                r = await c.call_tool("call_action", WRITE)
                check(f"http/{mode}: a denied write sends nothing", r.is_error and not up.posts(), r.content[0].text)
                tools = {t.name: t for t in (await c.list_tools()).tools}
                rt = tools.get("reconcile_writes")
                check(f"http/{mode}: with an audit log, reconcile_writes is listed read-only",
                      rt is not None and rt.annotations.read_only_hint is True, rt)
                r = await c.call_tool("reconcile_writes", {})
                check(f"http/{mode}: reconcile_writes answers (nothing pending)",
                      not r.is_error and r.structured_content == {"ok": True, "results": [], "unsettled": 0}, r)
                r = await c.call_tool("reconcile_writes", {"all": True})
                check(f"http/{mode}: reconcile_writes refuses arguments as a tool error",
                      r.is_error and r.structured_content["error"]["field"] == "all", r)
        try:
            hc, client = http_client(srv.url, token="nope-nope-nope-nope-0000")
            async with hc, client as c:
                await c.list_tools()
            check("http: the SDK with a wrong token fails", False, "it connected")
        except BaseException:  # noqa: BLE001 — the SDK raises an exception group
            check("http: the SDK with a wrong token fails", True)

        async def read_as(name):
            hc, client = http_client(srv.url, token=name)
            async with hc, client as c:
                r = await c.call_tool("call_action", {"name": "get_lists", "arguments": {}})
                return not r.is_error

        both = await asyncio.gather(read_as("alice"), read_as("bob"))
        check("http: two clients at once", all(both), both)
        with open(audit) as f:
            clients = {json.loads(l).get("client") for l in f}
        check("http: the audit log names each client", {"alice", "bob"} <= clients, clients)
    finally:
        srv.stop()
    check("http: SIGTERM stops the server cleanly", srv.proc.returncode == 0, srv.proc.returncode)

    # Limits: body size, per-client rate, slow clients.
    up = Upstream()
    srv = HttpServer(home, up, extra=("--http-max-body-bytes", "2000", "--http-rate-per-minute", "60"))
    try:
        auth = {"Authorization": f"Bearer {TOKENS['alice']}"}
        ping = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
        async with httpx2.AsyncClient() as raw:
            r = await raw.post(srv.url, content=b"{" + b" " * 5000 + b"}", headers={**auth, "content-type": "application/json"})
            check("http: a body over the limit gets 413", r.status_code == 413, (r.status_code, r.text))
            statuses = [(await raw.post(srv.url, json=ping, headers=auth)).status_code for _ in range(15)]
            limited = [s for s in statuses if s == 429]
            check("http: a client over its rate gets 429 with Retry-After", limited and statuses[0] != 429, statuses)
            r = await raw.post(srv.url, json=ping, headers={"Authorization": f"Bearer {TOKENS['bob']}"})
            check("http: the rate is per client", r.status_code != 429, r.status_code)
        # A client that sends half a request and stalls is cut off (10 s for the headers).
        import socket
        host, port = srv.base.split("//")[1].split(":")
        sock = socket.create_connection((host, int(port)))
        sock.sendall(b"POST /mcp HTTP/1.1\r\nHost: " + f"{host}:{port}".encode() + b"\r\n")
        sock.settimeout(30)
        started = time.time()
        try:
            closed = sock.recv(1024) is not None
        except OSError:
            closed = True
        check("http: a stalled client is cut off", closed and time.time() - started < 25, time.time() - started)
        sock.close()
    finally:
        srv.stop()

    # ask over HTTP: the input-required round trip (default mode) and elicitation (legacy).
    for mode in ["auto", "legacy"]:
        for action, sends in [("accept", 1), ("decline", 0)]:
            up = Upstream()
            srv = HttpServer(home, up, ASK)
            try:
                hc, client = http_client(srv.url, mode=mode, cb=answer_with(action))
                async with hc, client as c:
                    r = await c.call_tool("call_action", WRITE)
                    check(f"http/{mode}: ask, {action} → {sends} write sent", len(up.posts()) == sends and r.is_error == (sends == 0), (len(up.posts()), r.content[0].text))
            finally:
                srv.stop()

    # SIGTERM during a write: it completes, the client gets its answer, the audit has it.
    up = Upstream(slow_post=2.0)
    audit = os.path.join(home, "audit-term.jsonl")
    srv = HttpServer(home, up, '[defaults]\nwrite = "allow"\n', audit=audit)
    try:
        hc, client = http_client(srv.url)
        async with hc, client as c:
            await c.list_tools()  # (the SDK checks results against the listed output schemas)
            task = asyncio.create_task(c.call_tool("call_action", WRITE))
            for _ in range(100):
                if up.posts():
                    break
                await asyncio.sleep(0.05)
            srv.proc.send_signal(signal.SIGTERM)
            r = await task
            check("http: a write in flight at SIGTERM completes", not r.is_error and r.structured_content["result"]["data"]["id"] == "L9", r)
        srv.proc.wait(30)
        with open(audit) as f:
            events = [json.loads(l) for l in f]
        done = [e for e in events if e["event"] == "done" and e["operation"] == "create_list"]
        check("http: the audit log has the write's outcome", len(done) == 1 and done[0]["status"] == 201, events)
        check("http: exactly one write was sent", len(up.posts()) == 1, len(up.posts()))
    finally:
        srv.stop()


def approve_posts(seen):
    async def cb(ctx, params):
        msg = getattr(params, "message", "")
        seen.append(msg)
        if "POST " in msg:
            return types.ElicitResult(action="accept", content={"approve": True})
        return types.ElicitResult(action="decline")

    return cb


async def sandbox_suite(home):
    """An agent's task against the built-in sandbox account (`--sandbox`, no key, no network):
    find the VIP list, add a new profile to it with the user's approval, check it landed."""
    label = "sandbox"
    env = {"HOME": home, "PATH": os.environ.get("PATH", ""), "KLAVIYO_SANDBOX": "1",
           "KLAVIYO_CACHE_DIR": os.path.join(home, "cache"), "KLAVIYO_STATE_DIR": os.path.join(home, "sandbox-state")}
    path = os.path.join(home, "sandbox-policy.toml")
    with open(path, "w") as f:
        f.write(ASK)
    env["KLAVIYO_POLICY"] = path
    seen = []
    params = StdioServerParameters(command=HARNESS, args=["serve"], env=env)
    async with Client(params, elicitation_callback=approve_posts(seen)) as c:
        r = await c.call_tool("search_actions", {"query": "find a list by its name"})
        names = [x["name"] for x in r.structured_content["results"]]
        check(f"{label}: search offers get_lists", "get_lists" in names, names)
        r = await c.call_tool("call_action", {"name": "get_lists", "arguments": {"filter": "equals(name,'VIP Customers')"}})
        data = (r.structured_content or {}).get("result", {}).get("data", [])
        check(f"{label}: the sample brand's VIP list is found without a key", not r.is_error and len(data) == 1, r)
        vip = data[0]["id"] if data else "-"
        r = await c.call_tool("search_actions", {"query": "add a profile to a list"})
        names = [x["name"] for x in r.structured_content["results"]]
        check(f"{label}: search offers add_profiles_to_list", "add_profiles_to_list" in names[:5], names)
        r = await c.call_tool("describe_action", {"name": "add_profiles_to_list"})
        check(f"{label}: describe is compact", not r.is_error and len(json.dumps(r.structured_content)) < 8192)
        r = await c.call_tool("call_action", {"name": "create_profile", "arguments": {"body": {"data": {"type": "profile", "attributes": {"email": "agent-rehearsal@example.com"}}}}})
        pid = ((r.structured_content or {}).get("result", {}).get("data") or {}).get("id")
        check(f"{label}: create_profile, asked and approved, lands", not r.is_error and pid, r)
        r = await c.call_tool("call_action", {"name": "add_profiles_to_list", "arguments": {"id": vip, "body": {"data": [{"type": "profile", "id": pid}]}}})
        check(f"{label}: add_profiles_to_list, asked and approved", not r.is_error, r)
        check(f"{label}: each write was asked with its exact request", len(seen) == 2 and f"/api/lists/{vip}/relationships/profiles" in seen[1], seen)
        r = await c.call_tool("call_action", {"name": "get_list_profiles", "arguments": {"id": vip, "filter": "equals(email,'agent-rehearsal@example.com')"}})
        data = (r.structured_content or {}).get("result", {}).get("data", [])
        check(f"{label}: a read shows the profile in the list", not r.is_error and [d.get("id") for d in data] == [pid], r)
        r = await c.call_tool("call_action", {"name": "delete_list", "arguments": {"id": vip}})
        check(f"{label}: a destructive action is denied by the policy", r.is_error and "denied" in r.content[0].text, r.content[0].text)
        r = await c.call_tool("call_action", {"name": "get_list", "arguments": {"id": vip}})
        check(f"{label}: the list is still there", not r.is_error, r)
    # The state persists for the next process: the task can be checked afterwards.
    out = subprocess.run([HARNESS, "--json", "call", "get_list_profiles", f"id={vip}", "filter=equals(email,'agent-rehearsal@example.com')"],
                         env=env, capture_output=True, text=True)
    doc = json.loads(out.stdout or "{}")
    check(f"{label}: another process sees the change (state kept)", doc.get("ok") and len(doc["result"]["data"]) == 1 and doc["http"].get("sandbox") == {"seed": 1}, out.stdout + out.stderr)


async def main():
    with tempfile.TemporaryDirectory() as home:
        os.chmod(home, 0o700)
        for mode in ["auto", "legacy"]:
            await stdio_suite(home, mode)
        await http_suite(home)
        await sandbox_suite(home)
    print(f"{len(FAILURES)} failed" if FAILURES else "all passed")
    sys.exit(1 if FAILURES else 0)


asyncio.run(main())
