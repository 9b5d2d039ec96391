#pragma once
// Writing a whole folder atomically: it is filled as a temporary sibling and renamed into place.
#include <functional>
#include <string>

namespace wick::io {

/// Creates `dir` (and missing parents) with the files `fill` writes into the temporary folder it
/// is given (a sibling "dir.tmp-XXXXXX", so the rename cannot cross file systems). Readers see
/// no `dir`, or an old `dir`, or the complete new one. An existing empty `dir` is replaced; a
/// non-empty one only with `replace` (swapped in one step where the file system can, then
/// deleted). A failure removes the temporary folder and leaves `dir` as it was.
void write_directory_atomic(const std::string& dir, const std::function<void(const std::string& tmp)>& fill,
                            bool replace);

}  // namespace wick::io
