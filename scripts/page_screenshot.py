"""Screenshot a leaderboard page in headless Debian chromium (how docs/leaderboard.png is made).

    .venv/bin/python scripts/page_screenshot.py demo-out/leaderboard.html docs/leaderboard.png

Needs ``apt-get install chromium`` and ``pip install playwright`` (the ``dev`` extra); playwright
drives the system chromium (it cannot download its own browser here).
"""

from __future__ import annotations

import argparse
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("page", type=Path)
    parser.add_argument("png", type=Path)
    parser.add_argument("--width", type=int, default=1300)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            page = browser.new_page(viewport={"width": args.width, "height": 900})
            page.goto(args.page.resolve().as_uri())
            args.png.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(args.png), full_page=True)
        finally:
            browser.close()
    print(args.png)


if __name__ == "__main__":
    main()
