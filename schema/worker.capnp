@0xfbf4855b2f29e13b;
# A worker node, as the gateway sees it. A worker offers this capability by
# sending it into the gateway's channel; the gateway calls it to run modules.

interface Worker {
  assign @0 (wasm :Data, input :Int64, difficulty :Int64) -> (result :Text);
  # The seed's method, unchanged: instantiate `wasm`, call its
  # `run(input, difficulty)` (or its WASI `_start`) and return the result text.

  info @1 () -> (info :WorkerInfo);
  # Who the worker is and how many runs it accepts at once.

  execute @2 (job :Job) -> (outcome :Outcome);
  # One attempt of one scheduled run, with what the gateway records about it.

  ping @3 () -> ();
  # Liveness check for half-open connections.

  cancel @4 (taskId :Text, iteration :UInt32) -> (found :Bool);
  # Interrupt that run if it is executing here; its `execute` call then
  # answers with state `cancelled`.

  executeMany @5 (jobs :List(Job)) -> (outcomes :List(Outcome));
  # Several short runs in one call (outcome i is job i's), spread over the
  # worker's slots and started each at its notBeforeNs. Used for runs known
  # to be short, so one round trip carries many.
}

struct WorkerInfo {
  peer @0 :Text;          # the worker's peer ID (12D3KooW...)
  concurrency @1 :UInt32; # runs it executes at once
  # Where runs may go (runworker --labels, --queues): a run is sent only to
  # a worker serving its task's queue and having every label of its
  # constraints. The gateway refuses an offer over its bounds (64 labels,
  # 32 queues, names of at most 100 bytes, values of at most 200).
  labels @2 :List(Label); # empty: none
  queues @3 :List(Text);  # empty: ["default"]
}

struct Label {
  key @0 :Text;
  value @1 :Text;
}

struct Job {
  taskId @0 :Text;
  iteration @1 :UInt32;
  moduleHash @2 :Text;    # lowercase hex SHA-256 of `wasm`
  wasm @3 :Data;          # empty: the worker has the module or fetches it
                          # by hash from the gateway (Host.module)
  input @4 :Int64;
  difficulty @5 :Int64;
  timeLimitMs @6 :UInt32; # 0: the worker's default
  notBeforeNs @7 :Int64;  # due time, ns since the epoch: a run sent a little
                          # ahead of it starts then, on the worker's clock (0: now)
  # What a WASI command is given (a `run` export is given input, difficulty).
  hasArgs @8 :Bool;       # false: argv is [taskId, input, difficulty], as the seed's
  args @9 :List(Text);    # argv after argv[0] (the task id), when hasArgs
  stdin @10 :Data;        # the whole of stdin, then end of file
  env @11 :List(EnvVar);  # the environment, exactly: nothing else is inherited
}

struct EnvVar {
  name @0 :Text;
  value @1 :Text;
}

struct Outcome {
  state @0 :State;
  enum State {
    succeeded @0;
    failed @1;    # trap, bad export, invalid module, non-zero WASI exit
    timedOut @2;  # stopped at its time limit
    cancelled @3; # interrupted by `cancel`
  }
  result @1 :Text;        # the run's output (decimal result, or WASI stdout
                          # when it is UTF-8: else resultBytes)
  error @2 :Text;         # why it failed, for people
  exitCode @3 :Int32;     # WASI exit code, when hasExitCode
  hasExitCode @4 :Bool;
  startedAtNs @5 :Int64;  # worker wall clock, ns since the epoch
  finishedAtNs @6 :Int64;
  resultBytes @7 :Data;   # a WASI command's stdout when it is not UTF-8
                          # (then `result` is empty); empty otherwise
  resultTruncated @8 :Bool; # stdout was cut to the result limit
  stderr @9 :Text;        # a WASI command's stderr, its last bytes when long
                          # (invalid UTF-8 replaced)
  compileCache @10 :CompileCache;
  enum CompileCache {
    unreported @0; # the run never asked for its module, or an older worker
    hit @1;        # the module was compiled on this worker already
    miss @2;       # compiled for this run (or its compile failed)
  }
}
