"""Dump the public surface of the installed ``elluminate`` package as JSON, by introspection.

Usage: python surface_dump.py OUT.json

Runs under any interpreter that has an ``elluminate`` package (the official one in its own
virtualenv, or this repository's); nothing is imported from this repository. Records:

- ``modules``: every public module (no ``_``-prefixed path component) and its public names:
  ``__all__``, plus the classes and functions defined in it, plus its top-level assignments
  (found in its source), plus its public submodules. Each name: kind and, for a class, the
  id (``module.qualname``) of its entry in ``classes``.
- ``classes``: per class, its category (enum, exception, typeddict, model, class), the names of
  its bases (MRO), its public members defined by elluminate classes (methods with parameter
  names, kinds, defaults and normalised return type; properties), its fields (name, required,
  default), its enum members, and its subclasses (so rich twins can be found).
- ``instances``: the public instance attributes of ``Client`` and ``AsyncClient`` objects
  (built against a tiny stub server on a free local port), e.g. ``projects``.
"""

from __future__ import annotations

import ast
import dataclasses
import enum
import importlib
import inspect
import json
import pkgutil
import re
import sys
import threading
import typing
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

PROTOCOL_DUNDERS = {
    "__str__",
    "__iter__",
    "__len__",
    "__getitem__",
    "__contains__",
    "__bool__",
    "__call__",
    "__enter__",
    "__exit__",
    "__aenter__",
    "__aexit__",
}
SKIP_MODULE_PREFIXES = ("elluminate.server",)  # not part of any client surface


# ---- normalisation ---------------------------------------------------------------------------


def norm_annotation(annotation: Any) -> str:
    """A library-neutral spelling of a type annotation: no module paths, PEP 604 unions."""
    if annotation is inspect.Signature.empty:
        return ""
    text = annotation if isinstance(annotation, str) else inspect.formatannotation(annotation)
    text = text.replace("'", "").replace('"', "").replace("~", "")  # ~T: a TypeVar
    text = re.sub(r"\b(?:[A-Za-z_]\w*\.)+(?=[A-Za-z_]\w*)", "", text)  # module paths
    for old, new in (("List", "list"), ("Dict", "dict"), ("Tuple", "tuple"), ("Type", "type")):
        text = re.sub(rf"\b{old}\[", f"{new}[", text)
    text = re.sub(r"\bAsyncIterator\b", "AsyncIterator", text)
    changed = True
    while changed:  # Optional[X] -> X | None, Union[A, B] -> A | B (innermost first)
        new = re.sub(r"\bOptional\[([^\[\]]*(?:\[[^\[\]]*\][^\[\]]*)*)\]", r"\1 | None", text)
        new = re.sub(
            r"\bUnion\[([^\[\]]*(?:\[[^\[\]]*\][^\[\]]*)*)\]",
            lambda m: " | ".join(p.strip() for p in _split_top(m.group(1))),
            new,
        )
        changed, text = new != text, new
    return " | ".join(sorted(set(p.strip() for p in _split_top(text, "|")), key=_none_last))


def _none_last(part: str) -> tuple[bool, str]:
    return (part == "None", part)


def _split_top(text: str, sep: str = ",") -> list[str]:
    parts, depth, current = [], 0, ""
    for char in text:
        if char == "[":
            depth += 1
        elif char == "]":
            depth -= 1
        if char == sep and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return [p.strip() for p in parts if p.strip()]


def norm_default(value: Any) -> Any:
    if value is inspect.Parameter.empty or value is dataclasses.MISSING:
        return "<required>"
    if isinstance(value, enum.Enum):
        return f"{type(value).__name__}.{value.name}={value.value!r}"
    if value is None or isinstance(value, (bool, int, float, str)):
        return repr(value)
    if isinstance(value, (list, tuple, dict, frozenset, set)) and not value:
        return f"<empty {type(value).__name__}>"
    return f"<{type(value).__name__}>"


def signature(fn: Any) -> dict[str, Any]:
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return {"params": None, "returns": ""}
    params = [
        [p.name, p.kind.name, norm_default(p.default)]
        for p in sig.parameters.values()
        if p.name not in ("self", "cls")
    ]
    return {"params": params, "returns": norm_annotation(sig.return_annotation)}


def function_kind(fn: Any) -> str:
    if inspect.isasyncgenfunction(fn):
        return "asyncgen"
    if inspect.iscoroutinefunction(fn):
        return "coroutine"
    if inspect.isgeneratorfunction(fn):
        return "generator"
    return "function"


# ---- classes ---------------------------------------------------------------------------------


def class_id(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def is_ours(cls: type) -> bool:
    return cls.__module__.split(".")[0] == "elluminate"


def category(cls: type) -> str:
    if issubclass(cls, enum.Enum):
        return "enum"
    if issubclass(cls, BaseException):
        return "exception"
    if typing.is_typeddict(cls):
        return "typeddict"
    if hasattr(cls, "model_fields") or hasattr(cls, "__struct_fields__"):
        return "model"
    if dataclasses.is_dataclass(cls):
        return "model"
    return "class"


def validator_names(cls: type) -> set[str]:
    decorators = getattr(cls, "__pydantic_decorators__", None)
    names: set[str] = set()
    if decorators is not None:
        for group in dataclasses.fields(decorators):
            names.update(getattr(decorators, group.name))
    return names


def members(cls: type) -> dict[str, Any]:
    skip = validator_names(cls)
    found: dict[str, Any] = {}
    for klass in reversed(cls.__mro__):
        if not is_ours(klass):
            continue
        for name, raw in vars(klass).items():
            public = not name.startswith("_") or name in PROTOCOL_DUNDERS
            if not public or name in skip:
                continue
            if category(cls) == "enum" and isinstance(raw, cls):
                continue  # enum members are listed separately
            if isinstance(raw, property) or type(raw).__name__ == "cached_property":
                getter = raw.fget if isinstance(raw, property) else raw.func
                found[name] = {
                    "kind": "property",
                    "returns": norm_annotation(inspect.signature(getter).return_annotation),
                }
            elif isinstance(raw, (classmethod, staticmethod)):
                fn = raw.__func__
                found[name] = {"kind": type(raw).__name__, **signature(fn)}
            elif inspect.isfunction(raw) and raw.__module__.split(".")[0] == "elluminate":
                # (functions a model library installs, like pydantic's model_post_init, are not
                # part of the surface)
                found[name] = {"kind": function_kind(raw), **signature(raw)}
    if category(cls) in ("exception", "class") and "__init__" in _own_attrs(cls):
        found["__init__"] = {"kind": "function", **signature(cls.__init__)}
    return found


def _own_attrs(cls: type) -> set[str]:
    return {n for k in cls.__mro__ if is_ours(k) for n in vars(k)}


def fields(cls: type) -> dict[str, Any] | None:
    if typing.is_typeddict(cls):
        hints = cls.__annotations__
        return {
            name: {"required": name in cls.__required_keys__, "default": "<required>"}
            for name in hints
        }
    model_fields = getattr(cls, "model_fields", None)
    if isinstance(model_fields, dict):
        return {
            name: {
                "required": info.is_required(),
                "default": "<required>"
                if info.is_required()
                else (
                    norm_default(info.default_factory())
                    if info.default_factory is not None
                    else norm_default(info.default)
                ),
            }
            for name, info in model_fields.items()
        }
    if hasattr(cls, "__struct_fields__"):
        import msgspec

        out = {}
        for info in msgspec.structs.fields(cls):
            required = info.required
            default = "<required>" if required else norm_default(info.default)
            if info.default_factory is not msgspec.NODEFAULT:
                default = norm_default(info.default_factory())
            out[info.name] = {"required": required, "default": default}
        return out
    if dataclasses.is_dataclass(cls):
        out = {}
        for info in dataclasses.fields(cls):
            if not info.init:
                continue
            required = info.default is dataclasses.MISSING and (
                info.default_factory is dataclasses.MISSING
            )
            default = norm_default(info.default)
            if info.default_factory is not dataclasses.MISSING:
                default = norm_default(info.default_factory())
            out[info.name] = {"required": required, "default": default}
        return out
    return None


def describe_class(cls: type) -> dict[str, Any]:
    info: dict[str, Any] = {
        "name": cls.__name__,
        "category": category(cls),
        "bases": [k.__name__ for k in cls.__mro__[1:]],
        "members": members(cls),
        "fields": fields(cls),
        "subclasses": sorted(class_id(s) for s in _all_subclasses(cls) if is_ours(s)),
    }
    if info["category"] == "enum":
        info["enum"] = {m.name: m.value for m in cls}  # type: ignore[attr-defined]
    return info


def _all_subclasses(cls: type) -> list[type]:
    try:
        direct = cls.__subclasses__()
    except TypeError:
        return []
    return direct


# ---- modules ---------------------------------------------------------------------------------


def public_modules() -> list[str]:
    import elluminate

    names = ["elluminate"]
    for info in pkgutil.walk_packages(elluminate.__path__, "elluminate."):
        if any(part.startswith("_") for part in info.name.split(".")):
            continue
        if info.name.startswith(SKIP_MODULE_PREFIXES):
            continue
        names.append(info.name)
    return sorted(names)


def assigned_names(module: Any) -> set[str]:
    """Public names bound by top-level assignments in the module's source."""
    try:
        tree = ast.parse(inspect.getsource(module))
    except (OSError, TypeError, SyntaxError):
        return set()
    names: set[str] = set()
    for node in tree.body:
        targets: list[Any] = []
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, ast.AnnAssign):
            targets = [node.target]
        for target in targets:
            if isinstance(target, ast.Name) and not target.id.startswith("_"):
                names.add(target.id)
    return names


def module_names(module: Any) -> set[str]:
    modname = module.__name__
    names = set(getattr(module, "__all__", []))
    for name, obj in vars(module).items():
        if name.startswith("_") or not name.isidentifier():
            continue
        if (inspect.isclass(obj) or inspect.isfunction(obj)) and obj.__module__ == modname:
            names.add(name)
        if inspect.ismodule(obj) and obj.__name__ == f"{modname}.{name}":
            names.add(name)
    for name in assigned_names(module):
        obj = getattr(module, name, None)
        if isinstance(obj, (typing.TypeVar, typing.ParamSpec)) or name in ("logger", "log"):
            continue
        names.add(name)
    names.discard("__version__")
    return names


def describe_value(obj: Any, classes: dict[str, Any], pending: list[type]) -> dict[str, Any]:
    if inspect.ismodule(obj):
        return {"kind": "module", "module": obj.__name__}
    if inspect.isclass(obj):
        pending.append(obj)
        return {"kind": "class", "ref": class_id(obj)}
    if inspect.isfunction(obj) or inspect.isbuiltin(obj):
        return {"kind": function_kind(obj), **signature(obj)}
    if typing.get_origin(obj) is not None or type(obj).__module__ == "typing":
        return {"kind": "type alias"}
    value = obj if isinstance(obj, (bool, int, float, str)) or obj is None else None
    return {"kind": "constant", "type": type(obj).__name__, "value": value}


# ---- client instances ------------------------------------------------------------------------

_STAMP = "2025-01-01T00:00:00Z"
_PROJECT = {
    "id": 1,
    "name": "stub",
    "description": "",
    "public_in_org": False,
    "created_at": _STAMP,
    "updated_at": _STAMP,
    "organization": {
        "id": 1,
        "name": "org",
        "domain": "example.org",
        "stripe_subscription_id": None,
        "created_at": _STAMP,
        "updated_at": _STAMP,
    },
}


class _Stub(BaseHTTPRequestHandler):
    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        if self.path.startswith("/api/v0/version/compatible"):
            body: Any = {"is_compatible": True, "required_sdk_version": "0"}
        elif self.path.startswith("/api/v0/projects"):
            body = {"items": [_PROJECT], "count": 1}
        else:
            body = {"detail": "stub"}
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = _answer

    def log_message(self, *args: Any) -> None:
        pass


def client_instances(classes: dict[str, Any], pending: list[type]) -> dict[str, Any]:
    import elluminate

    server = ThreadingHTTPServer(("127.0.0.1", 0), _Stub)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base_url = f"http://127.0.0.1:{server.server_address[1]}"
    out: dict[str, Any] = {}
    try:
        for name in ("Client", "AsyncClient"):
            cls = getattr(elluminate, name)
            client = cls(base_url=base_url, api_key="stub-key")
            attrs = {}
            for attr, value in vars(client).items():
                if attr.startswith("_"):
                    continue
                vtype = type(value)
                if is_ours(vtype):
                    pending.append(vtype)
                    attrs[attr] = {"kind": "instance", "ref": class_id(vtype)}
                else:
                    attrs[attr] = {"kind": "value", "type": vtype.__name__}
            out[name] = attrs
            close = getattr(client, "close", None)
            if close is not None and not inspect.iscoroutinefunction(close):
                close()
    finally:
        server.shutdown()
        server.server_close()
    return out


def dump() -> dict[str, Any]:
    classes: dict[str, Any] = {}
    pending: list[type] = []
    modules: dict[str, Any] = {}
    for modname in public_modules():
        module = importlib.import_module(modname)
        entries = {}
        for name in sorted(module_names(module)):
            if not hasattr(module, name):
                entries[name] = {"kind": "missing"}
                continue
            entries[name] = describe_value(getattr(module, name), classes, pending)
        modules[modname] = entries
    instances = client_instances(classes, pending)
    while pending:
        cls = pending.pop()
        ident = class_id(cls)
        if ident in classes:
            continue
        classes[ident] = describe_class(cls)
        pending.extend(s for s in _all_subclasses(cls) if is_ours(s))
    import elluminate

    return {
        "package": getattr(elluminate, "__version__", "?"),
        "modules": modules,
        "classes": classes,
        "instances": instances,
    }


def main() -> None:
    import logging

    logging.disable(logging.CRITICAL)
    try:  # the official package logs through loguru; keep the dump's output clean
        from loguru import logger

        logger.remove()
    except ImportError:
        pass
    data = dump()
    with open(sys.argv[1], "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=1, sort_keys=True)


if __name__ == "__main__":
    main()
