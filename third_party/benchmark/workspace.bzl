"""Google Benchmark from Debian (libbenchmark-dev 1.7.1) as @com_github_google_benchmark."""

load("//third_party:debian.bzl", "debian_library")

def repo():
    debian_library(
        name = "com_github_google_benchmark",
        package = "libbenchmark-dev",
        header = "benchmark/benchmark.h",
        build_file = "//third_party/benchmark:repo.BUILD",
    )
