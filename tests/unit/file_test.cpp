// Whole-file helpers: atomic text writes, whole-file reads and their errors naming the file, the
// exclusive lock file.
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <memory>

#include "common/error.h"
#include "common/file.h"
#include "test_util.h"

using namespace odyssey;
using odyssey::testing::error_of;
using odyssey::testing::TempDir;

TEST(File, TextWrittenAtomicallyReplacesTheFileAndLeavesNoTemporary) {
  TempDir dir;
  write_text_atomically(dir / "latest", "ckpt-step0000000010.h5\n");
  write_text_atomically(dir / "latest", "ckpt-step0000000020.h5\n");
  const auto bytes = read_file_bytes(dir / "latest", "pointer");
  EXPECT_EQ(std::string(bytes.begin(), bytes.end()), "ckpt-step0000000020.h5\n");
  EXPECT_FALSE(std::filesystem::exists(dir / "latest.tmp"));
  // A folder that does not exist: an odyssey::Error naming the file, nothing left behind.
  EXPECT_THROW(write_text_atomically(dir / "gone/latest", "x"), Error);
  EXPECT_NE(error_of([&] { write_text_atomically(dir / "gone/latest", "x"); }).find(dir / "gone/latest.tmp"),
            std::string::npos);
  EXPECT_FALSE(std::filesystem::exists(dir / "gone"));
}

TEST(File, ReadErrorsAreErrorsNamingTheFile) {
  TempDir dir;
  EXPECT_THROW(read_file_bytes(dir / "absent", "metrics file"), Error);
  EXPECT_NE(error_of([&] { read_file_bytes(dir / "absent", "metrics file"); })
                .find("cannot open metrics file '" + (dir / "absent") + "'"),
            std::string::npos);
  // A folder opens but cannot be read (EISDIR): libstdc++ throws std::ios_base::failure from
  // inside the read, which must come out as an odyssey::Error (exit 2, the file named).
  std::filesystem::create_directories(dir / "folder");
  EXPECT_THROW(read_file_bytes(dir / "folder", "metrics file"), Error);
  EXPECT_NE(error_of([&] { read_file_bytes(dir / "folder", "metrics file"); })
                .find("cannot read metrics file '" + (dir / "folder") + "'"),
            std::string::npos);
}

TEST(File, ExclusiveLockRefusesASecondHolderAndNamesTheFirst) {
  TempDir dir;
  const std::string path = dir / ".lock";
  std::string holder;
  auto first = std::make_unique<ExclusiveFileLock>();
  ASSERT_EQ(first->try_lock(path, &holder), ExclusiveFileLock::Outcome::kHeld) << holder;
  ExclusiveFileLock second;  // flock: another open file description conflicts, even in one process
  EXPECT_EQ(second.try_lock(path, &holder), ExclusiveFileLock::Outcome::kBusy);
  EXPECT_NE(holder.find("pid " + std::to_string(::getpid())), std::string::npos) << holder;
  first.reset();  // released with its descriptor
  EXPECT_EQ(second.try_lock(path, &holder), ExclusiveFileLock::Outcome::kHeld) << holder;
  std::string e = error_of([&] {
    ExclusiveFileLock third;
    third.try_lock(dir / "missing/.lock", &holder);
  });
  EXPECT_NE(e.find("cannot open lock file '" + (dir / "missing/.lock") + "'"), std::string::npos) << e;
}
