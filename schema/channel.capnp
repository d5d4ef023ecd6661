@0x8a5cd0f272bd92f5;
# The seed's synchronous channel (Wetware's csp.Chan): reliable (a value sent
# is held until received), ordered (receives are served first come, first
# served) and synchronous (send returns once the value has been received).

using W = import "worker.capnp";

struct Value {
  union {
    worker @0 :W.Worker;
    text @1 :Text;
    data @2 :Data;
  }
}

interface Sender {
  send @0 (value :Value) -> ();
}

interface Recver {
  recv @0 () -> (value :Value);
}

interface Chan extends(Sender, Recver) {
  close @0 () -> ();
}
