"""OpenSSL's libcrypto from Debian (libssl-dev 3.0) as @openssl; used for sha256."""

load("//third_party:debian.bzl", "debian_library")

def repo():
    debian_library(
        name = "openssl",
        package = "libssl-dev",
        header = "openssl/evp.h",
        build_file = "//third_party/openssl:repo.BUILD",
    )
