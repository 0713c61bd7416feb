"""Lighthouse on a published site's landing pages, mobile and desktop.

Serves the target folder (``public/`` of a workspace) on 127.0.0.1 with the headers its
``_headers`` file declares and text gzip-compressed (as Netlify / Cloudflare Pages
would), runs npm ``lighthouse``
(``node_modules``, see package.json) with Debian's Chromium, and prints the performance,
accessibility, best-practices and SEO scores and the uses-responsive-images audit.

    python benchmarks/lighthouse.py demo/public [--pages summer-sale/en-US/ ...]

Reports go to ``--out`` (default: a temp folder) as JSON. Exit status 1 when a target
is missed (100 in every category, uses-responsive-images passing).
"""

from __future__ import annotations

import argparse
import contextlib
import fnmatch
import functools
import gzip
import json
import os
import subprocess
import sys
import tempfile
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlsplit

REPO = Path(__file__).resolve().parents[1]
LIGHTHOUSE = REPO / "node_modules" / ".bin" / "lighthouse"
CATEGORIES = ("performance", "accessibility", "best-practices", "seo")
AUDITS = ("uses-responsive-images", "largest-contentful-paint", "cumulative-layout-shift")


def read_headers(folder: Path) -> list[tuple[str, dict[str, str]]]:
    """Rules of a Netlify/Cloudflare ``_headers`` file: (path pattern, headers)."""
    rules: list[tuple[str, dict[str, str]]] = []
    path = folder / "_headers"
    if not path.is_file():
        return rules
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if not line[0].isspace():
            rules.append((line.strip(), {}))
        elif rules:
            name, _, value = line.strip().partition(":")
            rules[-1][1][name.strip()] = value.strip()
    return rules


_COMPRESS = {".html", ".xml", ".txt", ".json", ".css", ".js", ".svg"}


class _Handler(SimpleHTTPRequestHandler):
    rules: ClassVar[list[tuple[str, dict[str, str]]]] = []
    extensions_map: ClassVar[dict[str, str]] = {  # type: ignore[misc]
        **SimpleHTTPRequestHandler.extensions_map,
        ".avif": "image/avif",
        ".webp": "image/webp",
        ".txt": "text/plain; charset=utf-8",
        ".html": "text/html; charset=utf-8",
        ".xml": "application/xml",
    }

    def do_GET(self) -> None:
        """Text compressed as the hosts serve it (gzip; level 9, no timestamp)."""
        path = Path(self.translate_path(self.path))
        if path.is_dir():
            path = path / "index.html"
        accepts = "gzip" in self.headers.get("Accept-Encoding", "")
        if not (accepts and path.is_file() and path.suffix in _COMPRESS):
            super().do_GET()
            return
        body = gzip.compress(path.read_bytes(), compresslevel=9, mtime=0)
        self.send_response(200)
        self.send_header("Content-Type", self.guess_type(str(path)))
        self.send_header("Content-Encoding", "gzip")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def end_headers(self) -> None:
        path = self.path.split("?", 1)[0]
        if path.endswith("/"):
            path += "index.html"
        for pattern, headers in self.rules:
            if fnmatch.fnmatchcase(path, pattern) or fnmatch.fnmatchcase(
                path.removesuffix("index.html"), pattern
            ):
                for name, value in headers.items():
                    if name.lower() != "content-type":  # already sent by send_head
                        self.send_header(name, value)
        super().end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def handle(self) -> None:
        # the browser may drop a request it no longer needs
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            super().handle()


def site_base(folder: Path) -> str | None:
    """The site's own base URL (from robots.txt's Sitemap line) when it is on this
    machine: pages use absolute URLs, so they must be served where they say they are."""
    robots = folder / "robots.txt"
    text = robots.read_text(encoding="utf-8") if robots.is_file() else ""
    for line in text.splitlines():
        if line.lower().startswith("sitemap:"):
            url = urlsplit(line.split(":", 1)[1].strip())
            if url.hostname in ("localhost", "127.0.0.1") and url.port:
                return f"{url.scheme}://{url.hostname}:{url.port}"
    return None


def serve(folder: Path) -> tuple[ThreadingHTTPServer, str]:
    """Serve ``folder`` on 127.0.0.1: at the site's own port when its URLs are local,
    else on a free port (then absolute image URLs point elsewhere: a warning says so)."""
    handler = type("Handler", (_Handler,), {"rules": read_headers(folder)})
    base = site_base(folder)
    port = urlsplit(base).port or 0 if base else 0
    httpd = ThreadingHTTPServer(
        ("127.0.0.1", port), functools.partial(handler, directory=str(folder))
    )
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    if base is None:
        print("warning: the site's base URL is not local; absolute URLs leave this machine")
        base = f"http://127.0.0.1:{httpd.server_address[1]}"
    return httpd, base


def run(url: str, form: str, out: Path) -> dict[str, Any]:
    """One Lighthouse run; returns its JSON report."""
    report = out / f"{url.rstrip('/').rsplit('/', 2)[-1]}-{form}.json"
    args = [
        str(LIGHTHOUSE),
        url,
        "--output=json",
        f"--output-path={report}",
        "--quiet",
        "--chrome-flags=--headless=new --no-sandbox --disable-gpu",
        f"--only-categories={','.join(CATEGORIES)}",
    ]
    if form == "desktop":
        args.append("--preset=desktop")
    env = {**os.environ, "CHROME_PATH": os.environ.get("CHROME_PATH", "/usr/bin/chromium")}
    subprocess.run(args, check=True, env=env, timeout=300)
    data: dict[str, Any] = json.loads(report.read_text(encoding="utf-8"))
    return data


def lcp_image(data: dict[str, Any]) -> tuple[str, int] | None:
    """The LCP hero's file and transferred bytes: the page preloads it with
    ``fetchpriority=high``, so it is the first image request at high priority."""
    requests = data["audits"].get("network-requests", {}).get("details", {}).get("items", [])
    for r in requests:
        if r.get("resourceType") == "Image" and r.get("priority") in ("High", "VeryHigh"):
            return urlsplit(r["url"]).path.rsplit("/", 1)[-1], int(r.get("transferSize", 0))
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path, help="the published folder (a workspace's public/)")
    parser.add_argument("--pages", nargs="*", help="page paths (default: every landing page)")
    parser.add_argument("--out", type=Path, help="where the JSON reports go")
    args = parser.parse_args()
    folder: Path = args.folder.resolve()
    pages = args.pages or sorted(
        str(p.parent.relative_to(folder)) + "/" for p in folder.glob("*/*/index.html")
    )
    out = args.out or Path(tempfile.mkdtemp(prefix="bildwerk-lighthouse-"))
    out.mkdir(parents=True, exist_ok=True)
    httpd, base = serve(folder)
    missed = 0
    try:
        print(f"{'page':28} {'form':8} " + " ".join(f"{c[:13]:>13}" for c in CATEGORIES)
              + "  responsive-images")  # fmt: skip
        for page in pages:
            for form in ("mobile", "desktop"):
                data = run(f"{base}/{page}", form, out)
                scores = [round(100 * (data["categories"][c]["score"] or 0)) for c in CATEGORIES]
                # Lighthouse 12's audit; 13 folds it into image-delivery-insight
                audits = data["audits"]
                audit = audits.get("uses-responsive-images") or audits["image-delivery-insight"]
                passed = audit.get("score") in (1, None) or audit.get("scoreDisplayMode") in (
                    "notApplicable",
                )
                wasted = audit.get("details", {}).get("overallSavingsBytes", 0)
                lcp = audits["largest-contentful-paint"].get("displayValue", "")
                hero = lcp_image(data)
                print(
                    f"{page:28} {form:8} " + " ".join(f"{s:>13}" for s in scores)
                    + f"  {'pass' if passed else 'FAIL'} ({wasted} B to save), LCP {lcp}"
                    + (f", LCP image {hero[0]} {hero[1]} B" if hero else "")
                )  # fmt: skip
                for name in CATEGORIES:
                    for ref in data["categories"][name]["auditRefs"]:
                        a = data["audits"][ref["id"]]
                        if ref.get("weight") and a.get("score") not in (1, None):
                            print(f"    {name}: {ref['id']} score {a.get('score')}: "
                                  f"{a.get('displayValue', '')}")  # fmt: skip
                missed += sum(s < 100 for s in scores) + (not passed)
    finally:
        httpd.shutdown()
    print(f"reports: {out}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
