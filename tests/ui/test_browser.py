"""The web viewer in a real browser (headless Chromium driven by selenium).

The data is made through the SDK, and every number the pages show is checked against the
SDK's ``experiment.results`` and responses. Percentages are shown with one decimal
(``f"{value:.1%}"``).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from elluminate import Client
from elluminate.exceptions import TaskFailedError
from elluminate.schemas import Experiment
from elluminate.server import LocalServer

if not os.environ.get("ELLUMINATE_REQUIRE_BROWSER"):  # in CI a missing selenium is an error
    pytest.importorskip("selenium", reason="browser tests need selenium (pip install -e '.[test]')")

from selenium.common.exceptions import StaleElementReferenceException  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402

SCRIPT = "<script>window.__xss = 'script'</script>"
ATTRIBUTE = '"><img src=x onerror="window.__xss = \'img\'">'
WAIT = 60.0
CRITERIA = ["Is the answer clear?", "Does it avoid ECHO_NO words?"]


def pct(value: float) -> str:
    return f"{value:.1%}"


def wait_for(browser: Any, condition: Callable[[Any], Any], timeout: float = WAIT) -> Any:
    return WebDriverWait(
        browser, timeout, ignored_exceptions=(StaleElementReferenceException,)
    ).until(condition)


def text_of(browser: Any, element_id: str) -> str:
    return str(browser.find_element(By.ID, element_id).text)


def sign_in(browser: Any, server: LocalServer) -> None:
    """Make sure the browser is signed in (the tests do not depend on their order)."""
    browser.get(server.base_url + "/ui/")
    if "/ui/login" in browser.current_url:
        field = browser.find_element(By.ID, "api_key")
        field.send_keys(server.api_key)
        browser.find_element(By.ID, "sign-in").click()
        wait_for(browser, lambda b: "/ui/login" not in b.current_url)


@pytest.fixture
def viewer(browser: Any, server: LocalServer) -> Any:
    sign_in(browser, server)
    return browser


def make_inputs(sdk: Client, tag: str, rows: list[dict[str, str]]) -> dict[str, Any]:
    template = sdk.create_prompt_template(name=f"Explain {tag}", template="Explain {{topic}}.")
    collection = sdk.create_collection(name=f"Topics {tag}")
    collection.add_many(variables=rows)
    criterion_set = sdk.create_criterion_set(name=f"Quality {tag}")
    criterion_set.add_criteria(CRITERIA)
    return {"template": template, "collection": collection, "criterion_set": criterion_set}


@pytest.fixture(scope="module")
def two_experiments(sdk: Client) -> tuple[Experiment, Experiment]:
    """A and B on the same rows; B's template makes every answer fail the second criterion."""
    rows = [
        {"topic": "recursion"},
        {"topic": "DNS"},
        {"topic": "tea ECHO_NO"},
        {"topic": "gravity"},
        {"topic": "ECHO_FAIL"},
    ]
    made = make_inputs(sdk, "ab", rows)
    b_template = sdk.create_prompt_template(
        name="Explain ab (strict)", template="Explain {{topic}} (ECHO_NO)."
    )
    a = sdk.run_experiment(
        name="A baseline",
        prompt_template=made["template"],
        collection=made["collection"],
        criterion_set=made["criterion_set"],
    )
    b = sdk.run_experiment(
        name="B strict",
        prompt_template=b_template,
        collection=made["collection"],
        criterion_set=made["criterion_set"],
    )
    return sdk.get_experiment(id=a.id), sdk.get_experiment(id=b.id)


class Run:
    """An experiment run in a background thread (``run_experiment`` blocks until the end)."""

    def __init__(self, sdk: Client, name: str, rows: int) -> None:
        self.sdk = sdk
        self.name = name
        self.made = make_inputs(sdk, name, [{"topic": f"topic {i}"} for i in range(rows)])
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            self.sdk.run_experiment(
                name=self.name,
                prompt_template=self.made["template"],
                collection=self.made["collection"],
                criterion_set=self.made["criterion_set"],
            )
        except BaseException as exc:  # noqa: BLE001 - reported to the test
            self.error = exc

    def start(self) -> Experiment:
        """Start the run; returns the experiment once its task is running."""
        self.thread.start()
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            found = self.sdk.list_experiments(collection=self.made["collection"])
            if found and found[0].generation_task_id:
                return found[0]
            time.sleep(0.05)
        raise AssertionError(f"experiment {self.name!r} did not start")


@pytest.fixture
def run(sdk: Client) -> Iterator[Callable[[str, int], Run]]:
    runs: list[Run] = []

    def start(name: str, rows: int) -> Run:
        runs.append(Run(sdk, name, rows))
        return runs[-1]

    yield start
    for r in runs:
        r.thread.join(timeout=WAIT)


# ---- the tests ----------------------------------------------------------------------------


def test_sign_in_refuses_a_wrong_key_and_accepts_the_project_key(
    browser: Any, server: LocalServer
) -> None:
    browser.delete_all_cookies()
    browser.get(server.base_url + "/")  # a browser asking for the root is sent to the viewer
    wait_for(browser, lambda b: "/ui/login" in b.current_url)
    browser.find_element(By.ID, "api_key").send_keys("not-a-key")
    browser.find_element(By.ID, "sign-in").click()
    assert (
        "Invalid API key" in wait_for(browser, lambda b: b.find_element(By.ID, "signin-error")).text
    )
    browser.find_element(By.ID, "api_key").send_keys(server.api_key)
    browser.find_element(By.ID, "sign-in").click()
    wait_for(browser, lambda b: b.current_url.endswith("/ui/"))
    assert text_of(browser, "project-name") == "Default project"
    assert server.api_key not in browser.page_source
    assert server.api_key not in browser.current_url
    session = browser.get_cookie("elluminate_session")
    assert session["httpOnly"] and session["sameSite"] == "Lax"
    assert browser.execute_script("return document.cookie") == ""  # invisible to scripts


def test_list_and_experiment_page_show_the_sdk_results(
    viewer: Any, server: LocalServer, two_experiments: tuple[Experiment, Experiment]
) -> None:
    a, _ = two_experiments
    assert a.results is not None
    viewer.get(server.base_url + "/ui/")
    row = viewer.find_element(By.CSS_SELECTOR, f'tr[data-experiment-id="{a.id}"]')
    cells = {c.get_attribute("data-field"): c.text for c in row.find_elements(By.TAG_NAME, "td")}
    assert cells["pass-rate"] == pct(a.results.mean_all_ratings.yes)
    assert cells["responses"] == str(len(a.rated_responses))
    assert cells["failed"] == str(a.results.num_failed_responses) == "1"
    assert "SUCCESS" in row.text and "Explain ab" in row.text and "Topics ab" in row.text

    row.find_element(By.LINK_TEXT, "A baseline").click()
    wait_for(viewer, lambda b: b.find_element(By.ID, "experiment-name").text == "A baseline")
    assert text_of(viewer, "status") == "SUCCESS"
    assert text_of(viewer, "pass-rate") == pct(a.results.mean_all_ratings.yes)
    assert text_of(viewer, "responses-count") == str(len(a.rated_responses))
    assert text_of(viewer, "failed-count") == str(a.results.num_failed_responses)
    assert text_of(viewer, "rated-count") == str(a.results.num_rated_responses)
    assert text_of(viewer, "epochs") == f"{a.results.completed_epochs} / 1"
    assert text_of(viewer, "input-tokens") == f"{sum(a.results.input_tokens_per_response):,}"
    assert text_of(viewer, "output-tokens") == f"{sum(a.results.output_tokens_per_response):,}"
    for cid, mean in a.results.mean_rating_by_criterion_id.items():
        cell = viewer.find_element(
            By.CSS_SELECTOR, f'#criteria tr[data-criterion-id="{cid}"] td[data-field="pass-rate"]'
        )
        assert cell.text == pct(mean.yes)
    bars = viewer.find_elements(By.CSS_SELECTOR, "svg.chart rect.bar")
    widths = [float(b.get_attribute("width")) for b in bars]
    expected = [a.results.mean_rating_by_criterion_id[c.id].yes for c in a.criterion_set.criteria]
    assert widths == pytest.approx([420 * y for y in expected], abs=0.1)
    shown = viewer.find_elements(By.CSS_SELECTOR, "#response-table tbody tr")
    assert len(shown) == len(a.rated_responses)
    failed = viewer.find_elements(By.CSS_SELECTOR, "#response-table tr.failed-row")
    assert len(failed) == 1 and "generation failed" in failed[0].text


def test_responses_filter_by_criterion_and_verdict(
    viewer: Any, server: LocalServer, two_experiments: tuple[Experiment, Experiment]
) -> None:
    a, _ = two_experiments
    viewer.get(f"{server.base_url}/ui/experiments/{a.id}")
    criterion = a.criterion_set.criteria[1]
    expected = {
        r.id
        for r in a.rated_responses
        if any(g.criterion.id == criterion.id and g.rating.value == "NO" for g in r.ratings)
    }
    assert expected  # the ECHO_NO row
    Select(viewer.find_element(By.ID, "filter-criterion")).select_by_value(str(criterion.id))
    wait_for(viewer, lambda b: f"criterion={criterion.id}" in b.current_url)  # submitted by JS
    Select(viewer.find_element(By.ID, "filter-verdict")).select_by_value("no")
    wait_for(viewer, lambda b: "verdict=no" in b.current_url)
    rows = viewer.find_elements(By.CSS_SELECTOR, "#response-table tbody tr")
    assert {int(r.get_attribute("data-response-id")) for r in rows} == expected
    viewer.find_element(By.ID, "filter-failed").click()
    wait_for(viewer, lambda b: "failed=1" in b.current_url)
    assert viewer.find_elements(By.CSS_SELECTOR, "#response-table tbody tr") == []
    assert "No responses" in viewer.find_element(By.ID, "responses").text


def test_compare_two_experiments(
    viewer: Any, server: LocalServer, two_experiments: tuple[Experiment, Experiment]
) -> None:
    a, b = two_experiments
    assert a.results is not None and b.results is not None
    viewer.get(f"{server.base_url}/ui/experiments/{a.id}")
    Select(viewer.find_element(By.ID, "compare-with")).select_by_visible_text("B strict")
    viewer.find_element(By.ID, "compare-button").click()
    wait_for(viewer, lambda b: "/ui/compare" in b.current_url)
    assert text_of(viewer, "name-a") == "A baseline" and text_of(viewer, "name-b") == "B strict"
    for criterion in a.criterion_set.criteria:
        row = viewer.find_element(
            By.CSS_SELECTOR, f'#compare-criteria tr[data-criterion="{criterion.criterion_str}"]'
        )
        rate_a = a.results.mean_rating_by_criterion_id[criterion.id].yes
        rate_b = b.results.mean_rating_by_criterion_id[criterion.id].yes
        assert row.find_element(By.CSS_SELECTOR, '[data-field="a"]').text == pct(rate_a)
        assert row.find_element(By.CSS_SELECTOR, '[data-field="b"]').text == pct(rate_b)
        difference = row.find_element(By.CSS_SELECTOR, '[data-field="difference"]').text
        assert difference == f"{(rate_b - rate_a) * 100:+.1f} pp"

    def verdicts(experiment: Experiment) -> dict[int, dict[str, str]]:
        return {
            r.prompt.template_variables.id: {
                g.criterion.criterion_str: g.rating.value for g in r.ratings
            }
            for r in experiment.rated_responses
            if r.error is None
        }

    va, vb = verdicts(a), verdicts(b)
    differing = {row for row in va if row in vb and va[row] != vb[row]}
    assert differing
    assert text_of(viewer, "differing-count") == str(len(differing))
    pairs = viewer.find_elements(By.CSS_SELECTOR, "article.pair")
    assert {int(p.get_attribute("data-row").split("-")[0]) for p in pairs} == differing
    sides = pairs[0].find_elements(By.CSS_SELECTOR, ".side-col")
    assert [s.get_attribute("data-side") for s in sides] == ["a", "b"]
    assert "Echo: Explain" in sides[0].text and "(ECHO_NO)" in sides[1].text


def test_watch_a_running_experiment_reach_success_live(
    viewer: Any, server: LocalServer, sdk: Client, run: Callable[[str, int], Run]
) -> None:
    job = run("live run", 40)
    started = job.start()
    viewer.get(f"{server.base_url}/ui/experiments/{started.id}")
    assert text_of(viewer, "status") in ("PENDING", "STARTED")
    assert viewer.find_element(By.ID, "cancel").is_displayed()
    first = int(text_of(viewer, "live-responses"))
    viewer.execute_script("window.__same_page = true")
    # the counters move while the page stays loaded: the events stream in
    wait_for(
        viewer,
        lambda b: (
            int(b.find_element(By.ID, "live-responses").text) > first
            and b.execute_script("return window.__same_page === true")
        ),
    )
    assert viewer.find_element(By.ID, "log").text.strip()
    wait_for(viewer, lambda b: b.find_element(By.ID, "status").text == "SUCCESS")
    job.thread.join(WAIT)
    assert job.error is None
    final = sdk.get_experiment(id=started.id)
    assert final.results is not None
    wait_for(viewer, lambda b: b.find_elements(By.ID, "live") == [])  # reloaded with results
    assert text_of(viewer, "pass-rate") == pct(final.results.mean_all_ratings.yes)
    assert text_of(viewer, "responses-count") == "40"


def test_cancel_a_running_experiment(
    viewer: Any, server: LocalServer, sdk: Client, run: Callable[[str, int], Run]
) -> None:
    job = run("run to cancel", 500)
    started = job.start()
    viewer.get(f"{server.base_url}/ui/experiments/{started.id}")
    viewer.find_element(By.ID, "cancel").click()
    wait_for(viewer, lambda b: b.find_element(By.ID, "status").text == "REVOKED")
    assert "The run was cancelled." in viewer.page_source
    job.thread.join(WAIT)
    assert isinstance(job.error, TaskFailedError) and "REVOKED" in str(job.error)
    after = sdk.get_experiment(id=started.id, fetch_responses=False)
    assert after.generation_task_id is None
    assert viewer.find_elements(By.ID, "cancel") == []
    assert viewer.find_element(By.ID, "retry-failed").is_displayed()


def test_xss_strings_render_as_text_and_run_nothing(
    viewer: Any, server: LocalServer, sdk: Client
) -> None:
    made = make_inputs(sdk, f"xss {SCRIPT}", [{"topic": SCRIPT}, {"topic": ATTRIBUTE}])
    name = f"{SCRIPT} {ATTRIBUTE}"
    experiment = sdk.run_experiment(
        name=name,
        prompt_template=made["template"],
        collection=made["collection"],
        criterion_set=made["criterion_set"],
    )
    pages = [
        "/ui/",
        f"/ui/experiments/{experiment.id}",
        f"/ui/compare?a={experiment.id}&b={experiment.id}",
        f"/ui/collections/{made['collection'].id}",
        f"/ui/templates/{made['template'].id}",
        f"/ui/criterion-sets/{made['criterion_set'].id}",
    ]
    for path in pages:
        viewer.get(server.base_url + path)
        wait_for(viewer, lambda b: b.execute_script("return document.readyState") == "complete")
        assert viewer.execute_script("return window.__xss") is None, path
        assert viewer.find_elements(By.CSS_SELECTOR, 'img[src="x"], main script') == [], path
    viewer.get(f"{server.base_url}/ui/experiments/{experiment.id}")
    assert text_of(viewer, "experiment-name") == name  # the strings are shown, as text
    responses = [e.text for e in viewer.find_elements(By.CSS_SELECTOR, '[data-field="response"]')]
    assert f"Echo: Explain {SCRIPT}." in responses and f"Echo: Explain {ATTRIBUTE}." in responses
    viewer.get(server.base_url + "/ui/")
    assert name in viewer.find_element(By.ID, "experiments").text


def test_sign_out(viewer: Any, server: LocalServer) -> None:
    viewer.find_element(By.ID, "sign-out").click()
    wait_for(viewer, lambda b: "/ui/login" in b.current_url)
    assert viewer.get_cookie("elluminate_session") is None
    viewer.get(server.base_url + "/ui/")
    wait_for(viewer, lambda b: "/ui/login" in b.current_url)
