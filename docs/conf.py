"""Sphinx configuration of the skae documentation (``make docs`` builds it)."""

import os
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
# Document (and run the gallery against) the skae of this checkout.
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(DOCS / "_ext"))

import torch  # noqa: E402
from api_reference import write_api_page  # noqa: E402

import skae  # noqa: E402

project = "skae"
author = "the skae developers"
copyright = "the skae developers"
release = version = skae.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.intersphinx",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
    "myst_parser",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
templates_path = ["_templates"]
exclude_patterns = ["_build", "auto_examples/*.ipynb", "auto_examples/*.py", "**/*.zip"]
root_doc = "index"

# The API reference lists every name in skae.__all__: api.rst is written here,
# before autosummary reads the sources, so a newly exported estimator gets its
# page without anyone editing the docs.
write_api_page(DOCS / "api.rst", skae)
autosummary_generate = True
autodoc_default_options = {"members": True, "inherited-members": True}
autodoc_typehints = "none"
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False

# Intersphinx needs the projects' objects.inv from the internet. The CI
# machine has none, and a failed fetch is a warning, which -W turns into an
# error; so the mapping is opt-in: `make docs INTERSPHINX=1` (or
# SKAE_DOCS_INTERSPHINX=1 sphinx-build ...) where the internet is reachable.
# Offline, references to scikit-learn/numpy/torch objects render as plain code.
intersphinx_mapping = {}
intersphinx_timeout = 10
if os.environ.get("SKAE_DOCS_INTERSPHINX") == "1":
    intersphinx_mapping = {
        "python": ("https://docs.python.org/3", None),
        "numpy": ("https://numpy.org/doc/stable/", None),
        "sklearn": ("https://scikit-learn.org/stable/", None),
        "torch": ("https://docs.pytorch.org/docs/stable/", None),
        "skorch": ("https://skorch.readthedocs.io/en/stable/", None),
    }

# The gallery's models are tiny: one torch thread runs them faster than
# several competing OpenMP workers on a small, shared CI machine (as in
# tests/conftest.py). Examples run in this process, so this applies to them.
torch.set_num_threads(1)

sphinx_gallery_conf = {
    "examples_dirs": str(ROOT / "examples"),
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    # Any error in an example fails the build (with -W, warnings do too).
    "abort_on_example_error": True,
    # Run every example at every build: they exercise skae's code, which an
    # unchanged example file (sphinx-gallery's default cache key) says nothing about.
    "run_stale_examples": True,
    "only_warn_on_example_error": False,
    "doc_module": ("skae",),
    "backreferences_dir": "generated/backreferences",
    "download_all_examples": False,
    "remove_config_comments": True,
    "matplotlib_animations": False,
    "image_scrapers": ("matplotlib",),
    "within_subsection_order": "FileNameSortKey",
}

html_theme = "pydata_sphinx_theme"
html_title = f"skae {release}"
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version", "theme-version"],
}
html_static_path = []
html_show_sourcelink = False


def _plain_text_when_offline(app, env, node, contnode):
    """Render references into scikit-learn's docs as plain text when offline.

    Docstrings follow scikit-learn's conventions: ``:term:`fit``` points into
    its glossary, and the methods inherited from its mixins (``set_output``,
    ``get_metadata_routing``) refer to labels of its user guide. Intersphinx
    resolves them when enabled; without it they would be "undefined label"
    warnings, which -W turns into errors. Every other missing reference (a
    typo in our own pages) still fails the build.
    """
    if intersphinx_mapping:
        return None
    from_sklearn = "docstring of sklearn." in (node.source or "")
    if node.get("reftype") == "term" or from_sklearn:
        return contnode
    return None


def setup(app):
    app.connect("missing-reference", _plain_text_when_offline)
