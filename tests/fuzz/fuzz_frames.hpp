#pragma once
// How fuzz inputs carry a multi-frame ZeroMQ message: frames one after the other, each a 4-byte
// little-endian length and its bytes. A truncated last frame keeps what is there.

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "bridge/core/wire.hpp"

namespace bridge::fuzz {

inline core::Frames split_frames(const std::uint8_t* data, std::size_t size, std::size_t max_frames = 70) {
  core::Frames frames;
  while (size >= 4 && frames.size() < max_frames) {
    std::uint32_t length = 0;
    std::memcpy(&length, data, 4);
    data += 4;
    size -= 4;
    const std::size_t n = length < size ? length : size;
    frames.emplace_back(data, n);
    data += n;
    size -= n;
  }
  return frames;
}

inline std::string join_frames(const core::Frames& frames) {
  std::string out;
  for (const auto& f : frames) {
    const auto length = static_cast<std::uint32_t>(f.size());
    out.append(reinterpret_cast<const char*>(&length), 4);
    out.append(static_cast<const char*>(f.data()), f.size());
  }
  return out;
}

}  // namespace bridge::fuzz
