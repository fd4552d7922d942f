"""cuda_library: .cu files compiled by nvcc into a cc_library, for Hopper (sm_90a) and Ampere (sm_80).

Usage (in a BUILD file):
    load("//third_party/cuda:cuda.bzl", "cuda_library")
    cuda_library(
        name = "int4_cuda",
        srcs = ["int4.cu"],
        hdrs = ["int4_cuda.h"],
        deps = [":int4"],          # cc_library deps: their headers are visible to nvcc
    )

The target and its helper carry the tag `gpu`, which plain builds filter out (.bazelrc); build them
with --config=cuda. The .cu files should include only CUDA and plain C++ headers (no LibTorch): a
host wrapper in a .cc file adapts tensors, as XLA's GPU ops do.
"""

load("@local_cuda//:defs.bzl", "CUDA_FOUND", "CUDA_ROOT", "NVCC")

# compute capability -> -gencode. sm_90a unlocks wgmma/setmaxnreg; the -gencode form is the one that
# assembles it with nvcc 13.0 (device/HOPPER.md).
_GENCODE = {
    "90a": "-gencode=arch=compute_90a,code=sm_90a",
    "80": "-gencode=arch=compute_80,code=sm_80",
}

def _cuda_objects_impl(ctx):
    if not CUDA_FOUND:
        fail("%s: no CUDA toolkit at %s (set CUDA_PATH)" % (ctx.label, CUDA_ROOT))
    contexts = [dep[CcInfo].compilation_context for dep in ctx.attr.deps]
    headers = depset(ctx.files.hdrs, transitive = [c.headers for c in contexts])
    quote_includes = depset([".", ctx.bin_dir.path], transitive = [c.quote_includes for c in contexts])
    includes = depset(transitive = [c.includes for c in contexts])
    system_includes = depset(transitive = [c.system_includes for c in contexts])
    defines = depset(transitive = [c.defines for c in contexts])
    objects = []
    for src in ctx.files.srcs:
        obj = ctx.actions.declare_file("_cuda_objs/%s/%s.pic.o" % (ctx.label.name, src.basename.rsplit(".", 1)[0]))
        args = ctx.actions.args()
        args.add_all(["-x", "cu", "-std=c++17", "-O3", "-lineinfo", "--expt-relaxed-constexpr"])
        args.add_all(["-Xcompiler", "-fPIC"])
        args.add_all([_GENCODE[arch] for arch in ctx.attr.gpu_archs])
        args.add_all(quote_includes, format_each = "-I%s")
        args.add_all(includes, format_each = "-I%s")
        args.add_all(system_includes, format_each = "-isystem=%s")
        args.add_all(defines, format_each = "-D%s")
        args.add_all(ctx.attr.copts)
        args.add_all(["-c", src.path, "-o", obj.path])
        ctx.actions.run(
            executable = NVCC,
            arguments = [args],
            inputs = depset([src], transitive = [headers]),
            outputs = [obj],
            mnemonic = "NvccCompile",
            progress_message = "nvcc %s" % src.short_path,
            use_default_shell_env = True,
        )
        objects.append(obj)
    return [DefaultInfo(files = depset(objects))]

_cuda_objects = rule(
    implementation = _cuda_objects_impl,
    attrs = {
        "srcs": attr.label_list(allow_files = [".cu"]),
        "hdrs": attr.label_list(allow_files = [".h", ".cuh"]),
        "deps": attr.label_list(providers = [CcInfo]),
        "copts": attr.string_list(),
        "gpu_archs": attr.string_list(default = ["90a", "80"]),
    },
)

def cuda_library(name, srcs, hdrs = [], deps = [], copts = [], gpu_archs = None, tags = [], **kwargs):
    """A cc_library whose .cu sources are compiled by nvcc. Tagged `gpu`."""
    objects_kwargs = {"gpu_archs": gpu_archs} if gpu_archs else {}
    _cuda_objects(
        name = name + "_objects",
        srcs = srcs,
        hdrs = hdrs,
        deps = deps + ["@local_cuda//:headers"],
        copts = copts,
        tags = tags + ["gpu"],
        visibility = ["//visibility:private"],
        **objects_kwargs
    )
    native.cc_library(
        name = name,
        srcs = [":" + name + "_objects"],
        hdrs = hdrs,
        deps = deps + ["@local_cuda//:cudart"],
        tags = tags + ["gpu"],
        linkstatic = True,
        alwayslink = True,
        **kwargs
    )
