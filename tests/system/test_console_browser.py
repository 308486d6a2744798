"""The console in real headless Chromium, against a real API process, worker and scheduler:
sign in, create a config from the form (a 422 shown beside its field first), start it, see
its next run, run it now and see the run appear without a reload, pause it, sign out."""

import os
import re
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
from playwright.async_api import Browser, BrowserContext, Page, expect
from sqlalchemy.ext.asyncio import AsyncSession

from tests.support import processes
from tests.support.auth import create_user, unique_username
from tests.support.browser import ApiServer, ConsoleErrors, browser, start_api
from tests.support.worker_process import Worker

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

__all__ = ["browser"]  # the module-scoped Chromium fixture

ROOT = Path(__file__).resolve().parents[2]
# The tracked screenshot in the docs changes only when asked for (UPDATE_SCREENSHOTS=1).
SCREENSHOT = (
    ROOT / "docs" / "screenshots" / "config-page.png"
    if os.environ.get("UPDATE_SCREENSHOTS") == "1"
    else Path(os.environ.get("TEST_LOG_DIR", tempfile.gettempdir())) / "taskhub-config-page.png"
)
ADMIN = (os.environ["FIRST_SUPERUSER"], os.environ["FIRST_SUPERUSER_PASSWORD"])
TOKENS_KEY = "taskhub.console.tokens"
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
RUN_TIMEOUT_MS = 20_000
expect.set_options(timeout=10_000)  # the machine may be busy: poll longer, never sleep


@pytest.fixture(scope="module")
async def api_server() -> AsyncIterator[ApiServer]:
    server = await start_api()
    yield server
    processes.stop(server.process)


@pytest.fixture(scope="module")
async def worker(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Worker]:
    process = Worker(tmp_path_factory.mktemp("console-worker") / "worker.log")
    await process.start()
    yield process
    process.stop()


@pytest.fixture(scope="module")
def scheduler() -> Iterator[None]:
    process = processes.start_scheduler("console-scheduler")
    yield
    processes.stop(process)


@pytest.fixture
async def context(browser: Browser, api_server: ApiServer) -> AsyncIterator[BrowserContext]:
    # Berlin time in the browser: the screenshot shows a cron time of 02:00 Europe/Berlin as
    # 02:00 local time.
    context = await browser.new_context(
        viewport=DESKTOP, base_url=api_server.base_url, timezone_id="Europe/Berlin", locale="en-GB"
    )
    yield context
    await context.close()


async def sign_in(page: Page, username: str, password: str) -> None:
    await page.goto("/console/")
    await page.fill("#username", username)
    await page.fill("#password", password)
    await page.click("#signin-form button[type=submit]")


def fits_width(page: Page) -> object:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


async def test_operator_session_from_sign_in_to_sign_out(
    context: BrowserContext, api_server: ApiServer, worker: Worker, scheduler: None
) -> None:
    page = await context.new_page()
    errors = ConsoleErrors()
    errors.watch(page)

    # Sign in; a reload stays signed in (tokens kept in localStorage).
    await sign_in(page, *ADMIN)
    await expect(page.get_by_role("heading", name="Task configs")).to_be_visible()
    await page.reload()
    await expect(page.get_by_role("heading", name="Task configs")).to_be_visible()
    await expect(page.locator("#whoami")).to_have_text("admin")

    # The form: built from demo.sleep's schema; an invalid value gets the API's 422 beside it.
    await page.click("[data-nav=new]")
    form = page.locator("#config-form")
    name = f"nightly nap {uuid.uuid4().hex[:6]}"
    await form.locator("[name=name]").fill(name)
    await form.locator("[name=task_type]").select_option("demo.sleep")
    await form.locator("[name='parameters.seconds']").fill("-1")
    await form.locator("[name='parameters.message']").fill("hello from the console")
    await form.locator("[name=scheduler_type]").select_option("cron")
    # Half a day away: the scheduler does not fire it during the test, so the one run
    # listed below is the one started with Run now.
    hour = (datetime.now(ZoneInfo("Europe/Berlin")).hour + 12) % 24
    await form.locator("[name='schedule_config.cron_expression']").fill(f"0 {hour} * * *")
    await form.locator("[name='schedule_config.timezone']").fill("Europe/Berlin")
    await form.locator("button[type=submit]").click()
    seconds_error = form.locator("[data-field='parameters.seconds'] > .field-error")
    await expect(seconds_error).to_have_text(re.compile("greater than or equal to 0"))
    await expect(form.locator("[data-field=name] > .field-error")).to_be_hidden()

    await form.locator("[name='parameters.seconds']").fill("0.3")
    await form.locator("button[type=submit]").click()
    config_page = page.locator("#config-page")
    await expect(config_page.get_by_role("heading", name=name)).to_be_visible()
    await expect(page.locator("#schedule-words")).to_have_text(
        f"At {hour:02}:00, every day (Europe/Berlin)"
    )
    await expect(config_page.locator("h1 .badge")).to_have_text("inactive")

    # Start: active, with a next run in local time and "in N hr/min".
    await page.click("[data-action=start]")
    await expect(config_page.locator("h1 .badge")).to_have_text("active")
    await expect(page.locator("#next-run small")).to_have_text(re.compile(r"^in 1[0-3] hr"))

    # Run now: the run shows up by polling, without a reload of the page.
    await page.evaluate("window.sameDocument = true")
    await page.click("[data-action=run]")
    rows = page.locator("#executions tbody tr")
    await expect(rows).to_have_count(1, timeout=RUN_TIMEOUT_MS)
    await expect(rows.first).to_contain_text("succeeded")
    await expect(rows.first).to_contain_text("manual")
    await expect(page.locator("#duration-chart circle.dot-ok")).to_have_count(1)
    await expect(page.locator("#history")).to_contain_text("succeeded")
    assert await page.evaluate("window.sameDocument") is True

    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SCREENSHOT), full_page=True)
    assert SCREENSHOT.stat().st_size > 10_000  # a rendered page, not an empty image

    # Pause: the actions follow the status; no next run while paused.
    await page.click("[data-action=pause]")
    await expect(config_page.locator("h1 .badge")).to_have_text("paused")
    await expect(page.locator("[data-action=resume]")).to_be_visible()
    await expect(page.locator("[data-action=start]")).to_have_count(0)
    await expect(page.locator("#next-run")).to_have_text("—")

    # The executions filter asks the API for failed runs only: there are none.
    await page.select_option("#executions-filter", "false")
    await expect(page.locator("#executions")).to_contain_text("No runs match.")
    await page.select_option("#executions-filter", "")
    await expect(rows).to_have_count(1)

    # Edit: the form comes filled in; a change is saved with PATCH.
    await page.get_by_role("link", name="Edit", exact=True).click()
    await expect(form.locator("[name='parameters.message']")).to_have_value(
        "hello from the console"
    )
    await expect(form.locator("[name='schedule_config.cron_expression']")).to_have_value(
        f"0 {hour} * * *"
    )
    await form.locator("[name=priority]").fill("8")
    await form.locator("button[type=submit]").click()
    await expect(page.locator("#priority")).to_have_text("8")
    await expect(config_page.locator("h1 .badge")).to_have_text("paused")

    # Phone width: nothing wider than the screen, on the config page and the list.
    await page.set_viewport_size(PHONE)
    assert await fits_width(page)
    await page.click("[data-nav=configs]")
    await page.fill("#filter-search", name)
    found = page.locator("#config-results tbody tr")
    await expect(found).to_have_count(1)
    await expect(found).to_contain_text("paused")
    await expect(found).to_contain_text("succeeded")
    await expect(found).to_contain_text("100%")
    assert await fits_width(page)
    await page.fill("#filter-search", "no config is called this")
    await expect(page.locator("#config-results")).to_contain_text("No task configs match.")
    await page.set_viewport_size(DESKTOP)

    # The system page: reachability and counts, from /tasks/status and /health.
    await page.click("[data-nav=system]")
    system = page.locator("#system")
    await expect(system).to_contain_text("Active schedules")
    await expect(system.locator(".badge-ok")).to_have_count(6)  # 3 checks, twice
    await expect(page.locator("#runs-in-flight")).to_have_text(re.compile(r"^\d+$"))

    # Sign out revokes the refresh token at the API and forgets the tokens here.
    tokens = await page.evaluate(f"JSON.parse(localStorage.getItem('{TOKENS_KEY}'))")
    await page.click("#sign-out")
    await expect(page.locator("#signin-form")).to_be_visible()
    assert await page.evaluate(f"localStorage.getItem('{TOKENS_KEY}')") is None
    async with httpx.AsyncClient(base_url=api_server.base_url) as http:
        reused = await http.post(
            "/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]}
        )
    assert reused.status_code == 401

    # Chromium reports every 4xx response as a console error: the one 422 provoked above is
    # the only error allowed.
    assert len(errors.messages) == 1, errors.messages
    assert "status of 422" in errors.messages[0]
    assert errors.messages[0].endswith("/api/v1/tasks/configs")
    log = api_server.log()
    assert tokens["access_token"] not in log
    assert tokens["refresh_token"] not in log


async def test_a_user_who_is_not_a_superuser_sees_not_allowed(
    context: BrowserContext, session: AsyncSession
) -> None:
    username = unique_username("viewer")
    await create_user(session, username=username, password="viewer-password")
    page = await context.new_page()
    errors = ConsoleErrors()
    errors.watch(page)

    await sign_in(page, username, "viewer-password")
    not_allowed = page.locator("#not-allowed")
    await expect(not_allowed.get_by_role("heading", name="Not allowed")).to_be_visible()
    await expect(not_allowed).to_contain_text(f"signed in as {username}")
    await page.goto("/console/#/configs/1")
    await expect(not_allowed).to_be_visible()
    await expect(page.locator("#config-page")).to_have_count(0)
    await expect(page.locator("[data-nav=configs]")).to_be_hidden()
    assert errors.messages == []


async def test_console_responses_carry_the_csp_in_the_browser(
    context: BrowserContext,
) -> None:
    page = await context.new_page()
    response = await page.goto("/console/")
    assert response is not None
    assert "script-src 'self'" in (await response.header_value("content-security-policy") or "")
    await expect(page.locator("#signin-form")).to_be_visible()


async def test_tokens_are_refreshed_before_the_access_token_expires(
    context: BrowserContext,
) -> None:
    page = await context.new_page()
    errors = ConsoleErrors()
    errors.watch(page)
    await page.clock.install()  # the page's timers and Date, moved by the test
    await sign_in(page, *ADMIN)
    await expect(page.get_by_role("heading", name="Task configs")).to_be_visible()
    read_tokens = f"JSON.parse(localStorage.getItem('{TOKENS_KEY}'))"
    before = await page.evaluate(read_tokens)

    # Access tokens live 15 minutes; the console refreshes a minute ahead of expiry.
    await page.clock.fast_forward("14:30")
    # (Polled from here: the page's CSP refuses the string evaluation wait_for_function uses.)
    after = await processes.eventually(
        lambda: page.evaluate(read_tokens),
        lambda tokens: tokens["access_token"] != before["access_token"],
    )
    assert after["refresh_token"] != before["refresh_token"]
    # Still signed in and working with the new pair.
    await page.click("[data-nav=system]")
    await expect(page.locator("#system")).to_contain_text("Active schedules")
    assert errors.messages == []
