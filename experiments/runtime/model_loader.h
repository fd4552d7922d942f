// The generic entry point of the loaders: a Hugging Face snapshot folder (hf_snapshot.h) or a
// .gguf file (gguf_weights.h), chosen by what the path is. With LoadTokenizer (tokenizer.h) and
// LoadChatTemplate (chat_template.h), which take the same paths, this is all a model needs.
//
// Usage:
//   absl::StatusOr<kvgate::runtime::ModelWeights> w = kvgate::runtime::LoadModel(path);
//   absl::StatusOr<kvgate::runtime::Tokenizer> tok = kvgate::runtime::LoadTokenizer(path);
//   absl::StatusOr<kvgate::runtime::ChatTemplate> chat = kvgate::runtime::LoadChatTemplate(path);

#ifndef KVGATE_EXPERIMENTS_RUNTIME_MODEL_LOADER_H_
#define KVGATE_EXPERIMENTS_RUNTIME_MODEL_LOADER_H_

#include <string>

#include "absl/status/statusor.h"
#include "experiments/runtime/model_loader_common.h"
#include "experiments/runtime/model_weights.h"

namespace kvgate::runtime {

// A folder: LoadHfSnapshot. A file starting with "GGUF" (normally *.gguf): LoadGgufModel.
absl::StatusOr<ModelWeights> LoadModel(const std::string& path, const LoadOptions& options = {});

}  // namespace kvgate::runtime

#endif  // KVGATE_EXPERIMENTS_RUNTIME_MODEL_LOADER_H_
