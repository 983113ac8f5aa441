// Whole-file helpers: atomic text writes, whole-file reads and their errors naming the file, the
// exclusive lock file.
#include <gtest/gtest.h>

#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <iterator>
#include <thread>
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
  int files = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir.str())) files += e.path().filename() == "latest" ? 0 : 1;
  EXPECT_EQ(files, 0) << "a temporary was left behind";
  // A folder that does not exist: an odyssey::Error naming the file, nothing left behind.
  EXPECT_THROW(write_text_atomically(dir / "gone/latest", "x"), Error);
  const std::string e = error_of([&] { write_text_atomically(dir / "gone/latest", "x"); });
  EXPECT_NE(e.find("cannot write '" + (dir / "gone/latest.")), std::string::npos) << e;
  EXPECT_NE(e.find(".tmp'"), std::string::npos) << e;
  EXPECT_FALSE(std::filesystem::exists(dir / "gone"));
}

TEST(File, TwoWritersOfOnePathEachReplaceItWhole) {
  // A `trainer report` on a live run's folder and the run's own report write one file at once:
  // with one shared temporary name a writer renamed the other's half-written file, or found its
  // own gone ("cannot replace").
  TempDir dir;
  const std::string path = dir / "report.html";
  const std::string a(100000, 'a'), b(100000, 'b');
  std::atomic<int> errors{0};
  auto writer = [&](const std::string& text) {
    for (int i = 0; i < 100; ++i) try {
        write_text_atomically(path, text);
      } catch (const Error&) {
        ++errors;
      }
  };
  std::thread t1(writer, a), t2(writer, b);
  t1.join();
  t2.join();
  EXPECT_EQ(errors.load(), 0);
  const auto bytes = read_file_bytes(path, "report");
  const std::string text(bytes.begin(), bytes.end());
  EXPECT_TRUE(text == a || text == b) << "a mixed or partial file of " << text.size() << " bytes";
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir.str()), std::filesystem::directory_iterator()), 1);
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
