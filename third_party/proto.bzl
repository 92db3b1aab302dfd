"""C++ code generation for .proto files with the system protoc.

Native proto_library needs @com_google_protobuf's sources, which Debian does
not ship, so a genrule runs /usr/bin/protoc and a cc_library compiles its
output. Paths are relative to the workspace root: a file at config/x.proto
is imported as "config/x.proto" and included as "config/x.pb.h".
"""

load("@rules_cc//cc:defs.bzl", "cc_library")

def panda_cc_proto_library(name, srcs, deps = [], visibility = None, testonly = False):
    """Generates and compiles C++ for `srcs`.

    Args:
      name: the cc_library; `name + "_srcs"` is a filegroup of the .proto
        files, which dependent proto libraries need to import them.
      srcs: .proto files in this package.
      deps: other panda_cc_proto_library targets these files import.
      visibility: as for any rule.
      testonly: as for any rule.
    """
    outs = []
    for src in srcs:
        base = src[:-len(".proto")]
        outs += [base + ".pb.h", base + ".pb.cc"]

    native.filegroup(
        name = name + "_srcs",
        srcs = srcs + [dep + "_srcs" for dep in deps],
        visibility = visibility,
        testonly = testonly,
    )

    native.genrule(
        name = name + "_generate",
        srcs = srcs + [dep + "_srcs" for dep in deps],
        outs = outs,
        cmd = "/usr/bin/protoc --proto_path=. --proto_path=/usr/include --cpp_out=$(GENDIR) " +
              " ".join(["$(location %s)" % src for src in srcs]),
        testonly = testonly,
    )

    cc_library(
        name = name,
        srcs = [out for out in outs if out.endswith(".cc")],
        hdrs = [out for out in outs if out.endswith(".h")],
        deps = deps + ["@protobuf"],
        visibility = visibility,
        testonly = testonly,
    )
