#include "bridge/broker/actor_store.hpp"

#include <hiredis/hiredis.h>

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <map>
#include <random>

namespace bridge::broker {
namespace {

// KEYS: actor hash, tenant's resident counter. ARGV: expected version, worker, max resident bytes
// (0 = none), now (ms), then per tensor (name, meta, bytes, chunk base, chunk count). Returns
// {1, 'ok', new version}, or {0, 'version', current version}, {0, 'lost', lost version, current
// version}, {0, 'max_resident_bytes', bytes the tenant would hold}, or {0, 'expired', current
// version}; refused, it unlinks the staged chunks. Redis holding an *older* version than the call
// started from means Redis lost acknowledged state: the actor is marked lost, never rolled forward.
// LOST_MARK_TTL_MS is replaced by ActorStore::kLostMarkTtlMs (commit_script()).
constexpr const char* kCommitScriptText = R"lua(
local function unlink(base, chunks)
  for c = 0, chunks - 1 do redis.call('UNLINK', base .. ':' .. c) end
end
local function unlink_staged()
  for i = 5, #ARGV, 5 do unlink(ARGV[i + 3], tonumber(ARGV[i + 4])) end
end
local current = tonumber(redis.call('HGET', KEYS[1], 'version') or '0')
local lost = tonumber(redis.call('HGET', KEYS[1], 'lost') or '0')
if lost > 0 or current < tonumber(ARGV[1]) then
  unlink_staged()
  if lost < tonumber(ARGV[1]) then
    lost = tonumber(ARGV[1])
    redis.call('HSET', KEYS[1], 'lost', lost)
    if redis.call('HLEN', KEYS[1]) == 1 then redis.call('PEXPIRE', KEYS[1], LOST_MARK_TTL_MS) end
  end
  return {0, 'lost', lost, current}
end
if current ~= tonumber(ARGV[1]) then
  unlink_staged()
  return {0, 'version', current}
end
for i = 5, #ARGV, 5 do
  for c = 0, tonumber(ARGV[i + 4]) - 1 do
    if redis.call('EXISTS', ARGV[i + 3] .. ':' .. c) == 0 then
      unlink_staged()
      return {0, 'expired', current}
    end
  end
end
local delta = 0
for i = 5, #ARGV, 5 do
  delta = delta + tonumber(ARGV[i + 2]) - tonumber(redis.call('HGET', KEYS[1], 'n:' .. ARGV[i]) or '0')
end
local total = tonumber(redis.call('GET', KEYS[2]) or '0')
local limit = tonumber(ARGV[3])
if limit > 0 and delta > 0 and total + delta > limit then
  unlink_staged()
  return {0, 'max_resident_bytes', total + delta}
end
for i = 5, #ARGV, 5 do
  local name = ARGV[i]
  local old = redis.call('HMGET', KEYS[1], 'b:' .. name, 'c:' .. name)
  if old[1] then unlink(old[1], tonumber(old[2] or '0')) end
  for c = 0, tonumber(ARGV[i + 4]) - 1 do redis.call('PERSIST', ARGV[i + 3] .. ':' .. c) end
  redis.call('HSET', KEYS[1], 'm:' .. name, ARGV[i + 1], 'n:' .. name, ARGV[i + 2], 'b:' .. name, ARGV[i + 3],
             'c:' .. name, ARGV[i + 4])
end
redis.call('HSET', KEYS[1], 'version', current + 1, 'worker', ARGV[2], 'updated_ms', ARGV[4])
if delta ~= 0 then redis.call('INCRBY', KEYS[2], delta) end
return {1, 'ok', current + 1}
)lua";

const std::string& commit_script() {
  static const std::string script = [] {
    std::string text = kCommitScriptText;
    const std::string placeholder = "LOST_MARK_TTL_MS";
    text.replace(text.find(placeholder), placeholder.size(), std::to_string(ActorStore::kLostMarkTtlMs));
    return text;
  }();
  return script;
}

// Storage for a tensor that its chunks will fill: not zero-filled first, so that reading a large
// state costs the loop one chunk's copy at a time, and no pass over the whole of it up front.
Tensor unfilled(DType dtype, Shape shape, std::string name) {
  constexpr std::size_t kAlignment = 64;
  const std::size_t size = static_cast<std::size_t>(element_count(shape)) * dtype_size(dtype);
  void* raw = std::aligned_alloc(kAlignment, (size / kAlignment + 1) * kAlignment);
  if (raw == nullptr) throw std::bad_alloc();
  std::shared_ptr<const void> owner(raw, [](const void* p) { std::free(const_cast<void*>(p)); });
  return Tensor::adopt(dtype, std::move(shape), std::move(name), std::move(owner), static_cast<const std::byte*>(raw),
                       size);
}

std::size_t chunks_of(std::size_t bytes) { return (bytes + ActorStore::kChunkBytes - 1) / ActorStore::kChunkBytes; }

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

struct ActorStore::Write {
  std::string tenant, actor_id, worker;
  std::uint64_t expected_version = 0, max_resident_bytes = 0;
  std::vector<Tensor> tensors;         ///< one per name
  std::vector<std::string> bases;      ///< per tensor: the staged chunks' names, before ":<i>"
  std::size_t tensor = 0, offset = 0;  ///< the next chunk to stage
  int in_flight = 0;
  bool failed = false, finished = false;
  std::string error;
  WriteHandler done;
};

struct ActorStore::Load {
  ActorState state;
  std::vector<std::string> bases;     ///< per tensor of state.tensors
  std::size_t tensor = 0, chunk = 0;  ///< the next chunk to read
  int in_flight = 0;
  bool failed = false, finished = false;
  LoadHandler done;
};

ActorStore::ActorStore(RedisConnection& redis, std::string prefix, ReplicaWait::Options durability)
    : redis_(redis), prefix_(std::move(prefix)), replicas_(redis, durability), next_write_(std::random_device{}()) {}

void ActorStore::tick(std::chrono::steady_clock::time_point now) { replicas_.tick(now); }

std::string ActorStore::key(const std::string& tenant, const std::string& actor_id) const {
  return prefix_ + "actor:" + tenant + "/" + actor_id;
}

bool ActorStore::load(const std::string& tenant, const std::string& actor_id, bool with_data, LoadHandler done) {
  auto op = std::make_shared<Load>();
  op->done = std::move(done);
  return redis_.command({"HGETALL", key(tenant, actor_id)}, [this, op, with_data](const redisReply* reply) {
    if (reply == nullptr || reply->type != REDIS_REPLY_ARRAY) return op->done(false, std::move(op->state));
    std::map<std::string, std::string_view> fields;
    for (std::size_t i = 0; i + 1 < reply->elements; i += 2)
      fields[std::string(reply->element[i]->str, reply->element[i]->len)] =
          std::string_view(reply->element[i + 1]->str, reply->element[i + 1]->len);
    ActorState& state = op->state;
    state.found = fields.count("version") > 0;
    state.version = state.found ? to_u64(fields["version"]) : 0;
    if (auto it = fields.find("worker"); it != fields.end()) state.worker = std::string(it->second);
    if (auto it = fields.find("updated_ms"); it != fields.end())
      state.updated_unix_ms = static_cast<std::int64_t>(to_u64(it->second));
    if (auto it = fields.find("lost"); it != fields.end()) state.lost_version = to_u64(it->second);
    for (const auto& [field, value] : fields) {
      if (field.rfind("m:", 0) != 0) continue;
      const std::string name = field.substr(2);
      DType dtype{};
      Shape shape;
      if (!decode_tensor_meta(value, dtype, shape)) continue;  // not written by ActorStore: ignored
      if (!with_data) {
        state.tensors.push_back(Tensor::adopt(dtype, shape, name, nullptr, nullptr, 0));
        continue;
      }
      Tensor t;
      try {
        t = unfilled(dtype, shape, name);
      } catch (const std::bad_alloc&) {
        return op->done(false, ActorState{});  // no memory for it: as if Redis did not answer
      }
      auto base = fields.find("b:" + name), count = fields.find("c:" + name), bytes = fields.find("n:" + name);
      if (t.byte_size() > 0 &&
          (base == fields.end() || count == fields.end() || bytes == fields.end() ||
           to_u64(bytes->second) != t.byte_size() || to_u64(count->second) != chunks_of(t.byte_size())))
        continue;  // torn, or of an older layout: ignored
      op->bases.emplace_back(base == fields.end() ? std::string_view() : base->second);
      state.tensors.push_back(std::move(t));
    }
    if (!with_data) return op->done(true, std::move(state));
    read(op);
  });
}

void ActorStore::read(const std::shared_ptr<Load>& op) {
  while (!op->failed && op->in_flight < kChunksInFlight && op->tensor < op->state.tensors.size()) {
    Tensor& t = op->state.tensors[op->tensor];
    if (op->chunk >= chunks_of(t.byte_size())) {
      ++op->tensor;
      op->chunk = 0;
      continue;
    }
    const std::size_t offset = op->chunk * kChunkBytes;
    const std::size_t size = std::min(kChunkBytes, t.byte_size() - offset);
    std::byte* into = t.mutable_bytes().data() + offset;
    const std::string name = op->bases[op->tensor] + ":" + std::to_string(op->chunk++);
    ++op->in_flight;
    const bool sent = redis_.command({"GET", name}, [this, op, into, size](const redisReply* reply) {
      --op->in_flight;
      // Missing (nil) or of another size: the state was replaced while it was read.
      if (reply == nullptr || reply->type != REDIS_REPLY_STRING || reply->len != size) {
        op->failed = true;
      } else {
        std::memcpy(into, reply->str, size);
      }
      read(op);
    });
    if (!sent) {
      --op->in_flight;
      op->failed = true;
    }
  }
  if (op->in_flight > 0 || op->finished) return;
  op->finished = true;
  op->done(!op->failed, std::move(op->state));
}

bool ActorStore::write(const std::string& tenant, const std::string& actor_id, std::uint64_t expected_version,
                       const std::string& worker, const std::vector<Tensor>& tensors, std::uint64_t max_resident_bytes,
                       WriteHandler done) {
  if (!redis_.connected()) return false;
  auto op = std::make_shared<Write>();
  op->tenant = tenant;
  op->actor_id = actor_id;
  op->worker = worker;
  op->expected_version = expected_version;
  op->max_resident_bytes = max_resident_bytes;
  op->done = std::move(done);
  // One tensor per name, the last one given: a name twice must not count its bytes twice.
  for (const Tensor& t : tensors) {
    auto same =
        std::find_if(op->tensors.begin(), op->tensors.end(), [&](const Tensor& o) { return o.name() == t.name(); });
    if (same != op->tensors.end()) {
      *same = t;
      continue;
    }
    op->tensors.push_back(t);
    op->bases.push_back(prefix_ + "actorblob:" + tenant + "/" + actor_id + "#" + std::to_string(next_write_++));
  }
  stage(op);
  return true;
}

void ActorStore::stage(const std::shared_ptr<Write>& op) {
  static const std::string ttl = std::to_string(kStagedTtlMs);
  while (!op->failed && op->in_flight < kChunksInFlight && op->tensor < op->tensors.size()) {
    const Tensor& t = op->tensors[op->tensor];
    if (op->offset >= t.byte_size()) {
      ++op->tensor;
      op->offset = 0;
      continue;
    }
    const std::size_t size = std::min(kChunkBytes, t.byte_size() - op->offset);
    const std::string name = op->bases[op->tensor] + ":" + std::to_string(op->offset / kChunkBytes);
    const std::string_view bytes(reinterpret_cast<const char*>(t.bytes().data()) + op->offset, size);
    op->offset += size;
    ++op->in_flight;
    const bool sent = redis_.command_views({"SET", name, bytes, "PX", ttl}, [this, op](const redisReply* reply) {
      --op->in_flight;
      if (reply == nullptr || reply->type == REDIS_REPLY_ERROR) {
        op->failed = true;
        if (reply != nullptr && op->error.empty()) op->error.assign(reply->str, reply->len);
      }
      stage(op);
    });
    if (!sent) {
      --op->in_flight;
      op->failed = true;
    }
  }
  if (op->in_flight > 0 || op->finished) return;
  op->finished = true;
  if (op->failed) {
    WriteResult r;  // not reachable; the staged chunks expire
    r.error = op->error;
    return op->done(std::move(r));
  }
  commit(op);
}

void ActorStore::commit(const std::shared_ptr<Write>& op) {
  std::vector<std::string> args{"EVAL",
                                commit_script(),
                                "2",
                                key(op->tenant, op->actor_id),
                                prefix_ + "resident:" + op->tenant,
                                std::to_string(op->expected_version),
                                op->worker,
                                std::to_string(op->max_resident_bytes),
                                std::to_string(now_unix_ms())};
  for (std::size_t i = 0; i < op->tensors.size(); ++i) {
    const Tensor& t = op->tensors[i];
    args.push_back(t.name());
    args.push_back(encode_tensor_meta(t.dtype(), t.shape()));
    args.push_back(std::to_string(t.byte_size()));
    args.push_back(op->bases[i]);
    args.push_back(std::to_string(chunks_of(t.byte_size())));
  }
  const bool sent = redis_.command(args, [this, op](const redisReply* reply) {
    WriteResult r;
    if (reply == nullptr) {
      // Sent, but the connection went before the answer: Redis may have run the commit or not.
      r.reachable = true;
      r.refusal = "unconfirmed";
      r.version = op->expected_version + 1;
      return op->done(std::move(r));
    }
    if (reply->type == REDIS_REPLY_ERROR) {
      r.error.assign(reply->str, reply->len);
      return op->done(std::move(r));
    }
    if (reply == nullptr || reply->type != REDIS_REPLY_ARRAY || reply->elements < 3 ||
        reply->element[0]->type != REDIS_REPLY_INTEGER || reply->element[2]->type != REDIS_REPLY_INTEGER)
      return op->done(std::move(r));
    const std::string refusal(reply->element[1]->str, reply->element[1]->len);
    if (refusal == "expired") {
      r.error = "its staged bytes expired in Redis before they could be committed";
      return op->done(std::move(r));
    }
    r.reachable = true;
    r.written = reply->element[0]->integer == 1;
    r.refusal = refusal;
    const auto value = static_cast<std::uint64_t>(reply->element[2]->integer);
    (r.refusal == "max_resident_bytes" ? r.resident_bytes : r.version) = value;
    if (reply->elements > 3 && reply->element[3]->type == REDIS_REPLY_INTEGER)
      r.stored_version = static_cast<std::uint64_t>(reply->element[3]->integer);
    if (!r.written || !replicas_.enabled()) return op->done(std::move(r));
    replicas_.add([op, r](bool confirmed) mutable {
      if (!confirmed) {  // committed on a master this broker can no longer ask: a fail-over may lose it
        r.written = false;
        r.refusal = "unconfirmed";
      }
      op->done(std::move(r));
    });
  });
  if (!sent) op->done(WriteResult{});
}

bool ActorStore::settle(const std::string& tenant, const std::string& actor_id, std::uint64_t version,
                        SettleHandler done) {
  // A state that landed is touched (`settled`): WAIT counts the replicas that have this
  // connection's writes, and the landed one came before this one in the replication stream.
  static constexpr const char* kScript =
      "local v = redis.call('HMGET', KEYS[1], 'version', 'lost') "
      "local stored, lost = tonumber(v[1] or '0'), tonumber(v[2] or '0') "
      "if lost == 0 and stored >= tonumber(ARGV[1]) then redis.call('HSET', KEYS[1], 'settled', ARGV[1]) end "
      "return {stored, lost}";
  return redis_.command({"EVAL", kScript, "1", key(tenant, actor_id), std::to_string(version)},
                        [this, version, done = std::move(done)](const redisReply* reply) {
                          Settled s;
                          if (reply == nullptr || reply->type != REDIS_REPLY_ARRAY || reply->elements != 2 ||
                              reply->element[0]->type != REDIS_REPLY_INTEGER ||
                              reply->element[1]->type != REDIS_REPLY_INTEGER)
                            return done(s);
                          s.reachable = true;
                          s.version = static_cast<std::uint64_t>(reply->element[0]->integer);
                          s.lost_version = static_cast<std::uint64_t>(reply->element[1]->integer);
                          s.landed = s.lost_version == 0 && s.version >= version;
                          if (!s.landed || !replicas_.enabled()) return done(s);
                          replicas_.add([s, done](bool confirmed) mutable {
                            s.reachable = confirmed;
                            done(s);
                          });
                        });
}

void ActorStore::set_worker(const std::string& tenant, const std::string& actor_id, const std::string& worker) {
  // Only an actor that has state: placement alone must not create an empty actor record.
  static constexpr const char* kScript =
      "if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('HSET', KEYS[1], 'worker', ARGV[1]) end return 1";
  redis_.command({"EVAL", kScript, "1", key(tenant, actor_id), worker});
}

void ActorStore::mark_lost(const std::string& tenant, const std::string& actor_id, std::uint64_t version) {
  // Only if Redis holds less: a version that is there (or a newer one) was not lost.
  static constexpr const char* kScript = R"lua(
local current = tonumber(redis.call('HGET', KEYS[1], 'version') or '0')
local lost = tonumber(redis.call('HGET', KEYS[1], 'lost') or '0')
local version = tonumber(ARGV[1])
if current < version and lost < version then
  redis.call('HSET', KEYS[1], 'lost', version)
  if redis.call('HLEN', KEYS[1]) == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
end
return 1
)lua";
  redis_.command(
      {"EVAL", kScript, "1", key(tenant, actor_id), std::to_string(version), std::to_string(kLostMarkTtlMs)});
}

bool ActorStore::reset(const std::string& tenant, const std::string& actor_id, ResetHandler done) {
  // KEYS: actor hash, tenant's resident counter, actor's turn. ARGV: now (ms). Returns the new
  // version, 0 if the actor has no record, or -1 while a call (through any broker) holds its turn.
  // Unlinks the chunks of every tensor and takes their bytes off the tenant's count; the record
  // keeps only its version, past any it had or lost.
  static constexpr const char* kScript = R"lua(
if redis.call('EXISTS', KEYS[3]) == 1 then return -1 end
local fields = redis.call('HGETALL', KEYS[1])
if #fields == 0 then return 0 end
local version, lost, bytes, bases, counts = 0, 0, 0, {}, {}
for i = 1, #fields, 2 do
  local field, value = fields[i], fields[i + 1]
  local kind, name = string.sub(field, 1, 2), string.sub(field, 3)
  if field == 'version' then version = tonumber(value)
  elseif field == 'lost' then lost = tonumber(value)
  elseif kind == 'n:' then bytes = bytes + tonumber(value)
  elseif kind == 'b:' then bases[name] = value
  elseif kind == 'c:' then counts[name] = tonumber(value) end
end
for name, base in pairs(bases) do
  for c = 0, (counts[name] or 0) - 1 do redis.call('UNLINK', base .. ':' .. c) end
end
if bytes > 0 then redis.call('INCRBY', KEYS[2], -bytes) end
local next_version = math.max(version, lost) + 1
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'version', next_version, 'worker', '', 'updated_ms', ARGV[1])
return next_version
)lua";
  return redis_.command({"EVAL", kScript, "3", key(tenant, actor_id), prefix_ + "resident:" + tenant,
                         turn_key(tenant, actor_id), std::to_string(now_unix_ms())},
                        [done = std::move(done)](const redisReply* reply) {
                          if (reply == nullptr || reply->type != REDIS_REPLY_INTEGER) return done(false, 0);
                          done(true,
                               reply->integer < 0 ? kResetRefusedBusy : static_cast<std::uint64_t>(reply->integer));
                        });
}

bool ActorStore::tenant_bytes(const std::string& tenant, BytesHandler done) {
  return redis_.command({"GET", prefix_ + "resident:" + tenant}, [done = std::move(done)](const redisReply* reply) {
    if (reply == nullptr || reply->type == REDIS_REPLY_ERROR) return done(false, -1);
    done(true, reply->type == REDIS_REPLY_STRING ? static_cast<std::int64_t>(to_u64({reply->str, reply->len})) : 0);
  });
}

}  // namespace bridge::broker
