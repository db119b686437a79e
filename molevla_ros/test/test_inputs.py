import struct

import numpy as np
import pytest

from molevla_ros.inputs.images import (
    CHANNELS, ImageError, check_frame_size, decode, decode_compressed, decode_resized, resize)
from molevla_ros.inputs.instructions import InstructionError, is_stop, validate
from molevla_ros.inputs.joint_states import JointStateError, read_joint_state

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
                                        ((224, 224, 3), (96, 96)), ((50, 70, 3), (224, 224)), ((9, 7, 3), (3, 4)),
                                        ((9, 7, 3), (7, 4)), ((9, 7, 3), (3, 9)), ((9, 7, 3), (7, 7))])  # a side kept
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
@pytest.mark.parametrize("name", ["bilinear", "bicubic"])
def test_decode_resized_gives_the_pixels_of_decode_then_resize(enc, name):
    """The fast path (resize in the buffer's channel order, reorder the small result) changes no pixel."""
    rgb = np.random.default_rng(2).integers(0, 255, (48, 64, 4), dtype=np.uint8)
    src = {"rgb8": rgb[:, :, :3], "bgr8": rgb[:, :, 2::-1], "rgba8": rgb, "bgra8": rgb[:, :, [2, 1, 0, 3]],
           "mono8": rgb[:, :, :1]}[enc]
    c = src.shape[2]
    padded = np.zeros((48, 64 * c + 5), np.uint8)  # rows padded: step > width * channels
    padded[:, : 64 * c] = src.reshape(48, -1)
    args = (enc, 48, 64, 64 * c + 5, padded.tobytes())
    out = decode_resized(*args, 20, 16, filter=name)
    assert out.shape == (16, 20, 3) and out.flags.c_contiguous
    np.testing.assert_array_equal(out, resize(decode(*args), 20, 16, filter=name))
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


# --- joint states -----------------------------------------------------------------------------------------------

ARM = ["j1", "j2", "j3"]


def test_joint_state_is_read_by_name_in_the_expected_order_as_floats():
    q = read_joint_state(["finger", "j3", "j1", "j2"], [9, 3, 1, 2], 10.0, 10.1, ARM, 0.5)  # integer positions
    assert q.dtype == np.float64 and q.tolist() == [1.0, 2.0, 3.0]


@pytest.mark.parametrize("names,positions,stamp,now,max_age,message", [
    (ARM, [1.0, 2.0], 10.0, 10.0, 0.5, "joint state has 3 names but 2 positions"),
    (["j2", "j1", "j3", "j2", "j1"], [0.0] * 5, 10.0, 10.0, 0.5, "joint state names a joint twice: j1, j2"),
    (["j2", "finger"], [0.0, 0.0], 10.0, 10.0, 0.5, "joint state lacks j1, j3 (has j2, finger)"),
    ([], [], 10.0, 10.0, 0.5, "joint state lacks j1, j2, j3 (has no names)"),
    ([f"f{i}" for i in range(13)], [0.0] * 13, 10.0, 10.0, 0.5,  # the first 12 names only
     "joint state lacks j1, j2, j3 (has " + ", ".join(f"f{i}" for i in range(12)) + ")"),
    (ARM, [float("nan"), 0.5, float("-inf")], 10.0, 10.0, 0.5, "joint state has NaN/Inf positions for j1, j3"),
    (ARM, [0.0] * 3, 0.0, 10.0, 0.5, "joint state is unstamped (header.stamp is zero)"),
    (ARM, [0.0] * 3, 10.0, 12.0, 0.5, "joint state stamped 2.000 s ago (> 0.5 s)"),
    (ARM, [0.0] * 3, 10.75, 10.0, 0.5, "joint state stamped 0.750 s in the future (clock problem?)"),
])
def test_joint_state_refusals_say_why(names, positions, stamp, now, max_age, message):
    with pytest.raises(JointStateError) as e:
        read_joint_state(names, positions, stamp, now, ARM, max_age)
    assert str(e.value) == message


def test_joint_positions_far_outside_the_arms_range_are_refused():
    """A finite but impossible reading (degrees, encoder counts, a corrupted message) is not the arm: refused, so
    nothing is computed from it (a joint-trajectory halt would have held the arm at a clipped, far-away target)."""
    limits = ([-2.0, -1.0], [2.0, 1.0])  # the first two expected joints; j3 (a finger, say) is not checked
    ok = read_joint_state(ARM, [2.09, -1.09, 50.0], 10.0, 10.0, ARM, 0.5, limits)  # within RANGE_TOLERANCE
    assert ok.tolist() == [2.09, -1.09, 50.0]
    for positions, name in [([1e6, 0.0, 0.0], "j1"), ([0.0, -1.2, 0.0], "j2"), ([114.6, 0.0, 0.0], "j1")]:
        with pytest.raises(JointStateError, match=f"puts {name} at .* outside its range"):
            read_joint_state(ARM, positions, 10.0, 10.0, ARM, 0.5, limits)


def test_duplicate_joint_names_are_found_in_a_huge_message():
    names = [f"n{i}" for i in range(200_000)] + ["n7"]
    with pytest.raises(JointStateError, match="names a joint twice: n7$"):
        read_joint_state(names, [0.0] * len(names), 10.0, 10.0, ARM, 0.5)


@pytest.mark.parametrize("stamp,now,max_age", [
    (10.0, 10.5, 0.5),  # exactly max_age old
    (10.5, 10.0, 0.5),  # exactly max_age ahead
    (0.25, 0.5, 0.5),  # simulated time, a stamp under one second
    (0.0, 100.0, 0.0),  # max_age 0: no stamp check, even an unstamped state passes
    (0.0, 100.0, -1.0),
])
def test_joint_state_stamp_limits_are_inclusive_and_can_be_disabled(stamp, now, max_age):
    assert read_joint_state(ARM, [1.0, 2.0, 3.0], stamp, now, ARM, max_age).tolist() == [1.0, 2.0, 3.0]


# --- instructions -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("raw,message", [
    ("", "instruction is empty"),
    (" \t\n\u00a0", "instruction is empty"),  # whitespace is not reported as control characters
    ("\x00\x01\x1b[2J\u200b", "instruction is empty (only control characters)"),
    ("x" * 257, "instruction too long (257 characters > 256)"),
    (b"a" * 1025, "instruction too long (1025 bytes > 1024)"),  # refused before decoding: 4 bytes per character
    ("a" * 5000, "instruction too long (5000 characters > 1024 before cleaning)"),  # text: the same cap
    (b"pick \xff up", "instruction is not valid UTF-8 (invalid start byte at byte 5)"),
])
def test_instruction_refusals_tell_the_operator_why(raw, message):
    with pytest.raises(InstructionError) as e:
        validate(raw)
    assert str(e.value) == message


def test_instruction_length_limits_are_inclusive():
    assert validate("x" * 256) == ("x" * 256, "")
    four_byte = "\U0001f9ca" * 256  # 256 characters, 1024 bytes: at both limits
    assert validate(four_byte.encode()) == (four_byte, "")
    assert validate("pick up the cube", max_chars=16).text == "pick up the cube"
    with pytest.raises(InstructionError, match=r"^instruction too long \(17 characters > 16\)$"):
        validate("pick up the cubes", max_chars=16)


@pytest.mark.parametrize("raw,text", [
    ("pick\u00a0up\u2003the\u3000red\u2028cube\u2029now", "pick up the red cube now"),  # Zs, Zl, Zp separators
    ("put X on the XY-plane", "put X on the XY-plane"),  # no letter is taken for whitespace
    ("\v\fstack\r\nthe  cubes\t", "stack the cubes"),
])
def test_instruction_whitespace_and_separators_become_single_spaces_silently(raw, text):
    assert validate(raw) == (text, "")


# --- frames: raw buffers, sizes, compressed payloads --------------------------------------------------------------

@pytest.mark.parametrize("h,w", [(1, 1), (1, 8192), (8192, 1)])
def test_decode_accepts_every_side_from_1_to_max_side(h, w):
    g = np.random.default_rng(5).integers(0, 256, h * w, dtype=np.uint8)
    out = decode("mono8", h, w, w, g.tobytes())
    assert out.shape == (h, w, 3) and np.array_equal(out[:, :, 1].ravel(), g)


@pytest.mark.parametrize("args,message", [
    (("mono8", 1, 8193, 8193, bytes(8193)), "bad image size 8193x1"),
    (("mono8", 8193, 1, 1, bytes(8193)), "bad image size 1x8193"),
    (("mono8", 4, 0, 0, b""), "bad image size 0x4"),
    (("mono8", 0, 4, 4, b""), "bad image size 4x0"),
    (("YUV422", 4, 5, 10, bytes(40)), "unsupported encoding 'YUV422'; supported: rgb8, bgr8, rgba8, bgra8, mono8"),
    (("rgb8", 4, 5, 12, bytes(48)), "row step 12 < width 5 x 3 channels"),
    (("rgb8", 4, 5, 15, bytes(59)), "buffer has 59 bytes, expected step 15 x height 4 = 60"),
])
def test_decode_refusals_say_why(args, message):
    with pytest.raises(ImageError) as e:
        decode(*args)
    assert str(e.value) == message


def test_decode_reads_an_ndarray_buffer_as_its_bytes_whatever_its_dtype_and_layout():
    rgba = np.random.default_rng(6).integers(0, 256, (6, 8, 4), dtype=np.uint8)
    packed = rgba.view(np.uint32)[:, :, 0]  # (6, 8): one 32-bit word per pixel, in memory order R, G, B, A
    for enc, data, rgb in [("rgba8", rgba, rgba[:, :, :3]), ("rgba8", packed, rgba[:, :, :3]),
                           ("rgba8", packed[::2, ::2], rgba[::2, ::2, :3]),  # strided: every other row and pixel
                           ("bgr8", rgba[:, :, 2::-1], rgba[:, :, :3]), ("rgb8", rgba[::2, :, :3], rgba[::2, :, :3])]:
        h, w = rgb.shape[:2]
        np.testing.assert_array_equal(decode(enc, h, w, w * CHANNELS[enc], data), rgb)


@pytest.mark.parametrize("w,h,out_w,out_h,kwargs,message", [
    (111, 480, 224, 224, {}, "frame 111x480 is too small for the 224x224 model input (each side must be at least "
                             "112x112: min_input_scale 0.5)"),
    (480, 111, 224, 224, {}, "frame 480x111 is too small for the 224x224 model input (each side must be at least "
                             "112x112: min_input_scale 0.5)"),
    (100, 60, 320, 180, {"min_scale": 0.33}, "frame 100x60 is too small for the 320x180 model input (each side must "
                                             "be at least 106x60: min_input_scale 0.33)"),
    (3000, 200, 224, 224, {}, "frame 3000x200 has aspect ratio 15, more than 4x away from the 224x224 model "
                              "input's (max_aspect_change 4)"),
    (1, 100, 224, 224, {"min_scale": 0.0}, "frame 1x100 has aspect ratio 0.01, more than 4x away from the 224x224 "
                                           "model input's (max_aspect_change 4)"),  # a one-pixel column
    (320, 181, 320, 180, {"max_aspect_change": 1.0}, "frame 320x181 has aspect ratio 1.77, more than 1x away from the "
                                                     "320x180 model input's (max_aspect_change 1)"),
    # accepted: the limits are inclusive; max_aspect_change 1 asks for the input's exact ratio
    (896, 224, 224, 224, {}, None), (224, 896, 224, 224, {}, None),
    (320, 180, 320, 180, {"max_aspect_change": 1.0}, None),
    # a zero side (min_scale 0) is left to decode's "bad image size", not divided by
    (0, 480, 224, 224, {"min_scale": 0.0}, None), (640, 0, 224, 224, {"min_scale": 0.0}, None),
    (0, 0, 224, 224, {"min_scale": 0.0}, None),
])
def test_frame_size_check_messages_and_limits(w, h, out_w, out_h, kwargs, message):
    if message is None:
        check_frame_size(w, h, out_w, out_h, **kwargs)
    else:
        with pytest.raises(ImageError) as e:
            check_frame_size(w, h, out_w, out_h, **kwargs)
        assert str(e.value) == message


def _png_claiming(width: int, height: int) -> bytes:
    """A 4x4 PNG whose header claims width x height pixels (the IHDR checksum fixed, so only the size is wrong)."""
    import zlib

    png = bytearray(_encoded(np.zeros((4, 4, 3), np.uint8), "PNG"))
    png[16:24] = width.to_bytes(4, "big") + height.to_bytes(4, "big")
    png[29:33] = zlib.crc32(bytes(png[12:29])).to_bytes(4, "big")
    return bytes(png)


@pytest.mark.parametrize("fmt,data,message", [
    ("theora", b"", "unsupported compressed format 'theora'; supported: jpeg, png"),
    ("png", _encoded(np.zeros((4, 4, 3), np.uint8), "BMP"), "payload is BMP, not jpeg or png"),
    ("png", _png_claiming(8193, 1), "bad image size 8193x1"),
    ("png", _png_claiming(1, 8193), "bad image size 1x8193"),
])
def test_decode_compressed_refusals_say_why(fmt, data, message):
    with pytest.raises(ImageError) as e:
        decode_compressed(fmt, data)
    assert str(e.value) == message


@pytest.mark.parametrize("h,w", [(1, 1), (1, 8192), (8192, 1)])
def test_decode_compressed_accepts_every_side_from_1_to_max_side(h, w):
    rgb = np.random.default_rng(7).integers(0, 256, (h, w, 3), dtype=np.uint8)
    np.testing.assert_array_equal(decode_compressed("png", _encoded(rgb, "PNG")), rgb)


def test_decode_compressed_refuses_depth_pngs():
    """A 16-bit PNG (a depth image, image_transport's "16UC1; png compressed") is not a colour frame: converted to RGB
    it would saturate to white and be acted on."""
    import io

    from PIL import Image

    depth = (np.arange(64 * 64, dtype=np.uint16).reshape(64, 64) * 10 + 300)  # millimetres
    png = io.BytesIO()
    Image.fromarray(depth).save(png, format="PNG")
    for fmt in ("16UC1; png compressed", "png"):
        with pytest.raises(ImageError, match="I;16 pixels is not a colour image"):
            decode_compressed(fmt, png.getvalue())


def test_decode_compressed_gives_rgb_whatever_the_pngs_colour_type():
    import io

    from PIL import Image

    rng = np.random.default_rng(8)
    grey = rng.integers(0, 256, (5, 6), dtype=np.uint8)
    rgba = rng.integers(0, 256, (5, 6, 4), dtype=np.uint8)
    palette = Image.fromarray(np.ascontiguousarray(rgba[:, :, :3])).quantize(8)
    palette_png = io.BytesIO()
    palette.save(palette_png, format="PNG")
    for png, rgb in [(_encoded(grey, "PNG"), np.repeat(grey[:, :, None], 3, axis=2)),
                     (_encoded(rgba, "PNG"), rgba[:, :, :3]),  # alpha dropped
                     (palette_png.getvalue(), np.asarray(palette.convert("RGB")))]:
        out = decode_compressed("png", png)
        assert out.dtype == np.uint8
        np.testing.assert_array_equal(out, rgb)


RESIZE_A_RECEIVED_FRAME = """
import warnings

import numpy as np
import torch  # noqa: F401  (its import warnings are not the point)

from molevla_ros.inputs.images import resize

frame = np.frombuffer(bytes(range(256)) * 3, np.uint8).reshape(16, 16, 3)  # read-only, as a received message's
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    out = resize(frame, 8, 8)
print(out.shape, [str(w.message) for w in caught])
"""


def test_resizing_a_read_only_frame_warns_nothing():
    """torch warns, once per process, that a read-only array is not writable: resize only reads it, and keeps that
    warning out of the node's log (run in a fresh process, the first resize there being the one that would warn)."""
    import os
    import subprocess
    import sys

    import molevla_ros

    frame = np.frombuffer(bytes(range(256)) * 3, np.uint8).reshape(16, 16, 3)
    assert resize(frame, 8, 8).shape == (8, 8, 3)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.path.dirname(os.path.dirname(molevla_ros.__file__)),
                                                       os.environ.get("PYTHONPATH", "")]))
    run = subprocess.run([sys.executable, "-c", RESIZE_A_RECEIVED_FRAME], capture_output=True, text=True, env=env)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "(8, 8, 3) []"


# --- serialized images ------------------------------------------------------------------------------------------

def _cdr_image(order: str, sec: int = 0, nanosec: int = 0, frame_id: bytes = b"\0", height: int = 0, width: int = 0,
               encoding: bytes = b"\0", step: int = 0, data: bytes = b"", count: int | None = None) -> bytes:
    """A sensor_msgs/Image in plain CDR, written field by field: strings as the raw bytes given (NUL or not),
    `count` the data length the message claims (len(data) by default)."""
    out = bytearray(b"\x00\x00\x00\x00" if order == ">" else b"\x00\x01\x00\x00")

    def put(fmt: str, value: int) -> None:
        out.extend(bytes(-(len(out) - 4) % struct.calcsize(fmt)))
        out.extend(struct.pack(order + fmt, value))

    put("i", sec)
    put("I", nanosec)
    put("I", len(frame_id))
    out.extend(frame_id)
    put("I", height)
    put("I", width)
    put("I", len(encoding))
    out.extend(encoding)
    put("B", order == ">")
    put("I", step)
    put("I", len(data) if count is None else count)
    out.extend(data)
    return bytes(out)


@pytest.mark.parametrize("order", ["<", ">"])
def test_read_image_reads_each_field_over_its_types_whole_range_in_either_byte_order(order):
    from rclpy.serialization import deserialize_message
    from sensor_msgs.msg import Image

    from molevla_ros.inputs.image_wire import read_image

    data = bytes(range(250, 256)) + bytes(range(5))
    buf = _cdr_image(order, -2**31, 2**32 - 1, b"cam\0", 2**31, 2**32 - 1, b"rgb8\0", 2**31 + 7, data)
    msg = deserialize_message(buf, Image)  # rclpy reads the same message from these bytes
    assert (msg.header.stamp.sec, msg.header.stamp.nanosec, msg.height, msg.width, msg.step, bytes(msg.data)) == \
        (-2**31, 2**32 - 1, 2**31, 2**32 - 1, 2**31 + 7, data)
    img = read_image(buf)
    assert (img.sec, img.nanosec, img.frame_id, img.height, img.width, img.encoding, img.step) == \
        (-2**31, 2**32 - 1, "cam", 2**31, 2**32 - 1, "rgb8", 2**31 + 7)
    pixels = np.asarray(img.data)  # the view reads as unsigned bytes
    assert pixels.dtype == np.uint8 and pixels.tolist() == list(data)


@pytest.mark.parametrize("order", ["<", ">"])
@pytest.mark.parametrize("raw,text", [
    (b"cam\0", "cam"),
    (b"cam", "cam"),  # a writer that leaves out the NUL loses no character
    (b"\0", ""),
    (b"", ""),
    (b"c\xffm\0", "c\ufffdm"),  # bad UTF-8 is replaced, never raised
    (b"c\xffm", "c\ufffdm"),
    (b"f" * 4095 + b"\0", "f" * 4095),  # the longest string accepted: 4096 bytes
])
def test_read_image_strings(order, raw, text):
    from molevla_ros.inputs.image_wire import read_image

    img = read_image(_cdr_image(order, 1, 2, raw, 3, 4, raw, 5, bytes(range(7))))
    assert (img.frame_id, img.encoding) == (text, text)
    assert (img.sec, img.nanosec, img.height, img.width, img.step, bytes(img.data)) == (1, 2, 3, 4, 5, bytes(range(7)))


def test_read_image_of_an_empty_message():
    """A default-constructed Image ends exactly with its zero data count: read, not taken for truncated."""
    from rclpy.serialization import serialize_message
    from sensor_msgs.msg import Image

    from molevla_ros.inputs.image_wire import read_image

    for buf in (serialize_message(Image()), _cdr_image(">")):
        img = read_image(buf)
        assert (img.sec, img.nanosec, img.frame_id, img.height, img.width, img.encoding, img.step) == \
            (0, 0, "", 0, 0, "", 0)
        assert bytes(img.data) == b""


@pytest.mark.parametrize("buf,message", [
    (b"", "not a CDR-serialized image (encapsulation missing)"),
    (b"\x00\x01", "not a CDR-serialized image (encapsulation 0001)"),
    (b"\x07\x07\x00\x00" + _cdr_image("<")[4:], "not a CDR-serialized image (encapsulation 07070000)"),
    (b"\x00\x01\x00\x00", "serialized image truncated at byte 4 of 4"),
    (_cdr_image("<", frame_id=b"cam\0")[:14], "serialized image truncated at byte 12 of 14"),
    (b"\x00\x01\x00\x00" + struct.pack("<iII", 1, 2, 2**32 - 1) + bytes(64),
     "serialized image has a 4294967295-byte string field"),
    (_cdr_image(">", frame_id=b"f" * 4096 + b"\0"), "serialized image has a 4097-byte string field"),
    # header 4, stamp 8, frame_id 4 + 1 (+ 3 padding), height, width 8, encoding 4 + 1 (+ 1), is_bigendian 1
    # (+ 2), step 4, count 4: the data would start at byte 44
    (_cdr_image("<", count=2**31), "serialized image truncated: 2147483648 bytes wanted at byte 44 of 44"),
    (_cdr_image(">", data=bytes(6), count=7), "serialized image truncated: 7 bytes wanted at byte 44 of 50"),
])
def test_read_image_refusals_say_why(buf, message):
    from molevla_ros.inputs.image_wire import read_image

    with pytest.raises(ImageError) as e:
        read_image(buf)
    assert str(e.value) == message


@pytest.mark.parametrize("order", ["<", ">"])
def test_write_stamp_writes_the_stamps_whole_range_and_nothing_else(order):
    from molevla_ros.inputs.image_wire import read_image, write_stamp

    buf = bytearray(_cdr_image(order, 1, 2, b"camera\0", 2, 3, b"rgb8\0", 9, bytes(range(18))))
    for sec, nanosec in [(-2**31, 2**32 - 1), (2**31 - 1, 0)]:
        write_stamp(buf, sec, nanosec)
        img = read_image(buf)
        assert (img.sec, img.nanosec, img.frame_id, img.height, img.width, img.encoding, img.step) == \
            (sec, nanosec, "camera", 2, 3, "rgb8", 9)
        assert bytes(img.data) == bytes(range(18))


@pytest.mark.parametrize("buf,message", [
    (b"", "not a CDR-serialized message with a stamp (0 bytes, encapsulation missing)"),
    (b"\xff\xff\x00\x00" + bytes(8), "not a CDR-serialized message with a stamp (12 bytes, encapsulation ffff0000)"),
    (b"\x00\x01\x00\x00" + bytes(7), "not a CDR-serialized message with a stamp (11 bytes, encapsulation 00010000)"),
])
def test_write_stamp_refuses_what_is_not_cdr(buf, message):
    from molevla_ros.inputs.image_wire import write_stamp

    with pytest.raises(ImageError) as e:
        write_stamp(bytearray(buf), 1, 2)
    assert str(e.value) == message


def test_write_stamp_needs_only_the_header_and_the_stamp():
    """12 bytes (encapsulation + sec + nanosec) are enough to restamp; one fewer is refused."""
    from molevla_ros.inputs.image_wire import write_stamp

    buf = bytearray(b"\x00\x01\x00\x00" + bytes(8))
    write_stamp(buf, 7, 9)
    assert struct.unpack_from("<iI", buf, 4) == (7, 9)


def test_decode_reads_any_numpy_buffer_layout():
    """A frame handed over as a numpy array of another dtype or a strided view decodes to the same pixels as its
    bytes (the array's memory is read in C order)."""
    rgb = np.random.default_rng(5).integers(0, 256, (4, 6, 3), dtype=np.uint8)
    words = rgb.reshape(4, 18).view(np.uint16)  # 2 bytes per element, same memory
    np.testing.assert_array_equal(decode("rgb8", 4, 6, 18, words), rgb)
    wide = np.zeros((4, 36), np.uint8)
    wide[:, ::2] = rgb.reshape(4, 18)
    strided = wide[:, ::2]  # not contiguous: its values, not its memory, are the frame
    assert not strided.flags.c_contiguous
    np.testing.assert_array_equal(decode("rgb8", 4, 6, 18, strided), rgb)
