"""The demo page tested as a person uses it: a real headless browser opens ``ser-hf demo``, uploads a clip, presses
Analyse, waits for the result and saves a screenshot.

    apt-get install -y chromium chromium-driver && pip install selenium
    python benchmarks/demo_browser.py MODEL CLIP.wav --screenshot docs/results/demo/screenshot.png

MODEL is an ONNX export folder (``ser-hf export-onnx``) or a checkpoint. Prints the seconds from the click to the
result (the page's answer time, start-up excluded) and the result line. Not part of the test suite (CI has no
browser); ``tests/test_onnx.py`` drives the same page's API through ``gradio_client``.
"""

from __future__ import annotations

import argparse
import socket
import sys
import time
from pathlib import Path

CHROMIUM_FLAGS = (
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync", "--window-size=1100,1300",
)  # fmt: skip
"""Debian's Chromium as root, with no network traffic of its own (this machine reaches no outside host)."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", help="ONNX export folder or checkpoint")
    parser.add_argument("clip", help="an audio file to upload")
    parser.add_argument("--screenshot", required=True, help="PNG to write (the page with its result)")
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    parser.add_argument("--chromedriver", default="/usr/bin/chromedriver")
    parser.add_argument("--timeout_s", type=float, default=60)
    args = parser.parse_args(argv)

    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    from ser_hf.demo import build_demo, classifier_for

    port = free_port()
    page = build_demo(classifier_for(args.model))
    page.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    options = webdriver.ChromeOptions()
    options.binary_location = args.chromium
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    browser = webdriver.Chrome(service=Service(args.chromedriver), options=options)
    try:
        browser.get(f"http://127.0.0.1:{port}/")
        wait = WebDriverWait(browser, args.timeout_s)
        upload = wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "input[type=file]")))
        upload.send_keys(str(Path(args.clip).resolve()))
        wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "audio, .waveform-container, canvas")))
        time.sleep(1.0)  # the upload finishes before the click
        button = wait.until(ec.element_to_be_clickable((By.XPATH, "//button[normalize-space()='Analyse']")))
        start = time.perf_counter()
        button.click()

        def result(driver):
            boxes = driver.find_elements(By.CSS_SELECTOR, "textarea")
            text = next((b.get_attribute("value") for b in boxes if b.get_attribute("value")), "")
            return text or False

        message = wait.until(result)
        seconds = time.perf_counter() - start
        time.sleep(0.5)  # the label's bars finish drawing
        Path(args.screenshot).parent.mkdir(parents=True, exist_ok=True)
        browser.save_screenshot(args.screenshot)
    finally:
        browser.quit()
        page.close()
    print(f"answer after {seconds:.2f} s (click to result): {message}")
    print(f"screenshot: {args.screenshot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
