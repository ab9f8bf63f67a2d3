#!/usr/bin/env python
"""Screenshots of the web viewer's pages for ``docs/ui/``.

    python scripts/ui_screenshots.py                 # local model if installed, else echo
    python scripts/ui_screenshots.py --llm echo --out shots/

Starts an embedded server, creates a small A/B evaluation through the SDK (two versions of a
template, one collection, one criterion set, two finished experiments and one that is still
running), signs in with headless Chromium (the distribution's ``chromium`` and
``chromedriver``) and saves one PNG per page.
"""

from __future__ import annotations

import argparse
import importlib.util
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from elluminate import Client
from elluminate.server import LocalServer

ROOT = Path(__file__).resolve().parent.parent
TOPICS = [
    "photosynthesis",
    "gravity",
    "the internet",
    "vaccines",
    "inflation",
    "black holes",
    "recursion",
    "plate tectonics",
    "DNS",
    "compound interest",
    "evolution",
    "encryption",
]
CRITERIA = [
    "Is the answer helpful for a beginner?",
    "Is the answer factually accurate?",
    "Does it mention the topic by name?",
]
CHROME_FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
]


def chrome(profile: str) -> Any:
    """Headless Chromium from the distribution (no driver or browser download)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    browser, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if browser is None or driver is None:
        sys.exit("needs chromium and chromedriver: apt-get install -y chromium chromium-driver")
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for flag in [*CHROME_FLAGS, f"--user-data-dir={profile}", "--window-size=1360,900"]:
        options.add_argument(flag)
    return webdriver.Chrome(options=options, service=Service(executable_path=driver))


def shoot(browser: Any, path: Path, *, max_height: int = 2200) -> None:
    """A screenshot of the whole page (up to ``max_height`` pixels)."""
    height = browser.execute_script("return document.documentElement.scrollHeight")
    browser.set_window_size(1360, min(max_height, max(700, int(height))))
    time.sleep(0.3)
    browser.save_screenshot(str(path))
    print(f"wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")


def build_data(client: Client, llm: str) -> dict[str, Any]:
    criterion_set = client.create_criterion_set(name="Explanation quality")
    criterion_set.add_criteria(CRITERIA)
    collection = client.create_collection(name="Science and tech topics")
    collection.add_many(variables=[{"topic": t} for t in TOPICS])
    brief = client.create_prompt_template(
        name="Explainer", template="Explain {{topic}} briefly, in two sentences."
    )
    # the echo provider's judge says NO to answers containing ECHO_NO: version 2 differs
    marker = " (ECHO_NO)" if llm == "echo" else ""
    examples = client.create_prompt_template(
        name="Explainer",
        template="Explain {{topic}} with one everyday example, in two sentences." + marker,
    )
    a = client.run_experiment(
        name="Explainer v1 (brief)",
        prompt_template=brief,
        collection=collection,
        criterion_set=criterion_set,
    )
    b = client.run_experiment(
        name="Explainer v2 (examples)",
        prompt_template=examples,
        collection=collection,
        criterion_set=criterion_set,
    )
    return {
        "a": a,
        "b": b,
        "brief": brief,
        "examples": examples,
        "collection": collection,
        "criterion_set": criterion_set,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    has_local = importlib.util.find_spec("llama_cpp") is not None
    parser.add_argument(
        "--llm", choices=["local", "echo"], default="local" if has_local else "echo"
    )
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "ui")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    options: dict[str, Any] = {"llm": args.llm}
    if args.llm == "echo":
        options["echo_latency"] = 0.3
        options["max_concurrency"] = 1
    with LocalServer(**options) as server, tempfile.TemporaryDirectory() as profile:
        client = Client(base_url=server.base_url, api_key=server.api_key)
        made = build_data(client, args.llm)
        running: dict[str, Any] = {}

        def run_third() -> None:
            running["experiment"] = client.run_experiment(
                name="Explainer v2 (second run)",
                prompt_template=made["examples"],
                collection=made["collection"],
                criterion_set=made["criterion_set"],
            )

        browser = chrome(profile)
        try:
            base = server.base_url + "/ui/"
            browser.get(base)
            shoot(browser, args.out / "sign-in.png")
            browser.find_element("id", "api_key").send_keys(server.api_key)
            browser.find_element("id", "sign-in").click()
            third = threading.Thread(target=run_third, daemon=True)
            third.start()
            time.sleep(1.5)
            browser.get(base)
            shoot(browser, args.out / "experiments.png")
            browser.get(f"{base}experiments/{made['a'].id}")
            shoot(browser, args.out / "experiment.png", max_height=2600)
            browser.get(f"{base}compare?a={made['a'].id}&b={made['b'].id}")
            shoot(browser, args.out / "compare.png", max_height=2600)
            browser.get(
                f"{base}templates/{made['examples'].id}?from={made['brief'].id}"
                f"&to={made['examples'].id}"
            )
            shoot(browser, args.out / "template-diff.png")
            browser.get(f"{base}collections/{made['collection'].id}")
            shoot(browser, args.out / "collection.png")
            browser.get(f"{base}criterion-sets/{made['criterion_set'].id}")
            shoot(browser, args.out / "criterion-set.png")
            ids = [e.id for e in client.list_experiments()]
            browser.get(f"{base}experiments/{max(ids)}")
            shoot(browser, args.out / "experiment-running.png", max_height=1100)
            third.join()
        finally:
            browser.quit()


if __name__ == "__main__":
    main()
