"""Collection entries (template variables) and their request bodies.

The official package's import path; the structs are defined in ``elluminate.schemas``.
"""

from ._requests import CreateTemplateVariablesRequest, UpdateTemplateVariablesRequest
from ._wire import TemplateVariables

__all__ = [
    "CreateTemplateVariablesRequest",
    "TemplateVariables",
    "UpdateTemplateVariablesRequest",
]
