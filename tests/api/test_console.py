"""The console's static files: served under /console with a strict Content-Security-Policy,
no inline code anywhere (the CSP would block it), nothing loaded from another origin."""

import re

import httpx
import pytest

from backend.api.console import STATIC_DIR

CSP = "Content-Security-Policy"
# A URL on another origin where a page would load it: src/href, CSS url(), import, fetch.
REMOTE = re.compile(
    r"""(src|href)=["']?(https?:)?//|url\(\s*["']?(https?:)?//|(from|import\(|fetch\()\s*["'](https?:)?//"""
)


@pytest.mark.parametrize("path", ["/console/", "/console/js/main.js", "/console/console.css"])
async def test_console_files_carry_a_strict_csp(client: httpx.AsyncClient, path: str) -> None:
    response = await client.get(path)
    assert response.status_code == 200
    policy = response.headers[CSP]
    assert "default-src 'none'" in policy
    assert "script-src 'self'" in policy
    assert "frame-ancestors 'none'" in policy
    assert "unsafe-inline" not in policy
    assert "unsafe-eval" not in policy
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "no-referrer"


async def test_console_redirects_to_its_slash_with_the_csp(client: httpx.AsyncClient) -> None:
    response = await client.get("/console")
    assert response.status_code == 307
    assert response.headers["location"] == "/console/"
    assert "script-src 'self'" in response.headers[CSP]


async def test_the_root_leads_to_the_console(client: httpx.AsyncClient) -> None:
    response = await client.get("/")
    assert response.status_code == 307
    assert response.headers["location"] == "/console/"


async def test_unknown_console_file_is_404_with_the_csp(client: httpx.AsyncClient) -> None:
    response = await client.get("/console/js/nope.js")
    assert response.status_code == 404
    assert "script-src 'self'" in response.headers[CSP]


async def test_the_shell_is_html_and_the_modules_are_javascript(client: httpx.AsyncClient) -> None:
    shell = await client.get("/console/")
    assert shell.headers["content-type"].startswith("text/html")
    assert '<script type="module" src="js/main.js"></script>' in shell.text
    module = await client.get("/console/js/views/config.js")
    assert module.headers["content-type"].split(";")[0] in {
        "text/javascript",
        "application/javascript",
    }


async def test_api_responses_do_not_carry_the_console_policy(client: httpx.AsyncClient) -> None:
    response = await client.get("/health")
    assert CSP not in response.headers


def test_no_inline_code_and_nothing_from_other_origins() -> None:
    html = (STATIC_DIR / "index.html").read_text()
    scripts = re.findall(r"<script\b[^>]*>", html)
    assert scripts
    assert all(" src=" in tag for tag in scripts)
    assert not re.search(r"\son[a-z]+=", html)  # no inline event handlers
    assert "style=" not in html
    for path in STATIC_DIR.rglob("*"):
        if path.suffix in {".html", ".js", ".css"}:
            text = path.read_text()
            assert not REMOTE.search(text), path
            assert ".innerHTML" not in text, path  # text goes in as text (dom.js)


def test_every_module_a_module_imports_is_there() -> None:
    # A page only a role reaches (Tokens, Audit, Channels) must not break on a typo.
    imports = re.compile(r"""^import\s[^;]*?from\s+["'](\.{1,2}/[^"']+)["']""", re.MULTILINE)
    modules = sorted((STATIC_DIR / "js").rglob("*.js"))
    assert {"roles.js", "tokens.js", "audit.js", "channels.js", "deliveries.js"} <= {
        path.name for path in modules
    }
    for path in modules:
        for target in imports.findall(path.read_text()):
            assert (path.parent / target).resolve().is_file(), f"{path.name} imports {target}"
