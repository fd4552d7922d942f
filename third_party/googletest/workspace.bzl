"""GoogleTest and GoogleMock from Debian (libgtest-dev, libgmock-dev 1.12.1) as @com_google_googletest."""

load("//third_party:debian.bzl", "debian_library")

def repo():
    debian_library(
        name = "com_google_googletest",
        package = "libgmock-dev",
        header = "gmock/gmock.h",
        build_file = "//third_party/googletest:repo.BUILD",
    )
