#include "core/malloc_tuning.h"

#include <unistd.h>

#include <cstdlib>
#include <cstring>

namespace panda {

void RestartWithMallocTuning(char** argv) {
#if defined(__GLIBC__)
  const char* switch_value = std::getenv("PANDA_MALLOC_TUNING");
  if (switch_value != nullptr) return;  // Tuned already, or turned off.

  // Serve large blocks from the heap instead of fresh mappings, never give
  // the heap back on free, and grow it in 1 GiB steps.
  setenv("MALLOC_MMAP_THRESHOLD_", "4294967296", /*overwrite=*/0);
  setenv("MALLOC_TRIM_THRESHOLD_", "68719476736", /*overwrite=*/0);
  setenv("MALLOC_TOP_PAD_", "1073741824", /*overwrite=*/0);
  setenv("PANDA_MALLOC_TUNING", "1", /*overwrite=*/1);
  execv("/proc/self/exe", argv);
  // execv returns only on failure; carry on untuned.
#else
  (void)argv;
#endif
}

}  // namespace panda
