#pragma once
/// @file CURVE keys: key files, and turning CURVE on for a socket.
///
/// Key files are ZeroMQ's certificate text format (as czmq's zcert and pyzmq's zmq.auth write and
/// read): a `curve` section with `public-key = "<Z85>"` and, in a secret file only, `secret-key`.
/// `bridgectl keygen NAME` writes NAME.key (secret, mode 0600) and NAME.pub. Secrets are read from
/// files only, never taken from the command line, where `ps` would show them.

#include <string>
#include <string_view>

namespace zmq {
class socket_t;
}

namespace bridge::core {

/// A CURVE key pair, each key 40 characters of Z85 (32 bytes).
struct CurveKeys {
  std::string public_key;
  std::string secret_key;  ///< empty when read from a public key file
};

/// Whether `key` is a Z85-encoded 32-byte CURVE key (40 characters of ZeroMQ's Z85 alphabet).
bool valid_curve_key(std::string_view key);

/// Reads a key file. `need_secret`: the file must hold a secret key and be readable by its owner
/// only (mode 0600 or stricter, as ssh asks of private keys); the public key is derived from the
/// secret when the file lists none. Throws core::ConfigError naming the file and what to fix.
CurveKeys read_key_file(const std::string& path, bool need_secret);

/// Makes a new key pair and writes `<prefix>.key` (secret, created mode 0600) and `<prefix>.pub`.
/// Refuses to overwrite an existing file. Throws core::ConfigError. Returns the pair.
CurveKeys write_key_files(const std::string& prefix);

/// The CURVE settings of a socket that connects (client, worker, bridgectl): its own key pair and
/// the server's public key. Empty: no CURVE (a broker with `security: none`).
struct CurveClientKeys {
  CurveKeys own;
  std::string server_public_key;
  bool enabled() const { return !server_public_key.empty(); }
};

/// Reads the key files of a socket that connects. With `from_environment`, an empty path is taken
/// from GPUBRIDGE_KEY_FILE / GPUBRIDGE_BROKER_KEY_FILE (clients and tools; workers take paths from
/// their config only). Both empty: CURVE off. Only one of the two set is an error. Throws
/// core::ConfigError.
CurveClientKeys read_client_keys(std::string key_file, std::string server_key_file, bool from_environment);

/// The keys directory convention of scripts/demo, docker-compose and the load tools, which act for
/// several tenants: DIR/NAME.key is NAME's key file, DIR/broker.pub the broker's public key.
/// `dir` empty: $GPUBRIDGE_KEYS_DIR; both empty: leaves the paths as they are.
void key_files_in_dir(std::string dir, const std::string& name, std::string& key_file, std::string& broker_key_file);

/// Turns CURVE on for a socket that connects, before its connect(). No-op when !keys.enabled().
void apply_curve_client(zmq::socket_t& socket, const CurveClientKeys& keys);

/// Turns CURVE on for a socket that binds, before its bind(); `zap_domain` tells the broker's ZAP
/// handler which of its sockets a connection came to.
void apply_curve_server(zmq::socket_t& socket, const CurveKeys& keys, const std::string& zap_domain);

}  // namespace bridge::core
