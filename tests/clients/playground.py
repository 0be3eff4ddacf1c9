"""The playground page (`GET /playground`) in a real browser: headless
Debian Chromium driven by Selenium against a running code-runner with API
keys on.

It types the key, waits for the language list, runs an interactive python
program (answers its `input()` prompt through the input line, sees "first"
while the program still runs and before "second"), checks the status at
the end, saves a screenshot, then stops a sleeping program with Stop
(SIGKILL) and, last, sees a wrong key refused (close 4401).

Usage: playground.py BASE_URL API_KEY SCREENSHOT_PATH
       (e.g. http://127.0.0.1:PORT secret /tmp/playground.png)
Needs: /usr/bin/chromium and /usr/bin/chromedriver (Debian's `chromium`
and `chromium-driver`). Prints one JSON line of what it saw; exits
non-zero with a message on the first check that fails.
"""

import json
import sys
import time

from selenium import webdriver
from selenium.common.exceptions import TimeoutException, WebDriverException
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select, WebDriverWait

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"

INTERACTIVE = (
    'name = input("name? ")\n'
    'print("hello", name)\n'
    "import time\n"
    'print("first", flush=True)\n'
    "time.sleep(1)\n"
    'print("second")\n'
)
SLEEPER = (
    "import sys, time\n"
    "print('tick', flush=True)\n"
    "print('tock', file=sys.stderr, flush=True)\n"
    "time.sleep(30)\n"
)


class Failed(Exception):
    pass


def check(what, condition, detail=""):
    if not condition:
        raise Failed(f"{what}{': ' + detail if detail else ''}")


def browser():
    options = Options()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--window-size=1280,900",
    ):
        options.add_argument(argument)
    # The browser's console, to show when a check fails.
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


class Page:
    def __init__(self, driver):
        self.driver = driver

    def el(self, id_):
        return self.driver.find_element(By.ID, id_)

    def state(self):
        return self.driver.find_element(By.TAG_NAME, "body").get_attribute("data-state")

    def text(self, id_):
        # textContent: the output as written, spaces and newlines kept.
        return self.driver.execute_script(
            "const e = document.getElementById(arguments[0]); return e && e.textContent", id_
        )

    def output(self):
        return self.text("output")

    def status(self):
        return self.driver.execute_script(
            "const e = document.getElementById('status'); return e && e.innerText"
        )

    def field(self, name):
        found = self.driver.find_elements(By.CSS_SELECTOR, f'#status [data-field="{name}"]')
        return found[0].text if found else None

    def wait(self, what, condition, timeout=30):
        try:
            return WebDriverWait(self.driver, timeout, poll_frequency=0.02).until(
                lambda _: condition()
            )
        except TimeoutException:
            raise Failed(
                f"timed out after {timeout} s waiting for {what}; state {self.state()!r}, "
                f"output {self.output()!r}, status {self.status()!r}"
            ) from None

    def set_code(self, code):
        editor = self.el("code")
        editor.clear()
        editor.send_keys(code)
        check("the editor holds the program", editor.get_attribute("value") == code,
              repr(editor.get_attribute("value")))

    def answer(self):
        return {
            name: self.field(name)
            for name in ("status", "exit_code", "signal", "duration", "cpu_time", "memory_peak")
        }


def interactive_run(page, screenshot):
    page.set_code(INTERACTIVE)
    page.el("stdin").clear()
    page.el("run").click()
    page.wait('the prompt "name? "', lambda: "name? " in page.output())
    check("the page is running while the program waits for input", page.state() == "running",
          page.state())
    line = page.el("line")
    line.send_keys("Ada" + Keys.ENTER)
    page.wait('"hello Ada"', lambda: "hello Ada" in page.output())
    page.wait('"first"', lambda: "first" in page.output())
    # The program sleeps 1 s between the two: "first" is shown while it runs.
    output_at_first, state_at_first = page.output(), page.state()
    check('"first" is shown before "second" is printed', "second" not in output_at_first,
          repr(output_at_first))
    check('"first" is shown while the run goes on', state_at_first == "running", state_at_first)
    page.wait('"second"', lambda: "second" in page.output())
    page.wait("the end of the run", lambda: page.state() == "done")
    output = page.output()
    check("the output in order", output.index("name? ") < output.index("Ada\n")
          < output.index("hello Ada") < output.index("first") < output.index("second"),
          repr(output))
    answer = page.answer()
    status = page.status()
    check("the status says ok", answer["status"] == "ok" and "ok" in status, status)
    check("the status says exit code 0", answer["exit_code"] == "0", status)
    for name in ("duration", "cpu_time", "memory_peak"):
        check(f"the status shows the {name}", answer[name], status)
    check("the line echoed into the output", "Ada\n" in output, repr(output))
    check("the page saved a screenshot", page.driver.save_screenshot(screenshot), screenshot)
    return {
        "output": output,
        "first_while_running": state_at_first == "running",
        "second_after_first": "second" not in output_at_first,
        "answer": answer,
        "status_text": status,
    }


def stopped_run(page):
    page.set_code(SLEEPER)
    page.el("run").click()
    page.wait('"tick" and "tock"', lambda: "tick" in page.output() and "tock" in page.output())
    colours = page.driver.execute_script(
        "const colour = (s) => s && getComputedStyle(s).color;"
        "const spans = [...document.querySelectorAll('#output span')];"
        "return [colour(spans.find((s) => s.textContent.includes('tick'))),"
        "        colour(spans.find((s) => s.textContent.includes('tock')))];"
    )
    check("stderr is shown in another colour than stdout",
          None not in colours and colours[0] != colours[1], repr(colours))
    check("the page is running while the program sleeps", page.state() == "running", page.state())
    started = time.monotonic()
    page.el("stop").click()
    page.wait("the end of the stopped run", lambda: page.state() == "done", timeout=15)
    stopped_in = time.monotonic() - started
    answer, status = page.answer(), page.status()
    check("the status says the program was killed by SIGKILL",
          "SIGKILL" in (answer["signal"] or "") and answer["status"] != "ok", status)
    check("the status says exit code 137", answer["exit_code"] == "137", status)
    check("Stop ended the run long before its 30 s", stopped_in < 10, f"{stopped_in:.1f} s")
    return {"output": page.output(), "answer": answer, "status_text": status,
            "stdout_stderr_colours": colours,
            "stopped_in_s": round(stopped_in, 2)}


def refused_run(page):
    key = page.el("key")
    key.clear()
    key.send_keys("not-a-key")
    page.set_code("print('never')")  # moves the focus: the key's change is taken
    page.el("run").click()
    page.wait("the refusal", lambda: page.state() == "done")
    status = page.status()
    check("a wrong key is refused with 4401 unauthorized",
          "4401" in status and "unauthorized" in status, status)
    check("the refused program printed nothing", "never" not in page.output(), page.output())
    return {"status_text": status}


def main(base, key, screenshot):
    driver = browser()
    page = Page(driver)
    try:
        url = base.rstrip("/") + "/playground"
        driver.get(url)
        is_playground = driver.execute_script(
            "return document.body.dataset.state === 'idle' && !!document.getElementById('run')"
        )
        check(f"{url} is the playground", is_playground,
              f"title {driver.title!r}, text {driver.find_element(By.TAG_NAME, 'body').text[:200]!r}")
        check("the key field is a password field", page.el("key").get_attribute("type") == "password")
        page.el("key").send_keys(key + Keys.TAB)
        page.wait(
            "the language list",
            lambda: "python" in [o.get_attribute("value") for o in Select(page.el("language")).options],
        )
        languages = [o.get_attribute("value") for o in Select(page.el("language")).options]
        Select(page.el("language")).select_by_value("python")
        versions = [o.get_attribute("value") for o in Select(page.el("version")).options]
        check("the version picker lists python's versions", len(versions) >= 2, repr(versions))
        check("the key is in no URL", key not in driver.current_url, driver.current_url)
        stored = driver.execute_script(
            "return JSON.stringify(Object.assign({}, localStorage, sessionStorage))"
        )
        check("the key is not stored", key not in stored, stored)
        seen = {
            "languages": languages,
            "python_versions": versions,
            "interactive": interactive_run(page, screenshot),
            "stopped": stopped_run(page),
            "refused": refused_run(page),
            "screenshot": screenshot,
        }
        console = [e["message"] for e in driver.get_log("browser")]
        blocked = [m for m in console if "Content Security Policy" in m]
        check("the page breaks none of its Content-Security-Policy", not blocked, repr(blocked))
        seen["console"] = console
        print(json.dumps(seen))
    except (Failed, WebDriverException) as e:
        if isinstance(e, WebDriverException):
            e = f"the browser: {e.msg}"
        try:
            for entry in driver.get_log("browser"):
                print(f"browser console: {entry['level']} {entry['message']}", file=sys.stderr)
        except WebDriverException:
            pass
        sys.exit(f"playground.py: FAILED: {e}")
    finally:
        driver.quit()


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit("usage: playground.py BASE_URL API_KEY SCREENSHOT_PATH")
    main(*sys.argv[1:])
