"""The safetensors file format, read and written one tensor at a time.

`safetensors.torch.save_file` copies every tensor to bytes before writing, and loading through its memory map keeps
the file's pages resident next to the loaded tensors: both hold a model twice. Here each tensor is cast and written
(or read and cast) on its own, so import and load need about one copy of the weights plus the largest tensor.
The format (github.com/huggingface/safetensors, README "Format"): an 8-byte little-endian header length, a JSON
header {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {str: str}} padded with spaces, then the
tensors' bytes, little-endian and C-contiguous, at those offsets from the end of the header.
"""
from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Callable, Iterable, Iterator

import torch

DTYPES = {torch.float64: "F64", torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16",
          torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8", torch.uint8: "U8",
          torch.bool: "BOOL"}
TORCH = {v: k for k, v in DTYPES.items()}


def _nbytes(shape: Iterable[int], dtype: torch.dtype) -> int:
    n = 1
    for s in shape:
        n *= int(s)
    return n * torch.empty((), dtype=dtype).element_size()


def write(path: Path, tensors: Iterable[tuple[str, torch.Tensor]], metadata: dict[str, str] | None = None,
          dtype_for: Callable[[str, torch.dtype], torch.dtype] = lambda _k, d: d) -> None:
    """Write (name, tensor) pairs, each in dtype_for(name, its dtype), converted just before its bytes are written."""
    items = list(tensors)
    header: dict[str, object] = {"__metadata__": metadata} if metadata else {}
    offset = 0
    for name, t in items:
        dtype = dtype_for(name, t.dtype)
        n = _nbytes(t.shape, dtype)
        header[name] = {"dtype": DTYPES[dtype], "shape": list(t.shape), "data_offsets": [offset, offset + n]}
        offset += n
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(raw)))
        f.write(raw)
        for name, t in items:
            out = t.detach().to("cpu", dtype_for(name, t.dtype)).contiguous()
            f.write(out.reshape(-1).view(torch.uint8).numpy())  # the tensor's own bytes, no copy


def read_header(path: Path) -> tuple[dict[str, dict], int]:
    """(tensor entries by name, byte offset of the data section); __metadata__ left out. ValueError naming the file
    and the problem for anything that is not a well-formed safetensors file: a Git LFS pointer, a header longer than
    the file, an unknown dtype, offsets that disagree with a shape, or overlap, or leave holes (the format's rule)."""
    size = Path(path).stat().st_size
    with open(path, "rb") as f:
        first = f.read(8)
        if first.startswith(b"version "):  # "version https://git-lfs.github.com/spec/v1"
            raise ValueError(f"{path} is a Git LFS pointer, not the weights (fetch them: git lfs pull)")
        if len(first) < 8:
            raise ValueError(f"{path} is not a safetensors file ({size} bytes)")
        (n,) = struct.unpack("<Q", first)
        if n > size - 8:
            raise ValueError(f"{path} is not a safetensors file (header of {n} bytes in a {size}-byte file)")
        try:
            header = json.loads(f.read(n))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise ValueError(f"{path}: header is not JSON ({e})") from None
    if not isinstance(header, dict):
        raise ValueError(f"{path}: header is not a JSON object")
    header.pop("__metadata__", None)
    end = 0
    for (begin, stop), name, entry in sorted((_offsets(path, k, v), k, v) for k, v in header.items()):
        dtype, shape = entry.get("dtype"), entry.get("shape")
        if dtype not in TORCH:
            raise ValueError(f"{path}: tensor {name} has dtype {dtype!r}; readable: {', '.join(TORCH)}")
        if not (isinstance(shape, list) and all(isinstance(d, int) and d >= 0 for d in shape)):
            raise ValueError(f"{path}: tensor {name} has shape {shape!r}")
        if stop - begin != _nbytes(shape, TORCH[dtype]):
            raise ValueError(f"{path}: tensor {name} ({dtype} {shape}) spans {stop - begin} bytes")
        if begin != end:
            raise ValueError(f"{path}: tensor {name} starts at byte {begin}, not {end} (overlap or hole)")
        end = stop
    if 8 + n + end != size:
        raise ValueError(f"{path}: tensors end at byte {end} of a {size - 8 - n}-byte data section (truncated?)")
    return header, 8 + n


def _offsets(path: Path, name: str, entry: object) -> tuple[int, int]:
    offsets = entry.get("data_offsets") if isinstance(entry, dict) else None
    if not (isinstance(offsets, list) and len(offsets) == 2 and all(isinstance(o, int) for o in offsets)
            and 0 <= offsets[0] <= offsets[1]):
        raise ValueError(f"{path}: tensor {name} has data_offsets {offsets!r}")
    return offsets[0], offsets[1]


CHUNK_BYTES = 1 << 26  # a tensor read into another dtype is converted 64 MiB at a time


def read(path: Path, dtype_for: Callable[[str, torch.dtype], torch.dtype] = lambda _k, d: d
         ) -> Iterator[tuple[str, torch.Tensor]]:
    """(name, tensor in dtype_for(name, its file dtype)) for each tensor in file order, read with plain file reads
    (no memory map); a tensor changing dtype is converted in 64 MiB pieces into its final storage."""
    header, start = read_header(path)
    piece = torch.empty(0, dtype=torch.uint8)
    with open(path, "rb") as f:
        for name, entry in sorted(header.items(), key=lambda kv: kv[1]["data_offsets"][0]):
            begin, end = entry["data_offsets"]
            src = TORCH[entry["dtype"]]
            dst = dtype_for(name, src)
            f.seek(start + begin)
            if dst == src:
                out = torch.empty(end - begin, dtype=torch.uint8)
                if f.readinto(out.numpy()) != end - begin:
                    raise ValueError(f"{path}: truncated at tensor {name}")
                yield name, out.view(src).reshape(entry["shape"])
                continue
            out = torch.empty(entry["shape"], dtype=dst)
            flat, size = out.view(-1), torch.empty((), dtype=src).element_size()
            per = max(1, CHUNK_BYTES // size)
            if piece.numel() < min(per, flat.numel()) * size:
                piece = torch.empty(min(per, flat.numel()) * size, dtype=torch.uint8)
            for i in range(0, flat.numel(), per):
                n = min(per, flat.numel() - i) * size
                if f.readinto(piece[:n].numpy()) != n:
                    raise ValueError(f"{path}: truncated at tensor {name}")
                flat[i:i + n // size] = piece[:n].view(src)
            yield name, out
