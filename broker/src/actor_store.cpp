#include "bridge/broker/actor_store.hpp"

#include <hiredis/hiredis.h>

#include <charconv>
#include <cstring>
#include <map>

namespace bridge::broker {
namespace {

// KEYS: actor hash, tenant's resident counter. ARGV: expected version, worker, max resident bytes
// (0 = none), now (ms), then (name, meta, bytes) per tensor. Returns {1, 'ok', new version} or
// {0, 'version', current version} or {0, 'max_resident_bytes', bytes the tenant would hold}.
constexpr const char* kWriteScript = R"lua(
local current = tonumber(redis.call('HGET', KEYS[1], 'version') or '0')
if current ~= tonumber(ARGV[1]) then return {0, 'version', current} end
local delta = 0
for i = 5, #ARGV, 3 do
  delta = delta + string.len(ARGV[i + 2]) - redis.call('HSTRLEN', KEYS[1], 't:' .. ARGV[i])
end
local total = tonumber(redis.call('GET', KEYS[2]) or '0')
local limit = tonumber(ARGV[3])
if limit > 0 and delta > 0 and total + delta > limit then return {0, 'max_resident_bytes', total + delta} end
for i = 5, #ARGV, 3 do
  redis.call('HSET', KEYS[1], 't:' .. ARGV[i], ARGV[i + 2], 'm:' .. ARGV[i], ARGV[i + 1])
end
redis.call('HSET', KEYS[1], 'version', current + 1, 'worker', ARGV[2], 'updated_ms', ARGV[4])
if delta ~= 0 then redis.call('INCRBY', KEYS[2], delta) end
return {1, 'ok', current + 1}
)lua";

// Like HGETALL, leaving out the tensors' bytes, which it never reads (HKEYS, then HMGET of the
// rest): a description (bridgectl actor show) costs Redis the same for a 64 MiB tensor as for 4 bytes.
constexpr const char* kDescribeScript = R"lua(
local names = {}
for _, name in ipairs(redis.call('HKEYS', KEYS[1])) do
  if string.sub(name, 1, 2) ~= 't:' then names[#names + 1] = name end
end
if #names == 0 then return {} end
local values = redis.call('HMGET', KEYS[1], unpack(names))
local out = {}
for i = 1, #names do
  out[#out + 1] = names[i]
  out[#out + 1] = values[i]
end
return out
)lua";

std::int64_t now_unix_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::uint64_t to_u64(std::string_view text) {
  std::uint64_t value = 0;
  std::from_chars(text.data(), text.data() + text.size(), value);
  return value;
}

}  // namespace

std::string encode_tensor_meta(DType dtype, const Shape& shape) {
  std::string out = dtype_name(dtype);
  out += ' ';
  for (std::size_t i = 0; i < shape.size(); ++i) out += (i ? "," : "") + std::to_string(shape[i]);
  return out;
}

bool decode_tensor_meta(std::string_view text, DType& dtype, Shape& shape) {
  const auto space = text.find(' ');
  if (space == std::string_view::npos || !parse_dtype(text.substr(0, space), dtype)) return false;
  shape.clear();
  std::string_view dims = text.substr(space + 1);
  while (!dims.empty()) {
    const auto comma = dims.find(',');
    const std::string_view dim = dims.substr(0, comma);
    std::int64_t value = -1;
    if (std::from_chars(dim.data(), dim.data() + dim.size(), value).ec != std::errc() || value < 0) return false;
    shape.push_back(value);
    dims = comma == std::string_view::npos ? std::string_view() : dims.substr(comma + 1);
  }
  return true;
}

std::string ActorStore::key(const std::string& tenant, const std::string& actor_id) const {
  return prefix_ + "actor:" + tenant + "/" + actor_id;
}

bool ActorStore::load(const std::string& tenant, const std::string& actor_id, bool with_data, LoadHandler done) {
  auto on_reply = [with_data, done = std::move(done)](const redisReply* reply) {
    ActorState state;
    if (reply == nullptr || reply->type != REDIS_REPLY_ARRAY) return done(false, std::move(state));
    std::map<std::string, std::string_view> fields;
    for (std::size_t i = 0; i + 1 < reply->elements; i += 2)
      fields[std::string(reply->element[i]->str, reply->element[i]->len)] =
          std::string_view(reply->element[i + 1]->str, reply->element[i + 1]->len);
    state.found = fields.count("version") > 0;
    state.version = state.found ? to_u64(fields["version"]) : 0;
    if (auto it = fields.find("worker"); it != fields.end()) state.worker = std::string(it->second);
    if (auto it = fields.find("updated_ms"); it != fields.end()) state.updated_unix_ms = static_cast<std::int64_t>(to_u64(it->second));
    for (const auto& [field, value] : fields) {
      if (field.rfind("m:", 0) != 0) continue;
      const std::string name = field.substr(2);
      DType dtype{};
      Shape shape;
      if (!decode_tensor_meta(value, dtype, shape)) continue;  // not written by ActorStore: ignored
      Tensor t = with_data ? Tensor::zeros(dtype, shape, name) : Tensor::adopt(dtype, shape, name, nullptr, nullptr, 0);
      if (with_data) {
        auto data = fields.find("t:" + name);
        if (data == fields.end() || data->second.size() != t.byte_size()) continue;  // torn: ignored
        if (!data->second.empty()) std::memcpy(t.mutable_bytes().data(), data->second.data(), data->second.size());
      }
      state.tensors.push_back(std::move(t));
    }
    done(true, std::move(state));
  };
  if (with_data) return redis_.command({"HGETALL", key(tenant, actor_id)}, std::move(on_reply));
  return redis_.command({"EVAL", kDescribeScript, "1", key(tenant, actor_id)}, std::move(on_reply));
}

bool ActorStore::write(const std::string& tenant, const std::string& actor_id, std::uint64_t expected_version,
                       const std::string& worker, const std::vector<Tensor>& tensors,
                       std::uint64_t max_resident_bytes, WriteHandler done) {
  std::vector<std::string> args{"EVAL", kWriteScript, "2", key(tenant, actor_id), prefix_ + "resident:" + tenant,
                                std::to_string(expected_version), worker, std::to_string(max_resident_bytes),
                                std::to_string(now_unix_ms())};
  for (const Tensor& t : tensors) {
    args.push_back(t.name());
    args.push_back(encode_tensor_meta(t.dtype(), t.shape()));
    args.emplace_back(reinterpret_cast<const char*>(t.bytes().data()), t.byte_size());
  }
  return redis_.command(args, [done = std::move(done)](const redisReply* reply) {
    WriteResult r;
    if (reply != nullptr && reply->type == REDIS_REPLY_ERROR) {
      r.error.assign(reply->str, reply->len);
      return done(std::move(r));
    }
    if (reply == nullptr || reply->type != REDIS_REPLY_ARRAY || reply->elements != 3 ||
        reply->element[0]->type != REDIS_REPLY_INTEGER || reply->element[2]->type != REDIS_REPLY_INTEGER)
      return done(std::move(r));
    r.reachable = true;
    r.written = reply->element[0]->integer == 1;
    r.refusal.assign(reply->element[1]->str, reply->element[1]->len);
    const auto value = static_cast<std::uint64_t>(reply->element[2]->integer);
    (r.refusal == "max_resident_bytes" ? r.resident_bytes : r.version) = value;
    done(std::move(r));
  });
}

void ActorStore::set_worker(const std::string& tenant, const std::string& actor_id, const std::string& worker) {
  // Only an actor that has state: placement alone must not create an empty actor record.
  static constexpr const char* kScript =
      "if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('HSET', KEYS[1], 'worker', ARGV[1]) end return 1";
  redis_.command({"EVAL", kScript, "1", key(tenant, actor_id), worker});
}

bool ActorStore::tenant_bytes(const std::string& tenant, BytesHandler done) {
  return redis_.command({"GET", prefix_ + "resident:" + tenant}, [done = std::move(done)](const redisReply* reply) {
    if (reply == nullptr || reply->type == REDIS_REPLY_ERROR) return done(false, -1);
    done(true, reply->type == REDIS_REPLY_STRING ? static_cast<std::int64_t>(to_u64({reply->str, reply->len})) : 0);
  });
}

}  // namespace bridge::broker
