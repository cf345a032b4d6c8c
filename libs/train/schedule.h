// Learning-rate schedule: linear warmup then cosine decay to zero, exactly as transformers'
// get_cosine_schedule_with_warmup (num_cycles 0.5): the multiplier of optimizer step s (0-based)
// is s / warmup while s < warmup, then 0.5 * (1 + cos(pi * (s - warmup) / (total - warmup))).
#pragma once

#include <cstdint>

namespace temper::train {

double CosineWithWarmup(int64_t step, int64_t warmup_steps, int64_t total_steps, double peak_lr);

}  // namespace temper::train
