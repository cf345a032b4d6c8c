// Syntax metrics of Rust source from a real parser (tree-sitter-rust), never regexes: comments and
// string literals cannot fool them. Thread-safe (each call owns its parser).
#pragma once

#include <string_view>

namespace temper::rusteval {

struct SyntaxMetrics {
  bool parsed_cleanly = false;  // no ERROR/MISSING nodes in the tree
  int functions = 0;            // fn items, methods included
  int structs = 0;
  int enums = 0;
  int impls = 0;
  int traits = 0;
  int tests = 0;                // fns carrying #[test]
  int public_items = 0;         // pub fn/struct/enum/trait/const/static/type/mod
  int documented_public_items = 0;  // ... preceded by /// or /** */ or #[doc]
  int result_types = 0;         // Result<..> in type positions
  int option_types = 0;         // Option<..> in type positions
  int question_marks = 0;       // the ? operator
  int iterator_adaptors = 0;    // .map/.filter/.fold/.collect/... method calls
  int match_expressions = 0;
  int if_lets = 0;
  int unsafe_blocks = 0;
  int unwraps = 0;              // .unwrap() and .expect(..) calls
  int panics = 0;               // panic!, todo!, unimplemented!, unreachable! invocations

  double doc_coverage() const {
    return public_items == 0 ? 1.0 : static_cast<double>(documented_public_items) / public_items;
  }
  bool operator==(const SyntaxMetrics&) const = default;
};

SyntaxMetrics ComputeSyntaxMetrics(std::string_view source);

}  // namespace temper::rusteval
