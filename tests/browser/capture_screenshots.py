"""Screenshots of the web chat for the docs: ``python -m tests.browser.capture_screenshots``.

A real gateway (offline, mock provider only) serves a conversation seeded into its store,
and Debian's Chromium photographs it light and dark on a desktop, and on a phone.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from playwright.sync_api import Browser, ViewportSize, sync_playwright

from modelway.store import Store, database_url
from tests.browser.chat_page import open_chat
from tests.browser.conftest import CHROMIUM
from tests.integration.gateway import running_gateway

DOCS = Path(__file__).resolve().parents[2] / "docs"

QUESTION = "How do I read a large file line by line in Python without loading it all?"
# One line per paragraph, as models write them: a line break in a reply is shown as one.
ANSWER = """Iterate over the file object: it yields **one line at a time**, so memory use \
stays flat however large the file is.

```python
from pathlib import Path

def count_errors(path: Path) -> int:
    errors = 0
    with path.open(encoding="utf-8") as lines:
        for line in lines:          # one line in memory at a time
            if "ERROR" in line:
                errors += 1
    return errors
```

A few things worth knowing:

- `open()` buffers reads, so this is fast as well as lean.
- Use `errors="replace"` if the file may hold bytes that are not valid UTF-8.
- For gzip files, `gzip.open(path, "rt")` gives the same line-by-line iteration.
"""
FOLLOW_UP = "And if I only need the last 10 lines?"
SHORT_ANSWER = (
    "Use `collections.deque(lines, maxlen=10)`: it keeps only the newest ten "
    "lines while reading the file once."
)


async def _seed(environ: dict[str, str]) -> str:
    store = await Store.open(database_url(environ))
    try:
        chats = store.chats
        for title in ("Trip to Lisbon: 3-day plan", "SQL window functions", "Regex for emails"):
            await chats.create_session(title=title, model="mock/echo")
        session = await chats.create_session(title="Reading big files in Python", model="mock/echo")
        await chats.add_message(session.id, "user", QUESTION)
        await chats.add_message(
            session.id, "assistant", ANSWER, model="echo", provider="mock",
            prompt_tokens=24, completion_tokens=152, usage_accurate=True,
        )  # fmt: skip
        await chats.add_message(session.id, "user", FOLLOW_UP)
        await chats.add_message(
            session.id, "assistant", SHORT_ANSWER, model="echo", provider="mock",
            prompt_tokens=190, completion_tokens=27, usage_accurate=False,
        )  # fmt: skip
        return session.id
    finally:
        await store.aclose()


def _shoot(browser: Browser, url: str, session_id: str) -> None:
    shots: list[tuple[str, ViewportSize, str]] = [
        ("chat-light.png", {"width": 1280, "height": 800}, "light"),
        ("chat-dark.png", {"width": 1280, "height": 800}, "dark"),
        ("chat-phone.png", {"width": 390, "height": 844}, "light"),
    ]
    for name, viewport, scheme in shots:
        context = browser.new_context(
            base_url=url,
            viewport=viewport,
            color_scheme=scheme,  # type: ignore[arg-type]
            device_scale_factor=2 if viewport["width"] < 500 else 1,
        )
        page = context.new_page()
        open_chat(page, f"/#{session_id}")
        page.locator(".message.assistant .hljs-keyword").first.wait_for()
        page.screenshot(path=str(DOCS / name))
        context.close()
        print(f"wrote docs/{name}")


def main() -> None:
    with tempfile.TemporaryDirectory() as data_dir:
        environ = {"MODELWAY_DATA_DIR": data_dir}
        session_id = asyncio.run(_seed(environ))
        with running_gateway(environ) as url, sync_playwright() as driver:
            browser = driver.chromium.launch(executable_path=str(CHROMIUM))
            try:
                _shoot(browser, url, session_id)
            finally:
                browser.close()


if __name__ == "__main__":
    main()
