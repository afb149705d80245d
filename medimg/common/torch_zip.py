"""Read a PyTorch ``.pth``/``.pt`` state dict without unpickling it.

Why no unpickler: a ``torch.save`` file is a zip whose ``data.pkl`` is a pickle, and loading a
pickle *runs* whatever it names (``os.system``, ``builtins.eval``, ...). ``torch.load(...,
weights_only=True)`` narrows that with an allow-list inside the real unpickler, which has had
bypasses; medimg's rule is to never hand a user's file to any unpickler. Instead this module
walks the opcodes with :func:`pickletools.genops` (a parser: it decodes, it never calls) and
interprets only what a state dict of tensors needs: containers, numbers, strings and a handful of
known names (``collections.OrderedDict``, ``torch._utils._rebuild_tensor_v2``/``_v3``,
``torch._utils._rebuild_parameter``, ``torch.Size``, the ``torch.*Storage`` classes and dtypes).
Those names are never imported or called; each is a tag telling this interpreter what to build.
Any other name or opcode is a :class:`FormatError` before anything else happens.

Tensor data come straight from the zip's raw storage records (``<root>/data/<key>``) as numpy
arrays, laid out with the size/stride/offset recorded in the pickle (bounds-checked, then copied),
and only at the end become torch tensors. Tensors that shared one storage in the file get
separate copies here.

File layout (torch >= 1.6): ``<root>/data.pkl``, ``<root>/data/<key>``, ``<root>/byteorder``
(``little`` or ``big``; absent in older files, meaning little), ``<root>/version``. The older
non-zip format is refused. A checkpoint that wraps the state dict in a dict under
``state_dict``, ``model`` or ``model_state_dict`` (next to epochs, learning rates, ...) is unwrapped.
"""

from __future__ import annotations

import math
import pickletools
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from medimg.common.errors import FormatError, InputError, expected

if TYPE_CHECKING:
    import torch

__all__ = ["WRAPPER_KEYS", "is_torch_zip", "read_state_dict"]

WRAPPER_KEYS = ("state_dict", "model", "model_state_dict")

# torch dtype name -> numpy dtype of the stored bytes (little-endian; bfloat16 kept as raw bits).
_NUMPY_OF_DTYPE = {
    "float64": "<f8",
    "float32": "<f4",
    "float16": "<f2",
    "bfloat16": "<u2",
    "complex128": "<c16",
    "complex64": "<c8",
    "int64": "<i8",
    "int32": "<i4",
    "int16": "<i2",
    "int8": "i1",
    "uint64": "<u8",
    "uint32": "<u4",
    "uint16": "<u2",
    "uint8": "u1",
    "bool": "u1",
}
_DTYPE_OF_STORAGE = {
    "DoubleStorage": "float64",
    "FloatStorage": "float32",
    "HalfStorage": "float16",
    "BFloat16Storage": "bfloat16",
    "ComplexDoubleStorage": "complex128",
    "ComplexFloatStorage": "complex64",
    "LongStorage": "int64",
    "IntStorage": "int32",
    "ShortStorage": "int16",
    "CharStorage": "int8",
    "ByteStorage": "uint8",
    "BoolStorage": "bool",
    "UntypedStorage": "uint8",  # raw bytes; _rebuild_tensor_v3 names the element dtype
}
_MAX_EXPANDED_ELEMENTS = 2**28  # a tensor may repeat (stride 0) its storage up to this many elements
# Tensors built from a file may total at most this many times the file's size (views of shared
# or expanded storages); a real state dict stays near 1x, a crafted one could claim terabytes.
_OUTPUT_PER_FILE_BYTE = 4
_MIN_OUTPUT_BUDGET = 64 << 20
_DTYPE_ALIASES = {"float": "float32", "double": "float64", "half": "float16", "long": "int64", "int": "int32", "short": "int16"}

# Data-only opcodes pushed as decoded by pickletools (nothing to interpret).
_LITERALS = frozenset(
    "NONE NEWTRUE NEWFALSE INT BININT BININT1 BININT2 LONG LONG1 LONG4 FLOAT BINFLOAT "
    "UNICODE SHORT_BINUNICODE BINUNICODE BINUNICODE8 SHORT_BINBYTES BINBYTES BINBYTES8".split()
)


@dataclass(frozen=True)
class _Name:
    """A whitelisted global: a tag for the interpreter, never imported."""

    kind: str  # "ordered_dict" | "rebuild_v2" | "rebuild_v3" | "rebuild_parameter" | "size" | "storage" | "dtype"
    qualified: str
    dtype: str = ""


@dataclass(frozen=True)
class _Storage:
    key: str
    dtype: str
    numel: int  # elements of ``dtype`` (bytes for UntypedStorage)


@dataclass(frozen=True)
class _Tensor:
    array: np.ndarray  # C-contiguous, native byte order; bfloat16 as uint16 bits
    dtype: str


def _whitelisted(module: str, name: str) -> _Name | None:
    qualified = f"{module}.{name}"
    if (module, name) == ("collections", "OrderedDict"):
        return _Name("ordered_dict", qualified)
    if module == "torch._utils" and name in ("_rebuild_tensor_v2", "_rebuild_tensor_v3", "_rebuild_parameter"):
        return _Name({"_rebuild_tensor_v2": "rebuild_v2", "_rebuild_tensor_v3": "rebuild_v3"}.get(name, "rebuild_parameter"), qualified)
    if (module, name) == ("torch", "Size"):
        return _Name("size", qualified)
    if module in ("torch", "torch.storage") and name in _DTYPE_OF_STORAGE:
        if module == "torch" or name == "UntypedStorage":
            return _Name("storage", qualified, _DTYPE_OF_STORAGE[name])
    if module == "torch" and _DTYPE_ALIASES.get(name, name) in _NUMPY_OF_DTYPE:
        return _Name("dtype", qualified, _DTYPE_ALIASES.get(name, name))
    return None


def is_torch_zip(path: Path | str) -> bool:
    """Whether ``path`` is a zip-format PyTorch file (a zip holding ``<root>/data.pkl``); reads no pickle."""
    try:
        with zipfile.ZipFile(path) as archive:
            return _root_of(archive) is not None
    except (OSError, zipfile.BadZipFile, ValueError):
        return False


def _root_of(archive: zipfile.ZipFile) -> str | None:
    roots = [name[: -len("/data.pkl")] for name in archive.namelist() if name.endswith("/data.pkl") and name.count("/") == 1]
    return roots[0] if len(roots) == 1 else None


def read_state_dict(path: Path | str) -> dict[str, "torch.Tensor"]:
    """Read the tensors of a ``torch.save``'d state dict without executing its pickle.

    Parameters
    ----------
    path : a zip-format PyTorch file (``torch.save`` since torch 1.6), any suffix

    Returns
    -------
    tensors : dict of str to Tensor, on the CPU, with the saved dtypes and shapes (contiguous
        copies; ``requires_grad`` is dropped). A checkpoint's state dict under one of
        :data:`WRAPPER_KEYS` is returned unwrapped.

    Raises :class:`InputError` for a missing file and :class:`FormatError` for anything else than
    a plain tensor state dict: legacy (non-zip) files, pickles naming other globals (nothing is
    executed), unknown opcodes, out-of-range tensor layouts, unsupported dtypes.
    """
    import torch

    tensors = _read_tensors(Path(path))
    result = {}
    for key, tensor in tensors.items():
        value = torch.from_numpy(tensor.array)
        result[key] = value.view(torch.bfloat16) if tensor.dtype == "bfloat16" else value
    return result


def _read_tensors(path: Path) -> dict[str, _Tensor]:
    if not path.exists():
        raise InputError(expected("an existing weights file", f"'{path}' which does not exist"))
    if not zipfile.is_zipfile(path):
        raise FormatError(
            expected(
                "a zip-format PyTorch file (torch >= 1.6)",
                f"'{path.name}' which is not a zip (a legacy torch file or something else)",
            )
        )
    try:
        with zipfile.ZipFile(path) as archive:
            root = _root_of(archive)
            if root is None:
                raise FormatError(expected("a zip-format PyTorch file (torch >= 1.6)", f"'{path.name}', a zip without one <root>/data.pkl"))
            big_endian = _big_endian(archive, root, path.name)
            budget = max(_OUTPUT_PER_FILE_BYTE * path.stat().st_size, _MIN_OUTPUT_BUDGET)
            reader = _PickleReader(archive, root, path.name, big_endian, output_budget=budget)
            loaded = reader.run(_read_record(archive, archive.getinfo(f"{root}/data.pkl"), path))
    except (zipfile.BadZipFile, OSError, EOFError) as error:
        raise FormatError(expected("a readable zip-format PyTorch file", f"'{path.name}' ({type(error).__name__}: {error})")) from None
    return _state_dict_of(loaded, path.name)


def _read_record(archive: zipfile.ZipFile, info: zipfile.ZipInfo, path: Path, nbytes: int | None = None) -> bytes:
    """The bytes of one zip record, refusing what ``torch.save`` never writes.

    torch.save stores records uncompressed and unencrypted; a compressed record could expand
    without bound (a zip bomb), so only stored records no larger than the file itself are read.
    """
    if info.flag_bits & 0x1:
        raise FormatError(expected(f"unencrypted records in '{path.name}'", f"an encrypted record {info.filename!r}"))
    if info.compress_type != zipfile.ZIP_STORED:
        raise FormatError(expected(f"uncompressed records (as torch.save writes) in '{path.name}'", f"a compressed record {info.filename!r}"))
    if info.file_size > path.stat().st_size:
        raise FormatError(expected(f"records no larger than the file '{path.name}'", f"{info.filename!r} claiming {info.file_size} bytes"))
    with archive.open(info) as handle:
        return handle.read(nbytes if nbytes is not None else info.file_size)


def _big_endian(archive: zipfile.ZipFile, root: str, name: str) -> bool:
    try:
        order = archive.read(f"{root}/byteorder").decode("ascii", "replace").strip()
    except KeyError:
        return False  # written before torch recorded it: little-endian machines
    if order not in ("little", "big"):
        raise FormatError(expected("byteorder 'little' or 'big'", f"{order[:20]!r} in '{name}'"))
    return order == "big"


def _state_dict_of(loaded: Any, name: str) -> dict[str, _Tensor]:
    def is_state_dict(value: Any) -> bool:
        return isinstance(value, dict) and all(isinstance(k, str) and isinstance(v, _Tensor) for k, v in value.items())

    if is_state_dict(loaded) and loaded:
        return loaded
    if isinstance(loaded, dict):
        for key in WRAPPER_KEYS:
            if is_state_dict(loaded.get(key)) and loaded[key]:
                return loaded[key]
        keys = ", ".join(repr(k) for k in list(loaded)[:6]) + (", ..." if len(loaded) > 6 else "")
        got = f"a dict with keys {keys} in '{name}'" if loaded else f"an empty dict in '{name}'"
    else:
        got = f"a {type(loaded).__name__} in '{name}'"
    wrappers = ", ".join(repr(k) for k in WRAPPER_KEYS)
    raise FormatError(expected(f"a dict of tensors (or a checkpoint holding one under {wrappers})", got))


def _brief(value: Any) -> str:
    """A short, bounded description of an untrusted value for an error message."""
    if isinstance(value, _Name):
        return value.qualified
    if isinstance(value, (tuple, list, dict)):
        if len(value) <= 8 and all(isinstance(item, (int, float, str, type(None))) for item in value):
            return repr(value)[:80]
        return f"a {type(value).__name__} of {len(value)}"
    if isinstance(value, (int, float, bool, type(None))) or (isinstance(value, str) and len(value) <= 40):
        return repr(value)[:60]
    return f"a {type(value).__name__.lstrip('_')}"


class _PickleReader:
    """Interprets the opcodes of a state-dict pickle; see the module docstring."""

    def __init__(self, archive: zipfile.ZipFile, root: str, name: str, big_endian: bool, *, output_budget: int) -> None:
        self.archive, self.root, self.name, self.big_endian = archive, root, name, big_endian
        self.output_budget = output_budget  # bytes the tensors built from this file may still take
        self.storages: dict[str, _Storage] = {}
        self.storage_bytes: dict[str, bytes] = {}

    def refuse(self, what: str) -> FormatError:
        return FormatError(expected(f"a plain tensor state dict in '{self.name}'", f"{what}; refused, nothing was executed"))

    def run(self, data: bytes) -> Any:
        stack: list[Any] = []
        marks: list[list[Any]] = []
        memo: dict[int, Any] = {}

        def pop_mark() -> list[Any]:
            nonlocal stack
            items = stack
            stack = marks.pop()
            return items

        try:
            for opcode, arg, _position in pickletools.genops(data):
                op = opcode.name
                if op in _LITERALS:
                    stack.append(arg)
                elif op in ("PROTO", "FRAME"):
                    pass
                elif op == "STOP":
                    if len(stack) != 1 or marks:
                        raise self.refuse("a malformed pickle (stack not empty at STOP)")
                    return stack.pop()
                elif op == "MARK":
                    marks.append(stack)
                    stack = []
                elif op == "POP":
                    stack.pop()
                elif op == "POP_MARK":
                    pop_mark()
                elif op == "DUP":
                    stack.append(stack[-1])
                elif op == "EMPTY_DICT":
                    stack.append({})
                elif op == "EMPTY_LIST":
                    stack.append([])
                elif op == "EMPTY_TUPLE":
                    stack.append(())
                elif op in ("TUPLE1", "TUPLE2", "TUPLE3"):
                    count = int(op[-1])
                    items = tuple(stack[-count:])
                    if len(items) != count:
                        raise IndexError(op)
                    del stack[-count:]
                    stack.append(items)
                elif op == "TUPLE":
                    items = pop_mark()  # before naming ``stack``: pop_mark rebinds it
                    stack.append(tuple(items))
                elif op == "LIST":
                    items = pop_mark()
                    stack.append(items)
                elif op == "DICT":
                    items = pop_mark()
                    stack.append(self.as_dict(items))
                elif op == "APPEND":
                    value = stack.pop()
                    self.target(stack, list).append(value)
                elif op == "APPENDS":
                    items = pop_mark()
                    self.target(stack, list).extend(items)
                elif op == "SETITEM":
                    value = stack.pop()
                    key = stack.pop()
                    self.target(stack, dict).update(self.as_dict([key, value]))
                elif op == "SETITEMS":
                    items = pop_mark()
                    self.target(stack, dict).update(self.as_dict(items))
                elif op in ("GET", "BINGET", "LONG_BINGET"):
                    stack.append(memo[arg])
                elif op in ("PUT", "BINPUT", "LONG_BINPUT"):
                    memo[arg] = stack[-1]
                elif op == "MEMOIZE":
                    memo[len(memo)] = stack[-1]
                elif op == "GLOBAL":
                    module, _, name = str(arg).partition(" ")
                    stack.append(self.global_(module, name))
                elif op == "STACK_GLOBAL":
                    name = stack.pop()
                    module = stack.pop()
                    if not (isinstance(module, str) and isinstance(name, str)):
                        raise self.refuse("a STACK_GLOBAL without string names")
                    stack.append(self.global_(module, name))
                elif op == "BINPERSID":
                    stack.append(self.storage(stack.pop()))
                elif op == "REDUCE":
                    args = stack.pop()
                    function = stack.pop()
                    stack.append(self.reduce(function, args))
                elif op == "BUILD":
                    stack.pop()  # the state: an OrderedDict's ``_metadata`` (module versions), not needed
                    if not isinstance(stack[-1], dict):
                        raise self.refuse(f"object state set on a {type(stack[-1]).__name__}")
                else:
                    raise self.refuse(f"a pickle with opcode {op}")
        except FormatError:
            raise
        except (ValueError, IndexError, KeyError, TypeError, RecursionError) as error:
            # pickletools raises ValueError on truncated/garbled bytes; the others are malformed stacks/memos
            raise FormatError(expected(f"a well-formed state-dict pickle in '{self.name}'", f"{type(error).__name__}: {error}")) from None
        raise FormatError(expected(f"a well-formed state-dict pickle in '{self.name}'", "no STOP opcode"))

    def global_(self, module: str, name: str) -> _Name:
        found = _whitelisted(module, name)
        if found is None:
            raise self.refuse(f"a pickle that references {module}.{name}")
        return found

    def target(self, stack: list[Any], kind: type) -> Any:
        if not stack or not isinstance(stack[-1], kind):
            raise self.refuse(f"a pickle that adds items to a {type(stack[-1]).__name__ if stack else 'missing object'}")
        return stack[-1]

    def as_dict(self, items: list[Any]) -> dict[Any, Any]:
        if len(items) % 2:
            raise self.refuse("a pickle with an odd number of dict items")
        keys = items[0::2]
        if not all(isinstance(key, (str, int, float, bool, type(None))) for key in keys):
            raise self.refuse("a pickle with non-scalar dict keys")
        return dict(zip(keys, items[1::2]))

    def storage(self, pid: Any) -> _Storage:
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"):
            raise self.refuse(f"a persistent id other than ('storage', type, key, location, numel): {_brief(pid)}")
        _tag, storage_type, key, _location, numel = pid
        if not (isinstance(storage_type, _Name) and storage_type.kind == "storage"):
            raise self.refuse(f"a storage of type {_brief(storage_type)}")
        if not isinstance(key, str) or type(numel) is not int or numel < 0:
            raise self.refuse(f"a storage with key {_brief(key)} and size {_brief(numel)}")
        storage = _Storage(key, storage_type.dtype, numel)
        known = self.storages.setdefault(key, storage)
        if known != storage:
            raise self.refuse(f"storage {_brief(key)} declared twice with different types or sizes")
        return known

    def reduce(self, function: Any, args: Any) -> Any:
        if not isinstance(function, _Name) or not isinstance(args, tuple):
            raise self.refuse(f"a call of {_brief(function)}")
        if function.kind == "ordered_dict":
            if args == ():
                return {}
            if len(args) == 1 and isinstance(args[0], (list, tuple)) and all(isinstance(p, tuple) and len(p) == 2 for p in args[0]):
                return self.as_dict([item for pair in args[0] for item in pair])
        elif function.kind == "rebuild_v2" and len(args) in (6, 7):
            storage, offset, size, stride, _requires_grad, _hooks = args[:6]
            return self.tensor(storage, offset, size, stride, None)
        elif function.kind == "rebuild_v3" and len(args) in (7, 8):
            storage, offset, size, stride, _requires_grad, _hooks, dtype = args[:7]
            return self.tensor(storage, offset, size, stride, dtype)
        elif function.kind == "rebuild_parameter" and len(args) == 3 and isinstance(args[0], _Tensor):
            return args[0]
        elif function.kind == "size" and len(args) == 1 and isinstance(args[0], tuple):
            return args[0]
        raise self.refuse(f"a call of {function.qualified} with arguments {_brief(args)}")

    def tensor(self, storage: Any, offset: Any, size: Any, stride: Any, dtype: Any) -> _Tensor:
        if not isinstance(storage, _Storage):
            raise self.refuse("a tensor without a storage")
        if dtype is None:
            element = storage.dtype
        elif isinstance(dtype, _Name) and dtype.kind == "dtype":
            if storage.dtype != "uint8":
                raise self.refuse(f"a {dtype.qualified} tensor on a typed storage")
            element = dtype.dtype
        else:
            raise self.refuse(f"a tensor dtype {_brief(dtype)}")
        ints = (offset, *size, *stride) if isinstance(size, tuple) and isinstance(stride, tuple) else None
        if ints is None or len(size) != len(stride) or not all(type(v) is int and v >= 0 for v in ints):
            raise self.refuse(f"a tensor layout offset={_brief(offset)}, size={_brief(size)}, stride={_brief(stride)}")
        numpy_dtype = np.dtype(_NUMPY_OF_DTYPE[element])
        if self.big_endian:
            numpy_dtype = numpy_dtype.newbyteorder(">")
        flat = self.elements(storage, numpy_dtype)
        if math.prod(size) == 0:
            array = np.zeros(size, dtype=numpy_dtype)
        else:
            last = offset + sum((n - 1) * s for n, s in zip(size, stride))
            if last >= flat.size:
                raise self.refuse(f"a tensor of size {_brief(size)} reaching element {last} of a {flat.size}-element storage")
            if math.prod(size) > max(flat.size, _MAX_EXPANDED_ELEMENTS):
                # zero strides (expand) can make a tiny storage claim any size; the copy would fill memory
                raise self.refuse(f"a tensor of size {_brief(size)} repeating a {flat.size}-element storage")
            self.output_budget -= math.prod(size) * numpy_dtype.itemsize
            if self.output_budget < 0:
                raise self.refuse(f"tensors totalling more than {_OUTPUT_PER_FILE_BYTE}x the file's size (a {_brief(size)} tensor went over)")
            view = np.lib.stride_tricks.as_strided(flat[offset:], shape=size, strides=[s * numpy_dtype.itemsize for s in stride], writeable=False)
            array = np.array(view, copy=True, order="C")
        array = array.astype(numpy_dtype.newbyteorder("="), copy=False)
        if element == "bool":
            array = array != 0
        return _Tensor(array, element)

    def elements(self, storage: _Storage, numpy_dtype: np.dtype) -> np.ndarray:
        if storage.key not in self.storage_bytes:
            record = f"{self.root}/data/{storage.key}"
            nbytes = storage.numel * np.dtype(_NUMPY_OF_DTYPE[storage.dtype]).itemsize
            try:
                info = self.archive.getinfo(record)
            except KeyError:
                raise self.refuse(f"a tensor whose data record {_brief(record)} is missing") from None
            if info.file_size < nbytes:
                raise self.refuse(f"storage {storage.key!r} of {nbytes} bytes in a {info.file_size}-byte record")
            self.storage_bytes[storage.key] = _read_record(self.archive, info, Path(self.archive.filename or self.name), nbytes)
        raw = self.storage_bytes[storage.key]
        return np.frombuffer(raw, dtype=numpy_dtype, count=len(raw) // numpy_dtype.itemsize)
