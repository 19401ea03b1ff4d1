"""The chat page in a real browser: Debian's Chromium driven by Playwright.

Opens the page, waits for the welcome menu, asks an FAQ, clicks a quick reply
of the answer, checks both answers, reloads and finds the history, then takes
a phone-sized screenshot to results/webchat.png. Chromium is never downloaded:
scripts/system_deps.sh installs Debian's package, and a missing
/usr/bin/chromium fails this test rather than skipping it.
"""
import json
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOT = ROOT / "results" / "webchat.png"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
]
PHONE = {"width": 375, "height": 812}
TIMEOUT_MS = 30_000


def chromium_problem():
    """Why the browser test cannot run here, or None."""
    if not CHROMIUM.exists():
        return (f"{CHROMIUM} is missing: the browser test needs Debian's Chromium; "
                "install it with scripts/system_deps.sh (apt-get install chromium)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the 'playwright' Python package is missing: pip install -e '.[dev]'"
    return None


@pytest.fixture(scope="module")
def chromium():
    """Debian's Chromium under Playwright, or the reason it cannot start (a str)."""
    problem = chromium_problem()
    if problem:
        yield problem
        return
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def need_browser(chromium):
    """The browser; a missing Chromium or Playwright fails the test (never skips it)."""
    if isinstance(chromium, str):
        pytest.fail(chromium, pytrace=False)
    return chromium


class Watch:
    """Every request, console error and page error of a page, for checks at the end."""

    def __init__(self, page):
        self.requests: list[str] = []
        self.errors: list[str] = []

        def on_console(msg: Any) -> None:
            if msg.type == "error":
                self.errors.append(msg.text)

        page.on("request", lambda request: self.requests.append(request.url))
        page.on("console", on_console)
        page.on("pageerror", lambda error: self.errors.append(str(error)))

    def webhook_calls(self):
        return [url for url in self.requests if url.endswith("/webhooks/web/webhook")]


def open_chat(browser: Any, server: str) -> tuple[Any, Any]:
    """A phone-sized chat page (its context and page), once its welcome shows."""
    from playwright.sync_api import expect

    expect.set_options(timeout=TIMEOUT_MS)
    context = browser.new_context(viewport=PHONE, locale="zh-CN")
    page = context.new_page()
    page.goto(f"{server}/webhooks/web/")
    expect(page.locator(".msg.bot").first).to_contain_text("您好")
    return context, page


def bot_texts(page):
    return page.locator(".msg.bot .bubble").all_inner_texts()


def test_chat_page_faq_quick_reply_history_and_phone_screenshot(chromium, request):
    browser = need_browser(chromium)
    server = request.getfixturevalue("server")
    from playwright.sync_api import expect

    expect.set_options(timeout=TIMEOUT_MS)
    context = browser.new_context(viewport={"width": 1024, "height": 768},
                                  device_scale_factor=2, locale="zh-CN")
    page = context.new_page()
    watch = Watch(page)
    url = f"{server}/webhooks/web/"

    page.goto(url)
    expect(page).to_have_title("智慧团建 团组织关系转接助手")
    expect(page.locator("#input")).to_have_attribute("placeholder", "请输入您的问题")
    expect(page.get_by_role("button", name="发送")).to_be_visible()

    # First open: "/greet" goes out silently and the welcome menu shows.
    welcome = page.locator(".msg.bot").first
    expect(welcome).to_contain_text("您好")
    expect(welcome.locator(".chip")).not_to_have_count(0)
    expect(page.locator(".msg.user")).to_have_count(0)

    # Ask an FAQ; hold the reply back to see the typing indicator meanwhile.
    held = []
    page.route("**/webhooks/web/webhook", lambda route: held.append(route))
    page.fill("#input", "忘记密码怎么办")
    page.get_by_role("button", name="发送").click()
    expect(page.locator(".msg.user").last).to_have_text("忘记密码怎么办")
    while not held:
        page.wait_for_timeout(50)
    expect(page.locator("#typing")).to_be_visible()
    expect(page.locator("#typing")).to_contain_text("正在输入…")
    expect(page.get_by_role("button", name="发送")).to_be_disabled()
    held[0].continue_()
    page.unroute("**/webhooks/web/webhook")

    answer = page.locator(".msg.bot").nth(1)  # locators are lazy: pin by position
    expect(answer).to_contain_text("密码重置码")
    expect(page.locator("#typing")).to_be_hidden()
    expect(page.locator("#input")).to_have_value("")
    # Line breaks of the answer are kept (white-space: pre-wrap, text not HTML).
    assert "\n1. 让本级或直属上级组织管理员生成" in answer.locator(".bubble").inner_text()
    # The welcome menu's chips are now disabled; the answer's are live.
    for chip in welcome.locator(".chip").all():
        expect(chip).to_be_disabled()
    chip = answer.locator(".chip").first
    expect(chip).to_be_enabled()
    expect(chip).to_have_text("被误删了怎么转出")

    # Click the quick reply: its title is shown as the member's message, its payload is sent.
    chip.click()
    expect(page.locator(".msg.user").last).to_have_text("被误删了怎么转出")
    second = page.locator(".msg.bot").nth(2)
    expect(second).to_contain_text("可以自己办理转出")
    expect(second).to_contain_text("登录自己的团员个人账号")
    expect(page.locator(".msg.bot")).to_have_count(3)
    expect(chip).to_be_disabled()
    assert not any("/faq_" in text for text in page.locator(".msg.user").all_inner_texts())

    history = page.locator(".msg .bubble").all_inner_texts()
    sender = page.evaluate("JSON.parse(sessionStorage.getItem('tuanjian-webchat-v1')).session")
    calls_before_reload = len(watch.webhook_calls())
    assert calls_before_reload == 3  # /greet, the question, the quick reply

    # Reload: the whole history comes back from sessionStorage, no new greeting.
    page.reload()
    expect(page.locator(".msg .bubble")).to_have_count(len(history))
    assert page.locator(".msg .bubble").all_inner_texts() == history
    assert page.evaluate("JSON.parse(sessionStorage.getItem('tuanjian-webchat-v1')).session") == sender
    expect(page.locator(".msg.bot").last.locator(".chip").first).to_be_enabled()
    expect(page.locator(".msg.bot").first.locator(".chip").first).to_be_disabled()
    page.wait_for_timeout(500)
    assert len(watch.webhook_calls()) == calls_before_reload

    # Phone-sized: no sideways scrolling, the latest answer in view, then the screenshot.
    page.set_viewport_size(PHONE)
    page.wait_for_timeout(300)
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    assert page.evaluate("document.querySelector('.composer').getBoundingClientRect().right") <= PHONE["width"]
    expect(page.locator(".msg.bot").last).to_be_in_viewport()
    expect(page.locator("#input")).to_be_in_viewport()
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOT))
    assert SCREENSHOT.stat().st_size > 10_000

    # Every request stayed on this server (no CDN, no external font); no CSP or script error.
    assert all(request.startswith(server + "/") for request in watch.requests), watch.requests
    assert watch.errors == []
    context.close()


def test_text_is_never_html_and_errors_are_polite(chromium, request):
    browser = need_browser(chromium)
    server = request.getfixturevalue("server")
    from playwright.sync_api import expect

    expect.set_options(timeout=TIMEOUT_MS)
    context = browser.new_context(viewport=PHONE, locale="zh-CN")
    page = context.new_page()
    watch = Watch(page)
    page.goto(f"{server}/webhooks/web/")
    expect(page.locator(".msg.bot").first).to_contain_text("您好")

    markup = '<b id="x">粗体</b><img src="/nope" onerror="window.pwned=1">'
    page.fill("#input", markup)
    page.press("#input", "Enter")
    expect(page.locator(".msg.user").last).to_have_text(markup)
    expect(page.locator(".msg.bot").nth(1)).to_be_visible()
    expect(page.locator("#typing")).to_be_hidden()
    assert page.locator("#log b, #log img").count() == 0
    assert page.evaluate("window.pwned") is None

    # The server failing, then unreachable: a polite notice in the page, the chat goes on.
    page.route("**/webhooks/web/webhook",
               lambda route: route.fulfill(status=500, body="boom", content_type="text/plain"))
    page.fill("#input", "忘记密码怎么办")
    page.press("#input", "Enter")
    expect(page.locator(".msg.notice").last).to_contain_text("抱歉，助手暂时无法回答")
    page.unroute("**/webhooks/web/webhook")
    page.route("**/webhooks/web/webhook", lambda route: route.abort())
    page.fill("#input", "忘记密码怎么办")
    page.press("#input", "Enter")
    expect(page.locator(".msg.notice").last).to_contain_text("暂时连接不上助手")
    page.unroute("**/webhooks/web/webhook")
    expect(page.get_by_role("button", name="发送")).to_be_enabled()
    page.fill("#input", "忘记密码怎么办")
    page.press("#input", "Enter")
    expect(page.locator(".msg.bot").last).to_contain_text("密码重置码")

    # 重新开始: a new conversation with a new session and the welcome menu again.
    sender = page.evaluate("JSON.parse(sessionStorage.getItem('tuanjian-webchat-v1')).session")
    page.get_by_role("button", name="重新开始").click()
    expect(page.locator(".msg .bubble")).to_have_count(1)
    expect(page.locator(".msg.bot").first).to_contain_text("您好")
    assert page.evaluate("JSON.parse(sessionStorage.getItem('tuanjian-webchat-v1')).session") != sender

    assert all(request.startswith(server + "/") for request in watch.requests), watch.requests
    # The failures are the only console errors (the browser logs failed fetches):
    # the 500 once (not sent again), the unreachable server once per attempt
    # (the first and chat.js's five more).
    assert len(watch.errors) == 7 and all("Failed to load resource" in e for e in watch.errors), watch.errors
    context.close()


def test_a_message_the_server_could_not_take_is_sent_again_once(chromium, request):
    """A 503 (a store away), then a reply lost after the server took the turn (a
    replica dying, 502 from the proxy): the page sends the same message_id again
    with retry, and the member sees the answer once (that the server takes it
    once is tests/integration/test_faults.py's)."""
    browser = need_browser(chromium)
    server = request.getfixturevalue("server")
    from playwright.sync_api import expect

    context, page = open_chat(browser, server)

    bodies: list[dict] = []

    def flaky(route: Any) -> None:
        bodies.append(json.loads(route.request.post_data))
        if len(bodies) == 1:
            route.fulfill(status=503, body='{"error": "send it again"}', content_type="application/json")
        elif len(bodies) == 2:
            route.fetch()  # the server takes the turn; its reply never reaches the page
            route.fulfill(status=502, body="bad gateway", content_type="text/html")
        else:
            route.continue_()

    page.route("**/webhooks/web/webhook", flaky)
    page.fill("#input", "忘记密码怎么办")
    page.press("#input", "Enter")
    expect(page.locator(".msg.bot").last).to_contain_text("密码重置码")
    assert len(bodies) == 3
    assert len({body["message_id"] for body in bodies}) == 1
    assert [body["retry"] for body in bodies] == [False, True, True]
    assert page.locator(".msg.notice").count() == 0
    assert page.locator(".msg.bot", has_text="密码重置码").count() == 1
    context.close()


def test_a_message_being_retried_is_not_sent_into_a_new_conversation(chromium, request):
    browser = need_browser(chromium)
    server = request.getfixturevalue("server")
    from playwright.sync_api import expect

    context, page = open_chat(browser, server)
    old_messages: list[dict] = []

    def refuse_the_old_message(route: Any) -> None:
        body = json.loads(route.request.post_data)
        if body["message"] == "旧的问题":
            old_messages.append(body)
            route.fulfill(status=503, body='{"error": "send it again"}', content_type="application/json")
        else:
            route.continue_()

    page.route("**/webhooks/web/webhook", refuse_the_old_message)
    page.fill("#input", "旧的问题")
    page.press("#input", "Enter")
    page.wait_for_timeout(1500)  # the first attempt and the first retry (after 1 s)
    page.get_by_role("button", name="重新开始").click()
    expect(page.locator(".msg.bot").first).to_contain_text("您好")
    sent_before_restart = len(old_messages)
    page.wait_for_timeout(4000)  # when the next retries would have gone out
    assert 1 <= sent_before_restart <= 2 and len(old_messages) == sent_before_restart
    assert len({body["session"] for body in old_messages}) == 1
    context.close()
