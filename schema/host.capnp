@0x993affc15718942c;
# The capability a gateway exports on its RPC listener (the bootstrap
# capability of every connection).

using C = import "channel.capnp";

interface Host {
  peer @0 () -> (id :Text);
  # The gateway's peer ID.

  channel @1 (name :Text) -> (sender :C.Sender);
  # The sending end of a named channel. Only the sending end is handed out:
  # a worker may offer itself, it may not take other workers' capabilities.
  # Only after `authenticate`.

  leave @2 () -> ();
  # The workers offered over this connection take no new runs. Returns once
  # none of them has a run in flight: the worker may then disconnect without
  # losing anything (a graceful stop).

  challenge @3 () -> (nonce :Data);
  # A fresh random nonce for this connection.

  authenticate @4 (peer :Text, signature :Data) -> ();
  # Prove holding the key of `peer`: an Ed25519 signature over
  # "ww-join:" ++ gateway peer ID ++ ":" ++ nonce. Fails if the signature
  # does not check, or if the connection's TLS certificate (cluster mode)
  # belongs to another peer.

  module @5 (hash :Text) -> (wasm :Data);
  # The bytes of a submitted module, by lowercase hex SHA-256. Jobs carry
  # only the hash: a worker that lacks the module fetches it here once and
  # keeps it compiled. Only after `authenticate`.
}
