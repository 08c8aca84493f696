#include "hashsieve/core/file.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

namespace hashsieve {
namespace {

namespace fs = std::filesystem;

class MappedFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("hashsieve_file_test_" + std::to_string(::getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string write(const std::string& name, const std::string& content) {
    auto p = dir_ / name;
    std::ofstream(p, std::ios::binary) << content;
    return p.string();
  }
  fs::path dir_;
};

TEST_F(MappedFileTest, ReadsSmallAndLargeFiles) {
  struct Case { const char* name; std::size_t size; };
  for (const Case& c : {Case{"empty", 0}, Case{"small", 1000}, Case{"large", 1 << 20}}) {
    SCOPED_TRACE(c.name);
    std::string content(c.size, '\0');
    for (std::size_t i = 0; i < c.size; ++i) content[i] = static_cast<char>(i * 7);
    auto file = MappedFile::open(write(c.name, content));
    ASSERT_TRUE(file.ok()) << file.error().message();
    ASSERT_EQ(file->size(), c.size);
    EXPECT_EQ(std::string(reinterpret_cast<const char*>(file->bytes().data()), c.size), content);
  }
}

TEST_F(MappedFileTest, ErrorsNameThePathAndKind) {
  auto missing = MappedFile::open((dir_ / "nope").string());
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code(), ErrorCode::not_found);
  EXPECT_NE(missing.error().message().find("nope"), std::string::npos);

  auto dir = MappedFile::open(dir_.string());
  ASSERT_FALSE(dir.ok());
  EXPECT_EQ(dir.error().code(), ErrorCode::invalid_argument);

  std::string fifo = (dir_ / "fifo").string();
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  auto special = MappedFile::open(fifo);
  // opening a FIFO read-only would block; open() must refuse before reading
  ASSERT_FALSE(special.ok());
}

}  // namespace
}  // namespace hashsieve
