// VirusShare_NNNNN.md5: a short '#' comment header, then one hex MD5 per line
// (either case). Every row is malicious.
#include "source_internal.h"

namespace hashsieve::refset::detail {

Result<SourceStats> read_virusshare(const std::string& path, ReadContext& ctx) {
  auto opened = LineReader::open(path);
  if (!opened) return std::move(opened).error();
  LineReader& in = *opened;
  ctx.set_totals(in.file_size(), std::nullopt);
  TextSniffer sniff(ctx, "a VirusShare MD5 list");
  if (Status s = sniff.check_head(in); !s) return std::move(s).error();

  SourceRow row;
  row.class_override = ReferenceClass::malicious;
  while (auto line = in.next()) {
    const std::string_view text = trim(*line);
    if (text.empty() || text.front() == '#') continue;
    ctx.set_bytes(in.bytes_consumed());
    const std::optional<Md5Digest> md5 = parse_digest<Md5Digest>(text);
    if (!md5) {
      Status s = sniff.bad("line " + std::to_string(in.line_number()) + ": bad MD5 " + quote(text));
      if (!s) return std::move(s).error();
      continue;
    }
    sniff.good();
    row.md5 = md5;
    if (Status s = ctx.row(row); !s) return std::move(s).error();
  }
  if (in.error()) return *in.error();
  ctx.set_bytes(in.bytes_consumed());
  if (Status s = sniff.finish(); !s) return std::move(s).error();
  return ctx.stats();
}

}  // namespace hashsieve::refset::detail
