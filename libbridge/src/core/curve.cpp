#include "bridge/core/curve.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <sstream>

#include <zmq.hpp>

#include "bridge/core/config_map.hpp"

namespace bridge::core {
namespace {

constexpr std::size_t kZ85KeyChars = 40;

// The value of `name = "value"` on a line of a certificate file, or "" if the line is not that key.
std::string value_of(std::string_view line, std::string_view name) {
  const auto start = line.find_first_not_of(" \t");
  if (start == std::string_view::npos || line.substr(start, name.size()) != name) return "";
  std::string_view rest = line.substr(start + name.size());
  const auto eq = rest.find('=');
  if (eq == std::string_view::npos || rest.substr(0, eq).find_first_not_of(" \t") != std::string_view::npos) return "";
  rest = rest.substr(eq + 1);
  const auto first = rest.find_first_not_of(" \t\"");
  const auto last = rest.find_last_not_of(" \t\"\r");
  if (first == std::string_view::npos || last < first) return "";
  return std::string(rest.substr(first, last - first + 1));
}

std::string certificate_text(const CurveKeys& keys, bool with_secret) {
  const std::time_t now = std::time(nullptr);
  char when[32] = {};
  std::strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", std::gmtime(&now));
  std::ostringstream out;
  out << "#   ****  Generated on " << when << " UTC by bridgectl keygen  ****\n"
      << "#   ZeroMQ CURVE "
      << (with_secret ? "**Secret** Certificate: keep it private (mode 0600)" : "Public Certificate")
      << "\n#   GpuBridge: list the public key in tenants.yaml (clients), workers.yaml (workers),\n"
      << "#   or give it to clients as the broker key (the broker's own pair).\n"
      << "metadata\ncurve\n    public-key = \"" << keys.public_key << "\"\n";
  if (with_secret) out << "    secret-key = \"" << keys.secret_key << "\"\n";
  return out.str();
}

void write_new_file(const std::string& path, const std::string& text, mode_t mode) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd < 0)
    throw ConfigError("cannot create " + path + ": " + std::strerror(errno) +
                      (errno == EEXIST ? " (keygen never overwrites a key; remove it or pick another name)" : ""));
  const bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  ::close(fd);
  if (!ok) throw ConfigError("cannot write " + path + ": " + std::strerror(errno));
}

}  // namespace

bool valid_curve_key(std::string_view key) {
  if (key.size() != kZ85KeyChars) return false;
  std::uint8_t decoded[32];
  const std::string copy(key);
  return zmq_z85_decode(decoded, copy.c_str()) != nullptr;
}

CurveKeys read_key_file(const std::string& path, bool need_secret) {
  std::ifstream in(path);
  if (!in) throw ConfigError("cannot read key file " + path + ": " + std::strerror(errno));
  CurveKeys keys;
  std::string line;
  while (std::getline(in, line)) {
    if (std::string v = value_of(line, "public-key"); !v.empty()) keys.public_key = v;
    if (std::string v = value_of(line, "secret-key"); !v.empty()) keys.secret_key = v;
  }
  if (!need_secret && !keys.secret_key.empty())
    throw ConfigError("key file " + path + " holds a secret key where a public key is wanted: give the .pub file "
                      "(and keep the .key to its owner)");
  if (need_secret && keys.secret_key.empty())
    throw ConfigError("key file " + path + " holds no secret-key (is it the .pub file? give the .key file)");
  if (need_secret) {
    struct stat st {};
    if (::stat(path.c_str(), &st) == 0 && (st.st_mode & 077) != 0) {
      char mode[8];
      std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
      throw ConfigError("secret key file " + path + " may be read by others (mode " + mode + "); chmod 600 it");
    }
  }
  if (!keys.secret_key.empty() && !valid_curve_key(keys.secret_key))
    throw ConfigError("key file " + path + ": secret-key is not a 40-character Z85 CURVE key");
  if (!keys.secret_key.empty()) {
    char derived[kZ85KeyChars + 1];
    if (zmq_curve_public(derived, keys.secret_key.c_str()) != 0)
      throw ConfigError("key file " + path + ": cannot derive the public key from secret-key");
    if (!keys.public_key.empty() && keys.public_key != derived)
      throw ConfigError("key file " + path + ": public-key does not belong to secret-key");
    keys.public_key = derived;
  }
  if (!valid_curve_key(keys.public_key))
    throw ConfigError("key file " + path +
                      " holds no valid public-key (40 characters of Z85; bridgectl keygen writes one)");
  return keys;
}

CurveKeys write_key_files(const std::string& prefix) {
  CurveKeys keys;
  char pub[kZ85KeyChars + 1], sec[kZ85KeyChars + 1];
  if (zmq_curve_keypair(pub, sec) != 0)
    throw ConfigError(std::string("cannot make a CURVE key pair: ") + zmq_strerror(zmq_errno()) +
                      " (libzmq built without CURVE?)");
  keys.public_key = pub;
  keys.secret_key = sec;
  write_new_file(prefix + ".key", certificate_text(keys, true), 0600);
  write_new_file(prefix + ".pub", certificate_text(keys, false), 0644);
  return keys;
}

CurveClientKeys read_client_keys(std::string key_file, std::string server_key_file, bool from_environment) {
  if (from_environment && key_file.empty())
    if (const char* env = std::getenv("GPUBRIDGE_KEY_FILE")) key_file = env;
  if (from_environment && server_key_file.empty())
    if (const char* env = std::getenv("GPUBRIDGE_BROKER_KEY_FILE")) server_key_file = env;
  CurveClientKeys keys;
  if (key_file.empty() && server_key_file.empty()) return keys;
  if (key_file.empty() || server_key_file.empty())
    throw ConfigError("CURVE needs both the client's own key file (key_file, GPUBRIDGE_KEY_FILE) and the broker's "
                      "public key file (broker_key_file, GPUBRIDGE_BROKER_KEY_FILE); only one is set");
  keys.own = read_key_file(key_file, /*need_secret=*/true);
  keys.server_public_key = read_key_file(server_key_file, /*need_secret=*/false).public_key;
  return keys;
}

void key_files_in_dir(std::string dir, const std::string& name, std::string& key_file, std::string& broker_key_file) {
  if (dir.empty())
    if (const char* env = std::getenv("GPUBRIDGE_KEYS_DIR")) dir = env;
  if (dir.empty()) return;
  key_file = dir + "/" + name + ".key";
  broker_key_file = dir + "/broker.pub";
}

void apply_curve_client(zmq::socket_t& socket, const CurveClientKeys& keys) {
  if (!keys.enabled()) return;
  socket.set(zmq::sockopt::curve_serverkey, keys.server_public_key);
  socket.set(zmq::sockopt::curve_publickey, keys.own.public_key);
  socket.set(zmq::sockopt::curve_secretkey, keys.own.secret_key);
}

void apply_curve_server(zmq::socket_t& socket, const CurveKeys& keys, const std::string& zap_domain) {
  socket.set(zmq::sockopt::zap_domain, zap_domain);
  socket.set(zmq::sockopt::curve_server, 1);
  socket.set(zmq::sockopt::curve_secretkey, keys.secret_key);
}

}  // namespace bridge::core
