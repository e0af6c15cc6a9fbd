"""Pickle-free checkpoints of nested state dicts (method state, optimiser state, run history).

Why: a checkpoint must round-trip optimiser state (dicts with int keys, lists, None, floats) and
tensors exactly, yet never be unpickled. Tensors go into one safetensors blob under flattened
keys; everything else is JSON with `{"__tensor__": key}` placeholders. A SHA-256 over the JSON and
the tensor bytes detects truncation and tampering.
"""
from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from .atomic import write_atomic

FORMAT = "ddstudio.checkpoint"
VERSION = 1
MAX_CHECKPOINT_BYTES = 2 << 30


class CheckpointError(ValueError):
    """A checkpoint file that is truncated, altered, or not a DD Studio checkpoint."""


def _encode(obj: Any, tensors: dict[str, torch.Tensor], path: str) -> Any:
    if isinstance(obj, torch.Tensor):
        key = f"{len(tensors)}:{path}"
        tensors[key] = obj.detach().cpu().contiguous()
        return {"__tensor__": key}
    if isinstance(obj, np.ndarray):
        key = f"{len(tensors)}:{path}"
        tensors[key] = torch.from_numpy(np.ascontiguousarray(obj))
        return {"__ndarray__": key}
    if isinstance(obj, dict):
        if all(isinstance(k, str) for k in obj) and not any(k.startswith("__") for k in obj):
            return {k: _encode(v, tensors, f"{path}.{k}" if path else k) for k, v in obj.items()}
        items = []  # non-string keys (optimiser state uses ints): keep their type
        for i, (k, v) in enumerate(obj.items()):
            if not isinstance(k, (str, int, float, bool)) and k is not None:
                raise TypeError(f"cannot checkpoint a dict key of type {type(k).__name__} at '{path}'")
            items.append([k, _encode(v, tensors, f"{path}.{i}" if path else str(i))])
        return {"__items__": items}
    if isinstance(obj, (list, tuple)):
        enc = [_encode(v, tensors, f"{path}.{i}" if path else str(i)) for i, v in enumerate(obj)]
        return {"__tuple__": enc} if isinstance(obj, tuple) else enc
    if isinstance(obj, float) and not math.isfinite(obj):
        return {"__float__": repr(obj)}
    if isinstance(obj, (np.floating, np.integer, np.bool_)):
        return obj.item()
    if obj is None or isinstance(obj, (str, int, float, bool)):
        return obj
    raise TypeError(f"cannot checkpoint a value of type {type(obj).__name__} at '{path}'")


def _decode(obj: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(obj, list):
        return [_decode(v, tensors) for v in obj]
    if isinstance(obj, dict):
        if "__tensor__" in obj:
            return tensors[obj["__tensor__"]]
        if "__ndarray__" in obj:
            return tensors[obj["__ndarray__"]].numpy()
        if "__items__" in obj:
            return {k: _decode(v, tensors) for k, v in obj["__items__"]}
        if "__tuple__" in obj:
            return tuple(_decode(v, tensors) for v in obj["__tuple__"])
        if "__float__" in obj:
            return float(obj["__float__"])
        return {k: _decode(v, tensors) for k, v in obj.items()}
    return obj


def _digest(payload: str, tensors: dict[str, torch.Tensor]) -> str:
    h = hashlib.sha256(payload.encode())
    for key in sorted(tensors):
        t = tensors[key].contiguous()
        h.update(key.encode())
        h.update(str(t.dtype).encode())
        h.update(str(list(t.shape)).encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def state_to_bytes(state: dict[str, Any]) -> bytes:
    """Serialise a nested state dict (tensors, numbers, strings, lists, dicts, None)."""
    tensors: dict[str, torch.Tensor] = {}
    payload = json.dumps(_encode(state, tensors, ""), allow_nan=False)
    header = {"format": FORMAT, "version": VERSION, "state": payload, "sha256": _digest(payload, tensors)}
    return st_save(tensors, metadata={"ddstudio": json.dumps(header)})


def state_from_bytes(data: bytes, name: str = "checkpoint") -> dict[str, Any]:
    if len(data) > MAX_CHECKPOINT_BYTES:
        raise CheckpointError(f"{name} is larger than {MAX_CHECKPOINT_BYTES >> 20} MiB")
    try:
        tensors = st_load(data)
        n = int.from_bytes(data[:8], "little")
        if len(data) < 8 or n > len(data) - 8:
            raise ValueError("header length exceeds the file")
        meta = json.loads(data[8:8 + n]).get("__metadata__", {}).get("ddstudio")
        if meta is None:
            raise ValueError("no DD Studio metadata")
        header = json.loads(meta)
    except (SafetensorError, ValueError, OSError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{name} is not a readable DD Studio checkpoint (truncated or corrupt): {e}") from e
    if header.get("format") != FORMAT:
        raise CheckpointError(f"{name} is a safetensors file but not a DD Studio checkpoint")
    payload = header.get("state", "")
    if _digest(payload, tensors) != header.get("sha256"):
        raise CheckpointError(f"{name}: contents do not match their checksum (the file was altered)")
    try:
        return _decode(json.loads(payload), tensors)
    except (KeyError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{name} has inconsistent contents: {e}") from e


def save_checkpoint(state: dict[str, Any], path: str | Path) -> Path:
    """Write atomically (a crash never leaves half a checkpoint under the real name)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, state_to_bytes(state))
    return path


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No checkpoint at {path}")
    return state_from_bytes(path.read_bytes(), str(path))


__all__ = ["CheckpointError", "load_checkpoint", "save_checkpoint", "state_from_bytes", "state_to_bytes"]
