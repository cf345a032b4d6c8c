#include <algorithm>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "libs/sandbox/bwrap_sandbox.h"

namespace temper::sandbox {
namespace {

using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::Not;

// True when `args` holds `seq` as a contiguous run.
bool HasRun(const std::vector<std::string>& args, const std::vector<std::string>& seq) {
  return std::search(args.begin(), args.end(), seq.begin(), seq.end()) != args.end();
}

std::vector<std::string> After(const std::vector<std::string>& args, const std::string& marker) {
  auto it = std::find(args.begin(), args.end(), marker);
  return it == args.end() ? std::vector<std::string>{} : std::vector<std::string>(it + 1, args.end());
}

class BwrapArgvTest : public ::testing::Test {
 protected:
  BwrapArgvTest() {
    config_.mounts = {{"/root/.rustup/toolchains/stable", "/opt/rust"}, {"/cache/crates", "/opt/crates"}};
    layout_.ro_binds = {"/usr"};
    layout_.symlinks = {{"usr/lib", "/lib"}, {"usr/bin", "/bin"}};
    fds_.seccomp = 5;
    fds_.json_status = 4;
    fds_.mounts = {6, 7};
    request_.argv = {"/opt/rust/bin/rustc", "main.rs"};
    request_.env = {{"PATH", "/usr/bin"}};
  }
  BwrapConfig config_;
  SystemLayout layout_;
  BwrapFds fds_;
  Request request_;
};

TEST_F(BwrapArgvTest, IsolatesEveryNamespaceAsNobodyWithoutCapabilities) {
  auto args = BuildBwrapArgv(config_, layout_, request_, fds_);
  EXPECT_EQ(args[0], "/usr/bin/bwrap");
  for (const char* flag : {"--unshare-user", "--unshare-pid", "--unshare-ipc", "--unshare-uts",
                           "--unshare-net", "--new-session", "--die-with-parent", "--clearenv"}) {
    EXPECT_THAT(args, Contains(flag)) << flag;
  }
  EXPECT_TRUE(HasRun(args, {"--uid", "65534", "--gid", "65534"}));
  EXPECT_TRUE(HasRun(args, {"--cap-drop", "ALL"}));
  EXPECT_TRUE(HasRun(args, {"--seccomp", "5"}));
  EXPECT_TRUE(HasRun(args, {"--json-status-fd", "4"}));
  // Never --share-net or a writable bind of a host path.
  EXPECT_THAT(args, Not(Contains("--share-net")));
  EXPECT_THAT(args, Not(Contains("--bind")));
  EXPECT_THAT(args, Not(Contains("--bind-fd")));
  EXPECT_THAT(args, Not(Contains("--dev-bind")));
}

TEST_F(BwrapArgvTest, MountsToolchainReadOnlyAndTmpfsIsTheOnlyWritablePlace) {
  request_.limits.tmpfs_bytes = 1234567;
  auto args = BuildBwrapArgv(config_, layout_, request_, fds_);
  EXPECT_TRUE(HasRun(args, {"--ro-bind", "/usr", "/usr"}));
  EXPECT_TRUE(HasRun(args, {"--symlink", "usr/lib", "/lib"}));
  EXPECT_TRUE(HasRun(args, {"--ro-bind-fd", "6", "/opt/rust"}));
  EXPECT_TRUE(HasRun(args, {"--ro-bind-fd", "7", "/opt/crates"}));
  EXPECT_TRUE(HasRun(args, {"--size", "1234567", "--tmpfs", "/work"}));
  EXPECT_TRUE(HasRun(args, {"--remount-ro", "/dev"}));
  EXPECT_TRUE(HasRun(args, {"--remount-ro", "/"}));
  EXPECT_TRUE(HasRun(args, {"--setenv", "TMPDIR", "/work/.tmp"}));
  // Host paths from the config never appear (they travel as fds).
  EXPECT_THAT(args, Not(Contains("/root/.rustup/toolchains/stable")));
}

TEST_F(BwrapArgvTest, CleanEnvironmentHoldsOnlyWhatTheRequestSets) {
  auto args = BuildBwrapArgv(config_, layout_, request_, fds_);
  EXPECT_TRUE(HasRun(args, {"--setenv", "PATH", "/usr/bin"}));
  EXPECT_EQ(std::count(args.begin(), args.end(), "--setenv"), 2);  // TMPDIR and PATH
  EXPECT_THAT(args, Not(Contains("RUSTC_BOOTSTRAP")));
}

TEST_F(BwrapArgvTest, InputsAreCopiedFromFdsWithTheirModesAndParents) {
  request_.inputs = {{"src/main.rs", "fn main(){}", false}, {"bin/t", "\x7f" "ELF", true}};
  fds_.inputs = {8, 9};
  auto args = BuildBwrapArgv(config_, layout_, request_, fds_);
  EXPECT_TRUE(HasRun(args, {"--dir", "/work/bin"}));
  EXPECT_TRUE(HasRun(args, {"--dir", "/work/src"}));
  EXPECT_TRUE(HasRun(args, {"--perms", "0644", "--file", "8", "/work/src/main.rs"}));
  EXPECT_TRUE(HasRun(args, {"--perms", "0755", "--file", "9", "/work/bin/t"}));
}

TEST_F(BwrapArgvTest, CommandFollowsTheSeparatorUnchanged) {
  auto args = BuildBwrapArgv(config_, layout_, request_, fds_);
  EXPECT_THAT(After(args, "--"), ElementsAre("/opt/rust/bin/rustc", "main.rs"));
}

TEST_F(BwrapArgvTest, CollectedFilesLeaveThroughTheirPipesAfterTheCommand) {
  request_.collect = {"out/test bin"};
  fds_.collect = {3};
  auto args = BuildBwrapArgv(config_, layout_, request_, fds_);
  auto cmd = After(args, "--");
  ASSERT_GE(cmd.size(), 4u);
  EXPECT_EQ(cmd[0], "/bin/sh");
  EXPECT_EQ(cmd[1], "-c");
  EXPECT_THAT(cmd[2], ::testing::HasSubstr("cat -- '/work/out/test bin' >&3"));
  EXPECT_THAT(cmd[2], ::testing::HasSubstr("exit $rc"));
  EXPECT_THAT(std::vector<std::string>(cmd.begin() + 3, cmd.end()),
              ElementsAre("sh", "/opt/rust/bin/rustc", "main.rs"));
}

TEST(LimitNameTest, RoundTrips) {
  for (Limit l : {Limit::kNone, Limit::kWallTime, Limit::kMemory, Limit::kPids, Limit::kCpuTime,
                  Limit::kFileSize, Limit::kOutput}) {
    EXPECT_EQ(LimitFromName(LimitName(l)), l);
  }
  EXPECT_EQ(LimitFromName("bogus"), std::nullopt);
}

}  // namespace
}  // namespace temper::sandbox
