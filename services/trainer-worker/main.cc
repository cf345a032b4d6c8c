// temper-trainer-worker: leases TRAIN jobs from the coordinator and runs them with libs/train on
// libs/model (CPU, or CUDA when libtorch has it). Streams loss / learning rate / tokens per second /
// memory with ReportProgress, writes checkpoints under --checkpoint-dir/run-<run>/job-<job>/, and
// reports the final one (with its parent) on CompleteJob. A cancelled run stops the job at the next
// step (its state is saved); a re-queued job resumes from its last checkpoint. GENERATE jobs are
// not served yet (the simulated worker takes them). See docs/train.md.
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <thread>

#include "CLI/CLI.hpp"
#include "libs/common/log.h"
#include "libs/rpc/worker_client.h"
#include "nlohmann/json.hpp"
#include "services/trainer-worker/train_job.h"
#include "temper/v1/checkpoint.grpc.pb.h"

namespace {

namespace tw = temper::trainerworker;

std::atomic<bool> g_drain{false};

void SignalLoop(sigset_t set) {
  int sig = 0;
  if (sigwait(&set, &sig) == 0) {
    spdlog::info("signal {}: draining (finishing the job in hand)", sig);
    g_drain = true;
  }
}

// The URI of checkpoint `id` of `run`, or "" when the coordinator does not know it.
std::string CheckpointUri(temper::v1::CheckpointService::Stub& stub, int64_t run, int64_t id) {
  temper::v1::ListCheckpointsRequest req;
  req.set_run_id(run);
  temper::v1::ListCheckpointsResponse resp;
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  if (!stub.ListCheckpoints(&ctx, req, &resp).ok()) return "";
  for (const auto& c : resp.checkpoints()) {
    if (c.id() == id) return c.uri();
  }
  return "";
}

void RunJob(temper::WorkerClient& client, temper::LeaseKeeper& keeper, temper::v1::CheckpointService::Stub& checkpoints,
            const temper::v1::Job& job, const tw::TrainJobEnv& env, std::atomic<bool>& stop) {
  temper::v1::LeaseRef lease;
  lease.set_job_id(job.id());
  lease.set_epoch(job.epoch());
  stop = false;
  keeper.Add(lease);
  auto finish_fail = [&](const absl::Status& s) {
    keeper.Remove(lease);
    auto cls = tw::ClassifyFailure(s);
    spdlog::error("job {} failed ({}): {}", job.id(), temper::v1::FailureClass_Name(cls), s.ToString());
    auto r = client.Fail(lease, cls, std::string(s.message()));
    if (!r.ok()) spdlog::warn("job {}: FailJob: {}", job.id(), r.status().ToString());
  };
  if (job.kind() != temper::v1::JOB_KIND_TRAIN) {
    finish_fail(absl::UnimplementedError("temper-trainer-worker serves TRAIN jobs only"));
    return;
  }
  if (job.world_size() > 1) {
    finish_fail(absl::UnimplementedError("multi-GPU (gang) training is not implemented in temper-trainer-worker yet"));
    return;
  }
  auto spec = tw::ParseTrainPayload(job.id(), job.payload_json());
  if (!spec.ok()) {
    finish_fail(spec.status());
    return;
  }
  if (spec->parent_checkpoint_id) spec->parent_uri = CheckpointUri(checkpoints, spec->run_id, *spec->parent_checkpoint_id);
  spdlog::info("job {}: run {} stage {} ({} steps, parent checkpoint {})", job.id(), spec->run_id, spec->stage,
               spec->options.max_steps, spec->parent_checkpoint_id ? std::to_string(*spec->parent_checkpoint_id) : "none");
  auto progress = [&](int64_t step, const std::map<std::string, double>& metrics, double fraction) {
    spdlog::info("job {} step {}: loss {:.4f} lr {:.2e} {:.0f} tok/s", job.id(), step, metrics.at("loss"),
                 metrics.at("learning_rate"), metrics.at("tokens_per_second"));
    auto cancel = client.ReportProgress(lease, step, metrics, "", fraction);
    if (cancel.ok() && *cancel) stop = true;
    return !stop.load();
  };
  auto result = tw::RunTrainJob(*spec, env, progress, stop);
  if (!result.ok()) {
    finish_fail(result.status());
    return;
  }
  keeper.Remove(lease);
  if (result->stopped) {
    spdlog::info("job {}: stopped (cancelled or lease lost); state saved for a later attempt", job.id());
    return;
  }
  temper::v1::CheckpointInfo ckpt;
  ckpt.set_uri(result->checkpoint_dir);
  ckpt.set_step(result->step);
  if (spec->parent_checkpoint_id) ckpt.set_parent_id(*spec->parent_checkpoint_id);
  for (const auto& [k, v] : result->metrics) (*ckpt.mutable_metrics())[k] = v;
  nlohmann::json out = {{"checkpoint", result->checkpoint_dir}, {"step", result->step}, {"metrics", result->metrics},
                        {"notes", result->notes}};
  absl::Status s = client.Complete(lease, out.dump(), ckpt);
  if (!s.ok()) spdlog::warn("job {}: CompleteJob: {}", job.id(), s.ToString());
  else spdlog::info("job {}: done at step {}, checkpoint {}", job.id(), result->step, result->checkpoint_dir);
}

}  // namespace

int main(int argc, char** argv) {
  std::string coordinator = "127.0.0.1:7070";
  std::string name = "trainer";
  std::string checkpoint_dir = "checkpoints";
  std::string tiny = "never";
  std::string data_root;
  int progress_every = 5;
  int wait_ms = 2000;
  int idle_exit_ms = 0;
  CLI::App app{"temper trainer worker: QLoRA training jobs for a temper coordinator"};
  app.add_option("--coordinator", coordinator, "coordinator address host:port")->capture_default_str();
  app.add_option("--name", name, "worker id prefix (the id is <name>-<host>-<pid>)")->capture_default_str();
  app.add_option("--checkpoint-dir", checkpoint_dir, "checkpoints go to <dir>/run-<run>/job-<job>/step-N")->capture_default_str();
  app.add_option("--tiny-model", tiny,
                 "train a deterministic RANDOM tiny Llama instead of config.model.path: never, missing (when the "
                 "path has no config.json), always")
      ->check(CLI::IsMember({"never", "missing", "always"}))
      ->capture_default_str();
  app.add_option("--data-root", data_root, "resolve relative data.train_files against this directory");
  app.add_option("--progress-every", progress_every, "steps between ReportProgress calls")->check(CLI::Range(1, 100000));
  app.add_option("--wait-ms", wait_ms, "AcquireJob long-poll")->check(CLI::Range(100, 60000));
  app.add_option("--idle-exit-ms", idle_exit_ms, "exit after this long without a job (0: never)");
  CLI11_PARSE(app, argc, argv);
  temper::InitLogging("trainer-worker");

  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  std::thread(SignalLoop, set).detach();

  tw::TrainJobEnv env;
  env.checkpoint_root = std::filesystem::absolute(checkpoint_dir).string();
  env.tiny_model = tiny == "always" ? tw::TinyModel::kAlways : tiny == "missing" ? tw::TinyModel::kIfMissing : tw::TinyModel::kNever;
  env.data_root = data_root;
  env.progress_every = progress_every;
  if (env.tiny_model != tw::TinyModel::kNever)
    spdlog::warn("--tiny-model={}: jobs may train a RANDOM TINY MODEL (a plumbing check, not a real model)", tiny);

  char host[256] = {0};
  gethostname(host, sizeof host - 1);
  temper::v1::Worker identity;
  identity.set_id(name + "-" + host + "-" + std::to_string(getpid()));
  identity.set_hostname(host);
  identity.add_kinds(temper::v1::JOB_KIND_TRAIN);
  const int gpus = torch::cuda::is_available() ? static_cast<int>(torch::cuda::device_count()) : 0;
  identity.set_gpus(gpus);
  for (int i = 0; i < gpus; ++i) identity.add_gpu_models("cuda:" + std::to_string(i));  // names need the CUDA runtime API
  identity.set_cpu_cores(static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  auto channel = grpc::CreateCustomChannel(coordinator, grpc::InsecureChannelCredentials(), args);
  temper::WorkerClient client(channel, identity);
  if (auto s = client.Register(); !s.ok()) {
    spdlog::critical("registering with {} failed: {}", coordinator, s.ToString());
    return 1;
  }
  spdlog::info("registered as {} with {} ({} GPUs; checkpoints in {})", client.worker_id(), coordinator, gpus,
               env.checkpoint_root);
  auto checkpoints = temper::v1::CheckpointService::NewStub(channel);
  std::atomic<bool> stop{false};
  temper::LeaseKeeper keeper(&client, [&](const temper::v1::LeaseRef& l, bool cancelled) {
    spdlog::info("job {}: {}", l.job_id(), cancelled ? "run cancelled" : "lease lost");
    stop = true;
  });
  auto last_job = std::chrono::steady_clock::now();
  while (!g_drain) {
    auto job = client.Acquire(std::chrono::milliseconds(wait_ms));
    if (!job.ok()) {
      spdlog::warn("acquire failed: {}", job.status().ToString());
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
    } else if (*job) {
      RunJob(client, keeper, *checkpoints, **job, env, stop);
      last_job = std::chrono::steady_clock::now();
      continue;
    }
    if (idle_exit_ms > 0 && std::chrono::steady_clock::now() - last_job > std::chrono::milliseconds(idle_exit_ms)) break;
  }
  return 0;
}
