// Recomputes the CRC-32 and size fields of a zip archive, so that a fuzz
// target can reach the code behind a CRC check with mutated record
// contents. The real readers check every CRC and would stop almost every
// mutated input there.
#ifndef PANDA_FUZZ_ZIP_CRC_FIXUP_H_
#define PANDA_FUZZ_ZIP_CRC_FIXUP_H_

#include <string>

namespace panda::fuzz {

// Rewrites the entries of the archive in `bytes` whose records are stored
// uncompressed and lie inside `bytes`. Each gets the CRC-32 of its record's
// data, and its compressed size as its uncompressed size, in the central
// directory and in the local header. Zip64 fields are not followed, and
// anything malformed is left as it is. Returns whether a field changed.
bool FixZipCrcs(std::string& bytes);

}  // namespace panda::fuzz

#endif  // PANDA_FUZZ_ZIP_CRC_FIXUP_H_
