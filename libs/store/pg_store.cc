#include "libs/store/pg_store.h"

#include <algorithm>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "libs/store/pg_pool.h"
#include "nlohmann/json.hpp"

namespace temper {
namespace {

// Times travel as microseconds since the epoch; these wrap a column or a parameter.
#define US(col) "(extract(epoch from " col ") * 1000000)::bigint"
#define TS(param) "to_timestamp(" param "::double precision / 1000000)"

constexpr const char* kRunCols =
    "r.id, r.name, r.state, r.config::text, coalesce(r.idempotency_key, ''), r.priority, "
    "r.total_rounds, r.round, r.cancel_requested, r.error, " US("r.created_at") ", " US("r.updated_at")
    ", (SELECT count(*) FROM jobs j WHERE j.run_id = r.id)"
    ", (SELECT count(*) FROM jobs j WHERE j.run_id = r.id AND j.state IN ('succeeded','failed','cancelled'))";

constexpr const char* kJobCols =
    "id, run_id, kind, stage, round, state, gpus, gpu_memory_mb, cpu_cores, priority, attempts, "
    "max_attempts, epoch, worker_id, payload::text, coalesce(result::text, ''), failure_class, error, "
    "gang_id, rank, world_size, cancel_requested, " US("created_at") ", " US("not_before") ", "
    "coalesce(" US("lease_expires_at") ", -1), coalesce(" US("started_at") ", -1), "
    "coalesce(" US("finished_at") ", -1)";

constexpr const char* kCheckpointCols =
    "id, run_id, coalesce(parent_id, 0), coalesce(job_id, 0), uri, step, round, metrics::text, "
    US("created_at");

std::optional<TimePoint> OptTime(const pqxx::field& f) {
  int64_t us = f.as<int64_t>();
  if (us < 0) return std::nullopt;
  return FromMicros(us);
}

Run RowToRun(const pqxx::row& r) {
  Run run;
  run.id = r[0].as<int64_t>();
  run.name = r[1].as<std::string>();
  run.state = ParseRunState(r[2].as<std::string>()).value_or(RunState::kPending);
  run.config_json = r[3].as<std::string>();
  run.idempotency_key = r[4].as<std::string>();
  run.priority = r[5].as<int32_t>();
  run.total_rounds = r[6].as<int32_t>();
  run.round = r[7].as<int32_t>();
  run.cancel_requested = r[8].as<bool>();
  run.error = r[9].as<std::string>();
  run.created_at = FromMicros(r[10].as<int64_t>());
  run.updated_at = FromMicros(r[11].as<int64_t>());
  run.jobs_total = r[12].as<int32_t>();
  run.jobs_done = r[13].as<int32_t>();
  return run;
}

Job RowToJob(const pqxx::row& r) {
  Job j;
  j.id = r[0].as<int64_t>();
  j.run_id = r[1].as<int64_t>();
  j.kind = ParseJobKind(r[2].as<std::string>()).value_or(JobKind::kEval);
  j.stage = r[3].as<std::string>();
  j.round = r[4].as<int32_t>();
  j.state = ParseJobState(r[5].as<std::string>()).value_or(JobState::kPending);
  j.requirements.gpus = r[6].as<int32_t>();
  j.requirements.gpu_memory_mb = r[7].as<int64_t>();
  j.requirements.cpu_cores = r[8].as<int32_t>();
  j.priority = r[9].as<int32_t>();
  j.attempts = r[10].as<int32_t>();
  j.max_attempts = r[11].as<int32_t>();
  j.epoch = r[12].as<int64_t>();
  j.worker_id = r[13].as<std::string>();
  j.payload_json = r[14].as<std::string>();
  j.result_json = r[15].as<std::string>();
  j.failure_class = ParseFailureClass(r[16].as<std::string>()).value_or(FailureClass::kNone);
  j.error = r[17].as<std::string>();
  j.gang_id = r[18].as<int64_t>();
  j.rank = r[19].as<int32_t>();
  j.world_size = r[20].as<int32_t>();
  j.cancel_requested = r[21].as<bool>();
  j.created_at = FromMicros(r[22].as<int64_t>());
  j.not_before = FromMicros(r[23].as<int64_t>());
  j.lease_expires_at = OptTime(r[24]);
  j.started_at = OptTime(r[25]);
  j.finished_at = OptTime(r[26]);
  return j;
}

std::map<std::string, double> JsonToMetrics(const std::string& text) {
  std::map<std::string, double> out;
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_object()) {
    for (auto& [k, v] : j.items()) {
      if (v.is_number()) out[k] = v.get<double>();
    }
  }
  return out;
}

std::string MetricsToJson(const std::map<std::string, double>& m) {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [k, v] : m) j[k] = v;
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

Checkpoint RowToCheckpoint(const pqxx::row& r) {
  Checkpoint c;
  c.id = r[0].as<int64_t>();
  c.run_id = r[1].as<int64_t>();
  c.parent_id = r[2].as<int64_t>();
  c.job_id = r[3].as<int64_t>();
  c.uri = r[4].as<std::string>();
  c.step = r[5].as<int64_t>();
  c.round = r[6].as<int32_t>();
  c.metrics = JsonToMetrics(r[7].as<std::string>());
  c.created_at = FromMicros(r[8].as<int64_t>());
  return c;
}

// A PostgreSQL array literal of text elements, each quoted.
std::string TextArray(const std::vector<std::string>& items) {
  std::string out = "{";
  for (size_t i = 0; i < items.size(); ++i) {
    if (i) out += ',';
    out += '"';
    for (char c : items[i]) {
      if (c == '"' || c == '\\') out += '\\';
      out += c;
    }
    out += '"';
  }
  return out + "}";
}

template <typename T>
std::string NumArray(const std::vector<T>& items) {
  return "{" + absl::StrJoin(items, ",") + "}";
}

std::vector<std::string> StateNames(const auto& states) {
  std::vector<std::string> out;
  for (auto s : states) out.push_back(ToString(s));
  return out;
}

const char* OutcomeState(const AttemptOutcome& o) {
  switch (o.kind) {
    case AttemptOutcome::Kind::kSucceed: return "succeeded";
    case AttemptOutcome::Kind::kFail: return "failed";
    case AttemptOutcome::Kind::kCancel: return "cancelled";
    case AttemptOutcome::Kind::kRequeue: return "pending";
  }
  return "failed";
}

PgPool::Statements Statements() {
  std::string job_cols = kJobCols;
  std::string run_cols = kRunCols;
  return {
      {"insert_run",
       "INSERT INTO runs (name, config, idempotency_key, priority, total_rounds, created_at, updated_at) "
       "VALUES ($1, $2::jsonb, nullif($3, ''), $4, $5, " TS("$6") ", " TS("$6") ") "
       "ON CONFLICT (idempotency_key) DO NOTHING RETURNING id"},
      {"run_by_key", "SELECT id FROM runs WHERE idempotency_key = $1"},
      {"get_run", "SELECT " + run_cols + " FROM runs r WHERE r.id = $1"},
      {"list_runs",
       "SELECT " + run_cols + " FROM runs r WHERE ($1 = 0 OR r.id < $1) "
       "AND (cardinality($2::text[]) = 0 OR r.state = ANY($2::text[])) "
       "AND starts_with(r.name, $3) ORDER BY r.id DESC LIMIT $4"},
      {"active_runs",
       "SELECT " + run_cols + " FROM runs r WHERE r.state IN ('pending', 'running') ORDER BY r.id"},
      {"set_run_state",
       "UPDATE runs SET state = $2, error = $3, updated_at = " TS("$4") " "
       "WHERE id = $1 AND state IN ('pending', 'running')"},
      {"advance_round",
       "UPDATE runs SET round = $2, updated_at = " TS("$3") " "
       "WHERE id = $1 AND round < $2 AND state IN ('pending', 'running')"},
      {"request_cancel",
       "UPDATE runs SET cancel_requested = true, updated_at = " TS("$2") " "
       "WHERE id = $1 AND state IN ('pending', 'running')"},
      {"cancel_pending_jobs",
       "UPDATE jobs SET state = 'cancelled', error = $2, finished_at = " TS("$3") " "
       "WHERE run_id = $1 AND state = 'pending'"},
      {"flag_running_jobs",
       "UPDATE jobs SET cancel_requested = true WHERE run_id = $1 AND state IN ('leased', 'running')"},
      {"append_event",
       "INSERT INTO run_events (run_id, job_id, at, type, message, progress, metrics) "
       "VALUES ($1, $2, " TS("$3") ", $4, $5, nullif(greatest($6::double precision, -1), -1), $7::jsonb) RETURNING id"},
      {"list_events",
       "SELECT id, run_id, job_id, " US("at") ", type, message, coalesce(progress, -1), metrics::text "
       "FROM run_events WHERE run_id = $1 AND id > $2 ORDER BY id LIMIT $3"},
      {"insert_metric",
       "INSERT INTO metrics (run_id, job_id, step, name, value) VALUES ($1, nullif($2, 0), $3, $4, $5)"},
      {"list_metrics",
       "SELECT run_id, coalesce(job_id, 0), step, name, value FROM metrics WHERE run_id = $1 "
       "ORDER BY name, step, at"},
      {"insert_job",
       "INSERT INTO jobs (run_id, kind, stage, round, gpus, gpu_memory_mb, cpu_cores, priority, "
       "max_attempts, payload, gang_id, rank, world_size, created_at, not_before) "
       "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10::jsonb, $11, $12, $13, " TS("$14") ", " TS("$14") ") "
       "ON CONFLICT (run_id, stage, rank) DO NOTHING RETURNING id"},
      {"set_gang", "UPDATE jobs SET gang_id = $1 WHERE id = ANY($2::bigint[])"},
      {"ready_jobs",
       "SELECT " + job_cols + " FROM jobs WHERE state = 'pending' AND not_before <= " TS("$1") " "
       "AND kind = ANY($2::text[]) AND gpus <= $3 AND gpu_memory_mb <= $4 AND cpu_cores <= $5 "
       "AND id <> ALL($7::bigint[]) ORDER BY priority DESC, id LIMIT $6 FOR UPDATE SKIP LOCKED"},
      {"lease_jobs",
       "UPDATE jobs j SET state = 'leased', epoch = nextval('job_epoch_seq'), worker_id = u.uw, "
       "attempts = j.attempts + 1, lease_expires_at = " TS("$3") " "
       "FROM unnest($1::bigint[], $2::text[]) AS u(uid, uw) WHERE j.id = u.uid RETURNING " + job_cols},
      {"extend_lease",
       "UPDATE jobs SET lease_expires_at = " TS("$4") ", "
       "started_at = coalesce(started_at, " TS("$3") "), state = 'running' "
       "WHERE id = $1 AND epoch = $2 AND state IN ('leased', 'running') RETURNING " + job_cols},
      {"finish_attempt",
       "UPDATE jobs SET state = $3, "
       "result = CASE WHEN $3 = 'succeeded' THEN nullif($4, '')::jsonb ELSE result END, "
       "failure_class = $5, error = $6, lease_expires_at = NULL, "
       "finished_at = CASE WHEN $3 = 'pending' THEN NULL ELSE " TS("$7") " END, "
       "not_before = CASE WHEN $3 = 'pending' THEN " TS("$8") " ELSE not_before END, "
       "worker_id = CASE WHEN $3 = 'pending' THEN '' ELSE worker_id END, "
       "started_at = CASE WHEN $3 = 'pending' THEN NULL ELSE started_at END, "
       "rendezvous = CASE WHEN $3 = 'pending' THEN NULL ELSE rendezvous END, "
       "attempts = greatest(0, attempts - $9) "
       "WHERE id = $1 AND epoch = $2 AND state IN ('leased', 'running') RETURNING " + job_cols},
      {"get_job", "SELECT " + job_cols + " FROM jobs WHERE id = $1"},
      {"count_jobs", "SELECT kind, state, count(*) FROM jobs GROUP BY kind, state"},
      {"lock_job", "SELECT " + job_cols + " FROM jobs WHERE id = $1 FOR UPDATE"},
      {"expired_leases",
       "SELECT " + job_cols + " FROM jobs WHERE state IN ('leased', 'running') "
       "AND lease_expires_at < " TS("$1") " ORDER BY lease_expires_at LIMIT $2"},
      {"list_jobs",
       "SELECT " + job_cols + " FROM jobs WHERE ($1 = 0 OR run_id = $1) "
       "AND (cardinality($2::text[]) = 0 OR state = ANY($2::text[])) ORDER BY id LIMIT $3"},
      {"gang", "SELECT " + job_cols + " FROM jobs WHERE gang_id = $1 ORDER BY rank FOR UPDATE"},
      {"set_rendezvous",
       "UPDATE jobs SET rendezvous = $3 WHERE id = $1 AND epoch = $2 "
       "AND state IN ('leased', 'running') AND rank = 0 AND gang_id <> 0 RETURNING id"},
      {"get_rendezvous", "SELECT coalesce(rendezvous, '') FROM jobs WHERE id = $1"},
      {"gang_pending_requeue",
       "UPDATE jobs SET not_before = greatest(not_before, " TS("$2") ") WHERE id = $1 AND state = 'pending'"},
      {"gang_pending_finish",
       "UPDATE jobs SET state = $2, error = $3, failure_class = $4, finished_at = " TS("$5") " "
       "WHERE id = $1 AND state = 'pending'"},
      {"upsert_worker",
       "INSERT INTO workers (id, hostname, kinds, gpus, gpu_memory_mb, cpu_cores, gpu_models, state, "
       "registered_at, last_heartbeat) VALUES ($1, $2, $3::text[], $4, $5, $6, $7::text[], 'idle', "
       TS("$8") ", " TS("$8") ") ON CONFLICT (id) DO UPDATE SET hostname = EXCLUDED.hostname, "
       "kinds = EXCLUDED.kinds, gpus = EXCLUDED.gpus, gpu_memory_mb = EXCLUDED.gpu_memory_mb, "
       "cpu_cores = EXCLUDED.cpu_cores, gpu_models = EXCLUDED.gpu_models, state = 'idle', "
       "last_heartbeat = EXCLUDED.last_heartbeat"},
      {"get_worker",
       "SELECT id, hostname, array_to_string(kinds, ','), gpus, gpu_memory_mb, cpu_cores, "
       "array_to_string(gpu_models, chr(31)), state, " US("registered_at") ", " US("last_heartbeat") " "
       "FROM workers WHERE ($1 = '' OR id = $1) ORDER BY id"},
      {"touch_worker",
       "UPDATE workers SET state = $2, last_heartbeat = " TS("$3") " WHERE id = $1 RETURNING id"},
      {"lost_workers",
       "UPDATE workers SET state = 'lost' WHERE state <> 'lost' AND last_heartbeat < " TS("$1")},
      {"insert_checkpoint",
       "INSERT INTO checkpoints (run_id, parent_id, job_id, uri, step, round, metrics, created_at) "
       "VALUES ($1, nullif($2, 0), nullif($3, 0), $4, $5, $6, $7::jsonb, " TS("$8") ") RETURNING id"},
      {"get_checkpoint", std::string("SELECT ") + kCheckpointCols + " FROM checkpoints WHERE id = $1"},
      {"list_checkpoints",
       std::string("SELECT ") + kCheckpointCols + " FROM checkpoints WHERE run_id = $1 ORDER BY id"},
      {"lineage",
       "SELECT c.id, c.run_id, coalesce(c.parent_id, 0), coalesce(c.job_id, 0), c.uri, c.step, c.round, "
       "c.metrics::text, " US("c.created_at") ", l.depth FROM checkpoint_lineage l "
       "JOIN checkpoints c ON c.id = l.ancestor_id WHERE l.checkpoint_id = $1 ORDER BY l.depth"},
  };
}

absl::Status Stale(const Lease& lease) {
  return absl::FailedPreconditionError(
      absl::StrCat("lease on job ", lease.job_id, " at epoch ", lease.epoch, " is stale"));
}

class PgRunStore final : public RunStore {
 public:
  explicit PgRunStore(PgPool* pool) : pool_(pool) {}

  absl::StatusOr<Run> CreateRun(const NewRun& in, TimePoint now) override {
    int64_t id = 0;
    RETURN_IF_ERROR(pool_->WithTransaction([&](pqxx::work& tx) {
      auto r = tx.exec_prepared("insert_run", in.name, in.config_json, in.idempotency_key, in.priority,
                                in.total_rounds, ToMicros(now));
      if (r.empty()) r = tx.exec_prepared("run_by_key", in.idempotency_key);
      id = r[0][0].as<int64_t>();
      return absl::OkStatus();
    }));
    return GetRun(id);
  }

  absl::StatusOr<Run> GetRun(int64_t id) override {
    Run run;
    RETURN_IF_ERROR(pool_->WithTransaction([&](pqxx::work& tx) {
      auto r = tx.exec_prepared("get_run", id);
      if (r.empty()) return absl::NotFoundError(absl::StrCat("run ", id, " not found"));
      run = RowToRun(r[0]);
      return absl::OkStatus();
    }));
    return run;
  }

  absl::StatusOr<std::vector<Run>> ListRuns(const RunFilter& f) override {
    std::vector<Run> out;
    RETURN_IF_ERROR(pool_->WithTransaction([&](pqxx::work& tx) {
      out.clear();
      for (const auto& row : tx.exec_prepared("list_runs", f.before_id, TextArray(StateNames(f.states)),
                                              f.name_prefix, f.limit))
        out.push_back(RowToRun(row));
      return absl::OkStatus();
    }));
    return out;
  }

  absl::StatusOr<Run> SetRunState(int64_t id, RunState state, const std::string& error,
                                  TimePoint now) override {
    RETURN_IF_ERROR(pool_->WithTransaction([&](pqxx::work& tx) {
      tx.exec_prepared("set_run_state", id, ToString(state), error, ToMicros(now));
      return absl::OkStatus();
    }));
    return GetRun(id);
  }

  absl::Status AdvanceRound(int64_t id, int32_t round, TimePoint now) override {
    return pool_->WithTransaction([&](pqxx::work& tx) {
      if (tx.exec_prepared("get_run", id).empty()) return absl::NotFoundError(absl::StrCat("run ", id, " not found"));
      tx.exec_prepared("advance_round", id, round, ToMicros(now));
      return absl::OkStatus();
    });
  }

  absl::StatusOr<Run> RequestCancel(int64_t id, const std::string& reason, TimePoint now) override {
    RETURN_IF_ERROR(pool_->WithTransaction([&](pqxx::work& tx) {
      auto r = tx.exec_prepared("request_cancel", id, ToMicros(now));
      if (r.affected_rows() == 0) return absl::OkStatus();  // absent or terminal: GetRun tells
      tx.exec_prepared("cancel_pending_jobs", id, reason, ToMicros(now));
      tx.exec_prepared("flag_running_jobs", id);
      return absl::OkStatus();
    }));
    return GetRun(id);
  }

  absl::StatusOr<std::vector<Run>> ListActiveRuns() override {
    std::vector<Run> out;
    RETURN_IF_ERROR(pool_->WithTransaction([&](pqxx::work& tx) {
      out.clear();
      for (const auto& row : tx.exec_prepared("active_runs")) out.push_back(RowToRun(row));
      return absl::OkStatus();
    }));
    return out;
  }

  absl::StatusOr<int64_t> AppendEvent(const RunEvent& e) override {
    int64_t id = 0;
    RETURN_IF_ERROR(pool_->WithTransaction([&](pqxx::work& tx) {
      id = tx.exec_prepared("append_event", e.run_id, e.job_id, ToMicros(e.at), e.type, e.message,
                            e.progress, MetricsToJson(e.metrics))[0][0]
               .as<int64_t>();
      return absl::OkStatus();
    }));
    return id;
  }

  absl::StatusOr<std::vector<RunEvent>> ListEvents(int64_t run_id, int64_t after_id,
                                                   int32_t limit) override {
    std::vector<RunEvent> out;
    RETURN_IF_ERROR(pool_->WithTransaction([&](pqxx::work& tx) {
      out.clear();
      for (const auto& r : tx.exec_prepared("list_events", run_id, after_id, limit)) {
        RunEvent e;
        e.id = r[0].as<int64_t>();
        e.run_id = r[1].as<int64_t>();
        e.job_id = r[2].as<int64_t>();
        e.at = FromMicros(r[3].as<int64_t>());
        e.type = r[4].as<std::string>();
        e.message = r[5].as<std::string>();
        e.progress = r[6].as<double>();
        e.metrics = JsonToMetrics(r[7].as<std::string>());
        out.push_back(std::move(e));
      }
      return absl::OkStatus();
    }));
    return out;
  }

  absl::Status RecordMetrics(const std::vector<MetricPoint>& points) override {
    return pool_->WithTransaction([&](pqxx::work& tx) {
      for (const auto& p : points) tx.exec_prepared("insert_metric", p.run_id, p.job_id, p.step, p.name, p.value);
      return absl::OkStatus();
    });
  }

  absl::StatusOr<std::vector<MetricPoint>> ListMetrics(int64_t run_id) override {
    std::vector<MetricPoint> out;
    RETURN_IF_ERROR(pool_->WithTransaction([&](pqxx::work& tx) {
      out.clear();
      for (const auto& r : tx.exec_prepared("list_metrics", run_id))
        out.push_back({r[0].as<int64_t>(), r[1].as<int64_t>(), r[2].as<int64_t>(), r[3].as<std::string>(),
                       r[4].as<double>()});
      return absl::OkStatus();
    }));
    return out;
  }

 private:
  PgPool* pool_;
};

class PgJobStore final : public JobStore {
 public:
  explicit PgJobStore(PgPool* pool) : pool_(pool) {}

  absl::StatusOr<std::vector<int64_t>> EnqueueJobs(const std::vector<NewJob>& in, TimePoint now) override {
    std::vector<int64_t> ids;
    RETURN_IF_ERROR(pool_->WithTransaction([&](pqxx::work& tx) {
      ids.clear();
      for (const auto& nj : in) {
        int32_t world = std::max(1, nj.world_size);
        std::vector<int64_t> gang;
        for (int32_t rank = 0; rank < world; ++rank) {
          auto r = tx.exec_prepared("insert_job", nj.run_id, ToString(nj.kind), nj.stage, nj.round,
                                    nj.requirements.gpus, nj.requirements.gpu_memory_mb,
                                    nj.requirements.cpu_cores, nj.priority, nj.max_attempts,
                                    nj.payload_json, int64_t{0}, rank, world, ToMicros(now));
          if (r.empty()) continue;
          gang.push_back(r[0][0].as<int64_t>());
        }
        if (world > 1 && static_cast<int32_t>(gang.size()) == world)
          tx.exec_prepared("set_gang", gang[0], NumArray(gang));
        ids.insert(ids.end(), gang.begin(), gang.end());
      }
      return absl::OkStatus();
    }));
    return ids;
  }

  absl::StatusOr<std::vector<std::optional<Job>>> AcquireJobs(const std::vector<WorkerOffer>& offers,
                                                              TimePoint now, TimePoint lease_until) override {
    std::vector<std::optional<Job>> out;
    // One scan covers every offer: the union of kinds and the largest capabilities, then a greedy
    // match in priority order. Rows locked but not matched are released at commit.
    std::vector<std::string> kinds;
    int32_t gpus = 0, cpus = 0;
    int64_t mem = 0;
    for (const auto& o : offers) {
      for (auto k : o.kinds) {
        if (std::find(kinds.begin(), kinds.end(), ToString(k)) == kinds.end()) kinds.push_back(ToString(k));
      }
      gpus = std::max(gpus, o.gpus);
      cpus = std::max(cpus, o.cpu_cores);
      mem = std::max(mem, o.gpu_memory_mb);
    }
    RETURN_IF_ERROR(pool_->WithTransaction([&](pqxx::work& tx) {
      out.assign(offers.size(), std::nullopt);
      std::vector<int64_t> ids, scanned;
      std::vector<std::string> workers;
      std::map<int64_t, size_t> offer_of;
      std::vector<bool> taken(offers.size(), false);
      // Row locks are writes: lock only as many rows as there are offers. A second, wider scan
      // (skipping the rows already locked) runs only when some offer found nothing that fits.
      for (int64_t limit : {static_cast<int64_t>(offers.size()), static_cast<int64_t>(offers.size()) * 4 + 16}) {
        auto rows = tx.exec_prepared("ready_jobs", ToMicros(now), TextArray(kinds), gpus, mem, cpus, limit,
                                     NumArray(scanned));
        for (const auto& row : rows) {
          Job j = RowToJob(row);
          scanned.push_back(j.id);
          for (size_t i = 0; i < offers.size(); ++i) {
            if (taken[i] || !offers[i].Fits(j)) continue;
            taken[i] = true;
            ids.push_back(j.id);
            workers.push_back(offers[i].worker_id);
            offer_of[j.id] = i;
            break;
          }
          if (ids.size() == offers.size()) break;
        }
        if (ids.size() == offers.size() || static_cast<int64_t>(rows.size()) < limit) break;
      }
      if (ids.empty()) return absl::OkStatus();
      for (const auto& row : tx.exec_prepared("lease_jobs", NumArray(ids), TextArray(workers),
                                              ToMicros(lease_until))) {
        Job j = RowToJob(row);
        out[offer_of.at(j.id)] = std::move(j);
      }
      return absl::OkStatus();
    }));
    return out;
  }

  absl::StatusOr<Job> ExtendLease(const Lease& lease, TimePoint now, TimePoint until) override {
    Job job;
    RETURN_IF_ERROR(pool_->WithTransaction([&](pqxx::work& tx) {
      auto r = tx.exec_prepared("extend_lease", lease.job_id, lease.epoch, ToMicros(now), ToMicros(until));
      if (r.empty()) return Stale(lease);
      job = RowToJob(r[0]);
      return absl::OkStatus();
    }));
    return job;
  }

  absl::StatusOr<Job> FinishAttempt(const Lease& lease, const AttemptOutcome& o, TimePoint now) override {
    Job job;
    RETURN_IF_ERROR(pool_->WithTransaction([&](pqxx::work& tx) {
      auto r = Finish(tx, lease, o, now);
      if (!r.empty()) {
        job = RowToJob(r[0]);
        Event(tx, job, o, now);
        return absl::OkStatus();
      }
      auto cur = tx.exec_prepared("get_job", lease.job_id);
      if (cur.empty()) return absl::NotFoundError(absl::StrCat("job ", lease.job_id, " not found"));
      job = RowToJob(cur[0]);
      // A repeated success under the same epoch (the first reply was lost) is accepted as is.
      if (o.kind == AttemptOutcome::Kind::kSucceed && job.state == JobState::kSucceeded &&
          job.epoch == lease.epoch)
        return absl::OkStatus();
      return Stale(lease);
    }));
    return job;
  }

  absl::StatusOr<std::vector<Job>> ListExpiredLeases(TimePoint now, int32_t limit) override {
    return Query("expired_leases", ToMicros(now), limit);
  }

  absl::StatusOr<Job> GetJob(int64_t id) override {
    ASSIGN_OR_RETURN(auto jobs, Query("get_job", id));
    if (jobs.empty()) return absl::NotFoundError(absl::StrCat("job ", id, " not found"));
    return jobs[0];
  }

  absl::StatusOr<std::vector<Job>> ListJobs(const JobFilter& f) override {
    return Query("list_jobs", f.run_id, TextArray(StateNames(f.states)), f.limit);
  }

  absl::StatusOr<std::map<std::pair<JobKind, JobState>, int64_t>> CountJobs() override {
    std::map<std::pair<JobKind, JobState>, int64_t> out;
    RETURN_IF_ERROR(pool_->WithTransaction([&](pqxx::work& tx) {
      out.clear();
      for (const auto& r : tx.exec_prepared("count_jobs")) {
        auto kind = ParseJobKind(r[0].as<std::string>());
        auto state = ParseJobState(r[1].as<std::string>());
        if (kind && state) out[{*kind, *state}] = r[2].as<int64_t>();
      }
      return absl::OkStatus();
    }));
    return out;
  }

  absl::StatusOr<std::vector<Job>> GetGang(int64_t gang_id) override { return Query("gang", gang_id); }

  absl::Status SetRendezvous(const Lease& rank0, const std::string& payload) override {
    return pool_->WithTransaction([&](pqxx::work& tx) {
      auto r = tx.exec_prepared("set_rendezvous", rank0.job_id, rank0.epoch, absl::Base64Escape(payload));
      if (r.empty()) {
        auto cur = tx.exec_prepared("get_job", rank0.job_id);
        if (!cur.empty()) {
          Job j = RowToJob(cur[0]);
          if (j.epoch == rank0.epoch && (j.rank != 0 || j.gang_id == 0))
            return absl::InvalidArgumentError("only rank 0 of a gang posts the rendezvous payload");
        }
        return Stale(rank0);
      }
      return absl::OkStatus();
    });
  }

  absl::StatusOr<std::string> GetRendezvous(int64_t gang_id) override {
    std::string payload;
    RETURN_IF_ERROR(pool_->WithTransaction([&](pqxx::work& tx) {
      auto r = tx.exec_prepared("get_rendezvous", gang_id);
      if (r.empty()) return absl::NotFoundError(absl::StrCat("gang ", gang_id, " not found"));
      if (!absl::Base64Unescape(r[0][0].as<std::string>(), &payload))
        return absl::DataLossError("rendezvous payload is not base64");
      return absl::OkStatus();
    }));
    return payload;
  }

  absl::StatusOr<std::vector<Job>> FinishGang(const Lease& trigger, const AttemptOutcome& o,
                                              TimePoint now) override {
    std::vector<Job> out;
    RETURN_IF_ERROR(pool_->WithTransaction([&](pqxx::work& tx) {
      out.clear();
      auto t = tx.exec_prepared("lock_job", trigger.job_id);
      if (t.empty()) return Stale(trigger);
      Job tj = RowToJob(t[0]);
      if (tj.epoch != trigger.epoch || tj.gang_id == 0 ||
          (tj.state != JobState::kLeased && tj.state != JobState::kRunning))
        return Stale(trigger);
      for (const auto& row : tx.exec_prepared("gang", tj.gang_id)) {
        Job j = RowToJob(row);
        if (IsTerminal(j.state)) continue;
        if (j.state == JobState::kPending) {
          if (o.kind == AttemptOutcome::Kind::kRequeue) {
            tx.exec_prepared("gang_pending_requeue", j.id, ToMicros(o.not_before));
          } else {
            tx.exec_prepared("gang_pending_finish", j.id, OutcomeState(o), o.error,
                             ToString(o.failure_class), ToMicros(now));
          }
        } else {
          Finish(tx, {j.id, j.epoch}, o, now);
        }
        auto cur = tx.exec_prepared("get_job", j.id);
        out.push_back(RowToJob(cur[0]));
      }
      Event(tx, tj, o, now);
      return absl::OkStatus();
    }));
    return out;
  }

 private:
  static pqxx::result Finish(pqxx::work& tx, const Lease& lease, const AttemptOutcome& o, TimePoint now) {
    return tx.exec_prepared("finish_attempt", lease.job_id, lease.epoch, OutcomeState(o), o.result_json,
                            ToString(o.failure_class), o.error, ToMicros(now), ToMicros(o.not_before),
                            o.refund_attempt ? 1 : 0);
  }

  static void Event(pqxx::work& tx, const Job& job, const AttemptOutcome& o, TimePoint now) {
    if (o.event_message.empty()) return;
    tx.exec_prepared("append_event", job.run_id, job.id, ToMicros(now), EventType(o), o.event_message, -1.0, "{}");
  }

  template <typename... Args>
  absl::StatusOr<std::vector<Job>> Query(const char* stmt, Args&&... args) {
    std::vector<Job> out;
    RETURN_IF_ERROR(pool_->WithTransaction([&](pqxx::work& tx) {
      out.clear();
      for (const auto& row : tx.exec_prepared(stmt, args...)) out.push_back(RowToJob(row));
      return absl::OkStatus();
    }));
    return out;
  }

  PgPool* pool_;
};

class PgWorkerStore final : public WorkerStore {
 public:
  explicit PgWorkerStore(PgPool* pool) : pool_(pool) {}

  absl::StatusOr<Worker> UpsertWorker(const Worker& w, TimePoint now) override {
    std::vector<std::string> kinds;
    for (auto k : w.kinds) kinds.push_back(ToString(k));
    RETURN_IF_ERROR(pool_->WithTransaction([&](pqxx::work& tx) {
      tx.exec_prepared("upsert_worker", w.id, w.hostname, TextArray(kinds), w.gpus, w.gpu_memory_mb,
                       w.cpu_cores, TextArray(w.gpu_models), ToMicros(now));
      return absl::OkStatus();
    }));
    return GetWorker(w.id);
  }

  absl::StatusOr<Worker> GetWorker(const std::string& id) override {
    if (id.empty()) return absl::InvalidArgumentError("worker id is empty");
    ASSIGN_OR_RETURN(auto workers, Query(id));
    if (workers.empty()) return absl::NotFoundError(absl::StrCat("worker ", id, " not found"));
    return workers[0];
  }

  absl::Status TouchWorker(const std::string& id, const std::string& state, TimePoint now) override {
    return pool_->WithTransaction([&](pqxx::work& tx) {
      if (tx.exec_prepared("touch_worker", id, state, ToMicros(now)).empty())
        return absl::NotFoundError(absl::StrCat("worker ", id, " not found"));
      return absl::OkStatus();
    });
  }

  absl::StatusOr<std::vector<Worker>> ListWorkers() override { return Query(""); }

  absl::StatusOr<int> MarkLostWorkers(TimePoint cutoff) override {
    int n = 0;
    RETURN_IF_ERROR(pool_->WithTransaction([&](pqxx::work& tx) {
      n = static_cast<int>(tx.exec_prepared("lost_workers", ToMicros(cutoff)).affected_rows());
      return absl::OkStatus();
    }));
    return n;
  }

 private:
  absl::StatusOr<std::vector<Worker>> Query(const std::string& id) {
    std::vector<Worker> out;
    RETURN_IF_ERROR(pool_->WithTransaction([&](pqxx::work& tx) {
      out.clear();
      for (const auto& r : tx.exec_prepared("get_worker", id)) {
        Worker w;
        w.id = r[0].as<std::string>();
        w.hostname = r[1].as<std::string>();
        for (auto k : absl::StrSplit(r[2].as<std::string>(), ',', absl::SkipEmpty())) {
          if (auto kind = ParseJobKind(std::string(k))) w.kinds.push_back(*kind);
        }
        w.gpus = r[3].as<int32_t>();
        w.gpu_memory_mb = r[4].as<int64_t>();
        w.cpu_cores = r[5].as<int32_t>();
        for (auto m : absl::StrSplit(r[6].as<std::string>(), '\x1f', absl::SkipEmpty()))
          w.gpu_models.emplace_back(m);
        w.state = r[7].as<std::string>();
        w.registered_at = FromMicros(r[8].as<int64_t>());
        w.last_heartbeat = FromMicros(r[9].as<int64_t>());
        out.push_back(std::move(w));
      }
      return absl::OkStatus();
    }));
    return out;
  }

  PgPool* pool_;
};

class PgCheckpointStore final : public CheckpointStore {
 public:
  explicit PgCheckpointStore(PgPool* pool) : pool_(pool) {}

  absl::StatusOr<Checkpoint> AddCheckpoint(const Checkpoint& c, TimePoint now) override {
    Checkpoint out;
    RETURN_IF_ERROR(pool_->WithTransaction([&](pqxx::work& tx) {
      if (c.parent_id != 0 && tx.exec_prepared("get_checkpoint", c.parent_id).empty())
        return absl::InvalidArgumentError(absl::StrCat("parent checkpoint ", c.parent_id, " not found"));
      if (tx.exec_prepared("get_run", c.run_id).empty())
        return absl::NotFoundError(absl::StrCat("run ", c.run_id, " not found"));
      int64_t id = tx.exec_prepared("insert_checkpoint", c.run_id, c.parent_id, c.job_id, c.uri, c.step,
                                    c.round, MetricsToJson(c.metrics), ToMicros(now))[0][0]
                       .as<int64_t>();
      out = RowToCheckpoint(tx.exec_prepared("get_checkpoint", id)[0]);
      return absl::OkStatus();
    }));
    return out;
  }

  absl::StatusOr<std::vector<Checkpoint>> ListCheckpoints(int64_t run_id) override {
    std::vector<Checkpoint> out;
    RETURN_IF_ERROR(pool_->WithTransaction([&](pqxx::work& tx) {
      out.clear();
      for (const auto& r : tx.exec_prepared("list_checkpoints", run_id)) out.push_back(RowToCheckpoint(r));
      return absl::OkStatus();
    }));
    return out;
  }

  absl::StatusOr<std::vector<Checkpoint>> GetLineage(int64_t checkpoint_id) override {
    std::vector<Checkpoint> out;
    RETURN_IF_ERROR(pool_->WithTransaction([&](pqxx::work& tx) {
      out.clear();
      for (const auto& r : tx.exec_prepared("lineage", checkpoint_id)) {
        out.push_back(RowToCheckpoint(r));
        out.back().depth = r[9].as<int32_t>();
      }
      if (out.empty()) return absl::NotFoundError(absl::StrCat("checkpoint ", checkpoint_id, " not found"));
      return absl::OkStatus();
    }));
    return out;
  }

 private:
  PgPool* pool_;
};

class PgStore final : public Store {
 public:
  PgStore(const std::string& conninfo, int pool_size)
      : pool_(conninfo, pool_size, Statements()),
        runs_(&pool_),
        jobs_(&pool_),
        workers_(&pool_),
        checkpoints_(&pool_) {}
  RunStore& runs() override { return runs_; }
  JobStore& jobs() override { return jobs_; }
  WorkerStore& workers() override { return workers_; }
  CheckpointStore& checkpoints() override { return checkpoints_; }
  PgPool& pool() { return pool_; }

 private:
  PgPool pool_;
  PgRunStore runs_;
  PgJobStore jobs_;
  PgWorkerStore workers_;
  PgCheckpointStore checkpoints_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Store>> OpenPgStore(const std::string& conninfo, int pool_size) {
  auto store = std::make_unique<PgStore>(conninfo, std::max(1, pool_size));
  // Connect once now so a wrong URL fails here, with a clear message, rather than on first use.
  RETURN_IF_ERROR(store->pool().WithTransaction([](pqxx::work& tx) {
    tx.exec("SELECT 1 FROM schema_migrations LIMIT 1");
    return absl::OkStatus();
  }));
  return store;
}

}  // namespace temper
