#pragma once
// What protocol.cpp and protocol_replies.cpp share to read an envelope's body (private to them).

#include <string>
#include <vector>

#include "bridge/core/wire.hpp"

namespace bridge::core::protocol::detail {

/// The body of `envelope` as Body, or nullptr with a MALFORMED_MESSAGE status naming what came instead.
template <class Body>
const Body* body_of(const wire::Envelope& envelope, wire::Body expected, Status& status) {
  const Body* body = envelope.body_type() == expected ? static_cast<const Body*>(envelope.body()) : nullptr;
  if (body == nullptr)
    status = {StatusCode::kMalformedMessage, std::string("expected a ") + wire::EnumNameBody(expected) + ", got a " +
                                                 wire::EnumNameBody(envelope.body_type())};
  return body;
}

inline std::string text(const flatbuffers::String* s) { return std::string(view(s)); }

/// A vector of strings, written into `fbb`.
inline flatbuffers::Offset<flatbuffers::Vector<flatbuffers::Offset<flatbuffers::String>>> strings(
    flatbuffers::FlatBufferBuilder& fbb, const std::vector<std::string>& words) {
  std::vector<flatbuffers::Offset<flatbuffers::String>> out;
  out.reserve(words.size());
  for (const auto& w : words) out.push_back(fbb.CreateString(w));
  return fbb.CreateVector(out);
}

}  // namespace bridge::core::protocol::detail
