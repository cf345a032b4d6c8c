#include "services/coordinator/convert.h"

#include <google/protobuf/util/json_util.h>

namespace temper {

// The numeric values of the domain enums equal the proto ones by construction.
v1::JobKind ToProto(JobKind k) { return static_cast<v1::JobKind>(k); }
JobKind FromProto(v1::JobKind k) { return static_cast<JobKind>(k); }
v1::JobState ToProto(JobState s) { return static_cast<v1::JobState>(s); }
JobState FromProto(v1::JobState s) { return static_cast<JobState>(s); }
v1::RunState ToProto(RunState s) { return static_cast<v1::RunState>(s); }
RunState FromProto(v1::RunState s) { return static_cast<RunState>(s); }
FailureClass FromProto(v1::FailureClass c) { return static_cast<FailureClass>(c); }
v1::FailureClass ToProto(FailureClass c) { return static_cast<v1::FailureClass>(c); }

v1::Run ToProto(const Run& run) {
  v1::Run out;
  out.set_id(run.id);
  out.set_name(run.name);
  out.set_state(ToProto(run.state));
  (void)google::protobuf::util::JsonStringToMessage(run.config_json, out.mutable_config());
  out.set_created_at_us(ToMicros(run.created_at));
  out.set_updated_at_us(ToMicros(run.updated_at));
  out.set_round(run.round);
  out.set_total_rounds(run.total_rounds);
  out.set_error(run.error);
  out.set_jobs_total(run.jobs_total);
  out.set_jobs_done(run.jobs_done);
  out.set_cancel_requested(run.cancel_requested);
  return out;
}

v1::Job ToProto(const Job& j) {
  v1::Job out;
  out.set_id(j.id);
  out.set_run_id(j.run_id);
  out.set_kind(ToProto(j.kind));
  out.set_state(ToProto(j.state));
  out.mutable_requirements()->set_gpus(j.requirements.gpus);
  out.mutable_requirements()->set_gpu_memory_mb(j.requirements.gpu_memory_mb);
  out.mutable_requirements()->set_cpu_cores(j.requirements.cpu_cores);
  out.set_priority(j.priority);
  out.set_attempts(j.attempts);
  out.set_max_attempts(j.max_attempts);
  out.set_epoch(j.epoch);
  out.set_worker_id(j.worker_id);
  out.set_payload_json(j.payload_json);
  out.set_result_json(j.result_json);
  out.set_failure_class(ToProto(j.failure_class));
  out.set_error(j.error);
  out.set_gang_id(j.gang_id);
  out.set_rank(j.rank);
  out.set_world_size(j.world_size);
  out.set_created_at_us(ToMicros(j.created_at));
  if (j.lease_expires_at) out.set_lease_expires_at_us(ToMicros(*j.lease_expires_at));
  out.set_not_before_us(ToMicros(j.not_before));
  out.set_round(j.round);
  return out;
}

v1::Worker ToProto(const Worker& w) {
  v1::Worker out;
  out.set_id(w.id);
  out.set_hostname(w.hostname);
  for (auto k : w.kinds) out.add_kinds(ToProto(k));
  out.set_gpus(w.gpus);
  out.set_gpu_memory_mb(w.gpu_memory_mb);
  out.set_cpu_cores(w.cpu_cores);
  out.set_state(w.state);
  out.set_last_heartbeat_us(ToMicros(w.last_heartbeat));
  for (const auto& m : w.gpu_models) out.add_gpu_models(m);
  return out;
}

Worker FromProto(const v1::Worker& in) {
  Worker w;
  w.id = in.id();
  w.hostname = in.hostname();
  for (int k : in.kinds()) {
    if (k >= 1 && k <= 3) w.kinds.push_back(static_cast<JobKind>(k));
  }
  w.gpus = in.gpus();
  w.gpu_memory_mb = in.gpu_memory_mb();
  w.cpu_cores = in.cpu_cores();
  w.gpu_models.assign(in.gpu_models().begin(), in.gpu_models().end());
  return w;
}

v1::Checkpoint ToProto(const Checkpoint& c) {
  v1::Checkpoint out;
  out.set_id(c.id);
  out.set_run_id(c.run_id);
  out.set_parent_id(c.parent_id);
  out.set_job_id(c.job_id);
  out.set_uri(c.uri);
  out.set_step(c.step);
  out.set_round(c.round);
  for (const auto& [k, v] : c.metrics) (*out.mutable_metrics())[k] = v;
  out.set_created_at_us(ToMicros(c.created_at));
  out.set_depth(c.depth);
  return out;
}

Checkpoint FromProto(const v1::CheckpointInfo& in) {
  Checkpoint c;
  c.uri = in.uri();
  c.parent_id = in.parent_id();
  c.step = in.step();
  for (const auto& [k, v] : in.metrics()) c.metrics[k] = v;
  return c;
}

Lease FromProto(const v1::LeaseRef& l) { return {l.job_id(), l.epoch()}; }

v1::LeaseRef ToProto(const Lease& l) {
  v1::LeaseRef out;
  out.set_job_id(l.job_id);
  out.set_epoch(l.epoch);
  return out;
}

v1::RunEvent ToProto(const RunEvent& e) {
  v1::RunEvent out;
  out.set_id(e.id);
  out.set_run_id(e.run_id);
  out.set_at_us(ToMicros(e.at));
  out.set_type(e.type);
  out.set_message(e.message);
  out.set_job_id(e.job_id);
  out.set_progress(e.progress);
  for (const auto& [k, v] : e.metrics) (*out.mutable_metrics())[k] = v;
  return out;
}

}  // namespace temper
