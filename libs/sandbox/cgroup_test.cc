#include "libs/sandbox/cgroup.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "gtest/gtest.h"

namespace temper::sandbox {
namespace {

namespace fs = std::filesystem;

std::string Read(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}
void Write(const fs::path& p, const std::string& s) { std::ofstream(p) << s; }

// A temporary directory laid out like a cgroup mount (plain files stand in for control files).
class FakeCgroupRoot : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() / ("temper-cgroup-test-" + std::to_string(getpid()) + "-" +
                                         ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(root_);
  }
  void TearDown() override { fs::remove_all(root_); }
  fs::path root_;
};

TEST_F(FakeCgroupRoot, DetectsNothingInAnEmptyDirectory) {
  EXPECT_EQ(DetectCgroupVersion(root_), CgroupVersion::kNone);
  EXPECT_FALSE(Cgroup::Create(root_, "x", Limits{}).ok());
}

TEST_F(FakeCgroupRoot, V1WritesLimitsPerControllerAndReadsUsage) {
  for (const char* c : {"memory", "pids", "cpu"}) fs::create_directories(root_ / c);
  Write(root_ / "memory/memory.limit_in_bytes", "0");
  ASSERT_EQ(DetectCgroupVersion(root_), CgroupVersion::kV1);
  Limits limits;
  limits.memory_bytes = 1 << 20;
  limits.pids = 7;
  limits.cpus = 0.5;
  auto group = Cgroup::Create(root_, "run-1", limits);
  ASSERT_TRUE(group.ok()) << group.status();
  EXPECT_EQ(Read(root_ / "memory/temper/run-1/memory.limit_in_bytes"), "1048576");
  EXPECT_EQ(Read(root_ / "pids/temper/run-1/pids.max"), "7");
  EXPECT_EQ(Read(root_ / "cpu/temper/run-1/cpu.cfs_quota_us"), "50000");
  EXPECT_EQ(Read(root_ / "cpu/temper/run-1/cpu.cfs_period_us"), "100000");

  Write(root_ / "memory/temper/run-1/memory.max_usage_in_bytes", "4096\n");
  Write(root_ / "memory/temper/run-1/memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 1\n");
  Write(root_ / "pids/temper/run-1/pids.events", "max 3\n");
  CgroupUsage usage = (*group)->ReadUsage();
  EXPECT_EQ(usage.peak_memory_bytes, 4096);
  EXPECT_TRUE(usage.oom_killed);
  EXPECT_TRUE(usage.pids_exhausted);
}

TEST_F(FakeCgroupRoot, V1SwapIsCappedWhereSwapAccountingExists) {
  for (const char* c : {"memory", "pids", "cpu"}) fs::create_directories(root_ / c);
  Write(root_ / "memory/memory.limit_in_bytes", "0");
  fs::create_directories(root_ / "memory/temper/run-2");
  Write(root_ / "memory/temper/run-2/memory.memsw.limit_in_bytes", "");
  auto group = Cgroup::Create(root_, "run-2", Limits{});
  ASSERT_TRUE(group.ok()) << group.status();
  EXPECT_EQ(Read(root_ / "memory/temper/run-2/memory.memsw.limit_in_bytes"),
            std::to_string(Limits{}.memory_bytes));
}

TEST_F(FakeCgroupRoot, V2WritesOneDirectoryWithNoSwapAndReadsEvents) {
  Write(root_ / "cgroup.controllers", "cpu memory pids\n");
  ASSERT_EQ(DetectCgroupVersion(root_), CgroupVersion::kV2);
  Limits limits;
  limits.memory_bytes = 2 << 20;
  limits.pids = 9;
  limits.cpus = 2;
  auto group = Cgroup::Create(root_, "run-3", limits);
  ASSERT_TRUE(group.ok()) << group.status();
  fs::path dir = root_ / "temper/run-3";
  EXPECT_EQ(Read(dir / "memory.max"), "2097152");
  EXPECT_EQ(Read(dir / "memory.swap.max"), "0");
  EXPECT_EQ(Read(dir / "pids.max"), "9");
  EXPECT_EQ(Read(dir / "cpu.max"), "200000 100000");
  EXPECT_EQ(Read(root_ / "temper/cgroup.subtree_control"), "+memory +pids +cpu");

  Write(dir / "memory.peak", "8192\n");
  Write(dir / "memory.events", "low 0\nhigh 0\nmax 4\noom 1\noom_kill 0\n");
  Write(dir / "pids.events", "max 0\n");
  CgroupUsage usage = (*group)->ReadUsage();
  EXPECT_EQ(usage.peak_memory_bytes, 8192);
  EXPECT_FALSE(usage.oom_killed);
  EXPECT_FALSE(usage.pids_exhausted);
}

}  // namespace
}  // namespace temper::sandbox
