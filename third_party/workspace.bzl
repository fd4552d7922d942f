"""Calls every third_party/<lib>/workspace.bzl. WORKSPACE loads this and nothing else."""

load("//third_party/rules_cc:workspace.bzl", rules_cc = "repo")
load("//third_party/rules_java:workspace.bzl", rules_java = "repo")
load("//third_party/remote_coverage_tools:workspace.bzl", remote_coverage_tools = "repo")
load("//third_party/absl:workspace.bzl", absl = "repo")
load("//third_party/googletest:workspace.bzl", googletest = "repo")
load("//third_party/benchmark:workspace.bzl", benchmark = "repo")
load("//third_party/nlohmann_json:workspace.bzl", nlohmann_json = "repo")
load("//third_party/libtorch:workspace.bzl", libtorch = "repo")
load("//third_party/cuda:workspace.bzl", cuda = "repo")
load("//third_party/smollm2:workspace.bzl", smollm2 = "repo")

def kvgate_dependencies():
    rules_cc()
    rules_java()
    remote_coverage_tools()
    absl()
    googletest()
    benchmark()
    nlohmann_json()
    libtorch()
    cuda()
    smollm2()
