"""Write the API reference page from ``skae.__all__``.

``docs/conf.py`` calls :func:`write_api_page` at every build, so every public
name gets an autosummary entry (and with it a page under ``generated/``) as
soon as it is exported; ``api.rst`` is a build product, not edited by hand.
"""

from __future__ import annotations

import inspect
from pathlib import Path

HEADER = """\
.. This file is written by docs/conf.py from skae.__all__ at each build;
   edit docs/_ext/api_reference.py instead.

.. _api:

=============
API reference
=============

Every public name of :mod:`skae` (``skae.__all__``). Each estimator page
lists its parameters, fitted attributes and methods, and the gallery
examples that use it.

.. currentmodule:: skae
"""

SECTIONS = (
    ("Estimators", "class.rst", inspect.isclass),
    ("Functions", "function.rst", inspect.isfunction),
)


ARCHITECTURES = """
Architectures
=============

The networks an estimator's ``architecture`` parameter takes
(:mod:`skae.architectures`); subclass :class:`Architecture` for your own.

.. currentmodule:: skae.architectures

"""


DISTRIBUTED = """
Scaling out
===========

Searches on Dask or Ray clusters and data-parallel training
(:mod:`skae.distributed`); see also :class:`skae.ChunkedData` and ``partial_fit``.

.. currentmodule:: skae.distributed

"""


def api_page(module) -> str:
    """The reStructuredText of the API reference for ``module.__all__``.

    The architectures of ``module.architectures`` get a section of their own.
    """
    names = list(module.__all__)
    unknown = [
        n for n in names if not any(is_kind(getattr(module, n)) for _, _, is_kind in SECTIONS)
    ]
    if unknown:
        raise TypeError(f"skae.__all__ has names that are neither classes nor functions: {unknown}")
    parts = [HEADER]
    for title, template, is_kind in SECTIONS:
        members = [n for n in names if is_kind(getattr(module, n))]
        if not members:
            continue
        parts.append(f"{title}\n{'=' * len(title)}\n")
        parts.append(
            ".. autosummary::\n   :toctree: generated/\n"
            f"   :template: {template}\n   :nosignatures:\n\n"
            + "".join(f"   {n}\n" for n in members)
        )
    submodule = getattr(module, "architectures", None)
    if submodule is not None:
        parts.append(
            ARCHITECTURES + ".. autosummary::\n   :toctree: generated/\n"
            "   :template: class.rst\n   :nosignatures:\n\n"
            + "".join(f"   {n}\n" for n in submodule.__all__)
        )
    distributed = getattr(module, "distributed", None)
    if distributed is not None:
        parts.append(DISTRIBUTED)
        for _, template, is_kind in SECTIONS:
            members = [n for n in distributed.__all__ if is_kind(getattr(distributed, n))]
            parts.append(
                ".. autosummary::\n   :toctree: generated/\n"
                f"   :template: {template}\n   :nosignatures:\n\n"
                + "".join(f"   {n}\n" for n in members)
            )
    return "\n".join(parts)


def write_api_page(path: Path, module) -> None:
    """Write :func:`api_page` to ``path``, leaving the file alone if unchanged.

    Keeping the timestamp of an unchanged file spares Sphinx a rebuild.
    """
    text = api_page(module)
    if not path.exists() or path.read_text() != text:
        path.write_text(text)
