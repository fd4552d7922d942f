// See model_loader.h.

#include "experiments/runtime/model_loader.h"

#include <sys/stat.h>

#include <cstdio>
#include <memory>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "experiments/runtime/gguf_weights.h"
#include "experiments/runtime/hf_snapshot.h"

namespace kvgate::runtime {

absl::StatusOr<ModelWeights> LoadModel(const std::string& path, const LoadOptions& options) {
  struct stat info;
  if (::stat(path.c_str(), &info) != 0)
    return absl::NotFoundError(absl::StrCat(path, ": no such file or folder"));
  if (S_ISDIR(info.st_mode)) return LoadHfSnapshot(path, options);
  char magic[4] = {};
  std::unique_ptr<FILE, int (*)(FILE*)> file(std::fopen(path.c_str(), "rb"), &std::fclose);
  if (file != nullptr && std::fread(magic, 1, 4, file.get()) == 4 &&
      std::string(magic, 4) == "GGUF") {
    return LoadGgufModel(path, options);
  }
  return absl::InvalidArgumentError(absl::StrCat(
      path,
      ": expected a Hugging Face snapshot folder (config.json, *.safetensors) or a GGUF file"));
}

}  // namespace kvgate::runtime
