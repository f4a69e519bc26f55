/* cli.h — the qjit command-line driver: one function per subcommand.
 * Each subcommand is a thin layer over library calls; only main() exits. */
#ifndef QJ_CLI_H
#define QJ_CLI_H

int cmd_info(int argc, char **argv);
int cmd_compile(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_generate(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_convert(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_export(int argc, char **argv);
int cmd_search(int argc, char **argv);
int cmd_baselines(int argc, char **argv);

/* Print "qjit <cmd>: <last error>" to stderr and return 1. */
int cli_error(const char *cmd);

#endif
