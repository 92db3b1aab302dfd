"""Declares the Debian system libraries the workspace builds against.

Each library lives under /usr; the BUILD files in third_party/system/ turn
them into cc_library targets. LibTorch is the one library a user may swap
(for an official CUDA distribution), so it has a repository rule of its own
driven by the PANDA_LIBTORCH_ROOT environment variable.
"""

load("//third_party:libtorch.bzl", "libtorch_repository")

_SYSTEM_LIBRARIES = [
    "abseil",
    "benchmark",
    "faiss",
    "googletest",
    "hnswlib",
    "opencv",
    "protobuf",
    "zlib",
]

def system_libraries():
    for name in _SYSTEM_LIBRARIES:
        native.new_local_repository(
            name = name,
            path = "/usr",
            build_file = "//third_party:system/%s.BUILD" % name,
        )
    libtorch_repository(name = "libtorch")
