"""@remote_coverage_tools: the empty stand-in `bazel test` needs offline."""

load("//third_party:shim.bzl", "shim_repository")

def repo():
    shim_repository(
        name = "remote_coverage_tools",
        files = {"//third_party/remote_coverage_tools:repo.BUILD": "BUILD"},
    )
