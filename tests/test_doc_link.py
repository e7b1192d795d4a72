"""The HTML repr's "?" links go to skae's API reference, at the pages docs/ builds."""

import re
import sys
from pathlib import Path

import pytest
from sklearn.base import BaseEstimator
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import skae
from skae import AutoEncoder
from skae._doc_link import DOCS_URL

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "docs" / "_ext"))
from api_reference import api_page  # noqa: E402


def documented_pages() -> dict:
    """{qualified name: page path} as the API reference's autosummary writes them.

    Each autosummary entry under ``.. currentmodule:: M`` with ``:toctree: generated/``
    becomes ``generated/M.<entry>.html`` (what ``make docs`` builds).
    """
    pages, module = {}, None
    for line in api_page(skae).splitlines():
        if line.startswith(".. currentmodule::"):
            module = line.split("::")[1].strip()
        elif re.fullmatch(r"   [A-Za-z_]\w*", line):
            name = f"{module}.{line.strip()}"
            pages[name] = f"generated/{name}.html"
    return pages


def public_estimators() -> list:
    found = []
    for module in (skae, skae.architectures, skae.distributed):
        for name in module.__all__:
            obj = getattr(module, name)
            if isinstance(obj, type) and issubclass(obj, BaseEstimator):
                found.append((f"{module.__name__}.{name}", obj))
    return found


def hrefs(html: str) -> set:
    return set(re.findall(r'href="([^"]*)"', html))


@pytest.mark.parametrize("qualname, cls", public_estimators(), ids=lambda v: str(v))
def test_the_html_repr_links_to_skaes_page_of_the_estimator(qualname, cls):
    page = DOCS_URL + documented_pages()[qualname]
    links = hrefs(cls()._repr_html_())
    assert page in links
    # The parameter links of the table are text fragments of that page.
    assert all(link.split("#")[0] == page for link in links if link.startswith("http"))
    assert not [link for link in links if "scikit-learn.org" in link]


def test_every_public_estimator_is_covered():
    names = {qualname for qualname, _ in public_estimators()}
    assert {"skae.AutoEncoder", "skae.AnomalyDetector", "skae.architectures.MLP"} <= names
    assert len(names) >= 12  # 7 estimators and 5 architectures today


def test_a_fitted_model_in_a_pipeline_links_each_step_to_its_own_docs(X_40x5):
    pipe = make_pipeline(StandardScaler(), AutoEncoder(2, max_iter=2, random_state=0))
    links = hrefs(pipe.fit(X_40x5)._repr_html_())
    assert DOCS_URL + "generated/skae.AutoEncoder.html" in links
    scaler = [link for link in links if "StandardScaler.html" in link]
    assert scaler and all("scikit-learn.org" in link for link in scaler)


def test_a_subclass_outside_skae_gets_no_link():
    class MyAutoEncoder(AutoEncoder):
        pass

    assert MyAutoEncoder()._get_doc_link() == ""


def test_the_documentation_url_is_the_projects():
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert meta["project"]["urls"]["Documentation"] == DOCS_URL
    assert DOCS_URL.startswith("https://") and DOCS_URL.endswith("/")
