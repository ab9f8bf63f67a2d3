"""Prompt templates, template strings and their request bodies.

The official package's import path; the structs are defined in ``elluminate.schemas``.
"""

from ._requests import CreatePromptTemplateRequest, PromptTemplateFilter
from ._wire import PromptTemplate, TemplateString

__all__ = [
    "CreatePromptTemplateRequest",
    "PromptTemplate",
    "PromptTemplateFilter",
    "TemplateString",
]
