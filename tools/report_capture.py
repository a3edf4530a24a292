#!/usr/bin/env python3
"""Look at the Snakemake report the way a reader does: headless Chromium opens it, shows one result, and
we keep what it rendered (the DOM and a PNG screenshot).

The report is a single-page app: results appear when their menu entry is clicked. :func:`capture`
opens a copy of the report with one extra script that does that click (``app.showCategory`` and the
report's own ``setView``) once the page has loaded; the report file itself is never modified.

    python tools/report_capture.py --report results/report.html --result pareto.png --png results/report_pareto.png
"""

from __future__ import annotations

import argparse
import base64
import json
import logging
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
CLICK = """
<script>
(function () {
  const suffix = %s;
  function show() {
    // the report's React app sets the global `app` when it first renders (after the load event)
    if (typeof app === "undefined") { setTimeout(guarded, 100); return; }
    const key = Object.keys(results).find(function (k) { return k.endsWith(suffix); });
    if (key === undefined) { document.title = "cofitune-capture: no result ending in " + suffix; return; }
    const entry = results[key];
    const category = Object.keys(categories).find(function (c) {
      return Object.values(categories[c]).some(function (paths) { return paths.includes(key); });
    });
    if (category !== undefined) { app.showCategory(category); }
    const kind = entry.mime_type.startsWith("image/") ? "img" : "html";
    app.setView({content: kind, contentPath: entry.data_uri, resultPath: key});
    document.title = "cofitune-capture: " + key;
  }
  function guarded() {
    try { show(); } catch (err) { document.title = "cofitune-capture-error: " + err; }
  }
  window.addEventListener("load", guarded);
})();
</script>
"""


def find_chromium() -> str:
    """The headless browser's executable, or a RuntimeError saying how to install one."""
    for name in CHROMIUM_NAMES:
        path = shutil.which(name)
        if path:
            return path
    raise RuntimeError("no Chromium found (tried %s): install it with `apt-get install chromium` (Debian) "
                       "or `make system-deps`" % ", ".join(CHROMIUM_NAMES))


def _chromium(browser: str, *args: str, timeout: float) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory(prefix="cofitune-chromium-") as profile:
        cmd = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
               "--hide-scrollbars", f"--user-data-dir={profile}", "--virtual-time-budget=15000", *args]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"{browser} failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return proc


def capture(report: str | Path, result: str, png: str | Path | None = None, *, size: tuple[int, int] = (1600, 1000),
            timeout: float = 180) -> str:
    """Open ``report`` in headless Chromium showing the result whose path ends with ``result``.

    Returns the rendered DOM; with ``png`` also writes a screenshot of the same view.
    """
    report = Path(report)
    if not report.is_file():
        raise FileNotFoundError(f"report not found: {report} (make it with `snakemake --report {report}`)")
    html = report.read_text(encoding="utf-8")
    if "var results =" not in html:
        raise ValueError(f"{report}: not a Snakemake HTML report (no results block)")
    browser = find_chromium()
    with tempfile.TemporaryDirectory(prefix="cofitune-report-") as tmp:
        page = Path(tmp) / "view.html"
        head, sep, tail = html.rpartition("</body>")  # the page's own closing tag (libraries contain the string too)
        if not sep:
            raise ValueError(f"{report}: no </body> tag")
        page.write_text(head + CLICK % json.dumps(result) + sep + tail, encoding="utf-8")
        dom = _chromium(browser, "--dump-dom", page.as_uri(), timeout=timeout).stdout
        title = re.search(r"<title>(.*?)</title>", dom, re.S)
        title = title.group(1) if title else ""
        if title.startswith("cofitune-capture: no result"):
            raise ValueError(f"{report}: no result whose path ends with {result!r}")
        if not title.startswith("cofitune-capture: "):
            raise RuntimeError(f"{report}: the report did not show {result!r} in Chromium (page title {title!r})")
        if png is not None:
            png = Path(png)
            png.parent.mkdir(parents=True, exist_ok=True)
            shot = Path(tmp) / "shot.png"
            _chromium(browser, f"--screenshot={shot}", f"--window-size={size[0]},{size[1]}", page.as_uri(),
                      timeout=timeout)
            if not shot.is_file():
                raise RuntimeError(f"{browser} wrote no screenshot for {report}")
            shutil.move(shot, png)
    return dom


def shown_payloads(dom: str) -> list[tuple[str, bytes]]:
    """(mime type, decoded bytes) of every ``data:`` URI an ``<img>`` or ``<iframe>`` in the DOM shows."""
    out = []
    for tag, mime, payload in re.findall(r'<(img|iframe)[^>]*src="data:([^;"]+)(?:;[^,"]*)?;base64,([^"]+)"', dom):
        out.append((mime, base64.b64decode(payload)))
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="tools/report_capture.py",
                                description="screenshot one result of a Snakemake report in headless Chromium")
    p.add_argument("--report", required=True, help="report.html from `snakemake --report`")
    p.add_argument("--result", required=True, help="the result's path suffix, e.g. pareto.png")
    p.add_argument("--png", required=True, help="screenshot to write")
    p.add_argument("--skip-without-browser", action="store_true",
                   help="without Chromium on PATH, say so in one line and exit 0 (the demo; tests require it)")
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    log = logging.getLogger("cofitune.report_capture")
    if a.skip_without_browser:
        try:
            find_chromium()
        except RuntimeError as err:
            log.warning("report screenshot skipped (%s); %s is complete; with Chromium installed, `make screenshot` "
                        "takes it", err, a.report)
            return 0
    try:
        dom = capture(a.report, a.result, a.png)
    except (RuntimeError, FileNotFoundError) as err:
        log.error("report capture failed: %s", err)
        return 2
    shown = shown_payloads(dom)
    if not shown:
        log.error("%s: Chromium rendered no image or page for %r", a.report, a.result)
        return 2
    log.info("%s shows %s -> %s", a.report, [(m, len(b)) for m, b in shown], a.png)
    return 0


if __name__ == "__main__":
    sys.exit(main())

