#include "libs/store/embedded_pg.h"

#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "spdlog/spdlog.h"

namespace temper {
namespace fs = std::filesystem;
namespace {

constexpr const char* kDbUser = "temper";
constexpr int kPort = 5432;  // only names the socket file; there is no TCP listener

// The unprivileged account the server runs under when we are root.
const passwd* ServerAccount() {
  if (geteuid() != 0) return nullptr;
  if (const passwd* pw = getpwnam("postgres")) return pw;
  return getpwnam("nobody");
}

std::string ReadTail(const std::string& path) {
  std::ifstream in(path);
  std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return all.size() > 2000 ? all.substr(all.size() - 2000) : all;
}

}  // namespace

EmbeddedPostgres::EmbeddedPostgres(std::string dir, bool fsync)
    : dir_(fs::absolute(dir).string()), fsync_(fsync) {}

EmbeddedPostgres::~EmbeddedPostgres() {
  if (started_) (void)Stop();
}

std::string EmbeddedPostgres::BinDir() const {
  if (const char* env = std::getenv("TEMPER_PG_BINDIR")) return env;
  for (int v : {17, 16, 15, 14, 13}) {
    std::string d = absl::StrCat("/usr/lib/postgresql/", v, "/bin");
    if (fs::exists(d + "/initdb")) return d;
  }
  return "/usr/lib/postgresql/15/bin";
}

std::string EmbeddedPostgres::conninfo() const {
  return absl::StrCat("host=", dir_, "/run port=", kPort, " dbname=temper user=", kDbUser,
                      " connect_timeout=5");
}

absl::Status EmbeddedPostgres::RunAsServerUser(const std::vector<std::string>& argv,
                                               const std::string& log) const {
  const passwd* pw = ServerAccount();
  pid_t pid = fork();
  if (pid < 0) return absl::InternalError(absl::StrCat("fork: ", strerror(errno)));
  if (pid == 0) {
    int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
    }
    if (pw) {
      if (setgroups(0, nullptr) != 0 || setgid(pw->pw_gid) != 0 || setuid(pw->pw_uid) != 0) _exit(126);
    }
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execv(args[0], args.data());
    _exit(127);
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return absl::OkStatus();
  return absl::InternalError(absl::StrCat(fs::path(argv[0]).filename().string(), " failed (status ",
                                          status, "): ", ReadTail(log)));
}

absl::Status EmbeddedPostgres::Start() {
  std::error_code ec;
  std::string data = dir_ + "/data", run = dir_ + "/run", log = dir_ + "/postgres.log";
  fs::create_directories(run, ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot create ", run, ": ", ec.message()));
  if (const passwd* pw = ServerAccount()) {
    // The server account must own its directories and reach them through every parent.
    for (const auto& p : {dir_, run}) {
      if (chown(p.c_str(), pw->pw_uid, pw->pw_gid) != 0)
        return absl::InternalError(absl::StrCat("chown ", p, ": ", strerror(errno)));
    }
    for (fs::path p = fs::path(dir_).parent_path(); p != p.root_path(); p = p.parent_path()) {
      struct stat st {};
      if (stat(p.c_str(), &st) == 0 && (st.st_mode & S_IXOTH) == 0)
        return absl::FailedPreconditionError(absl::StrCat(
            "the embedded PostgreSQL runs as user ", pw->pw_name, " and cannot enter ", p.string(),
            "; choose a --data-dir outside it (e.g. /var/lib/temper)"));
    }
    int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      (void)fchown(fd, pw->pw_uid, pw->pw_gid);
      close(fd);
    }
  }
  std::string bin = BinDir();
  if (!fs::exists(data + "/PG_VERSION")) {
    spdlog::info("initialising embedded PostgreSQL cluster in {}", data);
    RETURN_IF_ERROR(RunAsServerUser({bin + "/initdb", "-D", data, "-U", kDbUser, "--auth=trust",
                                     "-E", "UTF8", "--locale=C.UTF-8", "--no-instructions"},
                                    log));
    std::ofstream conf(data + "/postgresql.conf", std::ios::app);
    conf << "\n# temper embedded defaults\nlisten_addresses = ''\nunix_socket_directories = '" << run
         << "'\nport = " << kPort << "\nmax_connections = 300\nshared_buffers = 128MB\n"
         << "fsync = " << (fsync_ ? "on" : "off") << "\nsynchronous_commit = "
         << (fsync_ ? "on" : "off") << "\nfull_page_writes = " << (fsync_ ? "on" : "off") << "\n";
  }
  if (!RunAsServerUser({bin + "/pg_ctl", "-D", data, "status"}, dir_ + "/status.log").ok()) {
    RETURN_IF_ERROR(RunAsServerUser({bin + "/pg_ctl", "-D", data, "-l", log, "-w", "-t", "60", "start"}, log));
  }
  started_ = true;
  // Create the database once; "already exists" is fine.
  std::string createdb_log = dir_ + "/createdb.log";
  absl::Status s = RunAsServerUser({bin + "/createdb", "-h", run, "-p", std::to_string(kPort), "-U",
                                    kDbUser, "temper"},
                                   createdb_log);
  if (!s.ok() && s.message().find("already exists") == std::string_view::npos) return s;
  return absl::OkStatus();
}

absl::Status EmbeddedPostgres::Stop(bool immediate) {
  started_ = false;
  return RunAsServerUser({BinDir() + "/pg_ctl", "-D", dir_ + "/data", "-m", immediate ? "immediate" : "fast",
                          "-w", "stop"},
                         dir_ + "/postgres.log");
}

}  // namespace temper
