"""Collection entries (template variables) and their request bodies.

The official package's import path; the structs are defined in ``elluminate.schemas``.
"""

from ._wire import (
    CreateTemplateVariablesRequest,
    TemplateVariables,
    UpdateTemplateVariablesRequest,
)

__all__ = [
    "CreateTemplateVariablesRequest",
    "TemplateVariables",
    "UpdateTemplateVariablesRequest",
]
