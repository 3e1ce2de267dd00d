"""Exact, code-free serialisation of the network's state: dataclass trees <-> JSON + npz.

Floats are written as hex and arrays as raw npz, so a network restored from disk continues bit
for bit. Only allow-listed dataclasses are rebuilt (no pickle), so opening a state file cannot
run code.
"""

from __future__ import annotations

import dataclasses
import io
import json
from collections.abc import Iterable
from typing import Any

import numpy as np

from defai.errors import NetworkError


class StateCodec:
    """Encodes trees of the given dataclasses, numbers, strings, lists, dicts and arrays."""

    def __init__(self, types: Iterable[type]) -> None:
        self._types = {t.__qualname__: t for t in types}

    def dumps(self, obj: Any) -> bytes:
        arrays: dict[str, np.ndarray] = {}
        tree = self._encode(obj, arrays)
        buffer = io.BytesIO()
        arrays["__tree__"] = np.frombuffer(json.dumps(tree).encode(), dtype=np.uint8)
        np.savez(buffer, **arrays)  # type: ignore[arg-type]  # numpy stubs type **kwds as bool
        return buffer.getvalue()

    def loads(self, blob: bytes) -> Any:
        try:
            with np.load(io.BytesIO(blob), allow_pickle=False) as npz:
                arrays = {k: npz[k] for k in npz.files}
        except (ValueError, OSError) as exc:
            raise NetworkError(f"network state is corrupt: {exc}") from None
        tree = json.loads(arrays.pop("__tree__").tobytes().decode())
        return self._decode(tree, arrays)

    def _encode(self, obj: Any, arrays: dict[str, np.ndarray]) -> Any:
        if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
            name = type(obj).__qualname__
            if self._types.get(name) is not type(obj):
                raise NetworkError(f"cannot store a {name}: not a known state type")
            fields = {
                f.name: self._encode(getattr(obj, f.name), arrays) for f in dataclasses.fields(obj)
            }
            return {"$type": name, "fields": fields}
        if isinstance(obj, np.ndarray):
            key = f"a{len(arrays)}"
            arrays[key] = obj
            return {"$array": key}
        if isinstance(obj, bool | None | str):
            return obj
        if isinstance(obj, int | np.integer):
            return int(obj)
        if isinstance(obj, float | np.floating):
            return {"$float": float(obj).hex()}
        if isinstance(obj, list | tuple):
            return {
                "$list": [self._encode(x, arrays) for x in obj],
                "tuple": isinstance(obj, tuple),
            }
        if isinstance(obj, dict):
            return {"$dict": [[k, self._encode(v, arrays)] for k, v in obj.items()]}
        raise NetworkError(f"cannot store a value of type {type(obj).__name__}")

    def _decode(self, tree: Any, arrays: dict[str, np.ndarray]) -> Any:
        if not isinstance(tree, dict):
            return tree
        if "$float" in tree:
            return float.fromhex(tree["$float"])
        if "$array" in tree:
            return arrays[tree["$array"]]
        if "$list" in tree:
            items = [self._decode(x, arrays) for x in tree["$list"]]
            return tuple(items) if tree["tuple"] else items
        if "$dict" in tree:
            return {k: self._decode(v, arrays) for k, v in tree["$dict"]}
        cls = self._types.get(tree.get("$type", ""))
        if cls is None:
            raise NetworkError(f"network state holds an unknown type {tree.get('$type')!r}")
        return cls(**{k: self._decode(v, arrays) for k, v in tree["fields"].items()})
