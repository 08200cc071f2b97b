// Durable file operations: what makes a file's bytes and its directory entry survive power loss.
#pragma once

#include <string>
#include <string_view>

#include "quarry/status.h"

namespace quarry {

// fsyncs a directory, so that files created or renamed in it are durable.
Status SyncDirectory(const std::string& dir);

// Writes `bytes` to `path` so that a crash leaves either the old file or the new one, never a part:
// written to path + ".tmp", fsynced, renamed over `path`, and the directory fsynced.
Status WriteFileAtomically(const std::string& path, std::string_view bytes);

}  // namespace quarry
