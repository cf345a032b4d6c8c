// FakeSandbox: a Sandbox for unit tests. Records every Request and answers from a script of
// handlers (the first whose predicate matches), else a plain success. Thread-safe.
#pragma once

#include <functional>
#include <mutex>
#include <vector>

#include "libs/sandbox/sandbox.h"

namespace temper::sandbox {

class FakeSandbox final : public Sandbox {
 public:
  using Handler = std::function<absl::StatusOr<Result>(const Request&)>;
  using Predicate = std::function<bool(const Request&)>;

  // Requests matching `when` are answered by `then`; earlier rules win.
  void On(Predicate when, Handler then);
  // Convenience: argv[0] ends with `program` → `result`.
  void OnProgram(const std::string& program, Result result);

  absl::StatusOr<Result> Run(const Request& request) override;

  std::vector<Request> requests() const;

 private:
  mutable std::mutex mu_;
  std::vector<std::pair<Predicate, Handler>> rules_;  // GUARDED_BY(mu_)
  std::vector<Request> requests_;                     // GUARDED_BY(mu_)
};

}  // namespace temper::sandbox
