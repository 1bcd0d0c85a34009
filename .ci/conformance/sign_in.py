"""Runs the conformance suite's authorization scenarios and signs in for it.

The authorization-code scenario prints the authorization URL and waits for a
browser to come back to its callback. This plays that person: it runs the
suite, reads the URL from its output, signs up (the first time) and in on
Errand's pages with a test account, approves the consent page and follows
the redirect to the suite's callback. Exits with the suite's status.
Usage: sign_in.py NODE SUITE ISSUER CLIENT_ID RESOURCE PORT
"""

import html.parser
import http.cookiejar
import subprocess
import sys
import threading
import urllib.parse
import urllib.request

NODE, SUITE, ISSUER, CLIENT_ID, RESOURCE, PORT = sys.argv[1:7]
EMAIL, PASSWORD = "conformance-sign-in@example.com", "a long conformance password"


class Forms(html.parser.HTMLParser):
    """The hidden fields of each form of a page, in order."""

    def __init__(self):
        super().__init__()
        self.forms = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            self.forms.append({"action": attrs.get("action"), "fields": []})
        elif tag == "input" and attrs.get("type") == "hidden" and self.forms:
            self.forms[-1]["fields"].append((attrs["name"], attrs.get("value", "")))


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


jar = http.cookiejar.CookieJar()
browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar), NoRedirect)


def fetch(url, fields=None):
    data = urllib.parse.urlencode(fields).encode() if fields is not None else None
    try:
        answer = browser.open(urllib.request.Request(url, data=data), timeout=30)
        return answer.status, answer.headers, answer.read().decode()
    except urllib.error.HTTPError as err:  # 3xx (not followed) and errors
        return err.code, err.headers, err.read().decode()


def forms(page):
    parser = Forms()
    parser.feed(page)
    return parser.forms


def sign_in(authorize_url):
    status, _, page = fetch(authorize_url)
    assert status == 200, f"the authorization request answered {status}: {page[:500]}"
    fields = dict(forms(page)[0]["fields"])
    return_to = fields["return_to"]
    # Sign up (the answer is the same whether or not the account exists).
    status, _, page = fetch(f"{ISSUER}/oauth/sign-up?return_to={urllib.parse.quote(return_to)}")
    csrf = dict(forms(page)[0]["fields"])["csrf"]
    fetch(f"{ISSUER}/oauth/sign-up", {"email": EMAIL, "password": PASSWORD, "csrf": csrf, "return_to": return_to})
    status, headers, page = fetch(
        f"{ISSUER}/oauth/sign-in",
        {"email": EMAIL, "password": PASSWORD, "csrf": csrf, "return_to": return_to},
    )
    assert status == 303, f"signing in answered {status}: {page[:500]}"
    status, headers, page = fetch(urllib.parse.urljoin(ISSUER, headers["Location"]))
    if status == 200:  # the consent page
        consent = forms(page)[0]
        fields = consent["fields"] + [("decision", "allow")]
        status, headers, page = fetch(urllib.parse.urljoin(ISSUER, consent["action"]), fields)
    assert status == 302, f"consent answered {status}: {page[:500]}"
    # Back to the suite's callback, as the browser would go.
    fetch(headers["Location"])


suite = subprocess.Popen(
    [NODE, SUITE, "authorization", "--url", ISSUER, "--client-id", CLIENT_ID,
     "--resource", RESOURCE, "--port", PORT],
    stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
)
for line in suite.stdout:
    sys.stdout.write(line)
    sys.stdout.flush()
    candidate = line.strip()
    if candidate.startswith(ISSUER) and "/oauth/authorize?" in candidate:
        threading.Thread(target=sign_in, args=(candidate,), daemon=True).start()
sys.exit(suite.wait())
