#include "engine/snippet.h"

namespace quarry {

Snippet MakeSnippet(Analyzer* analyzer, const std::set<std::string>& query_terms, std::string_view text,
                    size_t max_tokens) {
  std::vector<std::pair<size_t, size_t>> spans;
  analyzer->Tokenize(text, &spans);
  std::vector<bool> match(spans.size());
  std::string term;
  size_t first = spans.size();
  for (size_t i = 0; i < spans.size(); ++i) {
    const auto [b, e] = spans[i];
    match[i] = analyzer->Normalize(text.substr(b, e - b), &term) && query_terms.count(term);
    if (match[i] && first == spans.size()) first = i;
  }
  Snippet s;
  if (spans.empty()) return s;
  const size_t lead = 6;
  size_t begin = first == spans.size() ? 0 : (first > lead ? first - lead : 0);
  const size_t end = std::min(spans.size(), begin + max_tokens);
  if (end - begin < max_tokens && end == spans.size()) begin = end > max_tokens ? end - max_tokens : 0;
  const size_t from = begin == 0 ? 0 : spans[begin].first;
  const size_t to = end == spans.size() ? text.size() : spans[end - 1].second;
  if (begin > 0) s.text = "... ";
  const size_t shift = s.text.size();
  s.text.append(text.substr(from, to - from));
  for (size_t i = begin; i < end; ++i) {
    if (match[i]) s.highlights.emplace_back(spans[i].first - from + shift, spans[i].second - from + shift);
  }
  if (end < spans.size()) s.text += " ...";
  return s;
}

}  // namespace quarry
