"""Datasets, decoded once into uint8 tensors.

Fashion-MNIST and MNIST are read from their IDX files directly (no
torchvision on the default path: importing it costs ~6 s); CIFAR-10 and image
folders go through torchvision for users who have it. Nothing here converts
samples one at a time during training: train.py slices batches out of these
tensors and converts them on the device.
"""
from __future__ import annotations

import gzip
import math
import os
import struct
import threading
from pathlib import Path
from typing import NamedTuple

FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                   "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
DIGITS = tuple(str(d) for d in range(10))
IDX_FILES = {"train_images": "train-images-idx3-ubyte", "train_labels": "train-labels-idx1-ubyte",
             "test_images": "t10k-images-idx3-ubyte", "test_labels": "t10k-labels-idx1-ubyte"}
# Where Debian's packages dataset-fashion-mnist (and dataset-mnist) put the files.
DEBIAN_DIRS = {"fashion-mnist": "/usr/share/datasets/fashion-mnist", "mnist": "/usr/share/datasets/mnist"}
TORCHVISION_DIRS = {"fashion-mnist": "FashionMNIST", "mnist": "MNIST"}


class DataError(Exception):
    """A dataset that cannot be found or read; the message says what to do."""


class Dataset(NamedTuple):
    name: str
    source: str  # where it was read from, for the run header
    train_images: object  # torch.uint8, N x C x H x W
    train_labels: object  # torch.int64, N
    test_images: object
    test_labels: object
    classes: tuple[str, ...]

    @property
    def sample_shape(self) -> tuple[int, int, int]:
        return tuple(self.train_images.shape[1:])


def load(name: str, data_dir: str | None = None) -> Dataset:
    """The dataset named in a recipe (`fashion-mnist`, `mnist`, `cifar10`, `imagefolder:PATH`)."""
    if name in ("fashion-mnist", "mnist"):
        return _load_idx_dataset(name, data_dir)
    if name == "cifar10":
        return _load_cifar10(data_dir)
    if name.startswith("imagefolder:"):
        return _load_image_folder(Path(name.split(":", 1)[1]))
    raise DataError(f"unknown dataset {name!r}: use fashion-mnist, mnist, cifar10 or imagefolder:PATH")


# --- IDX files (Fashion-MNIST, MNIST) ---------------------------------------
def candidate_dirs(name: str, data_dir: str | None) -> list[Path]:
    """Where to look, in order: --data alone when given; else $SPECC_DATA, Debian's package,
    torchvision's usual roots. --data names the data to use, so it never falls back elsewhere."""
    if data_dir:
        return _under(Path(data_dir), name)
    dirs = _under(Path(os.environ["SPECC_DATA"]), name) if os.environ.get("SPECC_DATA") else []
    dirs.append(Path(DEBIAN_DIRS[name]))
    for root in (Path("data"), Path("../data"), Path.home() / "data"):  # d2l uses ../data
        dirs.append(root / TORCHVISION_DIRS[name] / "raw")
    return dirs


def _under(root: Path, name: str) -> list[Path]:
    """A data root holds the files itself, in a folder named after the dataset, or in torchvision's layout."""
    return [root, root / name, root / TORCHVISION_DIRS[name] / "raw"]


def find_idx_files(directory: Path) -> dict[str, Path] | None:
    found = {}
    for key, stem in IDX_FILES.items():
        path = next((directory / f for f in (stem + ".gz", stem) if (directory / f).is_file()), None)
        if path is None:
            return None
        found[key] = path
    return found


def _load_idx_dataset(name: str, data_dir: str | None) -> Dataset:
    looked = candidate_dirs(name, data_dir)
    files, where = next(((f, d) for d in looked if (f := find_idx_files(d))), (None, None))
    if files is None and data_dir:
        raise DataError(_missing_in_data_dir(name, data_dir, looked))
    if files is None:
        where = _download_with_torchvision(name)
        files = find_idx_files(where) if where else None
    if files is None:
        raise DataError(_missing_message(name, looked))
    arrays = {key: read_idx(path) for key, path in files.items()}
    _check_idx_arrays(arrays, files)
    classes = FASHION_CLASSES if name == "fashion-mnist" else DIGITS
    return Dataset(name, str(where), arrays["train_images"].unsqueeze(1), arrays["train_labels"].long(),
                   arrays["test_images"].unsqueeze(1), arrays["test_labels"].long(), classes)


def _check_idx_arrays(arrays: dict, files: dict[str, Path]) -> None:
    """N x rows x cols images and N labels in 0..9 per split, N > 0, one image size for both splits."""
    for split in ("train", "test"):
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        image_file, label_file = files[f"{split}_images"], files[f"{split}_labels"]
        if images.dim() != 3 or 0 in images.shape[1:]:
            raise DataError(f"{image_file}: images must be N x rows x columns (3 dimensions), but its header "
                            f"says {'x'.join(map(str, images.shape))}")
        if labels.dim() != 1:
            raise DataError(f"{label_file}: labels must be one value per example (1 dimension), but its header "
                            f"says {'x'.join(map(str, labels.shape))}")
        if images.shape[0] == 0:
            raise DataError(f"{image_file}: holds no examples")
        if images.shape[0] != labels.shape[0]:
            raise DataError(f"{image_file} holds {images.shape[0]} images but {label_file} holds "
                            f"{labels.shape[0]} labels")
        if int(labels.max()) > 9:
            raise DataError(f"{label_file}: label {int(labels.max())} is outside 0..9")
    train, test = arrays["train_images"].shape[1:], arrays["test_images"].shape[1:]
    if train != test:
        raise DataError(f"{files['test_images']} holds {'x'.join(map(str, test))} images but "
                        f"{files['train_images']} holds {'x'.join(map(str, train))}")


# --- reading ahead ----------------------------------------------------------------
# Decompressed bytes by path, with the (size, mtime) they were read at: a file changed since is read again.
_read_ahead: dict[Path, tuple[tuple[int, int], bytes]] = {}
_reader: threading.Thread | None = None


def read_ahead(name: str, data_dir: str | None) -> None:
    """Starts reading and decompressing the dataset's IDX files in a thread, which `load` then finds
    done: zlib releases the GIL, so the work runs on a second core while `import torch` (a few seconds
    of Python) runs on the first. Only what succeeds is kept; `load` redoes (and reports) the rest."""
    global _reader
    if name not in DEBIAN_DIRS or (_reader is not None and _reader.is_alive()):
        return

    def read_all():
        files = next((f for d in candidate_dirs(name, data_dir) if (f := find_idx_files(d))), None)
        for path in (files or {}).values():
            try:
                _read_ahead[path] = (_signature(path), _decompressed(path, path.read_bytes()))
            except (OSError, DataError):
                return

    _reader = threading.Thread(target=read_all, name="specc-read-ahead", daemon=True)
    _reader.start()


def _signature(path: Path) -> tuple[int, int]:
    info = path.stat()
    return info.st_size, info.st_mtime_ns


def _read_bytes(path: Path) -> bytes:
    """The file's decompressed bytes: from the thread that read ahead, or read now."""
    if _reader is not None:
        _reader.join()
    signature, raw = _read_ahead.pop(path, (None, None))
    try:
        if raw is not None and signature == _signature(path):
            return raw
        raw = path.read_bytes()
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror or exc}") from None
    return _decompressed(path, raw)


def _decompressed(path: Path, raw: bytes) -> bytes:
    if raw[:2] != b"\x1f\x8b":
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError) as exc:
        raise DataError(f"{path}: corrupted or truncated gzip data ({exc})") from None


def read_idx(path: Path):
    """An IDX file (gzipped or not) as a uint8 tensor, after checking its header and length."""
    import torch
    raw = _read_bytes(path)
    if len(raw) < 4:
        raise DataError(f"{path}: too short to be an IDX file ({len(raw)} bytes)")
    zero, type_code, ndim = struct.unpack(">HBB", raw[:4])
    if zero != 0 or type_code != 0x08 or not 1 <= ndim <= 4:
        raise DataError(f"{path}: not an IDX file of unsigned bytes (magic {raw[:4].hex()}, "
                        f"expected 00000801 for labels or 00000803 for images)")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{path}: truncated header")
    dims = struct.unpack(f">{ndim}I", raw[4:header])
    size = math.prod(dims)
    if len(raw) - header != size:
        raise DataError(f"{path}: holds {len(raw) - header:,} data bytes but its header "
                        f"({'x'.join(map(str, dims))}) promises {size:,}: the file is truncated or corrupted")
    if size == 0:  # frombuffer refuses an empty buffer; the dataset check names the empty file
        return torch.zeros(dims, dtype=torch.uint8)
    return torch.frombuffer(bytearray(raw), dtype=torch.uint8, offset=header).view(*dims)


def _download_with_torchvision(name: str) -> Path | None:
    """torchvision's download, for users whose network allows it; None when it fails."""
    try:
        import socket
        socket.create_connection(("ossci-datasets.s3.amazonaws.com", 443), timeout=3).close()
        import torchvision
    except (OSError, ImportError):
        return None
    root = Path(os.environ.get("SPECC_DATA") or "data")
    cls = torchvision.datasets.FashionMNIST if name == "fashion-mnist" else torchvision.datasets.MNIST
    try:
        cls(str(root), train=True, download=True)
        cls(str(root), train=False, download=True)
    except Exception:  # any network or mirror failure: fall back to the instructions
        return None
    return root / TORCHVISION_DIRS[name] / "raw"


def _missing_in_data_dir(name: str, data_dir: str, looked: list[Path]) -> str:
    """--data DIR without the four files: name the ones missing from the closest candidate."""
    present = lambda d: sum(any((d / f).is_file() for f in (s, s + ".gz")) for s in IDX_FILES.values())
    best = max(looked, key=present)
    package = "dataset-fashion-mnist" if name == "fashion-mnist" else "dataset-mnist"
    if present(best) == 0:
        what = f"holds no {name} IDX files (looked in {', '.join(map(str, dict.fromkeys(looked)))})"
    else:
        missing = [s for s in IDX_FILES.values() if not any((best / f).is_file() for f in (s, s + ".gz"))]
        what = "lacks " + ", ".join(f"{best / s}[.gz]" for s in missing)
    return (f"--data {data_dir} {what}. Put the four IDX files in a directory and pass --data DIR, or leave out "
            f"--data to use $SPECC_DATA or Debian's copy (`sudo apt-get install {package}`).")


def _missing_message(name: str, looked: list[Path]) -> str:
    files = ", ".join(stem + ".gz" for stem in IDX_FILES.values())
    package = "dataset-fashion-mnist" if name == "fashion-mnist" else "dataset-mnist"
    where = "\n".join(f"  {d}" for d in dict.fromkeys(looked))
    return (f"{name} not found. Looked in:\n{where}\n"
            f"Get it with `sudo apt-get install {package}` (Debian/Ubuntu), or put the four IDX files "
            f"({files}) in a directory and pass --data DIR or set SPECC_DATA=DIR.")


# --- torchvision datasets ------------------------------------------------------
def _torchvision():
    try:
        import torchvision
    except Exception as exc:  # missing, or built for another torch (its compiled ops fail to load)
        raise DataError(f"this dataset needs torchvision, which cannot be imported here ({exc}); "
                        f"`pip install torchvision` for your torch build") from None
    return torchvision


def _load_cifar10(data_dir: str | None) -> Dataset:
    import torch
    torchvision = _torchvision()
    root = data_dir or os.environ.get("SPECC_DATA") or "data"
    try:
        train = torchvision.datasets.CIFAR10(root, train=True, download=False)
        test = torchvision.datasets.CIFAR10(root, train=False, download=False)
    except RuntimeError as exc:
        raise DataError(f"CIFAR-10 not found under {root} ({exc}); download it with torchvision "
                        f"(`torchvision.datasets.CIFAR10('{root}', download=True)`) or pass --data DIR") from None
    as_tensors = lambda ds: (torch.from_numpy(ds.data).permute(0, 3, 1, 2).contiguous(),
                             torch.tensor(ds.targets, dtype=torch.long))
    return Dataset("cifar10", root, *as_tensors(train), *as_tensors(test), tuple(train.classes))


def _load_image_folder(root: Path) -> Dataset:
    """PATH/train/<class>/*.png and PATH/test/<class>/*.png, decoded once to uint8 at the first image's size."""
    import torch
    torchvision = _torchvision()
    splits = {}
    for split in ("train", "test"):
        if not (root / split).is_dir():
            raise DataError(f"imagefolder:{root} needs {root / split}/<class name>/<images>")
        folder = torchvision.datasets.ImageFolder(str(root / split))
        if not folder.samples:
            raise DataError(f"{root / split} holds no images")
        splits[split] = folder
    first = splits["train"][0][0]
    size = (first.height, first.width)
    to_tensor = torchvision.transforms.v2.functional.pil_to_tensor
    resize = torchvision.transforms.v2.functional.resize

    def decode(folder):
        images = [resize(to_tensor(img.convert("RGB")), list(size), antialias=True) for img, _ in folder]
        return torch.stack(images), torch.tensor(folder.targets, dtype=torch.long)

    if splits["train"].classes != splits["test"].classes:
        raise DataError(f"{root}/train and {root}/test have different class folders")
    return Dataset(f"imagefolder:{root}", str(root), *decode(splits["train"]), *decode(splits["test"]),
                   tuple(splits["train"].classes))
