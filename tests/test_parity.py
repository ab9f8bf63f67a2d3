"""The twins are signature-identical: AsyncClient vs Client, every async rich model vs its twin."""

from __future__ import annotations

import inspect

import pytest

from elluminate import AsyncClient, Client
from elluminate._async import models as amodels
from elluminate._async import projects as aprojects
from elluminate._sync import models as smodels
from elluminate._sync import projects as sprojects


def public_methods(cls: type) -> dict[str, object]:
    return {
        name: member
        for name, member in inspect.getmembers(cls, inspect.isfunction)
        if not name.startswith("_")
    }


def params(fn: object) -> list[tuple[str, object, object, object]]:
    """Names, kinds, defaults and annotations of the parameters (return types differ by design:
    AsyncIterator vs Iterator)."""
    return [
        (p.name, p.kind, p.default, p.annotation)
        for p in inspect.signature(fn).parameters.values()  # type: ignore[arg-type]
    ]


def test_client_methods_match():
    amethods, smethods = public_methods(AsyncClient), public_methods(Client)
    assert set(amethods) == set(smethods)
    for name, fn in amethods.items():
        assert params(fn) == params(smethods[name]), name
    assert params(AsyncClient.__init__) == params(Client.__init__)


def test_async_methods_are_coroutines_and_sync_ones_are_not():
    for name, fn in public_methods(AsyncClient).items():
        sync_fn = getattr(Client, name)
        if name.startswith("stream_"):
            assert inspect.isasyncgenfunction(fn) and inspect.isgeneratorfunction(sync_fn), name
        elif inspect.iscoroutinefunction(fn):
            assert not inspect.iscoroutinefunction(sync_fn), name


RICH = [
    (amodels, smodels, name)
    for name, obj in inspect.getmembers(amodels, inspect.isclass)
    if obj.__module__ == amodels.__name__
] + [(aprojects, sprojects, "ProjectsResource")]


@pytest.mark.parametrize(("amodule", "smodule", "model"), RICH)
def test_rich_model_methods_match(amodule, smodule, model):
    acls, scls = getattr(amodule, model), getattr(smodule, model)
    amethods = public_methods(acls)
    smethods = public_methods(scls)
    expected = {}
    for name, fn in amethods.items():
        twin = name[1:] if inspect.iscoroutinefunction(fn) else name
        assert twin in smethods, f"{model}.{name} has no sync twin {twin}"
        assert params(fn) == params(smethods[twin]), f"{model}.{name}"
        assert name.startswith("a") or not inspect.iscoroutinefunction(fn)
        expected[twin] = fn
    assert set(expected) == set(smethods)


def test_every_rich_model_has_async_methods_only_with_a_prefix():
    for amodule, _, model in RICH:
        for name, fn in public_methods(getattr(amodule, model)).items():
            if inspect.iscoroutinefunction(fn):
                assert name.startswith("a"), f"{model}.{name}"
