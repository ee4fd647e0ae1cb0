"""`specc eval` and `specc predict`: a finished run's checkpoint on the test set or on image files."""
from __future__ import annotations

from pathlib import Path

import torch

from . import checkpoint, data
from ..lang.errors import TrainError
from .loop import make_adapter, pick_device, predict_classes


def load_run(run_dir: str, which: str, device: torch.device):
    """(network, model in eval mode, checkpoint metadata) of `which` (best or last) in `run_dir`."""
    path = Path(run_dir) / f"{which}.safetensors"
    try:
        meta, tensors = checkpoint.load(path)
        net = checkpoint.network(meta, path)
        checkpoint.check_classes(path, meta, net)
        model = net.build(device=device)
        checkpoint.load_model(path, tensors, model)
    except checkpoint.CheckpointError as exc:
        raise TrainError(str(exc)) from None
    if meta["options"].get("channels_last") and len(net.input_shape) == 3:  # the kernels the run was tested with
        model = model.to(memory_format=torch.channels_last)
    return net, model.eval(), meta


def evaluate(run_dir: str, which: str = "best", data_dir: str | None = None, device: str = "auto") -> dict:
    """Test accuracy, per-class accuracy and the confusion matrix (rows: true class)."""
    dev = pick_device(device)
    net, model, meta = load_run(run_dir, which, dev)
    try:  # by default the data the run was trained on, from where it was found then
        ds = data.load(meta["recipe"]["data"], data_dir or meta["options"]["data_dir"])
    except data.DataError as exc:
        raise TrainError(str(exc)) from None
    adapt = make_adapter(ds.sample_shape, net.input_shape, meta["recipe"]["channels"])
    preds = predict_classes(model, adapt, ds.test_images.to(dev)).cpu()
    k = len(ds.classes)
    confusion = torch.bincount(ds.test_labels * k + preds, minlength=k * k).view(k, k)
    per_class = (confusion.diag().double() / confusion.sum(1).clamp(min=1)).tolist()
    return {"checkpoint": str(Path(run_dir) / f"{which}.safetensors"), "epoch": meta["epoch"],
            "accuracy": confusion.diag().sum().item() / max(1, len(preds)), "classes": list(ds.classes),
            "per_class": per_class, "confusion": confusion.tolist(), "examples": len(preds)}


# Datasets whose items are light on a dark background (an ink-on-paper photo is the opposite).
LIGHT_ON_DARK = ("fashion-mnist", "mnist")
# A border this light (0-255 mean) on such a run's image suggests a dark item on a light background.
LIGHT_BORDER = 128


@torch.inference_mode()
def predict(run_dir: str, images: list[str], top: int = 3, which: str = "best", device: str = "auto",
            invert: bool = False) -> dict:
    """Top-`top` classes with probabilities for each image file, and how the images were prepared."""
    dev = pick_device(device)
    net, model, meta = load_run(run_dir, which, dev)
    classes, dataset = meta["classes"], meta["recipe"]["data"]
    results = []
    for path in images:
        pixels = read_image(path, net.input_shape)
        if invert:
            pixels = 255 - pixels
        adapt = make_adapter(tuple(pixels.shape), net.input_shape, meta["recipe"]["channels"])
        probs = torch.softmax(model(adapt(pixels.unsqueeze(0).to(dev))).float(), 1)[0]
        values, indices = probs.topk(min(top, len(classes)))
        results.append({"image": path, "size": list(pixels.shape[1:]),
                        "light_border": dataset in LIGHT_ON_DARK and border_mean(pixels) >= LIGHT_BORDER,
                        "top": [(classes[i], p) for i, p in zip(indices.tolist(), values.tolist())]})
    return {"preparation": preparation(net.input_shape, dataset, invert), "results": results}


def preparation(input_shape: tuple[int, ...], dataset: str, invert: bool) -> str:
    """What predict does to an image before the network sees it, in one sentence."""
    if len(input_shape) == 3:
        colour = "made grey-scale" if input_shape[0] == 1 else "converted to RGB"
        size = f"resized to {input_shape[1]}x{input_shape[2]}"
    else:
        colour, size = "made grey-scale", f"flattened to {input_shape[0]} values"
    done = f"each image is {colour}" + (", inverted" if invert else "") + f" and {size}, the spec's input"
    if dataset not in LIGHT_ON_DARK:
        return done
    if invert:
        return done + f"; {dataset} items are light on a dark background"
    return done + (f"; {dataset} items are light on a dark background: pass --invert for photos of dark "
                   f"items on a light background")


def border_mean(pixels: torch.Tensor) -> float:
    """The mean value (0-255) of an image's outermost rows and columns, over its channels."""
    x = pixels.float()
    edges = torch.cat([x[:, 0].flatten(), x[:, -1].flatten(), x[:, :, 0].flatten(), x[:, :, -1].flatten()])
    return edges.mean().item()


# Bigger images are refused before decoding: 15000x15000 would need ~675 MB as RGB, for a 28x28 input.
MAX_PIXELS = 50_000_000


def read_image(path: str, input_shape: tuple[int, ...]) -> torch.Tensor:
    """An image file as uint8 C x H x W with the spec's channels (grey or RGB), at its own size."""
    import warnings
    from PIL import Image, UnidentifiedImageError
    channels = input_shape[0] if len(input_shape) == 3 else 1
    try:
        with warnings.catch_warnings():
            # PIL warns above its own limit (and raises at twice it) while reading the header alone.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img_file = Image.open(path)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise TrainError(f"image {path} is too large to classify ({exc})") from None
    except (OSError, UnidentifiedImageError) as exc:
        raise TrainError(f"cannot read image {path}: {exc}") from None
    try:
        with img_file as img:
            if img.width * img.height > MAX_PIXELS:
                raise TrainError(f"image {path} is {img.width}x{img.height}, too large to classify "
                                 f"(over {MAX_PIXELS:,} pixels)")
            img = img.convert("L" if channels == 1 else "RGB")
            pixels = torch.frombuffer(bytearray(img.tobytes()), dtype=torch.uint8)
            return pixels.view(img.height, img.width, -1).permute(2, 0, 1).contiguous()
    except (OSError, UnidentifiedImageError) as exc:
        raise TrainError(f"cannot read image {path}: {exc}") from None
