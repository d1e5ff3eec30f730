// Wire limits shared by the coordinator and the workers.
#pragma once

#include <cstddef>

namespace fetchfleet {

inline constexpr size_t kMaxBodyCapBytes = 32 << 20;
inline constexpr size_t kMaxMessageBytes = 16 << 20;

}  // namespace fetchfleet
