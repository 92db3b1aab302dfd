// Aggregates of a run's per-class, per-seed results.
#ifndef PANDA_CORE_RUN_SUMMARY_H_
#define PANDA_CORE_RUN_SUMMARY_H_

#include "config/results.pb.h"

namespace panda {

// Fills `result`'s summaries (per class across seeds), seeds (per seed
// across classes) and the run means from `result.classes()`.
void SummarizeRun(RunResult& result);

}  // namespace panda

#endif  // PANDA_CORE_RUN_SUMMARY_H_
