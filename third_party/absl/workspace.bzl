"""Abseil from Debian (libabsl-dev 20220623) as @com_google_absl."""

load("//third_party:debian.bzl", "debian_library")

def repo():
    debian_library(
        name = "com_google_absl",
        package = "libabsl-dev",
        header = "absl/status/status.h",
        build_file = "//third_party/absl:repo.BUILD",
    )
