// Snippets: a window of a document's text around its first query-term match, with the byte spans of
// every matching token (for highlighting).
#pragma once

#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "index/lexical/analyzer.h"

namespace quarry {

struct Snippet {
  std::string text;
  std::vector<std::pair<size_t, size_t>> highlights;  // byte spans in `text`
};

// `query_terms`: analyzed query terms. The window holds up to `max_tokens` word tokens, starting a few
// tokens before the first match (or at the start when nothing matches).
Snippet MakeSnippet(Analyzer* analyzer, const std::set<std::string>& query_terms, std::string_view text,
                    size_t max_tokens = 32);

}  // namespace quarry
