"""Retrieval stage: approved content in, relevant paragraphs per segment out.

Backends (registered here; add one with a module holding the class and its
``settings_model``, plus one ``register`` line; see :mod:`cpo.registry`):

* ``sqlite_fts`` (default): SQLite FTS5 index in a file, offline.
* ``azure_search``: Azure AI Search with semantic ranking (``pip install 'cpo[azure]'``).

Later stages read retrieval.json through :func:`cpo.run_folder.read_retrieval` and
:func:`cpo.run_folder.segment_snippets`.
"""

from cpo.registry import register
from cpo.retrieval.base import Retriever

register("retrieval", "sqlite_fts", "cpo.retrieval.sqlite_fts:SqliteFtsRetriever")
register(
    "retrieval", "azure_search", "cpo.retrieval.azure_search:AzureSearchRetriever", extra="azure"
)

__all__ = ["Retriever"]
