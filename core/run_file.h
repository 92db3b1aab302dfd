// A file a run writes beside its result tables, such as a picture.
#ifndef PANDA_CORE_RUN_FILE_H_
#define PANDA_CORE_RUN_FILE_H_

#include <string>

namespace panda {

struct RunFile {
  // Relative to the run's folder, e.g. "pictures/class0-seed0-12.png".
  std::string path;
  std::string bytes;
};

}  // namespace panda

#endif  // PANDA_CORE_RUN_FILE_H_
