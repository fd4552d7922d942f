"""LibTorch 2.11.0 as @libtorch: from the pinned PyPI wheel, or from an existing install.

Environment variables the repository rule reads (all optional):
  LIBTORCH_DIR      A LibTorch or PyTorch install to use instead of the wheel: the folder holding
                    include/ and lib/ (for PyTorch, `python3 -c 'import torch; print(torch.__path__[0])'`).
  KVGATE_CACHE_DIR  Where downloaded wheels are kept between clones (default: $HOME/.cache/kvgate).
  KVGATE_PYTHON     The Python whose pip downloads the wheels (default: python3).
  HOME              Used for the default cache folder.
  PIP_INDEX_URL, PIP_EXTRA_INDEX_URL, PIP_TRUSTED_HOST, PIP_CERT
                    Passed to pip unchanged, for machines that reach PyPI through a mirror.

The wheels are fetched by name and version with `pip download` and checked against the sha256
below; a mismatch is an error, never a silent fallback. The cu130 build of torch's libtorch_cpu.so
loads libcudart and libcupti (it never calls them without a GPU), so the CPU build takes those two
from their own pinned wheels: CPU binaries need no CUDA toolkit and no GPU.
"""

_DOC = """LibTorch 2.11.0 as @libtorch: from the pinned PyPI wheel, or from an existing install.

Environment variables the repository rule reads (all optional):
  LIBTORCH_DIR      A LibTorch or PyTorch install to use instead of the wheel: the folder holding
                    include/ and lib/ (for PyTorch, `python3 -c 'import torch; print(torch.__path__[0])'`).
  KVGATE_CACHE_DIR  Where downloaded wheels are kept between clones (default: $HOME/.cache/kvgate).
  KVGATE_PYTHON     The Python whose pip downloads the wheels (default: python3).
  HOME              Used for the default cache folder.
  PIP_INDEX_URL, PIP_EXTRA_INDEX_URL, PIP_TRUSTED_HOST, PIP_CERT
                    Passed to pip unchanged, for machines that reach PyPI through a mirror.

The wheels are fetched by name and version with `pip download` and checked against the sha256
below; a mismatch is an error, never a silent fallback. The cu130 build of torch's libtorch_cpu.so
loads libcudart and libcupti (it never calls them without a GPU), so the CPU build takes those two
from their own pinned wheels: CPU binaries need no CUDA toolkit and no GPU.
"""

_PYTHON_TAGS = ["--python-version", "3.11", "--implementation", "cp"]
_PLATFORMS = ["manylinux_2_28_x86_64", "manylinux_2_25_x86_64", "manylinux_2_17_x86_64"]

# name, version, wheel file, sha256, {member prefix: folder in @libtorch}
_WHEELS = [
    struct(
        requirement = "torch==2.11.0",
        filename = "torch-2.11.0-cp311-cp311-manylinux_2_28_x86_64.whl",
        sha256 = "7aa2f9bbc6d4595ba72138026b2074be1233186150e9292865e04b7a63b8c67a",
        members = {"torch/include/": "include/", "torch/lib/": "lib/"},
    ),
    struct(
        requirement = "nvidia-cuda-runtime==13.0.96",
        filename = "nvidia_cuda_runtime-13.0.96-py3-none-manylinux2014_x86_64.manylinux_2_17_x86_64.whl",
        sha256 = "7f82250d7782aa23b6cfe765ecc7db554bd3c2870c43f3d1821f1d18aebf0548",
        members = {"nvidia/cu13/lib/libcudart.so.13": "cuda_runtime/libcudart.so.13"},
    ),
    struct(
        requirement = "nvidia-cuda-cupti==13.0.85",
        filename = "nvidia_cuda_cupti-13.0.85-py3-none-manylinux_2_25_x86_64.whl",
        sha256 = "4eb01c08e859bf924d222250d2e8f8b8ff6d3db4721288cf35d14252a4d933c8",
        members = {"nvidia/cu13/lib/libcupti.so.13": "cuda_runtime/libcupti.so.13"},
    ),
]

def _sha256(ctx, path):
    result = ctx.execute(["sha256sum", str(path)])
    if result.return_code != 0:
        fail("libtorch: sha256sum %s failed: %s" % (path, result.stderr))
    return result.stdout.split(" ")[0]

def _fetch_wheel(ctx, python, cache, wheel):
    path = cache.get_child(wheel.filename)
    if path.exists and _sha256(ctx, path) == wheel.sha256:
        return path
    ctx.report_progress("pip download %s" % wheel.requirement)
    args = [python, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--quiet",
            "--dest", str(cache), wheel.requirement] + _PYTHON_TAGS
    for platform in _PLATFORMS:
        args += ["--platform", platform]
    result = ctx.execute(args, timeout = 1800, quiet = False)
    if result.return_code != 0:
        fail("libtorch: `%s` failed (is PyPI reachable? or set LIBTORCH_DIR): %s" % (" ".join(args), result.stderr))
    if not path.exists:
        fail("libtorch: pip did not produce %s in %s" % (wheel.filename, cache))
    actual = _sha256(ctx, path)
    if actual != wheel.sha256:
        fail("libtorch: %s has sha256 %s, pinned %s; delete it and retry, or check the mirror" %
             (path, actual, wheel.sha256))
    return path

def _from_wheels(ctx):
    python = ctx.os.environ.get("KVGATE_PYTHON", "python3")
    cache_dir = ctx.os.environ.get("KVGATE_CACHE_DIR", "")
    if not cache_dir:
        cache_dir = ctx.os.environ.get("HOME", str(ctx.path("."))) + "/.cache/kvgate"
    cache = ctx.path(cache_dir + "/wheels")
    ctx.execute(["mkdir", "-p", str(cache)])
    extractor = ctx.path(Label("//third_party/libtorch:extract_wheel.py"))
    for wheel in _WHEELS:
        path = _fetch_wheel(ctx, python, cache, wheel)
        ctx.report_progress("extracting %s" % wheel.filename)
        args = [python, str(extractor), str(path), str(ctx.path("."))]
        args += ["%s=%s" % (k, v) for k, v in wheel.members.items()]
        args += ["--exclude", "libtorch_python.so"]
        result = ctx.execute(args, timeout = 600)
        if result.return_code != 0:
            fail("libtorch: extracting %s failed: %s" % (path, result.stderr))
    ctx.file("SOURCE", "pip wheels: %s\n" % ", ".join([w.requirement for w in _WHEELS]))

def _from_install(ctx, libtorch_dir):
    root = ctx.path(libtorch_dir)
    for required in ["include/torch/csrc/api/include/torch/torch.h", "lib/libtorch_cpu.so", "lib/libc10.so"]:
        if not root.get_child(required).exists:
            fail("libtorch: LIBTORCH_DIR=%s has no %s (point it at the folder holding include/ and lib/)" %
                 (libtorch_dir, required))
    ctx.symlink(root.get_child("include"), "include")
    ctx.symlink(root.get_child("lib"), "lib")

    # A PyTorch install keeps the CUDA runtime in site-packages/nvidia/cu13/lib; a CPU LibTorch needs none.
    ctx.execute(["mkdir", "-p", "cuda_runtime"])
    runtime = root.dirname.get_child("nvidia").get_child("cu13").get_child("lib")
    for name in ["libcudart.so.13", "libcupti.so.13"]:
        if runtime.get_child(name).exists:
            ctx.symlink(runtime.get_child(name), "cuda_runtime/" + name)
    ctx.file("SOURCE", "LIBTORCH_DIR=%s\n" % libtorch_dir)

def _libtorch_repository_impl(ctx):
    libtorch_dir = ctx.os.environ.get("LIBTORCH_DIR", "")
    if libtorch_dir:
        _from_install(ctx, libtorch_dir)
    else:
        _from_wheels(ctx)
    ctx.symlink(ctx.attr.build_file, "BUILD")
    ctx.file("WORKSPACE", "workspace(name = \"%s\")\n" % ctx.name)

libtorch_repository = repository_rule(
    implementation = _libtorch_repository_impl,
    attrs = {"build_file": attr.label(allow_single_file = True, mandatory = True)},
    environ = ["LIBTORCH_DIR", "KVGATE_CACHE_DIR", "KVGATE_PYTHON", "HOME",
               "PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_TRUSTED_HOST", "PIP_CERT"],
    doc = _DOC,
)

def repo():
    libtorch_repository(
        name = "libtorch",
        build_file = "//third_party/libtorch:repo.BUILD",
    )
