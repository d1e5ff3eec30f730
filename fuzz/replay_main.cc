// replay_main: a main for the fuzz targets outside libFuzzer. The normal
// build links each target with it and ctest runs it over the target's seed
// corpus and kept crashes (fuzz/corpus/<target>/, fuzz/crashes/<target>/),
// so every input that ever crashed a target stays a regression test in every
// build, sanitizer builds included, not only in `make fuzz`.
//
// usage: fuzz_<target> DIR_OR_FILE...   (exits non-zero if an input aborts)
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {

void Run(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  std::string data((std::istreambuf_iterator<char>(in)),
                   std::istreambuf_iterator<char>());
  std::fprintf(stderr, "replaying %s (%zu bytes)\n", file.c_str(), data.size());
  LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(data.data()),
                         data.size());
}

}  // namespace

int main(int argc, char** argv) {
  size_t inputs = 0;
  for (int i = 1; i < argc; ++i) {
    std::filesystem::path path(argv[i]);
    if (!std::filesystem::exists(path)) continue;  // no crashes kept yet
    std::vector<std::filesystem::path> files;
    if (std::filesystem::is_directory(path)) {
      for (const auto& entry : std::filesystem::directory_iterator(path))
        if (entry.is_regular_file()) files.push_back(entry.path());
    } else {
      files.push_back(path);
    }
    std::sort(files.begin(), files.end());
    for (const auto& file : files) {
      Run(file);
      ++inputs;
    }
  }
  std::fprintf(stderr, "%zu inputs replayed, none crashed\n", inputs);
  return 0;
}
