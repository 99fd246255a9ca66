/* Subcommand entry points of the ehrtune CLI (tools/cmd_*.c). Each returns the
 * process exit code: 0 ok, 1 failure (message already printed), 2 usage error. */
#ifndef EHRTUNE_COMMANDS_H
#define EHRTUNE_COMMANDS_H

int cmd_version(int argc, char **argv);
int cmd_ingest(int argc, char **argv);
int cmd_forward(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_demo(int argc, char **argv);
int cmd_inspect(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_privacy(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_detokenize(int argc, char **argv);
int cmd_phi_scan(int argc, char **argv);
int cmd_synth(int argc, char **argv);
int cmd_export(int argc, char **argv);

#endif
