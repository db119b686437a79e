import struct

import numpy as np
import pytest

from molevla_ros.inputs.images import ImageError, check_frame_size, decode, decode_compressed, decode_resized, resize
from molevla_ros.inputs.instructions import InstructionError, is_stop, validate

RGB = np.arange(4 * 5 * 3, dtype=np.uint8).reshape(4, 5, 3)


@pytest.mark.parametrize("enc", ["rgb8", "bgr8", "rgba8", "bgra8"])
def test_decode_colour_encodings(enc):
    src = {"rgb8": RGB, "bgr8": RGB[:, :, ::-1], "rgba8": np.dstack([RGB, np.full((4, 5), 9, np.uint8)]),
           "bgra8": np.dstack([RGB[:, :, ::-1], np.full((4, 5), 9, np.uint8)])}[enc]
    c = src.shape[2]
    padded = np.zeros((4, 5 * c + 3), np.uint8)  # rows padded: step > width * channels
    padded[:, : 5 * c] = src.reshape(4, -1)
    out = decode(enc, 4, 5, 5 * c + 3, padded.tobytes())
    np.testing.assert_array_equal(out, RGB)


def test_decode_mono():
    g = np.arange(20, dtype=np.uint8).reshape(4, 5)
    out = decode("mono8", 4, 5, 5, g.tobytes())
    assert out.shape == (4, 5, 3) and np.all(out[:, :, 0] == g) and np.all(out[:, :, 2] == g)


@pytest.mark.parametrize("args,why", [
    (("yuv422", 4, 5, 10, bytes(40)), "unsupported encoding"),
    (("rgb8", 4, 5, 15, bytes(59)), "expected step"),
    (("rgb8", 4, 5, 12, bytes(48)), "row step"),
    (("rgb8", 0, 5, 15, b""), "bad image size"),
    (("rgb8", 100000, 5, 15, b""), "bad image size"),
])
def test_decode_rejects(args, why):
    with pytest.raises(ImageError, match=why):
        decode(*args)


def _encoded(rgb: np.ndarray, fmt: str) -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format=fmt)
    return buf.getvalue()


def test_decode_compressed():
    rgb = np.random.default_rng(1).integers(0, 255, (48, 64, 3), dtype=np.uint8)
    assert np.array_equal(decode_compressed("png", _encoded(rgb, "PNG")), rgb)  # lossless
    smooth = np.tile(np.linspace(0, 255, 64, dtype=np.uint8)[None, :, None], (48, 1, 3))
    out = decode_compressed("bgr8; jpeg compressed bgr8", _encoded(smooth, "JPEG"))  # image_transport's form
    assert out.shape == (48, 64, 3) and np.abs(out.astype(int) - smooth).max() < 8


def test_decode_compressed_rejects():
    png = _encoded(np.zeros((4, 4, 3), np.uint8), "PNG")
    with pytest.raises(ImageError, match="unsupported compressed format"):
        decode_compressed("theora", png)
    with pytest.raises(ImageError, match="cannot decode"):
        decode_compressed("jpeg", b"\xff\xd8 not a jpeg")
    with pytest.raises(ImageError, match="cannot decode"):
        decode_compressed("png", png[: len(png) // 2])  # truncated
    with pytest.raises(ImageError, match="not jpeg or png"):
        decode_compressed("png", _encoded(np.zeros((4, 4, 3), np.uint8), "BMP"))
    # a tiny PNG whose header claims 9000 x 9000 pixels: refused before any pixel is decoded
    import zlib

    huge = bytearray(png)
    huge[16:24] = (9000).to_bytes(4, "big") * 2
    huge[29:33] = zlib.crc32(bytes(huge[12:29])).to_bytes(4, "big")  # the IHDR chunk's checksum
    with pytest.raises(ImageError, match="bad image size 9000x9000"):
        decode_compressed("png", bytes(huge))


def test_resize():
    big = np.random.default_rng(0).integers(0, 255, (480, 640, 3), dtype=np.uint8)
    assert resize(big, 224, 224).shape == (224, 224, 3)
    assert resize(RGB, 5, 4) is not None and np.array_equal(resize(RGB, 5, 4), RGB)


@pytest.mark.parametrize("shape,size", [((480, 640, 3), (224, 224)), ((480, 640, 1), (96, 96)),
                                        ((224, 224, 3), (96, 96)), ((50, 70, 3), (224, 224)), ((9, 7, 3), (3, 4))])
@pytest.mark.parametrize("name", ["bilinear", "bicubic"])
def test_resize_is_pils_antialiased_filter_within_one_grey_level(shape, size, name):
    """The shipped models were trained on PIL's BILINEAR resize; CogACT resizes the full frame with PIL's BICUBIC
    (Prismatic's image transform). The torch kernels that do it here must give Pillow's pixels up to rounding."""
    from PIL import Image as PILImage

    img = np.random.default_rng(3).integers(0, 256, shape, dtype=np.uint8)
    pil_filter = {"bilinear": PILImage.BILINEAR, "bicubic": PILImage.BICUBIC}[name]
    pil = PILImage.fromarray(img[:, :, 0] if shape[2] == 1 else img).resize(size, pil_filter)
    ref = np.asarray(pil).reshape(size[1], size[0], shape[2])
    out = resize(img, *size, filter=name)
    assert out.shape == ref.shape and out.dtype == np.uint8
    diff = np.abs(out.astype(int) - ref.astype(int))
    upscaled = size[0] > shape[1] or size[1] > shape[0]
    assert diff.max() <= (2 if upscaled and name == "bicubic" else 1)  # bicubic overshoots: rounding near 0 / 255
    assert (diff > 0).mean() < 0.05
    with pytest.raises(ValueError, match="filter"):
        resize(img, *size, filter="nearest")


def test_the_models_own_bicubic_resize_is_pils():
    """A frame given to a CogACT model at another size than its input is resized in the model (preprocess_images,
    float, antialiased bicubic): within one grey level of Pillow's BICUBIC."""
    import torch
    from PIL import Image as PILImage

    from molevla_ros.model.config import VisionConfig
    from molevla_ros.model.mole_vla import resize_images

    img = np.random.default_rng(4).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    ref = np.asarray(PILImage.fromarray(img).resize((224, 224), PILImage.BICUBIC)).astype(float)
    x = resize_images(torch.from_numpy(img)[None], VisionConfig(image_size=224, resize="bicubic"))
    diff = np.abs(x[0].permute(1, 2, 0).numpy() * 255 - ref)
    assert diff.max() <= 1.0 and diff.mean() < 0.3


def test_instruction_validation():
    assert validate("  Pick up\tthe red cube\n") == ("Pick up the red cube", "")
    assert validate("put the cube on the \u00e9tag\u00e8re".encode()) == ("put the cube on the \u00e9tag\u00e8re", "")
    for bad, why in [("", "empty"), ("   \n\t", "empty"), ("x" * 300, "too long"), (b"\xff\xfe", "UTF-8"),
                     (b"a" * 5000, "too long"), ("\x00\x01\x02", "empty")]:
        with pytest.raises(InstructionError, match=why):
            validate(bad)


@pytest.mark.parametrize("raw,text", [
    ("touch the \x1b[2Jred cube", "touch the red cube"),  # clear screen: the whole sequence goes, no "[2J" left
    ("\x1b]0;title\x07touch the red cube", "touch the red cube"),  # OSC window title
    ("touch the\x1b[1;31m red\x1b[0m cube", "touch the red cube"),  # colours
    ("pi\u200bck up the red cube", "pick up the red cube"),  # zero-width space inside a word
    ("pick\x00up the red cube", "pick up the red cube"),  # a NUL between words leaves a space
    ("touch\x1c the red cube", "touch the red cube"),  # a file separator is a control, not whitespace
])
def test_instruction_cleaning_is_reported(raw, text):
    """Escape sequences and control characters are removed whole and the note says so (whitespace is not noted)."""
    assert validate(raw) == (text, "control characters removed")


@pytest.mark.parametrize("w,h,ok", [(640, 480, True), (1920, 1080, True), (112, 112, True), (224, 224, True),
                                    (848, 100, False), (1, 1, False), (8, 8, False), (4000, 1, False),
                                    (111, 480, False), (3000, 200, False), (200, 3000, False)])
def test_frames_too_small_or_too_narrow_for_the_model_input_are_refused(w, h, ok):
    """Defaults against a 224x224 input: each side >= 112 px, aspect ratio within 4x of square."""
    if ok:
        check_frame_size(w, h, 224, 224)
    else:
        with pytest.raises(ImageError, match=f"frame {w}x{h}"):
            check_frame_size(w, h, 224, 224)


def test_frame_checks_follow_the_input_size_and_can_be_disabled():
    check_frame_size(320, 180, 320, 180, max_aspect_change=1.01)  # 16:9 input: a 16:9 frame has the same ratio
    with pytest.raises(ImageError, match="aspect ratio"):
        check_frame_size(320, 320, 320, 180, max_aspect_change=1.5)
    with pytest.raises(ImageError, match="aspect ratio"):
        check_frame_size(4000, 1, 224, 224, min_scale=0.0)  # no size check left: the ratio still refuses it
    check_frame_size(1, 1, 224, 224, min_scale=0.0, max_aspect_change=0.0)  # both off


def test_stop_words():
    assert is_stop("STOP!") and is_stop(" cancel. ") and not is_stop("stop near the red cube")


@pytest.mark.parametrize("enc", ["rgb8", "bgr8", "rgba8", "bgra8", "mono8"])
def test_decode_resized_gives_the_pixels_of_decode_then_resize(enc):
    """The fast path (resize in the buffer's channel order, reorder the small result) changes no pixel."""
    rgb = np.random.default_rng(2).integers(0, 255, (48, 64, 4), dtype=np.uint8)
    src = {"rgb8": rgb[:, :, :3], "bgr8": rgb[:, :, 2::-1], "rgba8": rgb, "bgra8": rgb[:, :, [2, 1, 0, 3]],
           "mono8": rgb[:, :, :1]}[enc]
    c = src.shape[2]
    padded = np.zeros((48, 64 * c + 5), np.uint8)  # rows padded: step > width * channels
    padded[:, : 64 * c] = src.reshape(48, -1)
    args = (enc, 48, 64, 64 * c + 5, padded.tobytes())
    out = decode_resized(*args, 20, 16)
    assert out.shape == (16, 20, 3) and out.flags.c_contiguous
    np.testing.assert_array_equal(out, resize(decode(*args), 20, 16))
    np.testing.assert_array_equal(decode_resized(*args, 64, 48), decode(*args))  # same size: no resize
    with pytest.raises(ImageError, match="expected step"):
        decode_resized(enc, 48, 64, 64 * c + 5, padded.tobytes()[:-1], 20, 16)


def _image_msg(frame_id: str, encoding: str, height: int, width: int, step: int, data: bytes):
    from sensor_msgs.msg import Image

    msg = Image(height=height, width=width, encoding=encoding, step=step, data=data)
    msg.header.stamp.sec, msg.header.stamp.nanosec = 1_700_000_123, 456_789_012
    msg.header.frame_id = frame_id
    return msg


@pytest.mark.parametrize("frame_id", ["", "c", "cam", "camera", "wrist_camera_optical_frame"])
@pytest.mark.parametrize("encoding", ["rgb8", "bgra8", "mono8"])
def test_read_image_gives_the_fields_rclpy_serialized(frame_id, encoding):
    """Every string length shifts the alignment of the fields after it."""
    from rclpy.serialization import serialize_message

    from molevla_ros.inputs.image_wire import read_image

    c = {"rgb8": 3, "bgra8": 4, "mono8": 1}[encoding]
    data = np.random.default_rng(len(frame_id)).integers(0, 256, 6 * (7 * c + 2), dtype=np.uint8).tobytes()
    img = read_image(serialize_message(_image_msg(frame_id, encoding, 6, 7, 7 * c + 2, data)))
    assert (img.sec, img.nanosec, img.frame_id) == (1_700_000_123, 456_789_012, frame_id)
    assert (img.height, img.width, img.encoding, img.step) == (6, 7, encoding, 7 * c + 2)
    assert bytes(img.data) == data and img.stamp_s == pytest.approx(1_700_000_123.456789012)
    np.testing.assert_array_equal(decode(img.encoding, img.height, img.width, img.step, img.data),
                                  decode(encoding, 6, 7, 7 * c + 2, data))


def test_read_image_big_endian():
    from molevla_ros.inputs.image_wire import read_image

    body = struct.pack(">iI", 5, 6) + struct.pack(">I", 3) + b"ab\0" + b"\0"  # frame_id "ab", padded to 4
    body += struct.pack(">II", 1, 2) + struct.pack(">I", 5) + b"rgb8\0" + b"\0"  # is_bigendian, then pad to 4
    body += b"\0\0" + struct.pack(">II", 6, 6) + bytes(range(6))
    img = read_image(b"\x00\x00\x00\x00" + body)
    assert (img.sec, img.nanosec, img.frame_id, img.height, img.width, img.encoding, img.step) == \
        (5, 6, "ab", 1, 2, "rgb8", 6)
    assert bytes(img.data) == bytes(range(6))


def test_write_stamp_restamps_a_serialized_frame_in_either_byte_order():
    """What the benchmarks' camera stand-ins publish: one serialized frame, re-stamped in place per frame."""
    from rclpy.serialization import serialize_message

    from molevla_ros.inputs.image_wire import read_image, write_stamp

    little = bytearray(serialize_message(_image_msg("camera", "rgb8", 2, 3, 9, bytes(18))))
    write_stamp(little, 42, 999_999_999)
    img = read_image(little)
    assert (img.sec, img.nanosec, img.frame_id, img.height) == (42, 999_999_999, "camera", 2)
    assert bytes(img.data) == bytes(18)
    big = bytearray(b"\x00\x00\x00\x00" + bytes(8) + b"rest")
    write_stamp(big, -1, 7)
    assert bytes(big[4:]) == struct.pack(">iI", -1, 7) + b"rest"
    with pytest.raises(ImageError, match="not a CDR"):
        write_stamp(bytearray(b"\xff\xff\x00\x00" + bytes(8)), 1, 2)


def test_read_image_refuses_truncated_and_foreign_bytes():
    """Any prefix of a valid message, and bytes that are not a CDR image, raise ImageError and nothing else."""
    from rclpy.serialization import serialize_message

    from molevla_ros.inputs.image_wire import read_image

    full = serialize_message(_image_msg("cam", "rgb8", 2, 2, 6, bytes(12)))
    for n in range(len(full)):
        with pytest.raises(ImageError):
            read_image(full[:n])
    rng = np.random.default_rng(0)
    for _ in range(200):
        junk = b"\x00\x01\x00\x00" + rng.integers(0, 256, int(rng.integers(0, 80)), dtype=np.uint8).tobytes()
        try:
            read_image(junk)
        except ImageError:
            pass
    with pytest.raises(ImageError, match="not a CDR"):
        read_image(b"\x07\x07\x00\x00" + full[4:])
    huge = bytearray(full)
    huge[12:16] = (10**6).to_bytes(4, "little")  # frame_id claims a megabyte
    with pytest.raises(ImageError, match="string field"):
        read_image(bytes(huge))


FAULTS_OF_A_FRESH_FRAME = """
import resource, sys
import struct

import numpy as np
if sys.argv[1] == "reuse":
    from molevla_ros.nodes.process import reuse_freed_memory
    assert reuse_freed_memory() is None
faults = []
for _ in range(2):  # the first frame's pages are new either way; the second frame's tell
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    frame = np.empty(640 * 480 * 3, np.uint8)
    frame.fill(1)
    del frame
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(faults[1])
"""


def test_nodes_reuse_a_freed_frames_memory():
    """glibc hands a freed 640x480 frame back to the kernel by default, so the next one page-faults every 4 KiB page
    again (about 2 ms of each frame's hop, README: loop latency); the nodes keep it for reuse."""
    import subprocess
    import sys

    def faults(mode: str) -> int:
        run = subprocess.run([sys.executable, "-c", FAULTS_OF_A_FRESH_FRAME, mode], capture_output=True, text=True,
                             check=True)
        return int(run.stdout)

    assert faults("default") > 100  # 225 pages of 4 KiB
    assert faults("reuse") < 10
