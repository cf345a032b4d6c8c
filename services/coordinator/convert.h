// The one place where the coordinator converts between domain types (libs/store/types.h) and the
// generated temper.v1 protos (Status conversion: libs/rpc/grpc_status.h).
#pragma once

#include <grpcpp/grpcpp.h>

#include "libs/common/status.h"
#include "libs/rpc/grpc_status.h"
#include "libs/store/types.h"
#include "temper/v1/checkpoint.pb.h"
#include "temper/v1/run.pb.h"
#include "temper/v1/worker.pb.h"

namespace temper {

// REQUIRES: run.config_json is a RunConfig in proto3 JSON.
v1::Run ToProto(const Run& run);
v1::Job ToProto(const Job& job);
v1::Worker ToProto(const Worker& worker);
v1::Checkpoint ToProto(const Checkpoint& checkpoint);
v1::RunEvent ToProto(const RunEvent& event);
Worker FromProto(const v1::Worker& worker);
Checkpoint FromProto(const v1::CheckpointInfo& info);
Lease FromProto(const v1::LeaseRef& lease);
v1::LeaseRef ToProto(const Lease& lease);

v1::JobKind ToProto(JobKind k);
JobKind FromProto(v1::JobKind k);
v1::JobState ToProto(JobState s);
JobState FromProto(v1::JobState s);
v1::RunState ToProto(RunState s);
RunState FromProto(v1::RunState s);
FailureClass FromProto(v1::FailureClass c);
v1::FailureClass ToProto(FailureClass c);

}  // namespace temper
