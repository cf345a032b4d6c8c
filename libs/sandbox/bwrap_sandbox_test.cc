// Real bubblewrap runs. Each test skips, printing why, where bwrap or cgroups are unusable.
#include "libs/sandbox/bwrap_sandbox.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "libs/sandbox/cgroup.h"

namespace temper::sandbox {
namespace {

using ::testing::Contains;
using ::testing::HasSubstr;
using ::testing::Not;

class BwrapSandboxTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    absl::Status usable = CheckBwrapUsable(BwrapConfig{});
    if (!usable.ok()) {
      skip_reason_ = new std::string(std::string(usable.message()));
      return;
    }
    BwrapConfig probe;
    if (DetectCgroupVersion(probe.cgroup_root) == CgroupVersion::kNone ||
        !Cgroup::Create(probe.cgroup_root, "probe-" + std::to_string(getpid()), Limits{}).ok()) {
      skip_reason_ = new std::string("cannot create cgroups under /sys/fs/cgroup (not root?)");
    }
  }
  void SetUp() override {
    if (skip_reason_) GTEST_SKIP() << "sandbox unusable here: " << *skip_reason_;
    host_dir_ = std::filesystem::temp_directory_path() /
                ("temper-sandbox-test-" + std::to_string(getpid()));
    std::filesystem::create_directories(host_dir_);
    std::filesystem::permissions(host_dir_, std::filesystem::perms(0755));
    std::ofstream(host_dir_ / "data.txt") << "readable data";
    BwrapConfig config;
    config.mounts = {{host_dir_.string(), "/opt/data"}};
    auto made = BwrapSandbox::Create(config);
    ASSERT_TRUE(made.ok()) << made.status();
    sandbox_ = std::move(*made);
  }
  void TearDown() override {
    if (!host_dir_.empty()) std::filesystem::remove_all(host_dir_);
  }

  Result Sh(const std::string& script, Limits limits = Limits{}) {
    Request r;
    r.argv = {"/bin/sh", "-c", script};
    r.env = {{"PATH", "/usr/bin:/bin"}};
    r.limits = limits;
    auto result = sandbox_->Run(r);
    EXPECT_TRUE(result.ok()) << result.status();
    return result.ok() ? *result : Result{};
  }

  static std::string* skip_reason_;
  std::filesystem::path host_dir_;
  std::unique_ptr<BwrapSandbox> sandbox_;
};
std::string* BwrapSandboxTest::skip_reason_ = nullptr;

TEST_F(BwrapSandboxTest, RunsAsNobodyWithNoCapabilitiesAndACleanEnvironment) {
  Result r = Sh("id -u; id -g; grep CapEff /proc/self/status; env | sort; hostname");
  ASSERT_TRUE(r.Succeeded()) << r.stderr_data;
  EXPECT_THAT(r.stdout_data, HasSubstr("65534\n65534\n"));
  EXPECT_THAT(r.stdout_data, HasSubstr("CapEff:\t0000000000000000"));
  EXPECT_THAT(r.stdout_data, Not(HasSubstr("HOME=")));
  EXPECT_THAT(r.stdout_data, Not(HasSubstr("TEMPER_SOURCE_DIR")));
  EXPECT_THAT(r.stdout_data, HasSubstr("sandbox"));
}

TEST_F(BwrapSandboxTest, ReportsExitCodesAndSignals) {
  EXPECT_EQ(Sh("exit 3").exit_code, 3);
  Result r = Sh("kill -SEGV $$");
  EXPECT_EQ(r.signal, SIGSEGV);
  EXPECT_EQ(r.limit, Limit::kNone);
}

TEST_F(BwrapSandboxTest, HostFilesAreInvisibleAndOnlyWorkIsWritable) {
  Result r = Sh(
      "ls /root /home /etc/shadow /var 2>&1; cat /opt/data/data.txt; echo;"
      "touch /usr/x 2>&1 || echo usr-ro; touch /dev/x 2>&1 || echo dev-ro;"
      "touch /opt/data/x 2>&1 || echo data-ro; touch /x 2>&1 || echo root-ro;"
      "echo ok > /work/f && cat /work/f; echo $TMPDIR");
  EXPECT_THAT(r.stdout_data, HasSubstr("/root': No such file"));
  EXPECT_THAT(r.stdout_data, HasSubstr("/etc/shadow': No such file"));
  EXPECT_THAT(r.stdout_data, HasSubstr("readable data"));
  for (const char* s : {"usr-ro", "dev-ro", "data-ro", "root-ro", "\nok\n", "/work/.tmp"}) {
    EXPECT_THAT(r.stdout_data, HasSubstr(s));
  }
}

TEST_F(BwrapSandboxTest, NetworkHasOnlyLoopback) {
  Result r = Sh("cat /proc/net/dev");
  EXPECT_THAT(r.stdout_data, HasSubstr("lo:"));
  EXPECT_THAT(r.stdout_data, Not(HasSubstr("eth")));
}

TEST_F(BwrapSandboxTest, InputsGoInAndCollectedFilesComeOut) {
  Request r;
  r.argv = {"/bin/sh", "-c", "cat in/a.txt in/a.txt > out.txt; ./tool.sh >> out.txt; exit 4"};
  r.inputs = {{"in/a.txt", "abc", false}, {"tool.sh", "#!/bin/sh\necho tool\n", true}};
  r.collect = {"out.txt", "missing.txt"};
  auto result = sandbox_->Run(r);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->exit_code, 4);
  EXPECT_EQ(result->collected["out.txt"], "abcabctool\n");
  EXPECT_FALSE(result->collected.contains("missing.txt"));
}

TEST_F(BwrapSandboxTest, WallTimeoutKillsTheWholeTree) {
  Limits limits;
  limits.wall_time = std::chrono::milliseconds(800);
  Result r = Sh("(sleep 60 &); sleep 60 & sleep 60; wait", limits);
  EXPECT_EQ(r.limit, Limit::kWallTime);
  EXPECT_LT(r.wall_time, std::chrono::seconds(5));
}

TEST_F(BwrapSandboxTest, BackgroundChildrenDieWithTheCommand) {
  Result r = Sh("sleep 60 & echo started");
  EXPECT_TRUE(r.Succeeded());
  EXPECT_LT(r.wall_time, std::chrono::seconds(5));
}

TEST_F(BwrapSandboxTest, MemoryBombIsOomKilled) {
  Limits limits;
  limits.memory_bytes = 64LL << 20;
  Result r = Sh("tail /dev/zero", limits);
  EXPECT_EQ(r.limit, Limit::kMemory) << r.stderr_data;
  ASSERT_TRUE(r.peak_memory_bytes.has_value());
  EXPECT_LE(*r.peak_memory_bytes, 66LL << 20);
}

TEST_F(BwrapSandboxTest, ForkBombHitsThePidsLimit) {
  Limits limits;
  limits.pids = 16;
  limits.wall_time = std::chrono::seconds(5);
  Result r = Sh("for i in $(seq 64); do sleep 3 & done; wait; exit 0", limits);
  EXPECT_THAT(r.limits_reached, Contains(Limit::kPids));
  EXPECT_EQ(r.limit, Limit::kPids) << r.stderr_data;
}

TEST_F(BwrapSandboxTest, CpuHogHitsTheCpuLimit) {
  Limits limits;
  limits.cpu_time = std::chrono::seconds(1);
  Result r = Sh("while :; do :; done", limits);
  EXPECT_EQ(r.limit, Limit::kCpuTime) << "signal " << r.signal;
}

TEST_F(BwrapSandboxTest, BigFileHitsTheFileSizeLimit) {
  Limits limits;
  limits.file_size_bytes = 1 << 20;
  Result r = Sh("head -c 4000000 /dev/zero > /work/big", limits);
  EXPECT_EQ(r.limit, Limit::kFileSize) << "signal " << r.signal << " exit " << r.exit_code;
}

TEST_F(BwrapSandboxTest, TmpfsIsSizeCapped) {
  Limits limits;
  limits.tmpfs_bytes = 1 << 20;
  Result r = Sh("head -c 4000000 /dev/zero > /work/big; echo rc=$?", limits);
  EXPECT_THAT(r.stdout_data + r.stderr_data, HasSubstr("No space left"));
}

TEST_F(BwrapSandboxTest, RunawayOutputIsCappedAndKilled) {
  Limits limits;
  limits.output_bytes = 64 << 10;
  Result r = Sh("yes", limits);
  EXPECT_EQ(r.limit, Limit::kOutput);
  EXPECT_TRUE(r.stdout_truncated);
  EXPECT_EQ(r.stdout_data.size(), 64u << 10);
}

}  // namespace
}  // namespace temper::sandbox
