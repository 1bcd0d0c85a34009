"""Drive Errand's MCP endpoint with the official MCP Python SDK (`mcp` 2.3.0), headlessly.

Run by a Rust integration test against a live Errand on loopback. Everything MCP/OAuth goes through
the SDK (OAuthClientProvider + streamable_http_client + ClientSession); only the human part of the
authorization (sign-in form, consent form) is played here over plain HTTP.
Prints one JSON summary on stdout; on failure prints a traceback on stderr and exits 1.
"""

import argparse, asyncio, html, http.cookiejar, json, re, sys, traceback
from datetime import datetime, timedelta, timezone
from html.parser import HTMLParser
from urllib.parse import parse_qs, urljoin, urlparse

import anyio
import httpx2  # mcp 2.x depends on httpx2 (the httpx fork), not httpx
import mcp.client.auth.oauth2 as sdk_oauth2
from mcp import ClientSession, types
from mcp.client.auth import AuthorizationCodeResult, OAuthClientProvider, TokenStorage
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import OAuthClientMetadata

TIMEOUT = 20.0
args = argparse.ArgumentParser(description=__doc__)
args.add_argument("--server", required=True)  # http://127.0.0.1:PORT (issuer and MCP origin)
args.add_argument("--email", required=True)
args.add_argument("--password", required=True)
args.add_argument("--registration", choices=["dcr", "cimd"], required=True)
args.add_argument("--client-metadata-url")  # required with --registration cimd
args.add_argument("--era", choices=["handshake", "stateless"], required=True)
args.add_argument("--redirect-uri", required=True)


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def check(cond, msg):  # not `assert`: must also hold under python -O
    if not cond:
        raise RuntimeError(msg)


def loopback_only(url):
    # Tests must never talk to anything but 127.0.0.1; refuse before a request leaves the process.
    check(urlparse(str(url)).hostname == "127.0.0.1", f"refusing non-loopback request to {url}")


async def guard(request):  # httpx2 event hook: also covers the SDK's own discovery/token requests
    loopback_only(request.url)


def allow_loopback_cimd():
    # The SDK only accepts https client_metadata_url values (utils.is_valid_client_metadata_url, imported
    # by name into oauth2.py and checked in OAuthClientProvider.__init__). Tests may only use loopback
    # and there is no TLS there, so additionally accept http://127.0.0.1[:port]/<non-root path>.
    original = sdk_oauth2.is_valid_client_metadata_url
    loopback = lambda p: p.scheme == "http" and p.hostname == "127.0.0.1" and p.path not in ("", "/")
    sdk_oauth2.is_valid_client_metadata_url = lambda url: original(url) or loopback(urlparse(url or ""))


class MemoryStorage(TokenStorage):
    tokens = client = None
    async def get_tokens(self): return self.tokens
    async def set_tokens(self, tokens): self.tokens = tokens
    async def get_client_info(self): return self.client
    async def set_client_info(self, info): self.client = info


class Forms(HTMLParser):
    """Collects (action, {hidden name: value}) per <form>. HTMLParser html.unescape()s attribute
    values itself (named and numeric references such as &#38;), so values must not be unescaped again."""

    def __init__(self, text):
        super().__init__()
        self.forms = []
        self.feed(text)
    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form":
            self.forms.append((a.get("action") or "", {}))
        elif tag == "input" and self.forms and (a.get("type") or "").lower() == "hidden" and a.get("name"):
            self.forms[-1][1][a["name"]] = a.get("value") or ""


def form_for(page, path):
    for action, hidden in Forms(page.text).forms:
        if urlparse(action).path == path:
            return action, hidden
    raise RuntimeError(f"no form posting to {path} on {page.url} ({page.status_code}):\n{page.text[:2000]}")


class Browser:
    """Plays the user: sign in, approve consent, capture the redirect to redirect_uri (never fetched)."""

    def __init__(self, a):
        self.a, self.got, self.consent_html = a, None, ""
    async def walk(self, h, url):
        for _ in range(10):  # GET, following redirects by hand, stopping at the client's redirect_uri
            if url.startswith(self.a.redirect_uri):
                return None, url
            r = await h.get(url)
            if not r.is_redirect:
                r.raise_for_status()
                return r, url
            url = urljoin(url, r.headers["location"])
        raise RuntimeError("too many redirects")

    async def post(self, h, url, action, data):
        r = await h.post(urljoin(url, action), data=data)
        check(r.is_redirect, f"POST {action} gave {r.status_code}, expected a redirect:\n{r.text[:2000]}")
        return urljoin(url, r.headers["location"])  # Location may be relative: resolve like a browser

    async def redirect_handler(self, authorization_url):
        try:
            async with httpx2.AsyncClient(follow_redirects=False, timeout=TIMEOUT, trust_env=False,
                                          event_hooks={"request": [guard]}) as h:
                # Browsers send `Secure` cookies to http://127.0.0.1 (a secure context); the stdlib jar would not.
                h.cookies.jar.set_policy(http.cookiejar.DefaultCookiePolicy(secure_protocols=("https", "wss", "http")))
                page, url = await self.walk(h, authorization_url)
                check(page is not None, "authorization finished without showing a sign-in page")
                action, hidden = form_for(page, "/oauth/sign-in")
                creds = {"email": self.a.email, "password": self.a.password}
                page, url = await self.walk(h, await self.post(h, url, action, {**hidden, **creds}))
                check(page is not None, "authorization finished without showing a consent page")
                action, hidden = form_for(page, "/oauth/consent")
                self.consent_html = page.text
                text = " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page.text)).split())
                i = text.find("registered itself")
                log("consent page:", text[max(0, i - 300):i + 300] if i >= 0 else "(no 'registered itself') " + text[:600])
                final = await self.post(h, url, action, {**hidden, "decision": "allow"})
            q = {k: v[0] for k, v in parse_qs(urlparse(final).query).items()}
            check(final.startswith(self.a.redirect_uri) and "code" in q, f"bad authorization redirect: {final}")
            self.got = q
        except Exception:
            traceback.print_exc()  # the SDK may surface this only as a transport error/timeout
            raise

    async def callback_handler(self):
        check(self.got is not None, "callback before redirect handler succeeded")
        return AuthorizationCodeResult(code=self.got["code"], state=self.got.get("state"), iss=self.got.get("iss"))


def text(res):
    return " ".join(c.text for c in res.content if getattr(c, "type", None) == "text").strip()


def data(res):  # structured content, else the JSON the spec says a text block SHOULD mirror it in
    return res.structured_content if res.structured_content is not None else json.loads(text(res) or "null")


def task_of(d):
    return d if isinstance(d, dict) and "number" in d else (d or {}).get("task", {})


def numbers(page):
    # TaskPage: the array of task objects (dicts with "number"); prefer "tasks", else any such array.
    log("listTasks keys:", list(page) if isinstance(page, dict) else type(page).__name__)
    lists = [page["tasks"]] if isinstance(page, dict) and "tasks" in page else \
        [v for v in (page or {}).values() if isinstance(v, list) and v and all(isinstance(x, dict) and "number" in x for x in v)]
    return [t["number"] for t in (lists[0] if lists else [])]


async def call(s, name, arguments, error=False):
    res = await s.call_tool(name, arguments)
    log(f"{name}({arguments}) -> is_error={res.is_error}: {res.structured_content or text(res)}")
    check(bool(res.is_error) == error, f"{name}({arguments}): is_error={res.is_error}, text={text(res)!r}")
    return res


async def main(a):
    loopback_only(a.server); loopback_only(a.redirect_uri)
    mcp_url = a.server.rstrip("/") + "/mcp"
    cimd_url = None
    if a.registration == "cimd":
        check(a.client_metadata_url, "--client-metadata-url is required with --registration cimd")
        allow_loopback_cimd()
        cimd_url = a.client_metadata_url
    browser, storage = Browser(a), MemoryStorage()
    provider = OAuthClientProvider(
        server_url=mcp_url,
        client_metadata=OAuthClientMetadata(
            client_name="Errand SDK test", redirect_uris=[a.redirect_uri],
            grant_types=["authorization_code", "refresh_token"], response_types=["code"],
            token_endpoint_auth_method="none"),
        storage=storage, redirect_handler=browser.redirect_handler,
        callback_handler=browser.callback_handler, client_metadata_url=cimd_url)
    with anyio.fail_after(6 * TIMEOUT):  # overall guard on top of the per-request timeouts
        async with httpx2.AsyncClient(auth=provider, timeout=TIMEOUT, trust_env=False,
                                      event_hooks={"request": [guard]}) as http_client, \
                streamable_http_client(mcp_url, http_client=http_client) as (read, write), \
                ClientSession(read, write, read_timeout_seconds=TIMEOUT) as s:
            # handshake = 2025-11-25 initialize; stateless = 2026-07-28 server/discover + per-request _meta
            await (s.initialize() if a.era == "handshake" else s.discover())
            log("negotiated protocol:", s.protocol_version)
            # The SDK silently falls back to DCR if the AS does not advertise CIMD support: detect that.
            client_id = storage.client.client_id if storage.client else None
            if cimd_url:
                check(client_id == cimd_url, f"CIMD not used: client_id={client_id!r}")
            tools, cursor = [], None
            while True:
                page = await s.list_tools(params=types.PaginatedRequestParams(cursor=cursor) if cursor else None)
                tools += page.tools
                if not (cursor := page.next_cursor):
                    break
            names = [t.name for t in tools]
            annotations = {t.name: t.annotations.model_dump(by_alias=True, exclude_none=True) if t.annotations else {}
                           for t in tools}
            created = task_of(data(await call(s, "createTask", {"title": "Buy milk"})))
            n = created.get("number")
            check(isinstance(n, int) and created.get("status") == "open", f"createTask: {created}")
            check(n in numbers(data(await call(s, "listTasks", {}))), f"task {n} not listed")
            completed = task_of(data(await call(s, "completeTask", {"number": n})))
            check(completed.get("status") == "done", f"completeTask: {completed}")
            after = numbers(data(await call(s, "listTasks", {})))
            check(n not in after, f"completed task {n} still listed: {after}")
            n2 = task_of(data(await call(s, "createTask", {"title": "Call mum"})))["number"]
            remind_at = (datetime.now(timezone.utc) + timedelta(hours=1)).isoformat(timespec="seconds")
            reminder = await call(s, "createReminder", {"number": n2, "remind_at": remind_at})
            bad_text = text(await call(s, "createTask", {"title": ""}, error=True))  # a tool error, not JSON-RPC
            check(bad_text, "empty-title tool error carries no text")
            return {"ok": True, "tools": names, "annotations": annotations, "created": n,
                    "completed_status": completed.get("status"), "listed_after_complete": after,
                    "reminder_error": bool(reminder.is_error), "bad_input_error_text": bad_text,
                    "consent_unvetted": "registered itself" in browser.consent_html,
                    "iss": (browser.got or {}).get("iss"), "protocol": s.protocol_version,
                    "client_id": client_id}


if __name__ == "__main__":
    parsed = args.parse_args()  # argparse errors exit 2 before anything runs
    try:
        summary = asyncio.run(main(parsed))
    except Exception:
        traceback.print_exc()
        sys.exit(1)
    print(json.dumps(summary))
