@0xe88400288c8e2bfd;
# Discovery (boot) packets sent over UDP multicast. What travels is an
# Envelope: the Packet's bytes and the sender's Ed25519 signature over them.
# The signing key is the one inside the sender's peer ID.

struct Envelope {
  payload @0 :Data;    # a Packet, Cap'n Proto packed
  signature @1 :Data;  # Ed25519 over "ww-boot-packet:" ++ payload
}

struct Packet {
  namespace @0 :Text;
  stamp @1 :UInt64;    # sender's wall clock, ms since the epoch
  union {
    request @2 :Request;
    survey @3 :Survey;
    response @4 :Response;
  }

  struct Request {
    from @0 :Data;     # peer ID bytes (identity multihash)
  }

  struct Survey {
    from @0 :Data;
    distance @1 :UInt8;
  }

  struct Response {
    peer @0 :Data;
    addrs @1 :List(Text);  # multiaddrs, e.g. /ip4/127.0.0.1/tcp/4001
  }
}
