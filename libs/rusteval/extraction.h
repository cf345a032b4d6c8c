// Extraction: turns raw model output into the code a Sample carries. A separate step from
// evaluation so that its choices are tested and reported on their own. Pure; thread-safe.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace temper::rusteval {

struct ExtractionOptions {
  // Cut the output at the earliest of these (MultiPL-E's "\n}" and friends).
  std::vector<std::string> stop_sequences;
  // When the code must continue an already-open function body (HumanEval-X declarations,
  // MultiPL-E prompts), the brace depth at which it starts: 1. A whole program starts at 0.
  int initial_depth = 0;
  // If the extracted code repeats the function header (e.g. "fn add("), keep only what follows
  // the header's opening brace, so a model that rewrote the whole function still continues it.
  std::string function_header;
  // Keep a continuation's closing brace(s) (HumanEval-X) or drop them (MultiPL-E, whose tests
  // close the function).
  bool keep_closing_brace = true;
};

struct Extraction {
  std::string code;
  bool from_fence = false;     // taken from a ``` fenced block
  bool stopped = false;        // cut at a stop sequence
  bool trimmed_tail = false;   // an unfinished trailing item was dropped
  bool empty() const { return code.find_first_not_of(" \t\r\n") == std::string::npos; }
};

Extraction ExtractCode(std::string_view output, const ExtractionOptions& options);

// Brace depth after `code`, starting from `initial_depth`, ignoring braces inside comments, string,
// raw-string, byte-string and char literals. Exposed for tests.
int BraceDepth(std::string_view code, int initial_depth = 0);

}  // namespace temper::rusteval
