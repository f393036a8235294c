#pragma once
// What a client learns about a failed handshake with its server: apart from the sockets so that
// the broker session (nodes/) can be stepped without them.
#include <cstdint>

namespace ion {

// Why a client's handshake with its server failed, as far as ZMTP tells the client.
struct HandshakeFailure {
  enum class Kind : uint8_t {
    mechanism_mismatch,  // one side uses CURVE, the other plaintext
    refused,             // the server's authenticator refused (CURVE: the key is not allowed)
    crypto,              // the handshake did not decrypt (CURVE: a wrong server key)
    other,               // the connection dropped during the handshake
  };
  Kind kind = Kind::other;
  uint32_t detail = 0;  // ZMTP protocol error code, ZAP status (e.g. 400) or errno
};

}  // namespace ion
