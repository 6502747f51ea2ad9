"""Generation stage: cited message variants per segment and tone, plus the control.

Backends (selected by ``services.generation.backend`` in azure_config.yaml):

* ``grounded`` (default, offline): :mod:`cpo.generation.grounded`.
* ``openai``: any OpenAI-compatible Chat Completions server
  (:mod:`cpo.generation.openai_compat`; needs the ``openai`` extra).
* ``azure_openai``: Azure OpenAI (same module and extra).
"""

from cpo.registry import register

register("generation", "grounded", "cpo.generation.grounded:GroundedGenerator")
register("generation", "openai", "cpo.generation.openai_compat:OpenAIGenerator")
register("generation", "azure_openai", "cpo.generation.openai_compat:AzureOpenAIGenerator")
