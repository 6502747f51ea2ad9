"""Generation stage: cited message variants per segment and tone, plus the control.

Backends (selected by ``services.generation.backend`` in azure_config.yaml):

* ``grounded`` (default, offline): :mod:`cpo.generation.grounded`.
* ``openai``: any OpenAI-compatible Chat Completions server
  (:mod:`cpo.generation.openai_compat`; needs the ``openai`` extra).
* ``azure_openai``: Azure OpenAI (same module; the ``azure`` extra adds keyless sign-in).

Add a backend with a module holding the class and its ``settings_model``, plus one
``register`` line below (see :mod:`cpo.registry`).
"""

from cpo.registry import register

register("generation", "grounded", "cpo.generation.grounded:GroundedGenerator")
register("generation", "openai", "cpo.generation.openai_compat:OpenAIGenerator", extra="openai")
register(
    "generation",
    "azure_openai",
    "cpo.generation.openai_compat:AzureOpenAIGenerator",
    extra="azure",
)
