// The Sdbf value type: construction and derived per-filter data.
#include "hashsieve/digest/sdbf.h"

#include <bit>
#include <cassert>

namespace hashsieve::digest {

Sdbf Sdbf::from_stream(std::string name, std::uint64_t input_size,
                       std::vector<std::uint64_t> filter_words, std::uint32_t last_count) {
  assert(filter_words.size() % kSdbfFilterWords == 0 && !filter_words.empty());
  Sdbf d;
  d.name_ = std::move(name);
  d.input_size_ = input_size;
  d.kind_ = SdbfKind::stream;
  const std::size_t n = filter_words.size() / kSdbfFilterWords;
  d.filter_words_ = std::move(filter_words);
  d.element_counts_.assign(n, static_cast<std::uint16_t>(kSdbfStreamMaxElements));
  d.element_counts_.back() = static_cast<std::uint16_t>(last_count);
  d.compute_weights();
  return d;
}

Sdbf Sdbf::from_blocks(std::string name, std::uint64_t input_size, std::uint32_t block_size,
                       std::vector<std::uint64_t> filter_words,
                       std::vector<std::uint16_t> element_counts) {
  assert(filter_words.size() == element_counts.size() * kSdbfFilterWords);
  Sdbf d;
  d.name_ = std::move(name);
  d.input_size_ = input_size;
  d.kind_ = SdbfKind::block;
  d.block_size_ = block_size;
  d.filter_words_ = std::move(filter_words);
  d.element_counts_ = std::move(element_counts);
  d.compute_weights();
  return d;
}

std::uint32_t Sdbf::max_elements() const {
  return kind_ == SdbfKind::stream ? kSdbfStreamMaxElements : kSdbfBlockMaxElements;
}

void Sdbf::compute_weights() {
  weights_.resize(element_counts_.size());
  for (std::size_t i = 0; i < weights_.size(); ++i) {
    const std::uint64_t* w = filter_words(i);
    unsigned bits = 0;
    for (std::size_t k = 0; k < kSdbfFilterWords; ++k) bits += static_cast<unsigned>(std::popcount(w[k]));
    weights_[i] = static_cast<std::uint16_t>(bits);
  }
}

}  // namespace hashsieve::digest
