#!/usr/bin/python3
"""Converts a GIMP pattern (.pat) into a PNG file.

    /usr/bin/python3 tools/gimp_pattern_to_png.py \\
        /usr/share/gimp/2.0/patterns/Fabric/burlap.pat data/textures/burlap.png

setup.sh runs it on some patterns of Debian's gimp-data package, seamless
tiles of photographed surfaces that become the textures of the
"synthetic_defects" dataset. Only the standard library is used.

A .pat file is a header of big-endian uint32 fields, then the name, then
the pixels:

    header_size, version (1), width, height, bytes per pixel, magic "GPAT",
    the pattern name in UTF-8, NUL-terminated, filling the header up to
    header_size bytes, then width * height * bytes-per-pixel raw bytes, row
    by row, with no padding.

Bytes per pixel are 1 (grey), 2 (grey and alpha), 3 (RGB) or 4 (RGBA). The
PNG keeps the samples unchanged, with the matching colour type. A file that
does not follow this layout is rejected with a message naming the file and
the field at fault, and no output is written.
"""

import os
import struct
import sys
import zlib

MAGIC = b"GPAT"
# Six uint32 fields, the magic among them.
FIXED_HEADER_BYTES = 24
SUPPORTED_VERSION = 1
# PNG colour type for each number of bytes per pixel.
PNG_COLOUR_TYPES = {1: 0, 2: 4, 3: 2, 4: 6}
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class PatternError(Exception):
    pass


def parse_pattern(path, data):
    """Parse a .pat file into (name, width, height, bytes_per_pixel, pixels)."""
    if len(data) < FIXED_HEADER_BYTES:
        raise PatternError(
            f"{path}: {len(data)} bytes is shorter than the "
            f"{FIXED_HEADER_BYTES}-byte header of a GIMP pattern")
    header_size, version, width, height, depth = struct.unpack_from(">5I", data)
    magic = data[20:24]
    if magic != MAGIC:
        raise PatternError(
            f"{path}: magic is {magic!r}, but a GIMP pattern file starts "
            f"its header with {MAGIC!r}")
    if version != SUPPORTED_VERSION:
        raise PatternError(
            f"{path}: version is {version}, but only version "
            f"{SUPPORTED_VERSION} is supported")
    if depth not in PNG_COLOUR_TYPES:
        raise PatternError(
            f"{path}: bytes per pixel is {depth}, expected 1, 2, 3 or 4")
    if width == 0 or height == 0:
        raise PatternError(
            f"{path}: size is {width}x{height}, but both sides must be at "
            "least 1 pixel")
    if header_size <= FIXED_HEADER_BYTES or header_size > len(data):
        raise PatternError(
            f"{path}: header_size is {header_size}, but it must exceed "
            f"{FIXED_HEADER_BYTES} (room for the name's NUL) and fit in the "
            f"{len(data)}-byte file")

    name_bytes = data[FIXED_HEADER_BYTES:header_size]
    if b"\0" not in name_bytes:
        raise PatternError(
            f"{path}: the pattern name has no NUL terminator within the "
            f"{header_size}-byte header")
    name = name_bytes.split(b"\0", 1)[0].decode("utf-8", errors="replace")

    pixel_bytes = width * height * depth
    actual = len(data) - header_size
    if actual != pixel_bytes:
        raise PatternError(
            f"{path}: {actual} bytes follow the header, but a {width}x"
            f"{height} pattern with {depth} bytes per pixel needs "
            f"{pixel_bytes}, so the file is truncated or corrupt")
    return name, width, height, depth, data[header_size:]


def png_chunk(kind, payload):
    checksum = zlib.crc32(kind + payload) & 0xFFFFFFFF
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(
        ">I", checksum)


def encode_png(width, height, depth, pixels):
    """Return the bytes of an 8-bit PNG of `pixels`, given row by row."""
    header = struct.pack(">IIBBBBB", width, height, 8,
                         PNG_COLOUR_TYPES[depth], 0, 0, 0)
    # Every row starts with filter type 0 (none).
    row_bytes = width * depth
    rows = bytearray()
    for y in range(height):
        rows.append(0)
        rows += pixels[y * row_bytes:(y + 1) * row_bytes]
    return (PNG_SIGNATURE + png_chunk(b"IHDR", header) +
            png_chunk(b"IDAT", zlib.compress(bytes(rows), 9)) +
            png_chunk(b"IEND", b""))


def write_atomically(path, data):
    """Write `data` to a temporary file beside `path`, then rename it."""
    directory = os.path.dirname(path) or "."
    os.makedirs(directory, exist_ok=True)
    temporary = f"{path}.tmp{os.getpid()}"
    with open(temporary, "wb") as file:
        file.write(data)
        file.flush()
        os.fsync(file.fileno())
    os.replace(temporary, path)


def main(argv):
    if len(argv) != 3:
        sys.stderr.write(
            "usage: /usr/bin/python3 tools/gimp_pattern_to_png.py "
            "INPUT.pat OUTPUT.png\n")
        return 2
    source, target = argv[1], argv[2]
    try:
        with open(source, "rb") as file:
            data = file.read()
        name, width, height, depth, pixels = parse_pattern(source, data)
    except (OSError, PatternError) as error:
        sys.stderr.write(f"gimp_pattern_to_png: error: {error}\n")
        return 1

    write_atomically(target, encode_png(width, height, depth, pixels))
    sys.stderr.write(
        f"gimp_pattern_to_png: wrote pattern \"{name}\" ({width}x{height}, "
        f"{depth} bytes per pixel) to {target}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
