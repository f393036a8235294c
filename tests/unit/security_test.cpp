// Key files and allowlists (docs/security.md). "Key material never appears in logs" and "a
// missing key file, an empty allowlist ... stops start-up with a clear message".
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <thread>

#include "ion/broker/broker.h"
#include "ion/core/security.h"
#include "ion/core/transport.h"

namespace ion {
namespace {

std::string fresh_dir(const std::string& name) {
  const std::string d = ::testing::TempDir() + "/sec-" + name + "-" + std::to_string(::getpid());
  std::string cmd = "rm -rf '" + d + "' && mkdir -p '" + d + "'";
  EXPECT_EQ(std::system(cmd.c_str()), 0);
  return d;
}

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string message_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "<no error>";
}

TEST(Keys, CurveIsAvailableInThisLibzmq) { EXPECT_TRUE(curve_available()); }

TEST(Keys, GeneratedPairRoundTripsThroughItsFiles) {
  const std::string dir = fresh_dir("roundtrip");
  const CurveKeyPair p = generate_keypair("padova");
  EXPECT_TRUE(valid_z85_key(p.public_z85));
  EXPECT_TRUE(valid_z85_key(p.secret_z85));
  EXPECT_NE(p.public_z85, p.secret_z85);
  const KeyFiles f = write_keypair(p, dir);

  struct stat st {};
  ASSERT_EQ(::stat(f.secret_path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u) << "the secret key file must be private";

  const CurveKeyPair back = load_secret_key(f.secret_path);
  EXPECT_EQ(back.name, "padova");
  EXPECT_EQ(back.public_z85, p.public_z85);
  EXPECT_EQ(back.secret_z85, p.secret_z85);
  EXPECT_EQ(load_public_key(f.public_path), p.public_z85);
  EXPECT_EQ(load_public_key(p.public_z85), p.public_z85);  // the key itself is accepted too
  EXPECT_EQ(slurp(f.public_path), "padova " + p.public_z85 + "\n");
  // The .pub file is an allowlist line as it stands.
  const Allowlist a = Allowlist::load_file(f.public_path);
  EXPECT_EQ(a.size(), 1u);
  EXPECT_TRUE(a.has_name("padova"));
}

TEST(Keys, ExistingKeysAreNotReplacedUnlessForced) {
  const std::string dir = fresh_dir("noreplace");
  const CurveKeyPair first = generate_keypair("zurich");
  write_keypair(first, dir);
  const CurveKeyPair second = generate_keypair("zurich");
  EXPECT_NE(message_of([&] { write_keypair(second, dir); }).find("exists"), std::string::npos);
  EXPECT_EQ(load_secret_key(dir + "/zurich.key").secret_z85, first.secret_z85);
  write_keypair(second, dir, true);
  EXPECT_EQ(load_secret_key(dir + "/zurich.key").secret_z85, second.secret_z85);
}

TEST(Keys, ASecretKeyOthersCanReadIsRefused) {
  const std::string dir = fresh_dir("mode");
  const KeyFiles f = write_keypair(generate_keypair("southampton"), dir);
  ASSERT_EQ(::chmod(f.secret_path.c_str(), 0644), 0);
  const std::string msg = message_of([&] { (void)load_secret_key(f.secret_path); });
  EXPECT_NE(msg.find("chmod 600"), std::string::npos) << msg;
}

TEST(Keys, MissingDamagedOrMismatchedKeyFilesSayWhatIsWrongWithoutTheKey) {
  const std::string dir = fresh_dir("damaged");
  EXPECT_NE(message_of([&] { (void)load_secret_key(dir + "/nope.key"); }).find("ion keygen"),
            std::string::npos);
  const CurveKeyPair a = generate_keypair("a");
  const CurveKeyPair b = generate_keypair("b");
  const std::string path = dir + "/mixed.key";
  {
    std::ofstream out(path);
    out << "name a\npublic " << a.public_z85 << "\nsecret " << b.secret_z85 << "\n";
  }
  ASSERT_EQ(::chmod(path.c_str(), 0600), 0);
  const std::string msg = message_of([&] { (void)load_secret_key(path); });
  EXPECT_NE(msg.find("do not belong together"), std::string::npos) << msg;
  EXPECT_EQ(msg.find(b.secret_z85), std::string::npos) << "a secret key in an error message";
  EXPECT_EQ(msg.find(a.public_z85), std::string::npos);
}

TEST(Keys, NamesAndKeysAreChecked) {
  EXPECT_TRUE(valid_key_name("zurich-chip_2.v1"));
  EXPECT_FALSE(valid_key_name(""));
  EXPECT_FALSE(valid_key_name("two words"));
  EXPECT_FALSE(valid_key_name(std::string(65, 'a')));
  EXPECT_FALSE(valid_z85_key("short"));
  EXPECT_FALSE(valid_z85_key(std::string(40, '"')));
  EXPECT_THROW((void)generate_keypair("../escape"), SecurityError);
}

// A plaintext client of a CURVE server (or the reverse) may see only a reset: the server's
// greeting, read without starting a handshake, says which security it wants.
TEST(Greeting, TheServersMechanismIsReadWithoutAHandshake) {
  zmq::context_t ctx;
  const CurveKeyPair key = generate_keypair("broker");
  zmq::socket_t curve(ctx, zmq::socket_type::router);
  curve.set(zmq::sockopt::curve_server, 1);
  curve.set(zmq::sockopt::curve_secretkey, key.secret_z85);
  curve.set(zmq::sockopt::linger, 0);
  curve.bind("tcp://127.0.0.1:*");
  zmq::socket_t plain(ctx, zmq::socket_type::router);
  plain.set(zmq::sockopt::linger, 0);
  plain.bind("tcp://127.0.0.1:*");
  const std::string ipc = "ipc://" + fresh_dir("greeting") + "/broker.sock";
  zmq::socket_t local(ctx, zmq::socket_type::router);
  local.set(zmq::sockopt::linger, 0);
  local.bind(ipc);
  EXPECT_EQ(greeting_mechanism(curve.get(zmq::sockopt::last_endpoint), 2000), "CURVE");
  EXPECT_EQ(greeting_mechanism(plain.get(zmq::sockopt::last_endpoint), 2000), "NULL");
  EXPECT_EQ(greeting_mechanism(ipc, 2000), "NULL");
  // The probe leaves no half-open peer behind: the server still serves a real client.
  zmq::socket_t client(ctx, zmq::socket_type::dealer);
  client.set(zmq::sockopt::linger, 0);
  client.connect(plain.get(zmq::sockopt::last_endpoint));
  client.send(zmq::str_buffer("hello"));
  zmq::message_t id;
  zmq::message_t body;
  ASSERT_TRUE(plain.recv(id));
  ASSERT_TRUE(plain.recv(body));
  EXPECT_EQ(body.to_string(), "hello");
}

TEST(Greeting, WhatIsNotAZmtpServerIsNotGuessedAt) {
  // Nothing listening, a port that closes at once (a relay whose far side is down), a server
  // that says something else, an endpoint of another form: no answer, in bounded time.
  EXPECT_EQ(greeting_mechanism("tcp://127.0.0.1:1", 2000), std::nullopt);
  EXPECT_EQ(greeting_mechanism("inproc://broker", 2000), std::nullopt);
  EXPECT_EQ(greeting_mechanism("tcp://no-port", 2000), std::nullopt);
  zmq::context_t ctx;
  zmq::socket_t stream(ctx, zmq::socket_type::stream);  // raw TCP: answers with what we send
  stream.set(zmq::sockopt::linger, 0);
  stream.bind("tcp://127.0.0.1:*");
  const std::string ep = stream.get(zmq::sockopt::last_endpoint);
  std::optional<std::string> got = std::string("unset");
  std::thread probe([&] { got = greeting_mechanism(ep, 3000); });
  zmq::message_t id;
  zmq::message_t data;
  bool heard = false;
  stream.set(zmq::sockopt::rcvtimeo, 3000);
  while (!heard) {  // an empty message first: the connection
    if (!stream.recv(id) || !stream.recv(data)) break;
    heard = data.size() > 0;
  }
  if (heard) {
    const std::string http = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n";
    const std::string peer = id.to_string();  // a sent message is consumed: keep the id
    stream.send(zmq::buffer(peer), zmq::send_flags::sndmore);
    stream.send(zmq::buffer(http), zmq::send_flags::none);
    stream.send(zmq::buffer(peer), zmq::send_flags::sndmore);
    stream.send(zmq::message_t{}, zmq::send_flags::none);  // close it
  }
  probe.join();
  EXPECT_TRUE(heard) << "the probe sent its greeting's start";
  EXPECT_EQ(got, std::nullopt);
}

TEST(Allowlist, MalformedLinesAreNamedByFileAndLine) {
  const CurveKeyPair p = generate_keypair("padova");
  const CurveKeyPair z = generate_keypair("zurich");
  const std::string ok = "# labs\npadova " + p.public_z85 + "\n\nzurich " + z.public_z85 + "\n";
  const Allowlist a = Allowlist::parse(ok, "allow.txt");
  EXPECT_EQ(a.size(), 2u);
  std::array<uint8_t, 32> raw{};
  ASSERT_NE(zmq_z85_decode(raw.data(), z.public_z85.c_str()), nullptr);
  const std::string* name = a.find({reinterpret_cast<const char*>(raw.data()), raw.size()});
  ASSERT_NE(name, nullptr);
  EXPECT_EQ(*name, "zurich");
  EXPECT_EQ(a.find(std::string(32, 'x')), nullptr);

  EXPECT_NE(message_of([&] { (void)Allowlist::parse("padova\n", "allow.txt"); })
                .find("allow.txt:1: expected 'NAME PUBLICKEY'"),
            std::string::npos);
  EXPECT_NE(message_of([&] { (void)Allowlist::parse("# c\npadova notakey\n", "allow.txt"); })
                .find("allow.txt:2:"),
            std::string::npos);
  const std::string twice = "padova " + p.public_z85 + "\nzurich " + p.public_z85 + "\n";
  EXPECT_NE(message_of([&] { (void)Allowlist::parse(twice, "allow.txt"); })
                .find("already listed for 'padova'"),
            std::string::npos);
}

TEST(FailClosed, EndpointsOthersCanReachAreKnown) {
  EXPECT_TRUE(local_only_endpoint("tcp://127.0.0.1:5555"));
  EXPECT_TRUE(local_only_endpoint("tcp://127.0.0.1:*"));
  EXPECT_TRUE(local_only_endpoint("tcp://localhost:5555"));
  EXPECT_TRUE(local_only_endpoint("tcp://[::1]:5555"));
  EXPECT_TRUE(local_only_endpoint("ipc:///tmp/ion.sock"));
  EXPECT_FALSE(local_only_endpoint("tcp://0.0.0.0:5555"));
  EXPECT_FALSE(local_only_endpoint("tcp://*:5555"));
  EXPECT_FALSE(local_only_endpoint("tcp://eth0:5555"));
  EXPECT_FALSE(local_only_endpoint("tcp://10.0.0.2:5555"));
  EXPECT_FALSE(local_only_endpoint("tcp://127.0.0.1.example.org:5555"));
}

Topology one_node() {
  Topology t;
  t.nodes = {{"gen", "generator", 1, 0}};
  return t;
}

TEST(FailClosed, PlaintextBrokerOnAReachableAddressRefusesToStart) {
  BrokerOptions o;
  o.listen = "tcp://0.0.0.0:0";
  o.topology = one_node();
  Broker b(o);
  const std::string msg = message_of([&] { (void)b.bind(); });
  EXPECT_NE(msg.find("refusing to listen"), std::string::npos) << msg;
  EXPECT_NE(msg.find("--insecure"), std::string::npos) << msg;
}

TEST(FailClosed, BrokerWithAKeyButAnEmptyAllowlistRefusesToStart) {
  BrokerOptions o;
  o.listen = "tcp://127.0.0.1:*";
  o.topology = one_node();
  o.security.key = generate_keypair("broker");
  Broker b(o);
  const std::string msg = message_of([&] { (void)b.bind(); });
  EXPECT_NE(msg.find("lists no node keys"), std::string::npos) << msg;
}

TEST(FailClosed, BrokerConfigNeedsBothKeyAndAllowlistAndNamesTheFile) {
  const std::string dir = fresh_dir("config");
  std::ofstream(dir + "/topo.yaml") << "nodes:\n  gen: {kind: generator, channels: 1}\n";
  std::ofstream(dir + "/half.yaml") << "broker:\n  topology: topo.yaml\n  secret_key: b.key\n";
  std::string msg = message_of([&] { (void)BrokerOptions::from_file(dir + "/half.yaml"); });
  EXPECT_NE(msg.find("allowlist"), std::string::npos) << msg;
  std::ofstream(dir + "/missing.yaml")
      << "broker:\n  topology: topo.yaml\n  secret_key: b.key\n  allowlist: allow.txt\n";
  msg = message_of([&] { (void)BrokerOptions::from_file(dir + "/missing.yaml"); });
  EXPECT_NE(msg.find("missing.yaml:3"), std::string::npos) << msg;
  EXPECT_NE(msg.find("b.key"), std::string::npos) << msg;
}

TEST(Limits, TopologiesBeyondTheLimitsAreRefusedAtStart) {
  BrokerOptions o;
  o.topology.nodes = {{"big", "generator", 100000, 0}};
  o.max_channels_per_node = 65536;
  EXPECT_NE(message_of([&] { Broker b(o); }).find("max_channels_per_node"), std::string::npos);
  o.max_channels_per_node = 1u << 20;
  o.topology.nodes.push_back({"sink", "sink", 0, 100000});
  o.topology.connections = {connect_whole("big", "sink", 0)};
  o.max_routes = 1000;
  EXPECT_NE(message_of([&] { Broker b(o); }).find("max_routes"), std::string::npos);
}

}  // namespace
}  // namespace ion
