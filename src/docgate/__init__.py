"""docgate: role-aware document store served over gRPC."""

import os

# gRPC core's fork handlers (on by default in grpcio's builds) exist for processes that fork
# and then use gRPC in the child. docgate only forks to exec (the embedded PostgreSQL's pg_ctl,
# run by subprocess, also at exit), and with gRPC's threads running the handlers cannot run
# anyway: each such fork printed "fork_posix.cc ... skipping fork() handlers". Turned off
# before grpc is first imported (this package is imported before any of its modules); an
# explicit setting in the environment wins.
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")
