// Clock: the seam for time. Production code uses SystemClock; tests advance a FakeClock by hand,
// so leases and backoff are tested without sleeping. Both are thread-safe.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

namespace temper {

using TimePoint = std::chrono::system_clock::time_point;
using Duration = std::chrono::microseconds;

class Clock {
 public:
  virtual ~Clock() = default;
  virtual TimePoint Now() const = 0;
};

class SystemClock final : public Clock {
 public:
  TimePoint Now() const override { return std::chrono::system_clock::now(); }
  static SystemClock* Default() {
    static SystemClock clock;
    return &clock;
  }
};

class FakeClock final : public Clock {
 public:
  explicit FakeClock(TimePoint start = TimePoint(std::chrono::seconds(1'700'000'000)))
      : micros_(std::chrono::duration_cast<Duration>(start.time_since_epoch()).count()) {}
  TimePoint Now() const override { return TimePoint(Duration(micros_.load())); }
  void Advance(Duration d) { micros_ += d.count(); }

 private:
  std::atomic<int64_t> micros_;
};

// Microseconds since the Unix epoch, the unit our stores and protos use for times.
inline int64_t ToMicros(TimePoint t) {
  return std::chrono::duration_cast<Duration>(t.time_since_epoch()).count();
}
inline TimePoint FromMicros(int64_t us) { return TimePoint(Duration(us)); }

}  // namespace temper
