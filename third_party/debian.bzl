"""A library installed from Debian's packages, entering the build as a repository.

The headers sit in /usr/include, which the compiler searches anyway; the repository's BUILD file
(kept in this tree) names the libraries to link. If the package is missing, the fetch fails with the
command that installs it.
"""

def _debian_library_impl(ctx):
    header = ctx.path(ctx.attr.include_root + "/" + ctx.attr.header)
    if not header.exists:
        fail("%s: %s not found; it comes from Debian's %s. Run tools/bazel (it installs it) or: apt-get install -y %s" %
             (ctx.name, header, ctx.attr.package, ctx.attr.package))
    ctx.symlink(ctx.attr.build_file, "BUILD")
    ctx.file("WORKSPACE", "workspace(name = \"%s\")\n" % ctx.name)

debian_library = repository_rule(
    implementation = _debian_library_impl,
    attrs = {
        "package": attr.string(mandatory = True, doc = "Debian package that provides the library."),
        "header": attr.string(mandatory = True, doc = "A header whose presence proves the package is installed."),
        "include_root": attr.string(default = "/usr/include"),
        "build_file": attr.label(mandatory = True, allow_single_file = True),
    },
    local = True,
    doc = "Reads no environment variables; looks only at include_root.",
)
