#include "libs/rusteval/syntax_metrics.h"

#include <tree_sitter/api.h>

#include <memory>
#include <set>
#include <string>

extern "C" const TSLanguage* tree_sitter_rust(void);

namespace temper::rusteval {
namespace {

struct ParserDeleter {
  void operator()(TSParser* p) const { ts_parser_delete(p); }
};
struct TreeDeleter {
  void operator()(TSTree* t) const { ts_tree_delete(t); }
};

const std::set<std::string_view>& IteratorAdaptors() {
  static const auto* const kNames = new std::set<std::string_view>{
      "iter", "into_iter", "iter_mut", "map", "filter", "filter_map", "flat_map", "flatten", "fold",
      "collect", "zip", "enumerate", "rev", "take", "skip", "take_while", "skip_while", "chain",
      "any", "all", "find", "find_map", "position", "sum", "product", "count", "min_by_key",
      "max_by_key", "min_by", "max_by", "peekable", "windows", "chunks", "step_by", "scan",
      "inspect", "cloned", "copied", "for_each", "partition", "last", "nth", "dedup", "sorted"};
  return *kNames;
}

const std::set<std::string_view>& PublicItemKinds() {
  static const auto* const kKinds = new std::set<std::string_view>{
      "function_item", "struct_item", "enum_item", "trait_item", "const_item", "static_item",
      "type_item", "mod_item", "union_item", "macro_definition"};
  return *kKinds;
}

class Walker {
 public:
  explicit Walker(std::string_view source) : src_(source) {}

  void Visit(TSNode node, SyntaxMetrics& m) {
    const std::string_view type = ts_node_type(node);
    if (type == "function_item") {
      ++m.functions;
      if (HasTestAttribute(node)) ++m.tests;
    } else if (type == "struct_item") {
      ++m.structs;
    } else if (type == "enum_item") {
      ++m.enums;
    } else if (type == "impl_item") {
      ++m.impls;
    } else if (type == "trait_item") {
      ++m.traits;
    } else if (type == "try_expression") {
      ++m.question_marks;
    } else if (type == "match_expression") {
      ++m.match_expressions;
    } else if (type == "if_expression") {
      TSNode cond = ts_node_child_by_field_name(node, "condition", 9);
      if (!ts_node_is_null(cond)) {
        std::string_view ct = ts_node_type(cond);
        if (ct == "let_condition" || ct == "let_chain") ++m.if_lets;
      }
    } else if (type == "unsafe_block") {
      ++m.unsafe_blocks;
    } else if (type == "generic_type") {
      TSNode name = ts_node_child_by_field_name(node, "type", 4);
      if (!ts_node_is_null(name)) {
        std::string_view t = LastSegment(Text(name));
        if (t == "Result") ++m.result_types;
        if (t == "Option") ++m.option_types;
      }
    } else if (type == "macro_invocation") {
      TSNode name = ts_node_child_by_field_name(node, "macro", 5);
      if (!ts_node_is_null(name)) {
        std::string_view t = LastSegment(Text(name));
        if (t == "panic" || t == "todo" || t == "unimplemented" || t == "unreachable") ++m.panics;
      }
    } else if (type == "call_expression") {
      TSNode fn = ts_node_child_by_field_name(node, "function", 8);
      if (!ts_node_is_null(fn) && std::string_view(ts_node_type(fn)) == "field_expression") {
        TSNode field = ts_node_child_by_field_name(fn, "field", 5);
        if (!ts_node_is_null(field)) {
          std::string_view name = Text(field);
          if (name == "unwrap" || name == "expect") ++m.unwraps;
          if (IteratorAdaptors().contains(name)) ++m.iterator_adaptors;
        }
      }
    }
    if (PublicItemKinds().contains(type) && IsPublic(node)) {
      ++m.public_items;
      if (IsDocumented(node)) ++m.documented_public_items;
    }
    const uint32_t n = ts_node_child_count(node);
    for (uint32_t i = 0; i < n; ++i) Visit(ts_node_child(node, i), m);
  }

 private:
  std::string_view Text(TSNode node) const {
    uint32_t start = ts_node_start_byte(node), end = ts_node_end_byte(node);
    if (start > src_.size() || end > src_.size() || end < start) return {};
    return src_.substr(start, end - start);
  }
  static std::string_view LastSegment(std::string_view path) {
    size_t at = path.rfind("::");
    return at == std::string_view::npos ? path : path.substr(at + 2);
  }
  static bool IsPublic(TSNode item) {
    const uint32_t n = ts_node_named_child_count(item);
    for (uint32_t i = 0; i < n; ++i) {
      if (std::string_view(ts_node_type(ts_node_named_child(item, i))) == "visibility_modifier") {
        return true;
      }
    }
    return false;
  }
  // Outer attributes and doc comments are the item's preceding siblings.
  bool HasTestAttribute(TSNode item) const {
    for (TSNode s = ts_node_prev_named_sibling(item); !ts_node_is_null(s); s = ts_node_prev_named_sibling(s)) {
      std::string_view t = ts_node_type(s);
      if (t == "attribute_item") {
        TSNode attr = ts_node_named_child(s, 0);
        if (!ts_node_is_null(attr) && ts_node_named_child_count(attr) > 0) {
          std::string_view name = LastSegment(Text(ts_node_named_child(attr, 0)));
          if (name == "test") return true;
        }
        continue;
      }
      if (t == "line_comment" || t == "block_comment") continue;
      break;
    }
    return false;
  }
  bool IsDocumented(TSNode item) const {
    for (TSNode s = ts_node_prev_named_sibling(item); !ts_node_is_null(s); s = ts_node_prev_named_sibling(s)) {
      std::string_view t = ts_node_type(s);
      if (t == "line_comment" || t == "block_comment") {
        if (!ts_node_is_null(ts_node_child_by_field_name(s, "outer", 5))) return true;
        continue;  // an ordinary comment between docs and the item
      }
      if (t == "attribute_item") {
        TSNode attr = ts_node_named_child(s, 0);
        if (!ts_node_is_null(attr) && ts_node_named_child_count(attr) > 0 &&
            Text(ts_node_named_child(attr, 0)) == "doc") {
          return true;
        }
        continue;
      }
      break;
    }
    return false;
  }

  std::string_view src_;
};

}  // namespace

SyntaxMetrics ComputeSyntaxMetrics(std::string_view source) {
  SyntaxMetrics m;
  std::unique_ptr<TSParser, ParserDeleter> parser(ts_parser_new());
  if (!ts_parser_set_language(parser.get(), tree_sitter_rust())) return m;
  std::unique_ptr<TSTree, TreeDeleter> tree(
      ts_parser_parse_string(parser.get(), nullptr, source.data(), static_cast<uint32_t>(source.size())));
  if (!tree) return m;
  TSNode root = ts_tree_root_node(tree.get());
  m.parsed_cleanly = !ts_node_has_error(root);
  Walker(source).Visit(root, m);
  return m;
}

}  // namespace temper::rusteval
