// sim-worker: a simulated temper worker for tests and benchmarks (not a product feature). It speaks
// WorkerService exactly as a real worker does — register, long-poll, heartbeat, progress, gang
// rendezvous, complete/fail — but "runs" each job by sleeping. Every completion attempt and its
// answer is appended to --log as JSON lines, so tests can prove each job ended exactly once.
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <iostream>
#include <mutex>
#include <random>
#include <thread>

#include "CLI/CLI.hpp"
#include "absl/strings/str_split.h"
#include "libs/common/log.h"
#include "libs/rpc/worker_client.h"
#include "nlohmann/json.hpp"

namespace {

using temper::v1::Job;
using temper::v1::LeaseRef;

struct Options {
  std::string coordinator = "127.0.0.1:7070";
  int workers = 1;
  std::string kinds = "train,generate,eval";
  int gpus = 1;
  int cpu_cores = 2;
  int job_ms = 10;
  double fail_rate = 0;
  std::string log;
  std::string name = "sim";
  int idle_exit_ms = 0;  // 0: run until killed
  int wait_ms = 2000;
};

std::mutex log_mu;
std::ofstream log_file;

void Log(const nlohmann::json& j) {
  std::lock_guard lock(log_mu);
  if (!log_file.is_open()) return;
  log_file << j.dump() << "\n";
  log_file.flush();
}

// Runs one leased job to its end; returns false when the worker should stop.
void RunJob(temper::WorkerClient& client, temper::LeaseKeeper& keeper, const Job& job, const Options& o,
            std::mt19937_64& rng, std::atomic<bool>& stop_job) {
  LeaseRef lease;
  lease.set_job_id(job.id());
  lease.set_epoch(job.epoch());
  keeper.Add(lease);
  stop_job = false;
  nlohmann::json entry = {{"worker", client.worker_id()}, {"job", job.id()}, {"epoch", job.epoch()},
                          {"run", job.run_id()}, {"kind", job.kind()}, {"rank", job.rank()}};
  if (job.world_size() > 1) {
    std::string payload;
    if (job.rank() == 0) {
      payload.resize(128);
      for (auto& c : payload) c = static_cast<char>(rng());
    }
    auto rv = client.Rendezvous(lease, payload, std::chrono::seconds(60));
    entry["rendezvous"] = rv.ok() ? "ready" : rv.status().ToString();
    if (!rv.ok()) {
      keeper.Remove(lease);
      Log(entry);
      return;
    }
    entry["nccl_id_bytes"] = rv->payload().size();
  }
  const int slices = 4;
  for (int i = 1; i <= slices && !stop_job; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(o.job_ms / slices));
    if (o.job_ms >= 200) {
      auto cancel = client.ReportProgress(lease, i, {{"loss", 2.0 / i}}, "", static_cast<double>(i) / slices);
      if (!cancel.ok() || *cancel) stop_job = true;
    }
  }
  keeper.Remove(lease);
  if (stop_job) {
    entry["outcome"] = "stopped";
    Log(entry);
    return;
  }
  if (std::uniform_real_distribution<double>(0, 1)(rng) < o.fail_rate) {
    auto r = client.Fail(lease, temper::v1::FAILURE_CLASS_INFRASTRUCTURE, "simulated failure");
    entry["outcome"] = "fail";
    entry["status"] = r.ok() ? "OK" : r.status().ToString();
    Log(entry);
    return;
  }
  std::optional<temper::v1::CheckpointInfo> ckpt;
  if (job.kind() == temper::v1::JOB_KIND_TRAIN && job.rank() == 0) {
    auto payload = nlohmann::json::parse(job.payload_json(), nullptr, false);
    ckpt.emplace();
    ckpt->set_uri("sim://run-" + std::to_string(job.run_id()) + "/job-" + std::to_string(job.id()));
    ckpt->set_step(100);
    if (payload.is_object() && payload.contains("parent_checkpoint_id"))
      ckpt->set_parent_id(payload["parent_checkpoint_id"].get<int64_t>());
    (*ckpt->mutable_metrics())["loss"] = 0.5;
  }
  absl::Status s = client.Complete(lease, nlohmann::json({{"sim", true}, {"by", client.worker_id()}}).dump(), ckpt);
  entry["outcome"] = "complete";
  entry["status"] = s.ok() ? "OK" : s.ToString();
  Log(entry);
}

void WorkerLoop(int index, const Options& o, std::shared_ptr<grpc::Channel> channel) {
  temper::v1::Worker identity;
  char host[256] = {0};
  gethostname(host, sizeof host - 1);
  identity.set_id(o.name + "-" + std::to_string(getpid()) + "-" + std::to_string(index));
  identity.set_hostname(host);
  for (auto k : absl::StrSplit(o.kinds, ',')) {
    if (k == "train") identity.add_kinds(temper::v1::JOB_KIND_TRAIN);
    if (k == "generate") identity.add_kinds(temper::v1::JOB_KIND_GENERATE);
    if (k == "eval") identity.add_kinds(temper::v1::JOB_KIND_EVAL);
  }
  identity.set_gpus(o.gpus);
  identity.set_gpu_memory_mb(o.gpus * 81920);
  identity.set_cpu_cores(o.cpu_cores);
  temper::WorkerClient client(channel, identity);
  if (auto s = client.Register(); !s.ok()) {
    spdlog::error("register failed: {}", s.ToString());
    return;
  }
  std::atomic<bool> stop_job{false};
  temper::LeaseKeeper keeper(&client, [&](const LeaseRef& l, bool cancelled) {
    Log({{"worker", client.worker_id()}, {"job", l.job_id()}, {"epoch", l.epoch()},
         {"outcome", cancelled ? "cancelled" : "lost"}});
    stop_job = true;
  });
  std::mt19937_64 rng(std::random_device{}() + index);
  auto last_job = std::chrono::steady_clock::now();
  while (true) {
    auto job = client.Acquire(std::chrono::milliseconds(o.wait_ms));
    if (!job.ok()) {
      spdlog::warn("acquire failed: {}", job.status().ToString());
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    } else if (*job) {
      RunJob(client, keeper, **job, o, rng, stop_job);
      last_job = std::chrono::steady_clock::now();
      continue;
    }
    if (o.idle_exit_ms > 0 &&
        std::chrono::steady_clock::now() - last_job > std::chrono::milliseconds(o.idle_exit_ms))
      return;
  }
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  CLI::App app{"simulated temper worker (tests and benchmarks only)"};
  app.add_option("--coordinator", o.coordinator, "coordinator address");
  app.add_option("--workers", o.workers, "worker identities (one thread each)")->check(CLI::Range(1, 2000));
  app.add_option("--kinds", o.kinds, "comma-separated job kinds: train,generate,eval");
  app.add_option("--gpus", o.gpus, "GPUs per worker");
  app.add_option("--cpu-cores", o.cpu_cores, "CPU cores per worker");
  app.add_option("--job-ms", o.job_ms, "simulated job duration");
  app.add_option("--fail-rate", o.fail_rate, "fraction of attempts that fail (infrastructure)");
  app.add_option("--log", o.log, "append one JSON line per job outcome here");
  app.add_option("--name", o.name, "worker id prefix");
  app.add_option("--idle-exit-ms", o.idle_exit_ms, "exit after this long without a job (0: never)");
  app.add_option("--wait-ms", o.wait_ms, "AcquireJob long-poll wait");
  CLI11_PARSE(app, argc, argv);
  temper::InitLogging("sim-worker");
  if (!o.log.empty()) log_file.open(o.log, std::ios::app);
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 500);
  auto channel = grpc::CreateCustomChannel(o.coordinator, grpc::InsecureChannelCredentials(), args);
  std::vector<std::thread> threads;
  for (int i = 0; i < o.workers; ++i) threads.emplace_back(WorkerLoop, i, std::cref(o), channel);
  for (auto& t : threads) t.join();
  return 0;
}
