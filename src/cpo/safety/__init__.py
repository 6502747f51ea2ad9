"""Safety stage: screen every variant, decide by policy, record it in a tamper-evident log.

Backends (one verb, ``analyze(text) -> CategoryScores``) are registered here:

* ``local``: the offline lexicon-and-rules analyzer (default).
* ``azure_content_safety``: Azure AI Content Safety through its official SDK.

Add a backend with one module in this folder (the class and its ``settings_model``)
and one ``register`` line below (see :mod:`cpo.registry`).
"""

from cpo.registry import register

register("safety", "local", "cpo.safety.local:LocalSafetyAnalyzer")
register(
    "safety",
    "azure_content_safety",
    "cpo.safety.azure_content_safety:AzureContentSafetyAnalyzer",
    extra="azure",
)
