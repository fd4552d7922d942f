// main() for fuzz targets in builds without libFuzzer (the normal gcc build, --config=asan/ubsan):
// feeds every file named on the command line, and every file under every folder named, to
// LLVMFuzzerTestOneInput once, so the seeds and any crash reproducer run as ordinary tests.
// Arguments starting with '-' (libFuzzer flags) are refused: fuzzing needs tools/sanitize fuzz.

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {

void Replay(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::fprintf(stderr, "replay: cannot read %s\n", path.c_str());
    std::exit(1);
  }
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // A copy of exactly `size` bytes on the heap, so ASan sees a read one past the end.
  std::vector<uint8_t> copy(bytes.begin(), bytes.end());
  LLVMFuzzerTestOneInput(copy.data(), copy.size());
}

}  // namespace

int main(int argc, char** argv) {
  int inputs = 0;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (!arg.empty() && arg[0] == '-') {
      std::fprintf(stderr,
                   "replay: %s is a libFuzzer flag, and this build has no libFuzzer; build with "
                   "tools/sanitize fuzz\n",
                   arg.c_str());
      return 2;
    }
    if (std::filesystem::is_directory(arg)) {
      for (const auto& entry : std::filesystem::recursive_directory_iterator(arg)) {
        if (entry.is_regular_file()) {
          Replay(entry.path());
          ++inputs;
        }
      }
    } else {
      Replay(arg);
      ++inputs;
    }
  }
  std::printf("replay: %d inputs ran without a crash\n", inputs);
  return inputs > 0 ? 0 : 1;
}
