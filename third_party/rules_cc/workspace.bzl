"""@rules_cc for Bazel 4.2.3 offline.

Debian's bazel-rules-cc is too new for 4.2.3 (it loads use_cpp_toolchain), so @rules_cc is a shim
whose cc/defs.bzl forwards to the native C++ rules.
"""

load("//third_party:shim.bzl", "shim_repository")

def repo():
    shim_repository(
        name = "rules_cc",
        files = {
            "//third_party/rules_cc:repo.BUILD": "BUILD,cc/BUILD",
            "//third_party/rules_cc:defs.bzl": "cc/defs.bzl",
        },
    )
