"""Repository rule for LibTorch: Debian's CPU build, or a distribution.

With PANDA_LIBTORCH_ROOT unset, the build uses Debian's libtorch-dev under
/usr. With PANDA_LIBTORCH_ROOT=/path/to/libtorch (an unpacked official
LibTorch archive, for example a CUDA build), it links that one instead:
    PANDA_LIBTORCH_ROOT=$HOME/libtorch bazel build //apps:panda
"""

_DEBIAN_BUILD = """
cc_library(
    name = "libtorch",
    hdrs = glob(["api_include/**"]),
    includes = ["api_include"],
    linkopts = ["-ltorch", "-ltorch_cpu", "-lc10", "-lpthread"],
    visibility = ["//visibility:public"],
)
"""

_DISTRIBUTION_BUILD = """
cc_library(
    name = "libtorch",
    hdrs = glob(["include/**"]),
    includes = ["include", "include/torch/csrc/api/include"],
    linkopts = [
        "-L{root}/lib",
        "-Wl,-rpath,{root}/lib",
        "-Wl,--no-as-needed",
        {cuda_libs}
        "-ltorch",
        "-ltorch_cpu",
        "-lc10",
        "-Wl,--as-needed",
        "-lpthread",
    ],
    visibility = ["//visibility:public"],
)
"""

def _libtorch_repository_impl(ctx):
    root = ctx.os.environ.get("PANDA_LIBTORCH_ROOT", "")
    if not root:
        # The C++ frontend's headers sit outside the default include path.
        ctx.symlink("/usr/include/torch/csrc/api/include", "api_include")
        ctx.file("BUILD.bazel", _DEBIAN_BUILD)
        return

    if not ctx.path(root + "/include/torch").exists:
        fail("PANDA_LIBTORCH_ROOT=%s has no include/torch: expected an unpacked LibTorch distribution" % root)
    ctx.symlink(root + "/include", "include")

    # CUDA builds carry torch_cuda and c10_cuda; linking them with
    # --no-as-needed keeps their static initialisers (CUDA kernels) alive.
    cuda_libs = ""
    if ctx.path(root + "/lib/libtorch_cuda.so").exists:
        cuda_libs = "\"-ltorch_cuda\", \"-lc10_cuda\","
    ctx.file("BUILD.bazel", _DISTRIBUTION_BUILD.format(root = root, cuda_libs = cuda_libs))

libtorch_repository = repository_rule(
    implementation = _libtorch_repository_impl,
    environ = ["PANDA_LIBTORCH_ROOT"],
    local = True,
)
