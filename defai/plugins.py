"""Find tools and strategies: entry points, "module:attr" strings, and folders of .py files.

defai never imports `tools` or `strategies` itself: the built-ins are entry points of the
`defai` distribution (see pyproject.toml), exactly like a third-party package's would be.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Callable, Iterable
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from defai.errors import PluginError

TOOLS_GROUP = "defai.tools"
STRATEGIES_GROUP = "defai.strategies"


def load_object(spec: str) -> Any:
    """'package.module:attr' or 'path/to/file.py:attr' -> the object."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise PluginError(f"{spec!r}: expected 'module:attr' or 'path/to/file.py:attr'")
    if module_name.endswith(".py"):
        module = _import_file(Path(module_name))
    else:
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise PluginError(f"{spec!r}: cannot import {module_name}: {exc}") from None
    obj: Any = module
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise PluginError(f"{spec!r}: {module_name} has no attribute {attr!r}") from None
    return obj


def _import_file(path: Path) -> Any:
    if not path.is_file():
        raise PluginError(f"{path}: plugin file not found")
    name = f"defai_plugin_{path.stem}_{abs(hash(path.resolve())):x}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise PluginError(f"{path}: not an importable Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        del sys.modules[name]
        raise PluginError(f"{path}: failed to import: {type(exc).__name__}: {exc}") from None
    return module


def from_entry_points(group: str) -> dict[str, Any]:
    """Every installed plugin of a group, by entry-point name."""
    found: dict[str, Any] = {}
    for ep in entry_points(group=group):
        try:
            found[ep.name] = ep.load()
        except Exception as exc:
            raise PluginError(
                f"entry point {ep.name!r} of {group} ({ep.value}) failed to load: {exc}"
            ) from None
    return found


def from_folder(folder: str | Path, accept: Callable[[Any], bool]) -> dict[str, Any]:
    """Objects accepted by `accept` in the .py files of a folder, keyed by their plugin name."""
    folder = Path(folder)
    if not folder.is_dir():
        raise PluginError(f"{folder}: plugin folder not found")
    found: dict[str, Any] = {}
    for path in sorted(folder.glob("*.py")):
        if path.name.startswith("_"):
            continue
        module = _import_file(path)
        for attr, obj in vars(module).items():
            imported_class = isinstance(obj, type) and obj.__module__ != module.__name__
            if not attr.startswith("_") and not imported_class and accept(obj):
                found[plugin_name(obj, attr)] = obj
    return found


def plugin_name(obj: Any, fallback: str) -> str:
    """A tool's `name` (LangChain tools have one), else the attribute's name."""
    name = getattr(obj, "name", None)
    if isinstance(name, str) and name:
        return name
    field = getattr(obj, "model_fields", {}).get("name")
    default = getattr(field, "default", None)
    return default if isinstance(default, str) and default else fallback


def discover(
    group: str,
    folders: Iterable[str | Path] = (),
    specs: Iterable[str] = (),
    accept: Callable[[Any], bool] = lambda obj: True,
) -> dict[str, Any]:
    """Entry points, then folders, then explicit specs; a later source overrides an earlier one."""
    found = from_entry_points(group)
    for folder in folders:
        found.update(from_folder(folder, accept))
    for spec in specs:
        obj = load_object(spec)
        found[plugin_name(obj, spec.rpartition(":")[2])] = obj
    return found


def resolve(group: str, name_or_spec: str, folders: Iterable[str | Path] = ()) -> Any:
    """A plugin by its registered name, or by 'module:attr' when the string has a colon."""
    if ":" in name_or_spec:
        return load_object(name_or_spec)
    found = discover(group, folders)
    if name_or_spec not in found:
        known = ", ".join(sorted(found)) or "none"
        raise PluginError(f"no {group} plugin named {name_or_spec!r}; known: {known}")
    return found[name_or_spec]


def build_tool(obj: Any, network: Any, market: Any) -> Any:
    """A tool plugin made ready: a tool instance as is, else a factory called with the context.

    Tool classes take `network=` and `market=` keywords (and ignore what they do not need).
    """
    from langchain_core.tools import BaseTool  # deferred: plugins.py is imported by the CLI

    if isinstance(obj, BaseTool):
        return obj
    if not callable(obj):
        raise PluginError(f"{obj!r} is neither a LangChain tool nor a tool factory")
    try:
        tool = obj(network=network, market=market)
    except TypeError as exc:
        raise PluginError(f"{obj!r} cannot be built with network= and market=: {exc}") from None
    if not isinstance(tool, BaseTool):
        raise PluginError(f"{obj!r} built a {type(tool).__name__}, not a LangChain tool")
    return tool
