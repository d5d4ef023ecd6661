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

  leave @2 () -> ();
  # The workers offered over this connection take no new runs. Returns once
  # none of them has a run in flight: the worker may then disconnect without
  # losing anything (a graceful stop).
}
