"""A repository made of files kept in this tree: the offline shims Bazel 4.2.3 asks for."""

def _shim_repository_impl(ctx):
    for src, dests in ctx.attr.files.items():
        for dest in dests.split(","):
            ctx.symlink(src, dest)
    ctx.file("WORKSPACE", "workspace(name = \"%s\")\n" % ctx.name)

shim_repository = repository_rule(
    implementation = _shim_repository_impl,
    attrs = {
        # File label in this tree -> comma-separated paths inside the new repository.
        "files": attr.label_keyed_string_dict(allow_files = True),
    },
    doc = "Builds a repository from files of this tree; reads no environment variables.",
)
