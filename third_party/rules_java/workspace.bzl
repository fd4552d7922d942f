"""@rules_java from Debian's bazel-rules-java (installed by tools/bazel)."""

def repo():
    native.local_repository(
        name = "rules_java",
        path = "/usr/share/bazel/rules/java",
    )
