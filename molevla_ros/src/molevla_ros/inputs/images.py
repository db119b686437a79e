"""Raw camera buffers -> validated RGB arrays of the policy's input size. No ROS types here."""
from __future__ import annotations

import warnings

import numpy as np
from PIL import Image as PILImage

CHANNELS = {"rgb8": 3, "bgr8": 3, "rgba8": 4, "bgra8": 4, "mono8": 1}
RGB_CHANNELS = {"rgb8": (0, 1, 2), "bgr8": (2, 1, 0), "rgba8": (0, 1, 2), "bgra8": (2, 1, 0), "mono8": (0, 0, 0)}
MAX_SIDE = 8192
# Defaults of the frame-size check against the model's input (camera and policy parameters of the same names).
MIN_INPUT_SCALE = 0.5  # each side of a frame must be at least this fraction of the model input's side
MAX_ASPECT_CHANGE = 4.0  # a frame's aspect ratio may differ from the model input's by at most this factor
FILTERS = ("bilinear", "bicubic")  # resize filters (antialiased, as PIL's); a model's spec names the one it used


class ImageError(ValueError):
    """An image that cannot be used; the message says why."""


def decode(encoding: str, height: int, width: int, step: int, data: bytes | memoryview | np.ndarray) -> np.ndarray:
    """An (H, W, 3) uint8 RGB array from a sensor_msgs/Image-style buffer, or ImageError."""
    return _to_rgb(encoding.lower(), _pixels(encoding, height, width, step, data))


def decode_resized(encoding: str, height: int, width: int, step: int, data: bytes | memoryview | np.ndarray,
                   out_width: int, out_height: int, filter: str = "bilinear") -> np.ndarray:
    """`resize(decode(...))` with the same pixels, faster: the resize runs on the buffer in its own channel order
    and the channels are put in RGB order while the small result is copied out (bgr8 640x480 -> 224x224: 0.3 ms
    instead of 2.4 ms)."""
    enc = encoding.lower()
    # Alpha is resized with the colours and left out of the result (channels are resized independently; the
    # strided copy that would drop it first costs 1.3 ms). PIL would premultiply it: decode drops it too.
    return resize(_pixels(encoding, height, width, step, data), out_width, out_height, RGB_CHANNELS[enc], filter)


def check_frame_size(width: int, height: int, out_width: int, out_height: int,
                     min_scale: float = MIN_INPUT_SCALE, max_aspect_change: float = MAX_ASPECT_CHANGE) -> None:
    """ImageError when a width x height frame cannot show the scene an out_width x out_height model input needs:
    a side shorter than `min_scale` x the input's side (a 1x1 or 8x8 frame, upscaled, carries no scene), or an
    aspect ratio more than `max_aspect_change` times wider or taller than the input's (a 4000x1 line scan).
    `min_scale` 0 and `max_aspect_change` 0 disable their check."""
    need_w, need_h = int(np.ceil(min_scale * out_width)), int(np.ceil(min_scale * out_height))
    if width < need_w or height < need_h:
        raise ImageError(f"frame {width}x{height} is too small for the {out_width}x{out_height} model input (each "
                         f"side must be at least {need_w}x{need_h}: min_input_scale {min_scale:g})")
    if max_aspect_change > 0 and height > 0 and width > 0:
        change = (width / height) / (out_width / out_height)
        if not 1.0 / max_aspect_change <= change <= max_aspect_change:
            raise ImageError(f"frame {width}x{height} has aspect ratio {width / height:.3g}, more than "
                             f"{max_aspect_change:g}x away from the {out_width}x{out_height} model input's "
                             f"(max_aspect_change {max_aspect_change:g})")


def _pixels(encoding: str, height: int, width: int, step: int, data: bytes | memoryview | np.ndarray) -> np.ndarray:
    """The buffer as an (H, W, C) view in its own channel order, after validating encoding, size and step."""
    enc = encoding.lower()
    if enc not in CHANNELS:
        raise ImageError(f"unsupported encoding {encoding!r}; supported: {', '.join(CHANNELS)}")
    c = CHANNELS[enc]
    if not (0 < height <= MAX_SIDE and 0 < width <= MAX_SIDE):
        raise ImageError(f"bad image size {width}x{height}")
    if step < width * c:
        raise ImageError(f"row step {step} < width {width} x {c} channels")
    buf = np.frombuffer(data, np.uint8) if not isinstance(data, np.ndarray) else \
        np.ascontiguousarray(data).reshape(-1).view(np.uint8)
    if buf.size != step * height:
        raise ImageError(f"buffer has {buf.size} bytes, expected step {step} x height {height} = {step * height}")
    return buf.reshape(height, step)[:, : width * c].reshape(height, width, c)


def _to_rgb(enc: str, img: np.ndarray) -> np.ndarray:
    if enc == "rgb8":
        return img
    if enc == "bgr8":
        return img[:, :, ::-1]
    if enc == "rgba8":
        return img[:, :, :3]
    if enc == "bgra8":
        return img[:, :, 2::-1]
    return np.repeat(img, 3, axis=2)  # mono8


def resize(img: np.ndarray, width: int, height: int, channels: tuple[int, ...] | None = None,
           filter: str = "bilinear") -> np.ndarray:
    """Resize an (H, W, C) uint8 array to a contiguous (height, width, C') array with an antialiased `filter`, the
    filters of PIL's BILINEAR and BICUBIC resizes (within one grey level of PIL's; two where bicubic upscales), run
    by torch's uint8 kernels (640x480 -> 224x224 bilinear: 0.3 ms, PIL 1.3 ms); only a copy when the size already
    matches. `channels`: the input channels to output, in order (BGR -> RGB: (2, 1, 0)); all of them by default."""
    if filter not in FILTERS:
        raise ValueError(f"resize filter {filter!r} is not one of {FILTERS}")
    order = list(range(img.shape[2]) if channels is None else channels)
    if img.shape[0] == height and img.shape[1] == width:
        return np.ascontiguousarray(img[:, :, order])
    import torch  # here, so that decoding alone does not load torch

    with warnings.catch_warnings():  # a read-only buffer (a received message) is only read here
        warnings.simplefilter("ignore", UserWarning)
        x = torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1)[None]  # a channels-last view, no copy
    out = torch.nn.functional.interpolate(x, size=(height, width), mode=filter, antialias=True, align_corners=False)
    planes = out[0].numpy()  # (C, height, width): stacking the planes is 3x faster than a strided .contiguous()
    return np.stack([planes[c] for c in order], axis=-1)


COMPRESSED = ("jpeg", "png")  # sensor_msgs/CompressedImage formats image_transport's plugins write


def decode_compressed(fmt: str, data: bytes | memoryview) -> np.ndarray:
    """An (H, W, 3) uint8 RGB array from a sensor_msgs/CompressedImage payload, or ImageError.

    `fmt` is the message's format field: "jpeg", "png", or image_transport's "<enc>; jpeg compressed <enc>" form.
    The size is read from the header before any pixel is decoded, so a small file claiming a huge image is refused.
    """
    import io

    if not any(k in fmt.lower() for k in COMPRESSED):
        raise ImageError(f"unsupported compressed format {fmt!r}; supported: {', '.join(COMPRESSED)}")
    try:
        with PILImage.open(io.BytesIO(bytes(data))) as im:
            if im.format.lower() not in COMPRESSED:  # Pillow names the format of every image it opens
                raise ImageError(f"payload is {im.format}, not {' or '.join(COMPRESSED)}")
            w, h = im.size  # Pillow refuses images with a zero side
            if w > MAX_SIDE or h > MAX_SIDE:
                raise ImageError(f"bad image size {w}x{h}")
            if im.mode.startswith(("I", "F")):  # 16/32-bit: depth or thermal; converting to RGB would saturate it
                raise ImageError(f"{im.format} with {im.mode} pixels is not a colour image (a depth image?); "
                                 f"encodings: {', '.join(CHANNELS)}")
            return np.asarray(im.convert("RGB"))
    except ImageError:
        raise
    except Exception as e:  # truncated or corrupt payloads: PIL raises several types
        raise ImageError(f"cannot decode {fmt!r} image: {e}") from None
