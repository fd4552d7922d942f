"""gated_cc_library: an implementation target that builds only with permission from the evidence.

The project's rule (README.md): implementation work on a KV-cache idea is permitted only when the
committed records show, on one target (model, context, dtype, device), a passing speed ceiling
and a passing oracle-quality gate. gated_cc_library is a cc_library that first runs
//gates:permit_check over the records and the gate specs; when the records do not permit it, that
action fails and the build stops with the reasons: per variant, each gate's verdict and numbers.

Usage (in a BUILD file):

    load("//gates:gated.bzl", "gated_cc_library")

    gated_cc_library(
        name = "block_selector",
        permit = {
            "model": "Qwen2.5-7B-Instruct",
            "context": "8192",
            "dtype": "bfloat16",
            "device": "NVIDIA H100 80GB HBM3",
        },
        srcs = ["block_selector.cc"],
        hdrs = ["block_selector.h"],
    )

A permitted library carries the header "<package>/<name>_permit.h" with the decision, as
kvgate::permits::<package_name>::kEvidence (see gates/permit.h).
"""

_PERMIT_KEYS = ["model", "context", "dtype", "device"]

def _permit_impl(ctx):
    out = ctx.outputs.header
    args = ctx.actions.args()
    args.add("--label=" + ctx.attr.gated_label)
    for key in _PERMIT_KEYS:
        args.add("--%s=%s" % (key, ctx.attr.permit[key]))
    args.add("--gates=" + ",".join(ctx.attr.gates))
    args.add("--same_variant=" + ("true" if ctx.attr.same_variant else "false"))
    args.add_joined(ctx.files.specs, join_with = ",", format_joined = "--specs=%s")
    args.add("--out=" + out.path)
    args.add_all(ctx.files.records)
    ctx.actions.run(
        executable = ctx.executable._permit_check,
        arguments = [args],
        inputs = ctx.files.records + ctx.files.specs,
        outputs = [out],
        mnemonic = "KvgatePermit",
        progress_message = "Checking the permission to implement %s" % ctx.attr.gated_label,
    )
    return [DefaultInfo(files = depset([out]))]

_permit = rule(
    implementation = _permit_impl,
    attrs = {
        "gated_label": attr.string(mandatory = True),
        "permit": attr.string_dict(mandatory = True),
        "gates": attr.string_list(mandatory = True),
        "same_variant": attr.bool(default = True),
        "records": attr.label_list(allow_files = [".jsonl"]),
        "specs": attr.label_list(allow_files = [".json"], mandatory = True),
        "header": attr.output(mandatory = True),
        "_permit_check": attr.label(
            default = "//gates:permit_check",
            executable = True,
            cfg = "exec",
        ),
    },
    doc = "Runs //gates:permit_check; writes the permit header, or fails with the reasons.",
)

def gated_cc_library(
        name,
        permit,
        gates = ["speed_ceiling", "work_reduction_oracle"],
        same_variant = True,
        records = ["//reports/records"],
        specs = ["//gates/specs"],
        hdrs = [],
        **kwargs):
    """A cc_library that builds only when the committed records permit it.

    Args:
      name: the library's name.
      permit: the target, a dict of strings: model, context, dtype, device (as records name them).
      gates: gate ids that must all pass on that target, each at its latest spec version.
      same_variant: whether one variant must pass every gate (the default) or each gate any.
      records: records files (labels of *.jsonl files or filegroups).
      specs: gate spec files.
      hdrs: the library's headers; the permit header is added.
      **kwargs: the rest of cc_library's attributes.
    """
    keys = sorted(permit.keys())
    if keys != sorted(_PERMIT_KEYS):
        fail("gated_cc_library %s: permit names exactly %s, got %s" % (name, _PERMIT_KEYS, keys))
    if not gates:
        fail("gated_cc_library %s: gates is empty" % name)
    package = native.package_name()
    _permit(
        name = name + "_permit",
        gated_label = "//%s:%s" % (package, name),
        permit = permit,
        gates = gates,
        same_variant = same_variant,
        records = records,
        specs = specs,
        header = name + "_permit.h",
        testonly = kwargs.get("testonly", False),
        tags = kwargs.get("tags", []),
        visibility = ["//visibility:private"],
    )
    native.cc_library(
        name = name,
        hdrs = hdrs + [name + "_permit.h"],
        **kwargs
    )
