"""The "?" link of an estimator's HTML repr, pointing at skae's API reference.

scikit-learn's HTML repr (``estimator._repr_html_()``, the diagram Jupyter
shows) links each estimator, and each of its parameters, to that estimator's
API page, through the three ``_doc_link_*`` attributes that
``sklearn.base.BaseEstimator`` reads. Its defaults point at scikit-learn's
site; :class:`DocLinkMixin` points them at skae's.
"""

from __future__ import annotations

import itertools
import sys

#: Where skae's documentation is published (also ``[project.urls] Documentation``
#: in ``pyproject.toml``). The API reference pages are ``generated/<name>.html``
#: under it, with the names ``docs/_ext/api_reference.py`` lists: ``skae.AutoEncoder``,
#: ``skae.architectures.MLP``.
DOCS_URL = "https://skae.readthedocs.io/en/stable/"


class DocLinkMixin:
    """Link an estimator's HTML repr to its page of skae's API reference.

    Put it left of ``BaseEstimator``. Only classes defined in skae get a link:
    scikit-learn gives none to a subclass defined elsewhere, whose page skae
    does not have.
    """

    _doc_link_module = "skae"
    _doc_link_template = DOCS_URL + "generated/{module}.{name}.html"

    def _doc_link_url_param_generator(self) -> dict:
        cls = type(self)
        # The public module path (up to the first private part), or the top-level
        # package for what skae exports there (skae.autoencoder.AutoEncoder is
        # documented as skae.AutoEncoder).
        module = ".".join(
            itertools.takewhile(lambda part: not part.startswith("_"), cls.__module__.split("."))
        )
        if getattr(sys.modules.get("skae"), cls.__name__, None) is cls:
            module = "skae"
        return {"module": module, "name": cls.__name__}
