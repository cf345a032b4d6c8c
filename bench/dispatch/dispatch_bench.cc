// Dispatch benchmark: jobs/s and AcquireJob latency end to end through gRPC (in-process coordinator,
// W simulated worker threads that acquire and complete at once), beside a raw
// `SELECT ... FOR UPDATE SKIP LOCKED` loop on the same PostgreSQL in the same run. fsync is on.
// Prints a markdown table. Not a test: timings never gate anything.
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <iostream>
#include <numeric>
#include <thread>

#include <pqxx/pqxx>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "libs/common/log.h"
#include "libs/rpc/worker_client.h"
#include "libs/store/embedded_pg.h"
#include "services/coordinator/coordinator.h"

namespace temper {
namespace {

using Clock = std::chrono::steady_clock;

struct Result {
  int workers = 0;
  int64_t jobs = 0;
  double seconds = 0;
  std::vector<double> acquire_ms;
  double JobsPerSecond() const { return jobs / seconds; }
  double Percentile(double p) const {
    if (acquire_ms.empty()) return 0;
    std::vector<double> v = acquire_ms;
    size_t k = std::min(v.size() - 1, static_cast<size_t>(p * v.size()));
    std::nth_element(v.begin(), v.begin() + k, v.end());
    return v[k];
  }
};

// Creates `n` pending eval jobs spread over closed runs of 50 jobs each (the run state machine
// then leaves them alone, so only dispatch is measured; runs stay realistically small).
void SeedJobs(Store& store, const std::string& conninfo, int64_t n, const std::string& tag) {
  constexpr int64_t kJobsPerRun = 50;
  auto now = SystemClock::Default()->Now();
  std::vector<NewJob> batch;
  for (int64_t start = 0; start < n; start += kJobsPerRun) {
    auto run = store.runs().CreateRun({absl::StrCat("bench-", tag, "-", start), "{}", "", 0, 0}, now);
    (void)store.runs().SetRunState(run->id, RunState::kSucceeded, "", now);
    for (int64_t i = start; i < std::min(n, start + kJobsPerRun); ++i) {
      NewJob j;
      j.run_id = run->id;
      j.kind = JobKind::kEval;
      j.stage = absl::StrCat("j", i);
      batch.push_back(j);
    }
    if (batch.size() >= 1000) {
      (void)store.jobs().EnqueueJobs(batch, now);
      batch.clear();
    }
  }
  (void)store.jobs().EnqueueJobs(batch, now);
  // Fresh statistics before each measurement, as autovacuum would give a long-lived database;
  // otherwise whichever path runs second profits from an auto-analyze the first one triggered.
  pqxx::connection c(conninfo);
  pqxx::nontransaction(c).exec("VACUUM ANALYZE jobs");
}

Result RunGrpc(Store& store, const std::string& conninfo, const std::string& address, int workers, int64_t jobs,
               int job_ms) {
  SeedJobs(store, conninfo, jobs, absl::StrCat("grpc-", workers));
  Result r;
  r.workers = workers;
  std::atomic<int64_t> done{0};
  std::vector<std::vector<double>> lat(workers);
  auto channel = grpc::CreateChannel(address, grpc::InsecureChannelCredentials());
  std::vector<std::unique_ptr<WorkerClient>> clients;
  for (int w = 0; w < workers; ++w) {
    v1::Worker id;
    id.set_id(absl::StrCat("bench-", workers, "-", w));
    id.add_kinds(v1::JOB_KIND_EVAL);
    id.set_cpu_cores(1);
    clients.push_back(std::make_unique<WorkerClient>(channel, id));
    if (!clients.back()->Register().ok()) std::abort();
  }
  auto start = Clock::now();
  std::vector<std::thread> threads;
  for (int w = 0; w < workers; ++w) {
    threads.emplace_back([&, w] {
      while (done.load() < jobs) {
        auto t0 = Clock::now();
        auto job = clients[w]->Acquire(std::chrono::milliseconds(200));
        if (!job.ok() || !*job) continue;
        lat[w].push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
        v1::LeaseRef lease;
        lease.set_job_id((*job)->id());
        lease.set_epoch((*job)->epoch());
        if (job_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(job_ms));
        if (clients[w]->Complete(lease, "{}").ok()) done++;
      }
    });
  }
  for (auto& t : threads) t.join();
  r.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  r.jobs = done.load();
  for (auto& l : lat) r.acquire_ms.insert(r.acquire_ms.end(), l.begin(), l.end());
  return r;
}

// The baseline: each worker thread leases and completes with two plain transactions on its own
// connection (at most `max_connections` threads; a database connection per worker is the raw way).
Result RunRaw(Store& store, const std::string& conninfo, int workers, int64_t jobs, int max_connections,
              int job_ms) {
  SeedJobs(store, conninfo, jobs, absl::StrCat("raw-", workers));
  Result r;
  r.workers = workers;
  int threads_n = std::min(workers, max_connections);
  std::atomic<int64_t> done{0};
  std::vector<std::vector<double>> lat(threads_n);
  auto start = Clock::now();
  std::vector<std::thread> threads;
  for (int w = 0; w < threads_n; ++w) {
    threads.emplace_back([&, w] {
      pqxx::connection c(conninfo);
      c.prepare("lease",
                "UPDATE jobs SET state = 'leased', worker_id = $1, epoch = nextval('job_epoch_seq'), "
                "attempts = attempts + 1, lease_expires_at = now() + interval '30 seconds' "
                "WHERE id = (SELECT id FROM jobs WHERE state = 'pending' ORDER BY priority DESC, id "
                "LIMIT 1 FOR UPDATE SKIP LOCKED) RETURNING id, epoch");
      c.prepare("done", "UPDATE jobs SET state = 'succeeded', finished_at = now() WHERE id = $1 AND epoch = $2");
      std::string me = absl::StrCat("raw-", w);
      while (done.load() < jobs) {
        auto t0 = Clock::now();
        pqxx::result res;
        {
          pqxx::work tx(c);
          res = tx.exec_prepared("lease", me);
          tx.commit();
        }
        if (res.empty()) break;
        lat[w].push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
        if (job_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(job_ms));
        pqxx::work tx(c);
        tx.exec_prepared("done", res[0][0].as<int64_t>(), res[0][1].as<int64_t>());
        tx.commit();
        done++;
      }
    });
  }
  for (auto& t : threads) t.join();
  r.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  r.jobs = done.load();
  for (auto& l : lat) r.acquire_ms.insert(r.acquire_ms.end(), l.begin(), l.end());
  return r;
}

}  // namespace
}  // namespace temper

int main(int argc, char** argv) {
  std::string worker_list = "1,10,50,200,500";
  int64_t jobs = 4000;
  int raw_max_connections = 150;
  int job_ms = 0;
  CLI::App app{"temper dispatch benchmark (gRPC end to end vs raw SKIP LOCKED)"};
  app.add_option("--workers", worker_list, "comma-separated worker counts");
  app.add_option("--jobs", jobs, "jobs per measurement");
  app.add_option("--raw-max-connections", raw_max_connections, "connections the raw loop may open");
  app.add_option("--job-ms", job_ms, "simulated work per job between acquire and complete (0: saturate)");
  CLI11_PARSE(app, argc, argv);
  setenv("TEMPER_LOG_LEVEL", "warn", 0);
  temper::InitLogging("dispatch-bench");

  char tmpl[] = "/tmp/temper-bench-XXXXXX";
  std::string dir = mkdtemp(tmpl);
  std::filesystem::permissions(dir, std::filesystem::perms::owner_all | std::filesystem::perms::others_exec);
  temper::EmbeddedPostgres pg(dir + "/postgres", /*fsync=*/true);
  if (auto s = pg.Start(); !s.ok()) {
    std::cerr << s << "\n";
    return 1;
  }
  temper::CoordinatorOptions o;
  o.database_url = pg.conninfo();
  o.listen = "127.0.0.1:0";
  o.metrics_listen = "";
  o.pool_size = 32;
  auto coordinator = std::make_unique<temper::Coordinator>(o);
  if (auto s = coordinator->Start(); !s.ok()) {
    std::cerr << s << "\n";
    return 1;
  }
  std::cout << "| workers | work/job ms | temper jobs/s | acquire p50 ms | acquire p99 ms | raw SKIP LOCKED jobs/s | raw p50 ms | raw p99 ms | ratio |\n"
            << "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n";
  for (auto w : absl::StrSplit(worker_list, ',')) {
    int workers = std::stoi(std::string(w));
    auto g = temper::RunGrpc(*coordinator->store(), pg.conninfo(), coordinator->address(), workers, jobs, job_ms);
    auto r = temper::RunRaw(*coordinator->store(), pg.conninfo(), workers, jobs, raw_max_connections, job_ms);
    std::printf("| %d | %d | %.0f | %.2f | %.2f | %.0f | %.2f | %.2f | %.2f |\n", workers, job_ms, g.JobsPerSecond(),
                g.Percentile(0.5), g.Percentile(0.99), r.JobsPerSecond(), r.Percentile(0.5), r.Percentile(0.99),
                g.JobsPerSecond() / r.JobsPerSecond());
    std::fflush(stdout);
  }
  coordinator->Shutdown();
  (void)pg.Stop();
  std::filesystem::remove_all(dir);
  return 0;
}
