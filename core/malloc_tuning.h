// glibc malloc settings for programs that allocate many large tensors.
#ifndef PANDA_CORE_MALLOC_TUNING_H_
#define PANDA_CORE_MALLOC_TUNING_H_

namespace panda {

// Restarts the program with glibc malloc tunables that keep freed tensor
// memory in the heap for reuse, unless they are already set. With glibc's
// defaults each forward pass maps and unmaps its activations and page faults
// dominate: MobileNetV2 at 224 px extracted 38 images/s with the defaults
// and 127 images/s with these settings (2 cores, batch 64, one run each).
//
// The settings go through the environment because glibc applies them to
// every arena from process start. The same values set with mallopt() from
// main() gave no speed-up in that measurement. Call first thing in main().
// PANDA_MALLOC_TUNING=0 turns this off. Returns only when no restart
// happens (already tuned, turned off, or the restart failed).
void RestartWithMallocTuning(char** argv);

}  // namespace panda

#endif  // PANDA_CORE_MALLOC_TUNING_H_
