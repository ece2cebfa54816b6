#pragma once
// The recovery commands, run on the outbox file of a stopped or running service:
//   outbox-uploader status --job J [--db PATH] [--json]   items of a job by status
//   outbox-uploader retry-failed --job J [--db PATH]      failed items pending again
namespace agentline::outbox {

// argv[1] is the command. Returns the exit code (2: no outbox at --db).
int run_recovery_command(int argc, char** argv);

}  // namespace agentline::outbox
