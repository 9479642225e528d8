"""Drives the HTTP (edge) build, served by `jco serve`, with the official MCP Python SDK's
Streamable HTTP client: in its default mode (`server/discover`, then 2026-07-28 stateless
requests with the MCP-Protocol-Version / Mcp-Method / Mcp-Name headers) and in legacy mode
(the `initialize` handshake). Per mode: the tool list, a read (the exact request the upstream
received), a write the default policy denies (nothing sent), and a wrong token (refused,
nothing sent). Run by tests/edge/run.sh; exits non-zero on the first failed check."""

import argparse
import asyncio
import json
import sys

import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

ap = argparse.ArgumentParser()
ap.add_argument("--url", required=True)
ap.add_argument("--token", required=True)
ap.add_argument("--key", required=True)
ap.add_argument("--revision", required=True)
ap.add_argument("--log", required=True, help="the upstream's request log (JSON lines)")
args = ap.parse_args()

READ = {"fields_profile": ["email"], "filter": "equals(email,'a@b.co')", "page_size": 3}
READ_TARGET = "/api/profiles?fields%5Bprofile%5D=email&filter=equals(email,'a@b.co')&page%5Bsize%5D=3"
WRITE = {"body": {"data": {"type": "list", "attributes": {"name": "VIP"}}}}
META_TOOLS = ["search_actions", "describe_action", "call_action"]


def check(ok: bool, what: str, detail: object = "") -> None:
    if not ok:
        print(f"FAIL: {what} {detail}", file=sys.stderr)
        sys.exit(1)
    print(f"ok: {what}")


def seen() -> list[dict]:
    try:
        with open(args.log, encoding="utf-8") as f:
            return [json.loads(line) for line in f if line.strip()]
    except FileNotFoundError:
        return []


def connect(mode: str, token: str, hc: httpx2.AsyncClient) -> Client:
    transport = streamable_http_client(args.url, http_client=hc)
    return Client(transport) if mode == "default" else Client(transport, mode="legacy")


async def session(mode: str, version: str) -> None:
    headers = {"Authorization": f"Bearer {args.token}"}
    async with httpx2.AsyncClient(headers=headers) as hc, connect(mode, args.token, hc) as c:
        check(c.protocol_version == version, f"[{mode}] negotiated {version}", c.protocol_version)
        info = c.server_info
        check(info is not None and info.name == "klaviyo-connector-http", f"[{mode}] server info", info)

        tools = await c.list_tools()
        names = [t.name for t in tools.tools]
        check(names == META_TOOLS, f"[{mode}] tools/list: the three discovery meta-tools", names)
        call = next(t for t in tools.tools if t.name == "call_action")
        check(call.annotations.read_only_hint is True, f"[{mode}] call_action is read-only under the default policy")

        before = len(seen())
        r = await c.call_tool("call_action", {"name": "get_profiles", "arguments": READ})
        sc = r.structured_content or {}
        check(not r.is_error and sc.get("ok") is True, f"[{mode}] read succeeds", sc)
        check(sc["result"]["data"][0]["id"] == "L1", f"[{mode}] read returns the upstream's data (compact)")
        new = seen()[before:]
        check(len(new) == 1, f"[{mode}] read sent exactly one request", new)
        q = new[0]
        check(q["method"] == "GET" and q["target"] == READ_TARGET, f"[{mode}] exact method, path and query", q)
        h = q["headers"]
        check(h.get("authorization") == f"Klaviyo-API-Key {args.key}", f"[{mode}] the key, in Authorization only")
        check(h.get("revision") == args.revision, f"[{mode}] revision {args.revision}", h.get("revision"))
        check(h.get("accept") == "application/vnd.api+json", f"[{mode}] accept", h.get("accept"))

        before = len(seen())
        r = await c.call_tool("call_action", {"name": "create_list", "arguments": WRITE})
        sc = r.structured_content or {}
        err = sc.get("error") or {}
        check(r.is_error and err.get("kind") == "denied", f"[{mode}] write denied by the default policy", sc)
        msg = err.get("message", "")
        check('tools = "create_list"' in msg and "KLAVIYO_POLICY_TOML" in msg, f"[{mode}] the refusal names the rule to add", msg)
        check(len(seen()) == before, f"[{mode}] the denied write sent nothing")


def messages(e: BaseException) -> str:
    """An exception's text, with those of a group's members (anyio task groups wrap them)."""
    inner = getattr(e, "exceptions", None)
    if isinstance(inner, (list, tuple)):
        return " | ".join(messages(x) for x in inner)
    return f"{type(e).__name__}: {e}"


async def wrong_token(mode: str) -> None:
    before = len(seen())
    try:
        async with httpx2.AsyncClient(headers={"Authorization": "Bearer not-the-token-0123456789"}) as hc:
            async with connect(mode, "x", hc) as c:
                await c.list_tools()
    except BaseException as e:  # noqa: BLE001 - any refusal; checked below
        text = messages(e)
        check("unauthorized" in text, f"[{mode}] a wrong token is refused (401)", text)
    else:
        check(False, f"[{mode}] a wrong token is refused", "the client connected")
    check(len(seen()) == before, f"[{mode}] a wrong token sent nothing")


async def main() -> None:
    await session("default", "2026-07-28")
    await session("legacy", "2025-11-25")
    await wrong_token("default")
    await wrong_token("legacy")


asyncio.run(main())
