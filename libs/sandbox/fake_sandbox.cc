#include "libs/sandbox/fake_sandbox.h"

#include "absl/strings/match.h"

namespace temper::sandbox {

void FakeSandbox::On(Predicate when, Handler then) {
  std::lock_guard lock(mu_);
  rules_.emplace_back(std::move(when), std::move(then));
}

void FakeSandbox::OnProgram(const std::string& program, Result result) {
  On([program](const Request& r) { return !r.argv.empty() && absl::EndsWith(r.argv[0], program); },
     [result](const Request&) { return result; });
}

absl::StatusOr<Result> FakeSandbox::Run(const Request& request) {
  Handler handler;
  {
    std::lock_guard lock(mu_);
    requests_.push_back(request);
    for (const auto& [when, then] : rules_) {
      if (when(request)) {
        handler = then;
        break;
      }
    }
  }
  if (handler) return handler(request);
  Result ok;
  ok.exit_code = 0;
  return ok;
}

std::vector<Request> FakeSandbox::requests() const {
  std::lock_guard lock(mu_);
  return requests_;
}

}  // namespace temper::sandbox
