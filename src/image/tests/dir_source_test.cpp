#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "../sources_internal.h"
#include "layer_test_util.h"

namespace hashsieve::image {
namespace {

namespace fs = std::filesystem;

class Tree {
 public:
  Tree() {
    std::string tmpl = (fs::temp_directory_path() / "hashsieve_dirsrc_XXXXXX").string();
    root_ = ::mkdtemp(tmpl.data());
  }
  ~Tree() {
    fs::permissions(root_, fs::perms::all, fs::perm_options::add);
    for (auto& e : fs::recursive_directory_iterator(root_)) {
      if (!e.is_symlink()) fs::permissions(e.path(), fs::perms::owner_all, fs::perm_options::add);
    }
    fs::remove_all(root_);
  }
  void file(const std::string& rel, const std::string& content) {
    fs::create_directories(fs::path(root_ + "/" + rel).parent_path());
    std::ofstream(root_ + "/" + rel, std::ios::binary) << content;
  }
  const std::string& root() const { return root_; }

 private:
  std::string root_;
};

struct Walk {
  Status status;
  std::vector<std::string> entries;  // "kind path[=content|->target]"
};

const char* kind_name(EntryKind k) {
  switch (k) {
    case EntryKind::regular: return "f";
    case EntryKind::directory: return "d";
    case EntryKind::symlink: return "l";
    case EntryKind::device: return "c";
    default: return "?";
  }
}

Walk walk(const std::string& root, const ArchiveLimits& limits = {}) {
  SourceOptions options;
  options.limits = limits;
  auto source = open_dir_source(root, options);
  if (!source) return {std::move(source).error(), {}};
  auto images = (*source)->resolve();
  if (!images) return {std::move(images).error(), {}};
  EXPECT_EQ(images->size(), 1U);
  EXPECT_EQ((*images)[0].layers.size(), 1U);
  EXPECT_EQ((*images)[0].layers[0].digest, "");
  auto layer = (*source)->open_layer((*images)[0], 0);
  if (!layer) return {std::move(layer).error(), {}};
  auto read = testing::read_layer(**layer, 3);
  Walk out{std::move(read.status), {}};
  for (const auto& e : read.entries) {
    std::string s = std::string(kind_name(e.entry.kind)) + " " + e.entry.path;
    if (!e.content.empty()) s += "=" + e.content;
    if (!e.entry.link_target.empty()) s += "->" + e.entry.link_target;
    out.entries.push_back(s);
  }
  return out;
}

TEST(DirSource, WalksInSortedOrderWithoutFollowingLinks) {
  Tree t;
  t.file("etc/passwd", "root:x:0:0\n");
  t.file("etc/.wh.notawhiteout", "plain");
  t.file("bin/b", "bee");
  t.file("bin/a", "ay");
  t.file("empty/.keep", "");
  fs::create_symlink("../../../../etc/shadow", t.root() + "/bin/escape");
  fs::create_symlink("/etc", t.root() + "/hostetc");  // a link to a host directory: not entered
  ASSERT_EQ(::mkfifo((t.root() + "/run.fifo").c_str(), 0600), 0);
  const Walk got = walk(t.root() + "/");
  ASSERT_TRUE(got.status.ok()) << got.status.error().message();
  const std::vector<std::string> want = {
      "d bin",         "f bin/a=ay",  "f bin/b=bee", "l bin/escape->../../../../etc/shadow",
      "d empty",       "f empty/.keep", "d etc",     "f etc/.wh.notawhiteout=plain",
      "f etc/passwd=root:x:0:0\n", "l hostetc->/etc", "c run.fifo",
  };
  EXPECT_EQ(got.entries, want);
}

TEST(DirSource, Errors) {
  Tree t;
  t.file("a", std::string(1000, 'a'));
  t.file("b/c", "c");
  t.file("b/d", "d");
  ArchiveLimits few_entries;
  few_entries.max_entries = 2;
  ArchiveLimits small_files;
  small_files.max_file_bytes = 100;
  ArchiveLimits small_total;
  small_total.max_layer_bytes = 500;
  struct Case {
    std::string name;
    std::string root;
    ArchiveLimits limits;
    ErrorCode want;
    std::string want_text;
  };
  const std::vector<Case> cases = {
      {"missing root", t.root() + "/nope", {}, ErrorCode::not_found, "nope"},
      {"root is a file", t.root() + "/a", {}, ErrorCode::invalid_argument, "not a directory"},
      {"entry count", t.root(), few_entries, ErrorCode::limit_exceeded, "max_entries"},
      {"file size", t.root(), small_files, ErrorCode::limit_exceeded, "max_file_bytes"},
      {"total size", t.root(), small_total, ErrorCode::limit_exceeded, "max_layer_bytes"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    const Walk got = walk(c.root, c.limits);
    ASSERT_FALSE(got.status.ok());
    EXPECT_EQ(got.status.error().code(), c.want) << got.status.error().message();
    EXPECT_NE(got.status.error().message().find(c.want_text), std::string::npos) << got.status.error().message();
  }
}

TEST(DirSource, UnreadableFileIsPermissionDenied) {
  if (::geteuid() == 0) GTEST_SKIP() << "root reads files of any mode";
  Tree t;
  t.file("secret", "s");
  t.file("z/secretdir/x", "x");
  fs::permissions(t.root() + "/secret", fs::perms::none);
  const Walk got = walk(t.root());
  ASSERT_FALSE(got.status.ok());
  EXPECT_EQ(got.status.error().code(), ErrorCode::permission_denied);
  EXPECT_NE(got.status.error().message().find("secret"), std::string::npos) << got.status.error().message();
}

}  // namespace
}  // namespace hashsieve::image
