"""The panda_fuzz_target macro: a libFuzzer binary for the fuzz config."""

load("@rules_cc//cc:defs.bzl", "cc_binary")

def panda_fuzz_target(name, srcs, deps = []):
    """Declares a libFuzzer target that builds only under --config=fuzz.

    The binary links libFuzzer's main (-fsanitize=fuzzer), which only clang
    provides, so it is tagged "manual": `bazel build //...` under the default
    gcc toolchain skips it. Build it by name with --config=fuzz, or run every
    target with fuzz/run_fuzzers.sh.

    Args:
      name: the binary, conventionally "<parser>_fuzzer".
      srcs: the .cc file that defines LLVMFuzzerTestOneInput.
      deps: the parser under test and its helpers.
    """
    cc_binary(
        name = name,
        srcs = srcs,
        deps = deps + ["//fuzz:fuzz_support"],
        linkopts = ["-fsanitize=fuzzer"],
        testonly = True,
        tags = ["manual", "fuzz"],
    )
