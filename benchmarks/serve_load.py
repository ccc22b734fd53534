"""`shoerecon serve` under load: latency of one request and requests per minute with N concurrent clients.

    python benchmarks/serve_load.py --model model.safetensors --photo shoe.png [--clients 4] [--requests 12]
        [--max-seconds 300] [--browser] [--threads 1]

Starts the server in this process on a free 127.0.0.1 port (or uses ``--url``), then:
1. single: one request at a time (gradio_client: upload + reconstruct + result), ``--single`` times;
2. load: ``--clients`` threads each with its own client send requests until ``--requests`` in total are
   done or ``--max-seconds`` pass (bounded), -> requests per minute and latency percentiles;
3. ``--browser``: headless Chromium (system chromium + chromedriver, selenium) uploads the photo in the page
   and waits until the 3D viewer has drawn the shoe: the time from upload to viewer a user sees.
Prints a table and the load average (the CPU may be shared).
"""
from __future__ import annotations

import argparse
import io
import os
import shutil
import socket
import statistics
import sys
import threading
import time
from pathlib import Path

TOE_RIGHT = "right (toe ->)"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(model: str | Path, threads: int | None = 1, concurrency: int = 1, port: int | None = None):
    """Serve ``model`` on 127.0.0.1 in a background thread -> (app, url)."""
    from shoerecon.serve import ServeConfig, launch

    cfg = ServeConfig(port=port or free_port(), threads=threads, concurrency=concurrency)
    app = launch(model, cfg, block=False)
    return app, f"http://127.0.0.1:{cfg.port}/"


def client_request(client, photo: str | Path) -> tuple[float, tuple]:
    from gradio_client import handle_file

    t = time.perf_counter()
    result = client.predict(handle_file(str(photo)), TOE_RIGHT, api_name="/reconstruct")
    return time.perf_counter() - t, result


# ----------------------------------------------------------------------------------------- browser
def browser_available() -> tuple[bool, str]:
    """(True, "") when selenium, Debian's chromium and chromedriver are installed; else (False, why)."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return False, "selenium is not installed (pip install selenium)"
    for exe in ("chromium", "chromedriver"):
        if shutil.which(exe) is None:
            return False, f"{exe} is not on PATH (apt-get install chromium chromium-driver)"
    return True, ""


def make_browser(width: int = 1280, height: int = 1100):
    """Headless Chromium through the system chromedriver (nothing downloaded); WebGL via SwiftShader."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = shutil.which("chromium")
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--use-gl=angle", "--use-angle=swiftshader",
                "--enable-unsafe-swiftshader", "--ignore-gpu-blocklist", f"--window-size={width},{height}"):
        opts.add_argument(arg)
    return webdriver.Chrome(service=Service(executable_path=shutil.which("chromedriver")), options=opts)


def canvas_foreground(png: bytes, background=(255, 255, 255), tol: int = 24) -> float:
    """Fraction of pixels of a screenshot that differ from the background colour by more than ``tol``."""
    import numpy as np
    from PIL import Image

    a = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)
    return float((np.abs(a - np.asarray(background)).max(-1) > tol).mean())


def browser_round_trip(driver, url: str, photo: str | Path, timeout: float = 120.0, min_foreground: float = 0.01):
    """Open the demo, upload ``photo``, press Reconstruct, wait until the viewer's canvas shows the shoe.

    Returns (seconds from upload to a drawn viewer, the canvas screenshot PNG bytes, the offered download URLs).
    """
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(url)
    wait = WebDriverWait(driver, timeout)
    upload = wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, "#photo input[type=file]")))
    t0 = time.perf_counter()
    upload.send_keys(str(Path(photo).resolve()))
    wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, "#photo img")))  # the upload has arrived
    wait.until(EC.element_to_be_clickable((By.CSS_SELECTOR, "#go"))).click()
    wait.until(EC.text_to_be_present_in_element((By.CSS_SELECTOR, "#note"), "on the server"))
    driver.result_seconds = time.perf_counter() - t0  # outputs arrived in the page (the viewer still loading)
    canvas = wait.until(EC.visibility_of_element_located((By.CSS_SELECTOR, "#viewer canvas")))
    png, deadline = b"", time.perf_counter() + timeout
    while time.perf_counter() < deadline:  # the GLB loads and draws after the canvas exists
        png = canvas.screenshot_as_png
        if canvas_foreground(png) >= min_foreground:
            break
        time.sleep(0.2)
    seconds = time.perf_counter() - t0
    links = [a.get_attribute("href") for a in driver.find_elements(By.CSS_SELECTOR, "#files a")]
    return seconds, png, [h for h in links if h]


# ----------------------------------------------------------------------------------------- main
def load_test(url: str, photo: str, clients: int, total: int, max_seconds: float) -> dict:
    from gradio_client import Client

    lock, latencies, errors = threading.Lock(), [], []
    issued = [0]
    start = time.perf_counter()

    def worker():
        client = Client(url, verbose=False)
        while True:
            with lock:
                if issued[0] >= total or time.perf_counter() - start > max_seconds:
                    return
                issued[0] += 1
            try:
                latencies.append(client_request(client, photo)[0])
            except Exception as err:  # a refused or failed request counts, it does not stop the test
                errors.append(str(err))

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    return {"done": len(latencies), "errors": len(errors), "wall_s": wall, "per_min": 60 * len(latencies) / wall,
            "p50": statistics.median(latencies) if latencies else float("nan"),
            "max": max(latencies) if latencies else float("nan"), "first_error": errors[0] if errors else ""}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", help="model.safetensors / checkpoint (the server is started here)")
    p.add_argument("--url", help="an already running server instead of --model")
    p.add_argument("--photo", required=True)
    p.add_argument("--single", type=int, default=3, help="sequential requests for the latency row")
    p.add_argument("--clients", type=int, default=4)
    p.add_argument("--requests", type=int, default=12, help="total requests of the load phase (bounded)")
    p.add_argument("--max-seconds", type=float, default=300, help="the load phase stops issuing after this")
    p.add_argument("--threads", type=int, default=1, help="torch threads of the server started here")
    p.add_argument("--concurrency", type=int, default=1, help="server queue concurrency (started here)")
    p.add_argument("--browser", action="store_true", help="also time upload -> drawn viewer in headless Chromium")
    args = p.parse_args(argv)
    if not (args.model or args.url):
        p.error("give --model (start a server) or --url")
    app = None
    url = args.url
    if url is None:
        app, url = start_server(args.model, args.threads, args.concurrency)
    from gradio_client import Client

    client = Client(url, verbose=False)
    client_request(client, args.photo)  # warm-up (first call pays one-time costs)
    single = [client_request(client, args.photo)[0] for _ in range(args.single)]
    rows = [("single request (upload -> result files)", f"median {statistics.median(single):.2f} s",
             f"{args.single} sequential")]
    if args.browser:
        ok, why = browser_available()
        if not ok:
            rows.append(("browser: upload -> drawn viewer", "skipped", why))
        else:
            driver = make_browser()
            try:
                seconds, png, _ = browser_round_trip(driver, url, args.photo)
            finally:
                driver.quit()
            rows.append(("browser: upload -> drawn viewer", f"{seconds:.2f} s",
                         f"outputs in the page after {driver.result_seconds:.2f} s; "
                         f"canvas foreground {canvas_foreground(png):.1%}"))
    load = load_test(url, args.photo, args.clients, args.requests, args.max_seconds)
    rows.append((f"load: {args.clients} concurrent clients", f"{load['per_min']:.1f} req/min",
                 f"{load['done']} done, {load['errors']} errors in {load['wall_s']:.0f} s; "
                 f"latency p50 {load['p50']:.1f} s, max {load['max']:.1f} s"))
    if load["first_error"]:
        rows.append(("first error", load["first_error"][:100], ""))
    print(f"\nserver {url} (concurrency {args.concurrency}, torch threads {args.threads}), photo {args.photo}")
    print(f"| {'measure':<42} | {'value':<18} | notes |\n|{'-' * 44}|{'-' * 20}|-------|")
    for r in rows:
        print(f"| {r[0]:<42} | {r[1]:<18} | {r[2]} |")
    print(f"load average: {open('/proc/loadavg').read().strip()}  ({os.cpu_count()} CPUs)")
    if app is not None:
        app.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
