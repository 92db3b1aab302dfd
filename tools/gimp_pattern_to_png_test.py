#!/usr/bin/python3
"""Tests tools/gimp_pattern_to_png.py on small .pat files built here.

The PNG files it writes are read back by a decoder written in this test
(chunk CRCs, zlib, filter type 0 only), so that pixels are compared with
the pattern's own bytes rather than with the converter's encoder.
"""

import os
import struct
import subprocess
import sys
import tempfile
import unittest
import zlib

CONVERTER = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                         "gimp_pattern_to_png.py")


def make_pattern(width, height, depth, pixels, name=b"test", version=1,
                 magic=b"GPAT", header_size=None, name_terminator=b"\0"):
    """Return the bytes of a .pat file, with fields that tests may break."""
    name_field = name + name_terminator
    if header_size is None:
        header_size = 24 + len(name_field)
    header = struct.pack(">5I", header_size, version, width, height, depth)
    return header + magic + name_field + bytes(pixels)


def read_png(data):
    """Return (width, height, colour_type, rows) of an 8-bit PNG."""
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise AssertionError("missing PNG signature")
    position = 8
    chunks = []
    while position < len(data):
        (length,) = struct.unpack_from(">I", data, position)
        kind = data[position + 4:position + 8]
        payload = data[position + 8:position + 8 + length]
        (crc,) = struct.unpack_from(">I", data, position + 8 + length)
        if zlib.crc32(kind + payload) & 0xFFFFFFFF != crc:
            raise AssertionError(f"bad CRC in chunk {kind!r}")
        chunks.append((kind, payload))
        position += 12 + length
    if chunks[0][0] != b"IHDR" or chunks[-1][0] != b"IEND":
        raise AssertionError("chunks must start with IHDR and end with IEND")
    width, height, bit_depth, colour_type = struct.unpack_from(
        ">IIBB", chunks[0][1])
    if bit_depth != 8:
        raise AssertionError(f"bit depth {bit_depth}, expected 8")
    channels = {0: 1, 4: 2, 2: 3, 6: 4}[colour_type]
    raw = zlib.decompress(b"".join(p for k, p in chunks if k == b"IDAT"))
    stride = 1 + width * channels
    rows = []
    for y in range(height):
        line = raw[y * stride:(y + 1) * stride]
        if line[0] != 0:
            raise AssertionError(f"row {y} uses filter {line[0]}")
        rows.append(line[1:])
    return width, height, colour_type, rows


class GimpPatternToPngTest(unittest.TestCase):

    def setUp(self):
        self.directory = tempfile.mkdtemp()

    def convert(self, pattern_bytes):
        source = os.path.join(self.directory, "in.pat")
        target = os.path.join(self.directory, "out", "out.png")
        with open(source, "wb") as file:
            file.write(pattern_bytes)
        result = subprocess.run(
            [sys.executable, CONVERTER, source, target],
            capture_output=True, text=True, check=False)
        return result, source, target

    def test_every_depth_keeps_samples(self):
        # Colour type per bytes per pixel: grey, grey and alpha, RGB, RGBA.
        for depth, colour_type in ((1, 0), (2, 4), (3, 2), (4, 6)):
            width, height = 3, 2
            pixels = [(7 * i + depth) % 256
                      for i in range(width * height * depth)]
            result, _, target = self.convert(
                make_pattern(width, height, depth, pixels))
            self.assertEqual(result.returncode, 0, result.stderr)
            with open(target, "rb") as file:
                got = read_png(file.read())
            self.assertEqual(got[:3], (width, height, colour_type))
            row_bytes = width * depth
            for y in range(height):
                self.assertEqual(
                    list(got[3][y]),
                    pixels[y * row_bytes:(y + 1) * row_bytes],
                    f"depth {depth} row {y}")

    def test_name_is_reported(self):
        result, _, _ = self.convert(
            make_pattern(1, 1, 1, [0], name=b"Pink Marble"))
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn('"Pink Marble" (1x1, 1 bytes per pixel)', result.stderr)

    def test_malformed_files_are_rejected(self):
        good = dict(width=2, height=2, depth=3, pixels=[1] * 12)
        cases = [
            (b"GPA", "shorter than the 24-byte header"),
            (make_pattern(**good, magic=b"GIMP"), "magic is b'GIMP'"),
            (make_pattern(**good, version=2), "version is 2"),
            (make_pattern(2, 2, 5, [1] * 20), "bytes per pixel is 5"),
            (make_pattern(0, 2, 3, []), "size is 0x2"),
            (make_pattern(**good, header_size=24), "header_size is 24"),
            (make_pattern(**good, header_size=10_000), "header_size is 10000"),
            (make_pattern(**good, name_terminator=b""), "no NUL terminator"),
            (make_pattern(2, 2, 3, [1] * 11), "11 bytes follow the header"),
            (make_pattern(2, 2, 3, [1] * 13), "13 bytes follow the header"),
        ]
        for pattern_bytes, message in cases:
            result, source, target = self.convert(pattern_bytes)
            self.assertEqual(result.returncode, 1, message)
            self.assertIn(source, result.stderr)
            self.assertIn(message, result.stderr)
            self.assertFalse(os.path.exists(target), message)

    def test_missing_file_is_rejected(self):
        missing = os.path.join(self.directory, "absent.pat")
        result = subprocess.run(
            [sys.executable, CONVERTER, missing,
             os.path.join(self.directory, "out.png")],
            capture_output=True, text=True, check=False)
        self.assertEqual(result.returncode, 1)
        self.assertIn(missing, result.stderr)

    def test_wrong_arguments_print_usage(self):
        result = subprocess.run([sys.executable, CONVERTER],
                                capture_output=True, text=True, check=False)
        self.assertEqual(result.returncode, 2)
        self.assertIn("usage:", result.stderr)


if __name__ == "__main__":
    unittest.main()
