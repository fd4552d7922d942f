"""nlohmann/json from Debian (nlohmann-json3-dev) as @nlohmann_json; header-only."""

load("//third_party:debian.bzl", "debian_library")

def repo():
    debian_library(
        name = "nlohmann_json",
        package = "nlohmann-json3-dev",
        header = "nlohmann/json.hpp",
        build_file = "//third_party/nlohmann_json:repo.BUILD",
    )
