"""The built documentation site: the API reference lists every public name, and
pages render in a real browser (headless Chromium driven by Selenium).

These tests read the output of ``make docs``. They run when ``SKAE_DOCS_HTML``
names the built site: ``make docs-check`` sets it, and CI runs that target after
``make docs``. Without it they skip, so that ``make test`` needs no docs build.
The browser test skips, saying why, only where no Chromium can be found.
"""

import functools
import http.server
import os
import re
import shutil
import threading
from pathlib import Path

import pytest

import skae

SITE = os.environ.get("SKAE_DOCS_HTML")
pytestmark = pytest.mark.skipif(
    not SITE, reason="SKAE_DOCS_HTML is not set; run `make docs docs-check` to test the site"
)

# Flags that work in a container running as root with no network.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1280,1000",
)

PAGES = {
    "landing": ("index.html", "skae documentation"),
    "estimator API": ("generated/skae.AutoEncoder.html", "AutoEncoder"),
    "gallery example": (
        "auto_examples/plot_feature_extraction_pipeline.html",
        "Autoencoder features in a pipeline, tuned with GridSearchCV vs PCA",
    ),
}


@pytest.fixture(scope="module")
def site():
    path = Path(SITE)
    if not (path / "index.html").is_file():
        pytest.fail(f"SKAE_DOCS_HTML={SITE!r} holds no built site (index.html); run `make docs`.")
    return path


def test_api_reference_lists_exactly_the_public_names(site):
    api = (site / "api.html").read_text(encoding="utf-8")
    listed = set(re.findall(r'href="generated/skae\.(\w+)\.html', api))
    assert listed == set(skae.__all__), "api.html is stale or incomplete; rebuild with `make docs`"
    for name in skae.__all__:
        page = (site / "generated" / f"skae.{name}.html").read_text(encoding="utf-8")
        # The autodoc description of the object itself, not only a title.
        assert f'id="skae.{name}"' in page
    architectures = set(re.findall(r'href="generated/skae\.architectures\.(\w+)\.html', api))
    assert architectures == set(skae.architectures.__all__)
    distributed = set(re.findall(r'href="generated/skae\.distributed\.(\w+)\.html', api))
    assert distributed == set(skae.distributed.__all__)


def test_the_html_repr_links_point_at_built_pages(site):
    from sklearn.base import BaseEstimator

    from skae._doc_link import DOCS_URL

    for module in (skae, skae.architectures):
        for name in module.__all__:
            cls = getattr(module, name)
            if isinstance(cls, type) and issubclass(cls, BaseEstimator):
                link = cls()._get_doc_link()
                assert link.startswith(DOCS_URL), link
                assert (site / link[len(DOCS_URL) :]).is_file(), link


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):
        pass


@pytest.fixture(scope="module")
def server(site):
    handler = functools.partial(_QuietHandler, directory=str(site))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    webdriver = pytest.importorskip(
        "selenium.webdriver", reason="selenium is not installed (pip install -e '.[docs]')"
    )
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    driver_path = shutil.which("chromedriver")
    if not (binary and driver_path):
        pytest.skip(
            "no Chromium and chromedriver on PATH; on Debian: "
            "apt-get install -y chromium chromium-driver"
        )
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    # An explicit driver path keeps Selenium from trying to download one.
    service = webdriver.ChromeService(executable_path=driver_path)
    driver = webdriver.Chrome(options=options, service=service)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


# How many images in the page's main content finished loading with pixels,
# and which ones are broken (complete, but no pixels).
IMAGES_JS = """
const images = [...document.querySelectorAll('main img, article img')];
return {
  loaded: images.filter(i => i.complete && i.naturalWidth > 0).length,
  broken: images.filter(i => i.complete && i.naturalWidth === 0).map(i => i.src),
  pending: images.filter(i => !i.complete).length,
};
"""


@pytest.mark.parametrize("page", list(PAGES), ids=list(PAGES))
def test_page_renders_title_code_and_figures_in_chromium(browser, server, page):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    path, title = PAGES[page]
    browser.get(f"{server}/{path}")
    WebDriverWait(browser, 30).until(
        lambda d: (
            d.execute_script("return document.readyState") == "complete"
            and d.execute_script(IMAGES_JS)["pending"] == 0
        )
    )

    assert title in browser.title
    heading = browser.find_element(By.CSS_SELECTOR, "article h1")
    assert title in heading.text

    code = [e.text for e in browser.find_elements(By.CSS_SELECTOR, "div.highlight pre")]
    assert any("AutoEncoder" in block for block in code), f"no code block on {path}"

    images = browser.execute_script(IMAGES_JS)
    assert images["broken"] == [], f"images that did not load on {path}: {images['broken']}"
    assert images["loaded"] >= 1, f"no figure image loaded on {path}"
